//! Verification keys taken from a JWKS document, and RSA signing keys for dev mode and tests.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;

/// RSA keys shorter than this are ignored: they no longer offer adequate security.
const MIN_RSA_MODULUS_BITS: usize = 2048;

/// A public key from the issuer together with the one algorithm it may verify.
///
/// The algorithm is fixed by the key's type (RSA -> RS256, EC P-256 -> ES256), never by the
/// token header, so that a token cannot choose how it is checked.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The usable signature keys of one JWKS document, by `kid`.
pub(crate) type KeySet = HashMap<String, Arc<VerificationKey>>;

/// The fields of a JWK that matter here; everything else is ignored.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    public_key_use: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<serde_json::Value>,
}

/// Parses a JWKS document, keeping the RS256/ES256 signature keys that carry a `kid`.
/// Keys of other kinds (encryption keys, symmetric keys, other curves) are skipped one by one
/// so that a single exotic entry never makes the whole set unusable.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<KeySet, String> {
    let set: RawJwkSet =
        serde_json::from_slice(body).map_err(|error| format!("JWKS is not valid JSON: {error}"))?;
    let mut keys = KeySet::new();
    for value in set.keys {
        let raw: RawJwk = match serde_json::from_value(value) {
            Ok(raw) => raw,
            Err(error) => {
                tracing::warn!(%error, "skipping a malformed JWK");
                continue;
            }
        };
        let kid = raw.kid.clone();
        match verification_key(raw) {
            Ok(Some((kid, key))) => {
                keys.insert(kid, Arc::new(key));
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(kid = kid.as_deref(), %reason, "skipping an unusable JWK")
            }
        }
    }
    Ok(keys)
}

fn verification_key(raw: RawJwk) -> Result<Option<(String, VerificationKey)>, String> {
    if raw
        .public_key_use
        .as_deref()
        .is_some_and(|usage| usage != "sig")
    {
        return Ok(None);
    }
    let Some(kid) = raw.kid else {
        return Err("no kid".to_owned());
    };
    match raw.kty.as_deref() {
        Some("RSA") => {
            if raw.alg.as_deref().is_some_and(|alg| alg != "RS256") {
                return Err(format!("unsupported RSA algorithm {:?}", raw.alg));
            }
            let (Some(n), Some(e)) = (raw.n, raw.e) else {
                return Err("RSA key without n or e".to_owned());
            };
            let modulus = URL_SAFE_NO_PAD
                .decode(n.trim_end_matches('='))
                .map_err(|error| format!("RSA modulus is not base64url: {error}"))?;
            let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
            if significant * 8 < MIN_RSA_MODULUS_BITS {
                return Err(format!(
                    "RSA modulus shorter than {MIN_RSA_MODULUS_BITS} bits"
                ));
            }
            let key =
                DecodingKey::from_rsa_components(&n, &e).map_err(|error| error.to_string())?;
            Ok(Some((
                kid,
                VerificationKey {
                    algorithm: Algorithm::RS256,
                    key,
                },
            )))
        }
        Some("EC") => {
            if raw.crv.as_deref() != Some("P-256") {
                return Err(format!("unsupported curve {:?}", raw.crv));
            }
            if raw.alg.as_deref().is_some_and(|alg| alg != "ES256") {
                return Err(format!("unsupported EC algorithm {:?}", raw.alg));
            }
            let (Some(x), Some(y)) = (raw.x, raw.y) else {
                return Err("EC key without x or y".to_owned());
            };
            let key = DecodingKey::from_ec_components(&x, &y).map_err(|error| error.to_string())?;
            Ok(Some((
                kid,
                VerificationKey {
                    algorithm: Algorithm::ES256,
                    key,
                },
            )))
        }
        other => Err(format!("unsupported key type {other:?}")),
    }
}

/// An RSA private key ready to sign RS256 tokens and to be published as a JWK.
#[derive(Clone)]
pub(crate) struct RsaSigningKey {
    pub(crate) private: rsa::RsaPrivateKey,
    pub(crate) encoding: EncodingKey,
}

impl RsaSigningKey {
    pub(crate) fn generate() -> Self {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), MIN_RSA_MODULUS_BITS)
            .expect("generating a 2048-bit RSA key cannot fail with a working OS RNG");
        Self::from_private(private)
    }

    pub(crate) fn from_private(private: rsa::RsaPrivateKey) -> Self {
        let der = private
            .to_pkcs1_der()
            .expect("a freshly generated RSA key always encodes as PKCS#1");
        Self {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            private,
        }
    }

    pub(crate) fn modulus_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.private.n().to_bytes_be())
    }

    pub(crate) fn exponent_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.private.e().to_bytes_be())
    }

    pub(crate) fn verification_key(&self) -> VerificationKey {
        let key = DecodingKey::from_rsa_components(&self.modulus_b64(), &self.exponent_b64())
            .expect("components of a valid RSA key");
        VerificationKey {
            algorithm: Algorithm::RS256,
            key,
        }
    }
}
