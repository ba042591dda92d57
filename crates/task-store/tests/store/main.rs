//! The store's tests, one binary: the behaviours against both real backends (a fresh
//! PostgreSQL database per test on the local service, a temporary SQLite file), the schema
//! against the entity, migrations, TLS and credential rotation against throwaway clusters.

mod backends;
mod migrations;
mod rotation;
mod schema;
mod tls;
mod write_transactions;
