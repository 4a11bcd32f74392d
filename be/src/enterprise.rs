//! The enterprise number (ondernemingsnummer / numéro d'entreprise) of the KBO/BCE: 10 digits,
//! first digit 0 or 1, the last two = 97 − (first eight mod 97).

use std::fmt;

use crate::digits_only;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EnterpriseNumber([u8; 10]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnterpriseNumberError {
    #[error("an enterprise number has 10 digits (9 for an old VAT number)")]
    Length,
    #[error("an enterprise number starts with 0 or 1")]
    Series,
    #[error("the check digits do not match")]
    Checksum,
}

impl EnterpriseNumber {
    /// Accepts `0403.019.261`, `BE 0403.019.261`, `BE403019261` (old 9-digit VAT form).
    pub fn parse(input: &str) -> Result<EnterpriseNumber, EnterpriseNumberError> {
        let trimmed = input.trim();
        let without_country = trimmed
            .strip_prefix("BE")
            .or_else(|| trimmed.strip_prefix("be"))
            .unwrap_or(trimmed)
            .replace(['(', ')'], "");
        let mut text = digits_only(&without_country).ok_or(EnterpriseNumberError::Length)?;
        if text.len() == 9 {
            text.insert(0, '0');
        }
        if text.len() != 10 {
            return Err(EnterpriseNumberError::Length);
        }
        let mut digits = [0u8; 10];
        for (slot, byte) in digits.iter_mut().zip(text.as_bytes()) {
            *slot = byte - b'0';
        }
        if digits[0] > 1 {
            return Err(EnterpriseNumberError::Series);
        }
        let first_eight = digits[..8].iter().fold(0u64, |n, d| n * 10 + u64::from(*d));
        let check = u64::from(digits[8]) * 10 + u64::from(digits[9]);
        if 97 - first_eight % 97 != check {
            return Err(EnterpriseNumberError::Checksum);
        }
        Ok(EnterpriseNumber(digits))
    }

    /// The 10 digits, for storage and lookup.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

/// `0403.019.261`, the form printed on documents.
impl fmt::Display for EnterpriseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.digits();
        write!(f, "{}.{}.{}", &digits[..4], &digits[4..7], &digits[7..])
    }
}

impl fmt::Debug for EnterpriseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnterpriseNumber({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_examples() {
        assert_eq!(EnterpriseNumber::parse("0403.019.261").unwrap().to_string(), "0403.019.261");
        // Remainder 0 gives check digits 97.
        assert!(EnterpriseNumber::parse("0428.759.497").is_ok());
        assert_eq!(EnterpriseNumber::parse("BE 0403.019.261").unwrap().digits(), "0403019261");
        assert_eq!(EnterpriseNumber::parse("BE403019261").unwrap().digits(), "0403019261");
        assert_eq!(EnterpriseNumber::parse("0403.019.262"), Err(EnterpriseNumberError::Checksum));
        assert_eq!(EnterpriseNumber::parse("2147.812.701"), Err(EnterpriseNumberError::Series));
        assert_eq!(EnterpriseNumber::parse("04030192"), Err(EnterpriseNumberError::Length));
    }

    #[test]
    fn the_one_series_is_accepted() {
        // 10000000 mod 97 = 76 → check 21.
        assert_eq!(EnterpriseNumber::parse("1000.000.021").unwrap().digits(), "1000000021");
    }
}
