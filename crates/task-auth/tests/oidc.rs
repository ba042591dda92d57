//! The authenticator against a real in-process OIDC issuer: discovery and JWKS over HTTP,
//! real RS256/ES256 signatures, every rejection, rotation, refetch rate limit and startup.

use std::time::{Duration, Instant};

use serde_json::json;
use task_auth::testing::LocalIssuer;
use task_auth::{AuthError, Authenticator, SetupError, StartupRetry, Subject};

async fn authenticate(authenticator: &Authenticator, token: &str) -> Result<Subject, AuthError> {
    let header = format!("Bearer {token}");
    authenticator.authenticate(Some(header.as_bytes())).await
}

async fn issuer_and_authenticator() -> (LocalIssuer, Authenticator) {
    let issuer = LocalIssuer::start().await;
    let authenticator = Authenticator::oidc(issuer.settings())
        .await
        .expect("issuer is up");
    (issuer, authenticator)
}

#[tokio::test]
async fn a_valid_token_yields_its_subject_and_production_mode_is_not_dev_mode() {
    let (issuer, authenticator) = issuer_and_authenticator().await;
    assert!(!authenticator.is_dev_mode());
    assert_eq!(authenticator.dev_token("x"), None);
    let subject = authenticate(&authenticator, &issuer.token("alice"))
        .await
        .unwrap();
    assert_eq!(subject, Subject("alice".into()));
}

#[tokio::test]
async fn tokens_signed_by_either_published_key_are_accepted() {
    let (issuer, authenticator) = issuer_and_authenticator().await;
    let keys = issuer.published_keys();
    assert_eq!(keys.len(), 2);
    for key in keys {
        let token = issuer.craft("alice").sign_with(key).build();
        assert_eq!(
            authenticate(&authenticator, &token).await.unwrap().0,
            "alice"
        );
    }
}

#[tokio::test]
async fn every_malicious_token_is_rejected_with_its_reason() {
    let issuer = LocalIssuer::start().await;
    issuer.add_ec_key();
    issuer.add_rsa_key();
    let authenticator = Authenticator::oidc(issuer.settings()).await.unwrap();
    let expected = [
        ("alg_none", "algorithm"),
        ("hs256_with_secret", "algorithm"),
        ("hs256_keyed_with_public_key_pem", "algorithm"),
        ("unknown_kid_signed_by_published_key", "unknown_key"),
        ("no_kid", "unknown_key"),
        ("key_not_in_jwks", "unknown_key"),
        ("unpublished_key_with_published_kid", "signature"),
        ("rs512_header", "algorithm"),
        ("wrong_issuer", "issuer"),
        ("issuer_with_trailing_slash", "issuer"),
        ("issuer_as_list", "malformed"),
        ("missing_issuer", "malformed"),
        ("wrong_audience", "audience"),
        ("wrong_audience_list", "audience"),
        ("missing_audience", "claims"),
        ("expired", "expired"),
        ("not_yet_valid", "not_yet_valid"),
        ("missing_exp", "malformed"),
        ("tampered_signature", "signature"),
        ("tampered_payload", "signature"),
        ("missing_sub", "claims"),
        ("empty_sub", "claims"),
        ("garbled", "malformed"),
        ("two_segments", "malformed"),
        ("rs256_header_on_ec_key", "algorithm"),
    ];
    let tokens = issuer.rejected_tokens("alice");
    assert_eq!(
        tokens.len(),
        expected.len(),
        "every crafted variant has an expectation"
    );
    for ((name, token), (expected_name, reason)) in tokens.iter().zip(expected) {
        assert_eq!(*name, expected_name);
        let error = authenticate(&authenticator, token)
            .await
            .expect_err(&format!("{name} must be rejected"));
        assert!(
            matches!(error, AuthError::InvalidToken(_)),
            "{name}: {error}"
        );
        assert_eq!(error.reason(), reason, "{name}: {error}");
        assert!(
            !error.to_string().contains(token.as_str()),
            "{name}: message leaks the token"
        );
    }
    // Still healthy afterwards: a good token passes.
    assert_eq!(
        authenticate(&authenticator, &issuer.token("alice"))
            .await
            .unwrap()
            .0,
        "alice"
    );
}

#[tokio::test]
async fn malformed_authorization_headers_are_rejected() {
    let (issuer, authenticator) = issuer_and_authenticator().await;
    for (name, header) in issuer.rejected_authorization_headers("alice") {
        let result = authenticator
            .authenticate(header.as_deref().map(str::as_bytes))
            .await;
        assert!(result.is_err(), "{name} must be rejected");
    }
    assert!(matches!(
        authenticator.authenticate(None).await,
        Err(AuthError::MissingCredentials)
    ));
    let basic = authenticator
        .authenticate(Some(b"Basic dXNlcjpwYXNz"))
        .await;
    assert!(matches!(basic, Err(AuthError::WrongScheme)));
}

#[tokio::test]
async fn an_audience_list_containing_ours_is_accepted() {
    let (issuer, authenticator) = issuer_and_authenticator().await;
    let token = issuer
        .craft("alice")
        .claim("aud", json!(["other-api", issuer.audience()]))
        .build();
    assert_eq!(
        authenticate(&authenticator, &token).await.unwrap().0,
        "alice"
    );
}

#[tokio::test]
async fn small_clock_skew_is_tolerated_and_large_skew_is_not() {
    let (issuer, authenticator) = issuer_and_authenticator().await;
    // leeway is 30 s in the issuer's settings
    let just_expired = issuer.craft("alice").expires_in(-10).build();
    assert!(authenticate(&authenticator, &just_expired).await.is_ok());
    let almost_valid = issuer.craft("alice").not_before_in(10).build();
    assert!(authenticate(&authenticator, &almost_valid).await.is_ok());
    let long_expired = issuer.craft("alice").expires_in(-120).build();
    assert_eq!(
        authenticate(&authenticator, &long_expired)
            .await
            .unwrap_err()
            .reason(),
        "expired"
    );
    let future = issuer.craft("alice").not_before_in(120).build();
    assert_eq!(
        authenticate(&authenticator, &future)
            .await
            .unwrap_err()
            .reason(),
        "not_yet_valid"
    );
}

#[tokio::test]
async fn es256_tokens_from_a_published_p256_key_are_accepted() {
    let issuer = LocalIssuer::start().await;
    let ec_key = issuer.add_ec_key();
    let authenticator = Authenticator::oidc(issuer.settings()).await.unwrap();
    let token = issuer.craft("alice").sign_with(ec_key).build();
    assert_eq!(
        authenticate(&authenticator, &token).await.unwrap().0,
        "alice"
    );
}

#[tokio::test]
async fn a_key_published_after_startup_is_picked_up_on_its_first_use() {
    let (issuer, authenticator) = issuer_and_authenticator().await;
    let fetches_at_startup = issuer.jwks_fetch_count();
    let new_key = issuer.rotate();
    let token = issuer.craft("alice").sign_with(new_key).build();
    assert_eq!(
        authenticate(&authenticator, &token).await.unwrap().0,
        "alice"
    );
    assert_eq!(issuer.jwks_fetch_count(), fetches_at_startup + 1);
    // Known now: no further fetch.
    let again = issuer.craft("bob").build();
    assert_eq!(authenticate(&authenticator, &again).await.unwrap().0, "bob");
    assert_eq!(issuer.jwks_fetch_count(), fetches_at_startup + 1);
}

#[tokio::test]
async fn tokens_of_a_withdrawn_key_stop_working_after_a_refetch_even_when_cached() {
    let (issuer, authenticator) = issuer_and_authenticator().await;
    let old_key = issuer.published_keys()[0].clone();
    let old_token = issuer.craft("alice").sign_with(old_key).build();
    assert!(authenticate(&authenticator, &old_token).await.is_ok());
    let new_key = issuer.rotate();
    let new_token = issuer.craft("bob").sign_with(new_key).build();
    assert!(authenticate(&authenticator, &new_token).await.is_ok());
    let error = authenticate(&authenticator, &old_token).await.unwrap_err();
    assert_eq!(error.reason(), "unknown_key");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_refetches_the_jwks_at_most_once_per_interval() {
    let issuer = LocalIssuer::start().await;
    let mut settings = issuer.settings();
    settings.jwks_refresh_min_interval = Duration::from_secs(3600);
    let authenticator = Authenticator::oidc(settings).await.unwrap();
    let fetches_at_startup = issuer.jwks_fetch_count();
    let mut attempts = Vec::new();
    for index in 0..200 {
        let token = issuer
            .craft("mallory")
            .kid(&format!("forged-{index}"))
            .build();
        let authenticator = authenticator.clone();
        attempts.push(tokio::spawn(async move {
            authenticate(&authenticator, &token).await
        }));
    }
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap().unwrap_err().reason(), "unknown_key");
    }
    assert_eq!(issuer.jwks_fetch_count(), fetches_at_startup + 1);
}

#[tokio::test]
async fn unknown_kids_refetch_again_once_the_interval_has_passed() {
    let issuer = LocalIssuer::start().await;
    let mut settings = issuer.settings();
    settings.jwks_refresh_min_interval = Duration::from_millis(300);
    let authenticator = Authenticator::oidc(settings).await.unwrap();
    let fetches_at_startup = issuer.jwks_fetch_count();
    let forged = issuer.craft("mallory").kid("forged").build();
    for _ in 0..3 {
        assert!(authenticate(&authenticator, &forged).await.is_err());
    }
    assert_eq!(issuer.jwks_fetch_count(), fetches_at_startup + 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(authenticate(&authenticator, &forged).await.is_err());
    assert_eq!(issuer.jwks_fetch_count(), fetches_at_startup + 2);
}

#[tokio::test]
async fn verified_tokens_are_served_from_memory_without_contacting_the_issuer() {
    let (issuer, authenticator) = issuer_and_authenticator().await;
    let token = issuer.token("alice");
    assert!(authenticate(&authenticator, &token).await.is_ok());
    issuer.set_available(false);
    let (discovery, jwks) = (issuer.discovery_fetch_count(), issuer.jwks_fetch_count());
    for _ in 0..50 {
        assert_eq!(
            authenticate(&authenticator, &token).await.unwrap().0,
            "alice"
        );
        assert_eq!(
            authenticate(&authenticator, &issuer.token("bob"))
                .await
                .unwrap()
                .0,
            "bob"
        );
    }
    assert_eq!(
        (issuer.discovery_fetch_count(), issuer.jwks_fetch_count()),
        (discovery, jwks)
    );
}

#[tokio::test]
async fn startup_gives_up_with_the_discovery_url_when_the_issuer_is_unreachable() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let issuer_url = format!("http://127.0.0.1:{closed_port}");
    let retry = StartupRetry {
        deadline: Duration::from_secs(1),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
    };
    let started = Instant::now();
    let settings = task_auth::OidcSettings::new(&issuer_url, "task-api");
    let error = Authenticator::oidc_with_retry(settings, retry)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let SetupError::Discovery { url, reason } = &error else {
        panic!("unexpected {error}")
    };
    assert_eq!(
        url,
        &format!("{issuer_url}/.well-known/openid-configuration")
    );
    assert!(reason.contains("attempts"), "{reason}");
    assert!(error.to_string().contains(&issuer_url));
    assert!(
        elapsed >= Duration::from_millis(300),
        "retried for a while: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "bounded: {elapsed:?}");
}

#[tokio::test]
async fn startup_waits_for_an_issuer_that_comes_up_within_the_deadline() {
    let issuer = LocalIssuer::start().await;
    issuer.set_available(false);
    let retry = StartupRetry {
        deadline: Duration::from_secs(10),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(200),
    };
    let starting = tokio::spawn(Authenticator::oidc_with_retry(issuer.settings(), retry));
    tokio::time::sleep(Duration::from_millis(500)).await;
    issuer.set_available(true);
    let authenticator = starting.await.unwrap().expect("issuer came up in time");
    assert_eq!(
        authenticate(&authenticator, &issuer.token("alice"))
            .await
            .unwrap()
            .0,
        "alice"
    );
}

#[tokio::test]
async fn misconfiguration_fails_at_once() {
    let issuer = LocalIssuer::start().await;
    let plain_http_remote = task_auth::OidcSettings::new("http://issuer.example.com", "task-api");
    assert!(matches!(
        Authenticator::oidc(plain_http_remote).await,
        Err(SetupError::Config(_))
    ));
    let no_audience = task_auth::OidcSettings::new(issuer.url(), "");
    assert!(matches!(
        Authenticator::oidc(no_audience).await,
        Err(SetupError::Config(_))
    ));
    // The discovery document names a different issuer than the one configured.
    let started = Instant::now();
    let mismatched = task_auth::OidcSettings::new(format!("{}/", issuer.url()), "task-api");
    let error = Authenticator::oidc(mismatched).await.unwrap_err();
    assert!(matches!(error, SetupError::Discovery { .. }), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no retry for a permanent error"
    );
}

#[tokio::test]
async fn tokens_for_another_audience_from_the_same_issuer_are_rejected() {
    let issuer = LocalIssuer::start_with_audience("billing-api").await;
    let mut settings = issuer.settings();
    settings.audience = "task-api".into();
    let authenticator = Authenticator::oidc(settings).await.unwrap();
    let error = authenticate(&authenticator, &issuer.token("alice"))
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "audience");
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_exp_has_passed() {
    let issuer = LocalIssuer::start().await;
    let mut settings = issuer.settings();
    settings.leeway = Duration::ZERO;
    let authenticator = Authenticator::oidc(settings).await.unwrap();
    let short_lived = issuer.craft("alice").expires_in(2).build();
    assert!(authenticate(&authenticator, &short_lived).await.is_ok());
    assert!(
        authenticate(&authenticator, &short_lived).await.is_ok(),
        "served from the cache"
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let error = authenticate(&authenticator, &short_lived)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "expired");
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused_at_once() {
    let issuer = LocalIssuer::start().await;
    // Another issuer altogether, and the configured one with a trailing slash: both differ
    // from OIDC_ISSUER_URL as strings, which is what OIDC Discovery §4.3 compares.
    for announced in [
        "https://impostor.example".to_owned(),
        format!("{}/", issuer.url()),
    ] {
        issuer.announce_issuer(&announced);
        let started = Instant::now();
        let error = Authenticator::oidc(issuer.settings()).await.unwrap_err();
        let SetupError::Discovery { reason, .. } = &error else {
            panic!("{announced}: unexpected {error}")
        };
        assert!(reason.contains(&announced), "{announced}: {reason}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{announced}: no retry for a permanent error"
        );
    }
    assert_eq!(
        issuer.jwks_fetch_count(),
        0,
        "no key is loaded from a document that names another issuer"
    );
}

#[tokio::test]
async fn unusable_keys_in_the_jwks_leave_the_good_keys_usable() {
    let issuer = LocalIssuer::start().await;
    let good = issuer.current_key();
    let mut rs512 = good.jwk().clone();
    rs512["kid"] = json!("rs512");
    rs512["alg"] = json!("RS512");
    let mut encryption = good.jwk().clone();
    encryption["kid"] = json!("encryption");
    encryption["use"] = json!("enc");
    let mut without_kid = good.jwk().clone();
    without_kid.as_object_mut().unwrap().remove("kid");
    for exotic in [
        json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNoYXJlZC13aXRoLW5vLW9uZQ" }),
        json!({ "kty": "OKP", "kid": "ed25519", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }),
        json!({ "kty": "EC", "kid": "p384", "crv": "P-384", "alg": "ES384", "x": "AAAA", "y": "AAAA" }),
        json!({ "kty": "EC", "kid": "secp256k1", "crv": "secp256k1", "x": "AAAA", "y": "AAAA" }),
        json!({ "kty": "future-key-type", "kid": "future" }),
        json!({ "kty": "RSA", "kid": "broken", "n": 42, "e": true }),
        json!("not a key at all"),
        rs512,
        encryption,
        without_kid,
    ] {
        issuer.publish_raw_jwk(exotic);
    }
    let authenticator = Authenticator::oidc(issuer.settings())
        .await
        .expect("the good keys are enough to start");
    for key in issuer.published_keys() {
        let token = issuer.craft("alice").sign_with(key).build();
        assert_eq!(
            authenticate(&authenticator, &token).await.unwrap().0,
            "alice"
        );
    }
    // The good key's signature under a kid that names an unusable entry is not accepted.
    for kid in ["rs512", "encryption", "broken", "future", "p384"] {
        let token = issuer
            .craft("mallory")
            .sign_with(good.clone())
            .kid(kid)
            .build();
        let error = authenticate(&authenticator, &token).await.unwrap_err();
        assert_eq!(error.reason(), "unknown_key", "{kid}: {error}");
    }
    let hmac = issuer
        .craft("mallory")
        .hs256(b"secret-shared-with-no-one")
        .kid("hmac")
        .build();
    assert_eq!(
        authenticate(&authenticator, &hmac)
            .await
            .unwrap_err()
            .reason(),
        "algorithm"
    );
}

#[tokio::test]
async fn an_rsa_key_shorter_than_2048_bits_is_never_used() {
    let issuer = LocalIssuer::start().await;
    let weak = issuer.rsa_key_with_bits(1024);
    issuer.publish_raw_jwk(weak.jwk().clone());
    let authenticator = Authenticator::oidc(issuer.settings()).await.unwrap();
    let token = issuer.craft("mallory").sign_with(weak).build();
    let error = authenticate(&authenticator, &token).await.unwrap_err();
    assert_eq!(error.reason(), "unknown_key", "{error}");
    assert_eq!(
        authenticate(&authenticator, &issuer.token("alice"))
            .await
            .unwrap()
            .0,
        "alice"
    );
}

#[tokio::test]
async fn a_jwks_uri_in_plain_http_towards_another_host_is_refused_at_once() {
    let issuer = LocalIssuer::start().await;
    issuer.announce_jwks_uri("http://keys.example.com/jwks");
    let started = Instant::now();
    let error = Authenticator::oidc(issuer.settings()).await.unwrap_err();
    let SetupError::Discovery { reason, .. } = &error else {
        panic!("unexpected {error}")
    };
    assert!(reason.contains("plain http"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no retry for a permanent error"
    );
}

#[tokio::test]
async fn a_jwks_larger_than_the_size_limit_is_refused() {
    let issuer = LocalIssuer::start().await;
    issuer.publish_raw_jwk(json!({ "kty": "oct", "kid": "padding", "k": "A".repeat(600 * 1024) }));
    let retry = StartupRetry {
        deadline: Duration::from_millis(500),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(100),
    };
    let error = Authenticator::oidc_with_retry(issuer.settings(), retry)
        .await
        .unwrap_err();
    let SetupError::Discovery { reason, .. } = &error else {
        panic!("unexpected {error}")
    };
    assert!(reason.contains("larger than"), "{reason}");
}

#[tokio::test]
async fn an_issuer_that_accepts_connections_but_never_answers_times_out() {
    // A real socket that completes the TCP handshake and then stays silent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_url = format!("http://{}", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let retry = StartupRetry {
        deadline: Duration::from_millis(500),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(100),
    };
    let settings = task_auth::OidcSettings::new(&issuer_url, "task-api");
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        Authenticator::oidc_with_retry(settings, retry),
    )
    .await
    .expect("the per-request timeout ends the attempt");
    let error = outcome.unwrap_err();
    let SetupError::Discovery { reason, .. } = &error else {
        panic!("unexpected {error}")
    };
    assert!(reason.contains("timed out"), "{reason}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "the request waited for its timeout: {:?}",
        started.elapsed()
    );
    silent.abort();
}
