//! Rows and queries on sqlx, one module per record. Nothing here knows about HTTP.
//!
//! Every function takes the `Db` (or a transaction) first and the time as a `Millis` where it
//! writes one, so that tests control the clock.

pub mod accounts;
pub mod audit;
pub mod callbacks;
pub mod case_types;
pub mod cases;
pub mod contacts;
pub mod directory;
pub mod documents;
pub mod email_templates;
pub mod facebook_comments;
pub mod inbound_mail;
pub mod outbox;
pub mod saved_views;
pub mod sessions;
pub mod sip_credentials;
pub mod timeline;
pub mod users;
pub mod work_requests;
