//! PostgreSQL support shared by `postgres-check`, `pg-dump` and `portcullis backups`.
//!
//! [`conn`] parses a connection string once for tokio-postgres and the libpq tools; [`store`] is
//! the backup folder (manifests, listing, retention); [`tools`] finds and runs `pg_dump` and
//! `pg_restore`; [`dump`] takes a verified backup; [`restore`] brings one back by building a
//! fresh database and swapping names with the live one.

pub(crate) mod conn;
pub(crate) mod drill;
pub(crate) mod dump;
pub(crate) mod offsite;
pub(crate) mod restore;
pub(crate) mod store;
pub(crate) mod tools;

/// Quotes an SQL identifier (`"my""db"`).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal (`'it''s'`).
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
