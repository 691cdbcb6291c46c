//! Billing keys at rest: envelope encryption.
//!
//! A billing key plus the merchant's secret key can charge a customer, so with a [`Sealer`]
//! the table never holds one in plaintext. Each function instance asks the key service (KMS)
//! for one data key at cold start, seals every billing key it writes with AES-256-GCM under
//! it (the subscription's id is the associated data: a sealed key copied onto another
//! subscription does not open), and stores the data key's encrypted form beside the
//! ciphertext. Opening a key another instance sealed costs one `Decrypt` for that data key,
//! then it is cached for the instance's life.
//!
//! Without a sealer (local runs against DynamoDB Local) keys are stored as they are. A
//! plaintext key found by a sealing store (written before sealing was turned on) is read as
//! it is and sealed at the subscription's next write.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;

/// Marks a sealed value; the version names the format below.
const SEALED: &str = "sealed:v1:";
/// AES-GCM's nonce length.
const NONCE_LEN: usize = 12;

/// A future the key service returns (boxed so that the store can hold any service).
pub type KeyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SealError>> + Send + 'a>>;

/// A fresh 256-bit data key: its plaintext (kept in memory only) and the key service's
/// encryption of it (stored with every value sealed under it).
pub struct DataKey {
    pub plaintext: [u8; 32],
    pub encrypted: Vec<u8>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").finish_non_exhaustive()
    }
}

/// The two key-service operations envelope encryption needs: KMS `GenerateDataKey` and
/// `Decrypt` (implemented over the AWS SDK by the functions' wiring).
pub trait KeyService: Send + Sync {
    fn generate_data_key(&self) -> KeyFuture<'_, DataKey>;
    fn decrypt_data_key<'a>(&'a self, encrypted: &'a [u8]) -> KeyFuture<'a, [u8; 32]>;
}

/// Why a key could not be sealed or opened. Never carries the key or its ciphertext.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key service failed or refused (unreachable, no permission, disabled key).
    #[error("the key service failed: {0}")]
    KeyService(String),
    /// The stored value is not one this format can open, or it was sealed for another item
    /// or altered.
    #[error("a sealed billing key does not open ({0})")]
    Unreadable(&'static str),
}

/// Seals and opens billing keys for one function instance.
pub struct Sealer {
    service: Arc<dyn KeyService>,
    own: Aes256Gcm,
    own_encrypted: Vec<u8>,
    /// Data keys other instances sealed with, by their encrypted form.
    opened: Mutex<HashMap<Vec<u8>, Aes256Gcm>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

impl Sealer {
    /// Asks the key service for this instance's data key (one call, at cold start).
    pub async fn new(service: Arc<dyn KeyService>) -> Result<Self, SealError> {
        let key = service.generate_data_key().await?;
        Ok(Self {
            own: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key.plaintext)),
            own_encrypted: key.encrypted,
            service,
            opened: Mutex::new(HashMap::new()),
        })
    }

    /// `sealed:v1:<encrypted data key>:<nonce><ciphertext>` (base64 without padding).
    pub(crate) fn seal(&self, owner: &str, key: &str) -> Result<String, SealError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .own
            .encrypt(
                &nonce,
                Payload {
                    msg: key.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unreadable("encryption failed"))?;
        let mut body = nonce.to_vec();
        body.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED}{}:{}",
            B64.encode(&self.own_encrypted),
            B64.encode(body)
        ))
    }

    /// The key a stored value holds: opened if sealed, as it is if it predates sealing.
    pub(crate) async fn open(&self, owner: &str, stored: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_owned());
        };
        let (data_key, body) = rest
            .split_once(':')
            .ok_or(SealError::Unreadable("no data key"))?;
        let data_key = B64
            .decode(data_key)
            .map_err(|_| SealError::Unreadable("data key is not base64"))?;
        let body = B64
            .decode(body)
            .map_err(|_| SealError::Unreadable("ciphertext is not base64"))?;
        if body.len() <= NONCE_LEN {
            return Err(SealError::Unreadable("ciphertext too short"));
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let cipher = self.cipher_for(&data_key).await?;
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unreadable("authentication failed"))?;
        String::from_utf8(plain).map_err(|_| SealError::Unreadable("not UTF-8"))
    }

    async fn cipher_for(&self, encrypted: &[u8]) -> Result<Aes256Gcm, SealError> {
        if encrypted == self.own_encrypted.as_slice() {
            return Ok(self.own.clone());
        }
        if let Some(cipher) = self.cached(encrypted) {
            return Ok(cipher);
        }
        let plaintext = self.service.decrypt_data_key(encrypted).await?;
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&plaintext));
        self.opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(encrypted.to_vec(), cipher.clone());
        Ok(cipher)
    }

    fn cached(&self, encrypted: &[u8]) -> Option<Aes256Gcm> {
        self.opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(encrypted)
            .cloned()
    }
}

/// Whether a stored value is sealed (for tests and checks that no plaintext key is stored).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED)
}
