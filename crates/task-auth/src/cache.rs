//! A bounded cache of tokens that already passed verification, so that the hot path skips the
//! signature check for a token seen before. Entries expire at the token's own `exp`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use sha2::{Digest, Sha256};

use crate::Subject;

/// The cache is keyed by SHA-256 of the token, so it never keeps the bearer secret itself and
/// two different tokens cannot share an entry.
pub(crate) type TokenDigest = [u8; 32];

#[derive(Clone)]
pub(crate) struct VerifiedToken {
    pub(crate) subject: Subject,
    /// `exp` of the token, seconds since the Unix epoch.
    pub(crate) expires_at: u64,
}

struct UntilTokenExpiry;

impl Expiry<TokenDigest, VerifiedToken> for UntilTokenExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenDigest,
        value: &VerifiedToken,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            value.expires_at.saturating_sub(unix_now()),
        ))
    }
}

#[derive(Clone)]
pub(crate) struct TokenCache {
    entries: moka::sync::Cache<TokenDigest, VerifiedToken>,
}

impl TokenCache {
    pub(crate) fn new(max_entries: u64) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_entries)
            .expire_after(UntilTokenExpiry)
            .build();
        Self { entries }
    }

    pub(crate) fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The subject of a cached token that has not reached its `exp` yet. The expiry policy
    /// already drops entries at `exp`; the explicit comparison makes that hold at the second
    /// even if the cache's clock and the wall clock disagree.
    pub(crate) fn get(&self, digest: &TokenDigest) -> Option<Subject> {
        let entry = self.entries.get(digest)?;
        if entry.expires_at > unix_now() {
            Some(entry.subject)
        } else {
            self.entries.invalidate(digest);
            None
        }
    }

    pub(crate) fn insert(&self, digest: TokenDigest, token: VerifiedToken) {
        if token.expires_at > unix_now() {
            self.entries.insert(digest, token);
        }
    }

    /// Forgets every verified token, e.g. after the issuer withdrew keys.
    pub(crate) fn clear(&self) {
        self.entries.invalidate_all();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_past_its_expiry_is_never_returned() {
        let cache = TokenCache::new(16);
        let digest = TokenCache::digest("expired");
        cache.entries.insert(
            digest,
            VerifiedToken {
                subject: Subject("alice".into()),
                expires_at: unix_now() - 1,
            },
        );
        assert_eq!(cache.get(&digest), None);
    }

    #[test]
    fn a_valid_token_is_returned_until_expiry() {
        let cache = TokenCache::new(16);
        let digest = TokenCache::digest("valid");
        cache.insert(
            digest,
            VerifiedToken {
                subject: Subject("alice".into()),
                expires_at: unix_now() + 60,
            },
        );
        assert_eq!(cache.get(&digest), Some(Subject("alice".into())));
        assert_eq!(cache.get(&TokenCache::digest("other")), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = TokenCache::new(8);
        for index in 0..100 {
            cache.insert(
                TokenCache::digest(&format!("token-{index}")),
                VerifiedToken {
                    subject: Subject("alice".into()),
                    expires_at: unix_now() + 60,
                },
            );
        }
        assert!(cache.len() <= 8, "cache grew to {}", cache.len());
    }
}
