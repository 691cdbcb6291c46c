//! The billing keys' envelope key in AWS KMS: the [`store::KeyService`] a deployed stack seals
//! billing keys with (`BILLING_KEY_KMS_KEY_ID`). One `GenerateDataKey` per cold start, one
//! `Decrypt` per data key another instance sealed with; both name the purpose in the
//! encryption context, so a data key made for billing keys decrypts for nothing else.

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use std::sync::Arc;

use store::{DataKey, KeyFuture, KeyService, SealError, Sealer};

use crate::config::{BILLING_KEY_KMS_KEY_ID, Config, ConfigError};

/// The encryption context every billing-key data key is bound to.
const CONTEXT: (&str, &str) = ("purpose", "toss-billing-key");

/// KMS over the AWS SDK.
#[derive(Debug, Clone)]
pub struct Kms {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl Kms {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }
}

/// What KMS said, without anything it echoed back: its error code, or the kind of failure.
fn refused<E: ProvideErrorMetadata>(operation: &str, err: &E) -> SealError {
    SealError::KeyService(format!(
        "KMS {operation} failed ({}); check the function's kms:{operation} permission on the key",
        err.code().unwrap_or("no answer")
    ))
}

fn key_bytes(operation: &str, plaintext: Option<Blob>) -> Result<[u8; 32], SealError> {
    plaintext
        .and_then(|blob| <[u8; 32]>::try_from(blob.into_inner()).ok())
        .ok_or_else(|| {
            SealError::KeyService(format!("KMS {operation} did not return a 256-bit key"))
        })
}

impl KeyService for Kms {
    fn generate_data_key(&self) -> KeyFuture<'_, DataKey> {
        Box::pin(async move {
            let out = self
                .client
                .generate_data_key()
                .key_id(&self.key_id)
                .key_spec(DataKeySpec::Aes256)
                .encryption_context(CONTEXT.0, CONTEXT.1)
                .send()
                .await
                .map_err(|e| refused("GenerateDataKey", &e))?;
            let encrypted = out
                .ciphertext_blob
                .map(Blob::into_inner)
                .filter(|blob| !blob.is_empty())
                .ok_or_else(|| {
                    SealError::KeyService("KMS GenerateDataKey returned no ciphertext".into())
                })?;
            Ok(DataKey {
                plaintext: key_bytes("GenerateDataKey", out.plaintext)?,
                encrypted,
            })
        })
    }

    fn decrypt_data_key<'a>(&'a self, encrypted: &'a [u8]) -> KeyFuture<'a, [u8; 32]> {
        Box::pin(async move {
            let out = self
                .client
                .decrypt()
                .key_id(&self.key_id)
                .ciphertext_blob(Blob::new(encrypted))
                .encryption_context(CONTEXT.0, CONTEXT.1)
                .send()
                .await
                .map_err(|e| refused("Decrypt", &e))?;
            key_bytes("Decrypt", out.plaintext)
        })
    }
}

/// The sealer a function's store uses: over KMS when the configuration names a key (one
/// `GenerateDataKey` now, so a missing permission or key fails the cold start naming the
/// variable), none for a local run.
pub async fn sealer(
    config: &Config,
    client: impl FnOnce() -> aws_sdk_kms::Client,
) -> Result<Option<Sealer>, ConfigError> {
    let Some(key) = &config.billing_key_kms_key else {
        return Ok(None);
    };
    Sealer::new(Arc::new(Kms::new(client(), key.clone())))
        .await
        .map(Some)
        .map_err(|e| ConfigError::new(BILLING_KEY_KMS_KEY_ID, e.to_string()))
}
