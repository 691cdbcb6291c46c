//! Where the Toss secret key comes from (product §12): in a deployed stack from an SSM
//! Parameter Store `SecureString` named by `TOSS_SECRET_KEY_PARAMETER`, read once at cold start;
//! in a local run from the plain `TOSS_SECRET_KEY` variable. A missing or unreadable secret
//! fails the start naming the variable and the parameter, never printing the value.
//!
//! The parameter is read through [`ParameterStore`], a one-method seam over the SDK call, so
//! the rules here are tested without AWS; [`Ssm`] is the real one.

use std::fmt;
use std::future::Future;

use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::ParameterType;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigError, var};

/// The variable naming the SSM parameter that holds the key (a deployed stack).
pub const PARAMETER_VAR: &str = "TOSS_SECRET_KEY_PARAMETER";
/// The variable holding the key itself (local runs only).
pub const PLAIN_VAR: &str = "TOSS_SECRET_KEY";

/// Why a parameter could not be read. Carries the service's error code, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("it does not exist (ParameterNotFound)")]
    NotFound,
    #[error("it is a {0} parameter; the key must be stored as a SecureString")]
    NotSecure(String),
    #[error(
        "SSM refused the read ({0}); check the function's ssm:GetParameter and kms:Decrypt permissions"
    )]
    Refused(String),
    #[error("SSM could not be reached ({0})")]
    Unavailable(String),
}

/// Reads one decrypted parameter. The seam over the SDK call (see [`Ssm`]).
pub trait ParameterStore {
    fn read_secure_string(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<SecretString, ReadError>> + Send;
}

/// SSM Parameter Store through the AWS SDK (`GetParameter` with decryption).
#[derive(Debug, Clone)]
pub struct Ssm(aws_sdk_ssm::Client);

impl Ssm {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        Self(client)
    }
}

impl ParameterStore for Ssm {
    async fn read_secure_string(&self, name: &str) -> Result<SecretString, ReadError> {
        let answer = self
            .0
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                let code = e.code().map(str::to_owned);
                match code.as_deref() {
                    Some("ParameterNotFound") => ReadError::NotFound,
                    Some(code) => ReadError::Refused(code.to_owned()),
                    // No service answer: a connection, timeout or credentials problem. Its
                    // Display names the kind of failure only.
                    None => ReadError::Unavailable(e.to_string()),
                }
            })?;
        let parameter = answer
            .parameter
            .ok_or_else(|| ReadError::Unavailable("an answer without a parameter".into()))?;
        match parameter.r#type {
            Some(ParameterType::SecureString) => {}
            Some(other) => return Err(ReadError::NotSecure(other.as_str().to_owned())),
            None => return Err(ReadError::NotSecure("untyped".into())),
        }
        parameter
            .value
            .map(SecretString::from)
            .ok_or_else(|| ReadError::Unavailable("an answer without a value".into()))
    }
}

/// The key read from the parameter store, if the configuration names one. Feeds the rest of
/// the configuration through [`TossSecret::lookup`].
pub struct TossSecret(Option<SecretString>);

impl fmt::Debug for TossSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = if self.0.is_some() {
            "parameter store"
        } else {
            "environment"
        };
        f.debug_tuple("TossSecret").field(&from).finish()
    }
}

impl TossSecret {
    /// Reads the key from the parameter named by `TOSS_SECRET_KEY_PARAMETER`, if that is set;
    /// otherwise the key stays `TOSS_SECRET_KEY`'s (checked by [`crate::Config`]). Setting both
    /// is refused: a stack must not silently run on a key left in its environment.
    pub async fn load(
        lookup: &impl Fn(&str) -> Option<String>,
        store: &impl ParameterStore,
    ) -> Result<Self, ConfigError> {
        let Some(name) = var(lookup, PARAMETER_VAR) else {
            return Ok(Self(None));
        };
        if var(lookup, PLAIN_VAR).is_some() {
            return Err(ConfigError::new(
                PARAMETER_VAR,
                "is set together with TOSS_SECRET_KEY; keep the key in one place (the parameter in a deployed stack)",
            ));
        }
        if !is_parameter_name(&name) {
            return Err(ConfigError::new(
                PARAMETER_VAR,
                "must be a parameter name such as /toss-subscriptions/toss-secret-key",
            ));
        }
        let secret = store.read_secure_string(&name).await.map_err(|e| {
            ConfigError::new(
                PARAMETER_VAR,
                format!("the SSM parameter {name} could not be read: {e}"),
            )
        })?;
        // Without a BOM or surrounding whitespace, as the Toss client sends it.
        let key = secret
            .expose_secret()
            .trim()
            .trim_start_matches('\u{feff}')
            .trim();
        if !(key.starts_with("test_sk_") || key.starts_with("live_sk_")) {
            return Err(ConfigError::new(
                PARAMETER_VAR,
                format!(
                    "the SSM parameter {name} must hold an API secret key (test_sk_… or live_sk_…); widget and client keys cannot do billing"
                ),
            ));
        }
        Ok(Self(Some(SecretString::from(key.to_owned()))))
    }

    /// `lookup` with `TOSS_SECRET_KEY` answered from the parameter store when the key was read
    /// from there.
    pub fn lookup(
        self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> impl Fn(&str) -> Option<String> {
        move |name: &str| match (&self.0, name) {
            (Some(secret), PLAIN_VAR) => Some(secret.expose_secret().to_owned()),
            _ => lookup(name),
        }
    }
}

/// SSM's rule for a hierarchical name: `/` then segments of `[A-Za-z0-9_.-]`, ≤ 1011 chars.
fn is_parameter_name(name: &str) -> bool {
    name.len() <= 1011
        && name.strip_prefix('/').is_some_and(|rest| {
            rest.split('/').all(|segment| {
                !segment.is_empty()
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            })
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    const SECRET: &str = "live_sk_Qm9vZ3VzU2VjcmV0S2V5Rm9yVGVzdHM";
    const PARAMETER: &str = "/toss-subscriptions/toss-secret-key";

    /// The stub of the SDK call: answers one parameter, and records what was asked.
    struct Stub {
        answer: Result<&'static str, ReadError>,
        asked: Mutex<Vec<String>>,
    }

    impl Stub {
        fn answering(answer: Result<&'static str, ReadError>) -> Self {
            Self {
                answer,
                asked: Mutex::new(Vec::new()),
            }
        }
    }

    impl ParameterStore for Stub {
        async fn read_secure_string(&self, name: &str) -> Result<SecretString, ReadError> {
            self.asked.lock().unwrap().push(name.to_owned());
            self.answer.clone().map(SecretString::from)
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![("TABLE_NAME", "t"), (PARAMETER_VAR, PARAMETER)]
    }

    #[tokio::test]
    async fn a_deployed_stack_reads_the_key_from_the_named_parameter_into_the_toss_config() {
        let stub = Stub::answering(Ok(SECRET));
        let env = env(&base());

        let secret = TossSecret::load(&env, &stub).await.unwrap();
        let config = crate::Config::from_lookup(secret.lookup(env)).unwrap();

        assert_eq!(*stub.asked.lock().unwrap(), [PARAMETER]);
        assert_eq!(config.toss.secret_key.expose_secret(), SECRET);
        assert!(!format!("{config:?}").contains("Qm9vZ3Vz"));
    }

    #[tokio::test]
    async fn a_local_run_without_a_parameter_keeps_the_plain_variable_and_asks_no_store() {
        let stub = Stub::answering(Err(ReadError::NotFound));
        let env = env(&[("TABLE_NAME", "t"), (PLAIN_VAR, SECRET)]);

        let secret = TossSecret::load(&env, &stub).await.unwrap();
        let config = crate::Config::from_lookup(secret.lookup(env)).unwrap();

        assert!(stub.asked.lock().unwrap().is_empty());
        assert_eq!(config.toss.secret_key.expose_secret(), SECRET);
    }

    #[tokio::test]
    async fn a_missing_or_unreadable_parameter_fails_the_start_naming_it() {
        for failure in [
            ReadError::NotFound,
            ReadError::Refused("AccessDeniedException".into()),
            ReadError::NotSecure("String".into()),
            ReadError::Unavailable("dispatch failure".into()),
        ] {
            let stub = Stub::answering(Err(failure.clone()));

            let err = TossSecret::load(&env(&base()), &stub).await.unwrap_err();

            assert_eq!(err.name, PARAMETER_VAR);
            assert!(err.to_string().contains(PARAMETER), "{err}");
            assert!(err.to_string().contains(&failure.to_string()), "{err}");
        }
    }

    #[tokio::test]
    async fn a_parameter_holding_something_else_than_a_secret_key_fails_without_echoing_it() {
        let stub = Stub::answering(Ok("test_gsk_docs_OaPz8L5KdmQXkzRz3y47BMw6"));

        let err = TossSecret::load(&env(&base()), &stub).await.unwrap_err();

        assert_eq!(err.name, PARAMETER_VAR);
        assert!(!format!("{err} {err:?}").contains("OaPz8L5K"), "{err}");
    }

    #[tokio::test]
    async fn a_key_both_in_the_environment_and_in_a_parameter_is_refused_before_any_read() {
        let stub = Stub::answering(Ok(SECRET));
        let mut pairs = base();
        pairs.push((PLAIN_VAR, "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"));

        let err = TossSecret::load(&env(&pairs), &stub).await.unwrap_err();

        assert_eq!(err.name, PARAMETER_VAR);
        assert!(stub.asked.lock().unwrap().is_empty());
        assert!(!err.to_string().contains("zXLkKEyp"), "{err}");
    }

    #[tokio::test]
    async fn a_malformed_parameter_name_is_refused_before_any_read() {
        for name in ["toss-secret-key", "/a//b", "/a b", "/"] {
            let stub = Stub::answering(Ok(SECRET));
            let err = TossSecret::load(&env(&[(PARAMETER_VAR, name)]), &stub)
                .await
                .unwrap_err();
            assert_eq!(err.name, PARAMETER_VAR, "{name}");
            assert!(stub.asked.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn the_loaded_secret_debug_output_says_where_it_came_from_not_what_it_is() {
        let secret = TossSecret::load(&env(&base()), &Stub::answering(Ok(SECRET)))
            .await
            .unwrap();

        let shown = format!("{secret:?}");

        assert_eq!(shown, "TossSecret(\"parameter store\")");
    }
}
