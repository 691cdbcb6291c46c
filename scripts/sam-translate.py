"""Applies the SAM transform offline and prints the resulting CloudFormation template as JSON.

cfn-lint 1.5x+ no longer expands AWS::Serverless-2016-10-31, and `sam validate --lint` lints the
untransformed template, so a bad !Ref or runtime inside AWS::Serverless::* passes both. Linting this
output catches them. Local CodeUri paths are replaced by a placeholder S3 URI (as `sam validate` does).

usage: python sam-translate.py template.yaml > transformed.json   (needs aws-sam-translator)
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no managed policy by name; nothing to look up in IAM."""

    def load(self):
        return {}


def main(path):
    os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-2")
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            for key in ("CodeUri", "ContentUri"):
                if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                    props[key] = "s3://placeholder-bucket/placeholder-key"
    transformed = transform(template, {}, NoManagedPolicies())
    json.dump(transformed, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
