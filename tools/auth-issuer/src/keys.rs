//! Signing keys: generated with aws-lc (the crypto rustls already brings) or read from a PKCS#8
//! PEM file, published as JWKs whose `kid` is the key's RFC 7638 thumbprint.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::{Deserialize, Serialize};

/// The two algorithms the verifier accepts, and so the two this issuer signs honest tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
}

impl SigningAlg {
    pub fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("not a PEM `PRIVATE KEY` (PKCS#8) block")]
    NotPkcs8Pem,
    #[error("the PKCS#8 key is neither RSA (2048 to 8192 bits) nor EC P-256")]
    Unsupported,
    #[error("could not export the key")]
    Export,
    #[error("jsonwebtoken refused the key: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// A private signing key with its public JWK. `Debug` shows only the kid and algorithm.
#[derive(Clone)]
pub struct SigningKey {
    alg: SigningAlg,
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
    public_key_pem: String,
    pkcs8_der: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key: RSA 2048 for RS256, P-256 for ES256.
    pub fn generate(alg: SigningAlg) -> Result<Self, KeyError> {
        let der = match alg {
            SigningAlg::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| KeyError::Generate)?
                .as_der()
                .map_err(|_| KeyError::Export)?
                .as_ref()
                .to_vec(),
            SigningAlg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| KeyError::Generate)?
                .to_pkcs8v1()
                .map_err(|_| KeyError::Export)?
                .as_ref()
                .to_vec(),
        };
        Self::from_pkcs8_der(&der)
    }

    /// Read one `-----BEGIN PRIVATE KEY-----` block (what `openssl genpkey` writes).
    pub fn from_pkcs8_pem(text: &str) -> Result<Self, KeyError> {
        let der = pem_body(text, "PRIVATE KEY").ok_or(KeyError::NotPkcs8Pem)?;
        Self::from_pkcs8_der(&der)
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let (alg, encoding, public_der) = if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
            let public = pair
                .public_key()
                .as_der()
                .map_err(|_| KeyError::Export)?
                .as_ref()
                .to_vec();
            // jsonwebtoken signs RSA with the PKCS#1 form; its PEM reader unwraps PKCS#8 for us
            let encoding = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der).as_bytes())?;
            (SigningAlg::Rs256, encoding, public)
        } else if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            let public = pair
                .public_key()
                .as_der()
                .map_err(|_| KeyError::Export)?
                .as_ref()
                .to_vec();
            (SigningAlg::Es256, EncodingKey::from_ec_der(der), public)
        } else {
            return Err(KeyError::Unsupported);
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.algorithm())?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(SigningKey {
            alg,
            kid,
            encoding,
            jwk,
            public_key_pem: pem("PUBLIC KEY", &public_der),
            pkcs8_der: der.to_vec(),
        })
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK as published (`kid`, `alg`, `use: sig`).
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The SubjectPublicKeyInfo PEM: the "secret" of the HS256 key-confusion attack.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// The private key as a PKCS#8 PEM, loadable again with `--key`.
    pub fn to_pkcs8_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8_der)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_generated_key_survives_a_round_trip_through_its_pem_with_the_same_kid() {
        for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
            let key = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()).unwrap();
            assert_eq!(again.alg(), alg);
            assert_eq!(again.kid(), key.kid());
            assert_eq!(again.jwk(), key.jwk());
        }
    }

    #[test]
    fn a_public_key_pem_is_not_accepted_as_a_signing_key() {
        let key = SigningKey::generate(SigningAlg::Es256).unwrap();
        assert!(matches!(
            SigningKey::from_pkcs8_pem(key.public_key_pem()),
            Err(KeyError::NotPkcs8Pem)
        ));
    }

    #[test]
    fn debug_shows_the_kid_but_not_the_private_key() {
        let key = SigningKey::generate(SigningAlg::Es256).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.kid()));
        let body: String = key.to_pkcs8_pem().lines().nth(1).unwrap().to_owned();
        assert!(!debug.contains(&body));
    }
}
