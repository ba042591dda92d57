//! The integration tests of the service, one module per former suite, linked into one test
//! binary: each of them used to link the whole workspace on its own (decision 0118). Under
//! nextest (what `.ci/test` runs) every test still runs in a process of its own, so tests that
//! set process-wide state (a global tracing subscriber, signals, ports, a PostgreSQL cluster)
//! stay isolated; select a former suite with `-E 'test(/^faults::/)'`.

// `operability_telemetry` declares its own `mod operability_support;` (see below), a second
// copy of the helpers: allowed rather than editing that module's body.
#![allow(clippy::duplicate_mod)]

mod api;
mod auth;
mod configuration;
mod faults;
mod operability_logs;
mod operability_metrics;
mod operability_outage;
mod operability_overload;
mod operability_shutdown;
mod operability_support;
// Loaded by path so that its own `mod operability_support;` (the module body is maintained
// with the telemetry exporters) resolves next to it, to the same helpers.
#[path = "operability_telemetry.rs"]
mod operability_telemetry;
mod replicas;
mod tls_startup;
mod unavailable;
