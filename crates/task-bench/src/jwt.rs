//! What JWT verification costs: the same authenticator the service builds, against the same
//! local issuer, timed on distinct tokens (full RS256 check each) and on one repeated token
//! (the verified-token cache the service consults first).

use std::time::{Duration, Instant};

use task_auth::Authenticator;
use task_auth::testing::LocalIssuer;

use crate::error::BenchError;

pub struct JwtCost {
    pub samples: usize,
    pub cold: Duration,
    pub cached: Duration,
}

impl JwtCost {
    pub fn line(&self) -> String {
        let cold_us = self.cold.as_secs_f64() * 1e6;
        let cached_us = self.cached.as_secs_f64() * 1e6;
        format!(
            "JWT verification per request: {cold_us:.1} µs uncached (RS256 signature + claims; one core tops out at {:.0} verifications/s), {cached_us:.2} µs from the verified-token cache ({} samples each)",
            1e6 / cold_us,
            self.samples
        )
    }
}

pub async fn measure(issuer: &LocalIssuer, samples: usize) -> Result<JwtCost, BenchError> {
    let authenticator = Authenticator::oidc(issuer.settings())
        .await
        .map_err(|e| BenchError::Issuer(e.to_string()))?;
    let headers: Vec<String> = (0..samples)
        .map(|i| {
            let token = issuer
                .craft("bench-jwt")
                .claim("jti", serde_json::json!(format!("bench-{i}")))
                .build();
            format!("Bearer {token}")
        })
        .collect();
    let started = Instant::now();
    for header in &headers {
        authenticator
            .authenticate(Some(header.as_bytes()))
            .await
            .map_err(|e| BenchError::Issuer(format!("fresh token rejected: {e}")))?;
    }
    let cold = started.elapsed() / samples as u32;
    let started = Instant::now();
    for _ in 0..samples {
        authenticator
            .authenticate(Some(headers[0].as_bytes()))
            .await
            .map_err(|e| BenchError::Issuer(format!("cached token rejected: {e}")))?;
    }
    let cached = started.elapsed() / samples as u32;
    Ok(JwtCost {
        samples,
        cold,
        cached,
    })
}
