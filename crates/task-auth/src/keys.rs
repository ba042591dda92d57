//! Verification keys taken from the issuer's JWKS document, and RSA signing keys for dev mode and tests.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeyType, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeySet, JsonWebKeyUse};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;

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

/// The usable keys of a JWKS document that `openidconnect` parsed, by `kid`: RSA keys for
/// RS256 (at least 2048 bits) and P-256 keys for ES256, each with a `kid`.
///
/// `openidconnect` already drops entries it cannot parse at all (unknown `kty`, wrong field
/// types); every other key that does not fit is skipped here one by one, so that a single
/// exotic entry never makes the whole set unusable. Symmetric keys are never accepted.
pub(crate) fn usable_keys(set: &JsonWebKeySet<CoreJsonWebKey>) -> KeySet {
    let mut keys = KeySet::new();
    for jwk in set.keys() {
        match verification_key(jwk) {
            Ok(Some((kid, key))) => {
                keys.insert(kid, Arc::new(key));
            }
            Ok(None) => {}
            Err(reason) => {
                let kid = jwk.key_id().map(|kid| kid.as_str());
                tracing::warn!(kid, %reason, "skipping an unusable JWK");
            }
        }
    }
    keys
}

/// `Ok(None)` for a key that is not meant for signatures (e.g. `use: enc`).
fn verification_key(jwk: &CoreJsonWebKey) -> Result<Option<(String, VerificationKey)>, String> {
    if jwk.key_use().is_some_and(|usage| !usage.allows_signature()) {
        return Ok(None);
    }
    let Some(kid) = jwk.key_id() else {
        return Err("no kid".to_owned());
    };
    // The algorithm follows from the key type; a key that names another one is not used.
    let algorithm = match (jwk.key_type(), jwk.signing_alg()) {
        (
            CoreJsonWebKeyType::RSA,
            JsonWebKeyAlgorithm::Unspecified
            | JsonWebKeyAlgorithm::Algorithm(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        ) => Algorithm::RS256,
        (
            CoreJsonWebKeyType::EllipticCurve,
            JsonWebKeyAlgorithm::Unspecified
            | JsonWebKeyAlgorithm::Algorithm(CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        ) => Algorithm::ES256,
        (key_type, algorithm) => {
            return Err(format!(
                "unsupported key type {key_type:?} with algorithm {algorithm:?}"
            ));
        }
    };
    // openidconnect keeps the key material private (it only verifies ID tokens itself), so
    // the key travels to jsonwebtoken in the JWK's standard JSON form.
    let material: Jwk = serde_json::to_value(jwk)
        .and_then(serde_json::from_value)
        .map_err(|error| format!("key parameters are incomplete: {error}"))?;
    let key = match (algorithm, &material.algorithm) {
        (Algorithm::RS256, AlgorithmParameters::RSA(rsa)) => {
            let modulus = URL_SAFE_NO_PAD
                .decode(rsa.n.trim_end_matches('='))
                .map_err(|error| format!("RSA modulus is not base64url: {error}"))?;
            let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
            if significant * 8 < MIN_RSA_MODULUS_BITS {
                return Err(format!(
                    "RSA modulus shorter than {MIN_RSA_MODULUS_BITS} bits"
                ));
            }
            DecodingKey::from_rsa_components(&rsa.n, &rsa.e).map_err(|error| error.to_string())?
        }
        (Algorithm::ES256, AlgorithmParameters::EllipticCurve(ec))
            if ec.curve == EllipticCurve::P256 =>
        {
            DecodingKey::from_ec_components(&ec.x, &ec.y).map_err(|error| error.to_string())?
        }
        (Algorithm::ES256, AlgorithmParameters::EllipticCurve(ec)) => {
            return Err(format!("unsupported curve {:?}", ec.curve));
        }
        _ => return Err("key parameters do not match the key type".to_owned()),
    };
    Ok(Some((kid.to_string(), VerificationKey { algorithm, key })))
}

/// An RSA private key ready to sign RS256 tokens and to be published as a JWK.
#[derive(Clone)]
pub(crate) struct RsaSigningKey {
    pub(crate) private: rsa::RsaPrivateKey,
    pub(crate) encoding: EncodingKey,
}

impl RsaSigningKey {
    pub(crate) fn generate() -> Self {
        Self::generate_with_bits(MIN_RSA_MODULUS_BITS)
    }

    /// A key of another size: tests use keys below [`MIN_RSA_MODULUS_BITS`] to check that
    /// they are refused.
    pub(crate) fn generate_with_bits(bits: usize) -> Self {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits)
            .expect("generating an RSA key cannot fail with a working OS RNG");
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
