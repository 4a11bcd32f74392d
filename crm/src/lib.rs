//! loket-crm: the records of loket (users, roles, sessions, audit, the municipality's
//! organisation, contacts, accounts, cases), their storage on SQLite and PostgreSQL, and the web
//! console with its JSON API.
//!
//! Layout: `records::<resource>` holds rows and queries and knows nothing of HTTP;
//! `web::<resource>` holds handlers with their routes; `web::router` merges them. `auth` is the
//! permission matrix, `i18n` the UI languages, `demo` the demo municipality.
//!
//! Errors: records return `sqlx::Error` or a small enum of their own (`UserError`); the web layer
//! turns those into `WebError`; only the binary uses `anyhow`.

pub mod auth;
pub mod clock;
pub mod db;
pub mod demo;
pub mod desk;
pub mod facebook;
pub mod generate;
pub mod i18n;
pub mod mail;
pub mod records;
pub mod register;
pub mod web;

#[cfg(feature = "testing")]
pub mod testing;
