//! Belgian identifiers with their check rules, as values that cannot hold an invalid number, and
//! the languages loket speaks.
//!
//! Phone numbers are normalised to E.164 here too. No IO and no dependencies: the CRM stores these, the IVR validates keypad input with them.
//! A `NationalRegisterNumber` never prints itself whole: `Debug` and `Display` mask it, so it can
//! sit in a struct that gets logged. The full digits come out only through `digits()`.

mod enterprise;
mod language;
mod national;
mod phone;

pub use enterprise::{EnterpriseNumber, EnterpriseNumberError};
pub use language::Language;
pub use national::{NationalNumberError, NationalRegisterNumber, NumberKind, Sex};
pub use phone::{PhoneNumber, PhoneNumberError};

/// Keeps the digits of an identifier typed with dots, dashes, slashes or spaces.
fn digits_only(input: &str) -> Option<String> {
    let mut digits = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '/' => {}
            _ => return None,
        }
    }
    Some(digits)
}
