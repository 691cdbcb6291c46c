"""Prints, one per line as JSON, the command `sam build` runs for each Rust function of template.yaml.

The command comes from the very class `sam build` uses (aws_lambda_builders' Rust action, pinned with
aws-sam-cli in scripts/install-deps), fed the way samcli's app_builder feeds it: the function's
BuildProperties.Binary as the handler, its runtime and architecture, release mode, no extra flags.
Each line: {"function": <logical id>, "binary": <bin>, "cwd": <CodeUri>, "command": [...]}.

usage: python sam-build-commands.py template.yaml   (needs aws-sam-cli's python environment)
"""

import json
import os
import sys
from types import SimpleNamespace

from aws_lambda_builders.architecture import ARM64, X86_64
from aws_lambda_builders.workflow import BuildMode
from aws_lambda_builders.workflows.rust_cargo.actions import RustCargoLambdaBuildAction
from samtranslator.yaml_helper import yaml_parse


def main(path):
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    root = os.path.dirname(os.path.abspath(path))
    found = 0
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        metadata = resource.get("Metadata") or {}
        if metadata.get("BuildMethod") != "rust-cargolambda":
            continue
        props = resource.get("Properties") or {}
        binary = (metadata.get("BuildProperties") or {}).get("Binary")
        architectures = props.get("Architectures", globals_.get("Architectures", ["x86_64"]))
        runtime = props.get("Runtime", globals_.get("Runtime"))
        code_uri = props.get("CodeUri", globals_.get("CodeUri", "."))
        action = RustCargoLambdaBuildAction(
            source_dir=os.path.join(root, code_uri),
            binaries={"cargo": SimpleNamespace(binary_path="cargo")},
            mode=BuildMode.RELEASE,
            subprocess_cargo_lambda=None,
            runtime=runtime,
            architecture=ARM64 if architectures == ["arm64"] else X86_64,
            handler=binary,
            flags=None,
        )
        line = {
            "function": logical_id,
            "binary": binary,
            "cwd": os.path.normpath(os.path.join(root, code_uri)),
            "command": action.build_command(),
        }
        print(json.dumps(line))
        found += 1
    if found == 0:
        sys.exit(f"{path}: no AWS::Serverless::Function with BuildMethod rust-cargolambda")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
