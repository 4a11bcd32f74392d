//! Phone numbers in E.164 (`+3225551234`), from what people type and what trunks send.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("a phone number holds digits, spaces, dots, dashes, slashes, brackets and a leading +")]
    Characters,
    #[error("this is not a complete phone number")]
    Length,
}

impl PhoneNumber {
    /// Belgian national numbers (`02 555 12 34`, `0470/12.34.56`) become `+32…`; `00` and `+`
    /// start international numbers.
    pub fn parse(input: &str) -> Result<PhoneNumber, PhoneNumberError> {
        let trimmed = input.trim();
        let (international, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '.' | '-' | '/' | '(' | ')' => {}
                _ => return Err(PhoneNumberError::Characters),
            }
        }
        let e164_digits = if international {
            digits
        } else if let Some(after) = digits.strip_prefix("00") {
            after.to_owned()
        } else if let Some(national) = digits.strip_prefix('0') {
            format!("32{national}")
        } else {
            return Err(PhoneNumberError::Length);
        };
        let valid = match e164_digits.strip_prefix("32") {
            // Belgium: 8 digits after 32 for fixed lines, 9 for mobiles (4xx).
            Some(national) => match national.as_bytes().first() {
                Some(b'4') => national.len() == 9,
                Some(b'1'..=b'9') => national.len() == 8,
                _ => false,
            },
            None => (8..=15).contains(&e164_digits.len()) && !e164_digits.starts_with('0'),
        };
        if !valid {
            return Err(PhoneNumberError::Length);
        }
        Ok(PhoneNumber(format!("+{e164_digits}")))
    }

    pub fn e164(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn belgian_and_international_forms() {
        let cases = [
            ("02 555 12 34", Ok("+3225551234")),
            ("0470/12.34.56", Ok("+32470123456")),
            ("+32 470 12 34 56", Ok("+32470123456")),
            ("0032 2 555 12 34", Ok("+3225551234")),
            ("+33 1 23 45 67 89", Ok("+33123456789")),
            ("(02) 555-12-34", Ok("+3225551234")),
            ("0470 12 34 5", Err(PhoneNumberError::Length)),
            ("5551234", Err(PhoneNumberError::Length)),
            ("+32 0 555", Err(PhoneNumberError::Length)),
            ("02 555 12 34 ext 5", Err(PhoneNumberError::Characters)),
            ("", Err(PhoneNumberError::Length)),
        ];
        for (input, expected) in cases {
            let got = PhoneNumber::parse(input);
            assert_eq!(got.as_ref().map(PhoneNumber::e164).map_err(Clone::clone), expected, "{input}");
        }
    }
}
