//! Who may do what: roles, the permission matrix, and password hashing.

mod password;
mod roles;

pub use password::{PasswordError, hash_password, verify_password};
pub use roles::{Permission, Role, UnknownRole};
