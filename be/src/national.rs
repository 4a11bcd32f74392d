//! The national register number (rijksregisternummer / numéro de registre national) and BIS
//! numbers: `YYMMDD SSS CC`, mod-97 check with the 2000+ rule.

use std::fmt;

use crate::digits_only;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NationalRegisterNumber {
    digits: [u8; 11],
    birth_year: u16,
    kind: NumberKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// A number of the national register.
    Register,
    /// A BIS number issued by the Crossroads Bank for Social Security; its date is best effort.
    Bis { sex_known: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NationalNumberError {
    #[error("a national register number has 11 digits")]
    Length,
    #[error("the check digits do not match")]
    Checksum,
    #[error("the birth date in the number does not exist")]
    Date,
}

impl NationalRegisterNumber {
    /// Validates `85.07.30-033.28`, `85073003328` and the like. `current_year` bounds the 2000+
    /// rule: a number whose 2000+ reading lies in the future is not accepted on that reading.
    pub fn parse(input: &str, current_year: u16) -> Result<NationalRegisterNumber, NationalNumberError> {
        let text = digits_only(input).ok_or(NationalNumberError::Length)?;
        let bytes = text.as_bytes();
        if bytes.len() != 11 {
            return Err(NationalNumberError::Length);
        }
        let mut digits = [0u8; 11];
        for (slot, byte) in digits.iter_mut().zip(bytes) {
            *slot = byte - b'0';
        }
        let first_nine = digits[..9].iter().fold(0u64, |n, d| n * 10 + u64::from(*d));
        let check = u64::from(digits[9]) * 10 + u64::from(digits[10]);
        let yy = u16::from(digits[0]) * 10 + u16::from(digits[1]);
        let birth_year = if 97 - first_nine % 97 == check {
            1900 + yy
        } else if 97 - (first_nine + 2_000_000_000) % 97 == check && 2000 + yy <= current_year {
            2000 + yy
        } else {
            return Err(NationalNumberError::Checksum);
        };
        let raw_month = u32::from(digits[2]) * 10 + u32::from(digits[3]);
        let day = u32::from(digits[4]) * 10 + u32::from(digits[5]);
        let (kind, month) = match raw_month {
            0..=12 => (NumberKind::Register, raw_month),
            20..=32 => (NumberKind::Bis { sex_known: false }, raw_month - 20),
            40..=52 => (NumberKind::Bis { sex_known: true }, raw_month - 40),
            _ => return Err(NationalNumberError::Date),
        };
        // Month or day 00 means unknown (or an exhausted day counter); only full dates are checked.
        if month != 0 && day != 0 && day > days_in_month(birth_year, month) {
            return Err(NationalNumberError::Date);
        }
        Ok(NationalRegisterNumber { digits, birth_year, kind })
    }

    /// The 11 digits, for storage and exact lookup. Never log or put this in a URL.
    pub fn digits(&self) -> String {
        self.digits.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// `85.07.30-***.**`: the birth date stays, the serial and check digits do not.
    pub fn masked(&self) -> String {
        let d = |i: usize| char::from(b'0' + self.digits[i]);
        format!("{}{}.{}{}.{}{}-***.**", d(0), d(1), d(2), d(3), d(4), d(5))
    }

    pub fn kind(&self) -> NumberKind {
        self.kind
    }

    pub fn birth_year(&self) -> u16 {
        self.birth_year
    }

    /// Known for register numbers and BIS numbers issued with the sex known.
    pub fn sex(&self) -> Option<Sex> {
        if self.kind == (NumberKind::Bis { sex_known: false }) {
            return None;
        }
        Some(if self.digits[8] % 2 == 1 { Sex::Male } else { Sex::Female })
    }
}

impl fmt::Debug for NationalRegisterNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalRegisterNumber({})", self.masked())
    }
}

impl fmt::Display for NationalRegisterNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

fn days_in_month(year: u16, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<NationalRegisterNumber, NationalNumberError> {
        NationalRegisterNumber::parse(input, 2026)
    }

    // The worked examples of the domain reference, §1.
    #[test]
    fn reference_examples() {
        type Expected = Result<(u16, NumberKind), NationalNumberError>;
        let cases: &[(&str, Expected)] = &[
            ("85.07.30-033.28", Ok((1985, NumberKind::Register))),
            ("17.07.30-033.84", Ok((2017, NumberKind::Register))),
            ("93.05.18-223.61", Ok((1993, NumberKind::Register))),
            ("93.05.18-223.62", Err(NationalNumberError::Checksum)),
            ("06.07.05-002.52", Ok((2006, NumberKind::Register))),
            ("00.01.01-001.05", Ok((2000, NumberKind::Register))),
            ("85.49.30-015.49", Ok((1985, NumberKind::Bis { sex_known: true }))),
            ("72.23.00-001.23", Ok((1972, NumberKind::Bis { sex_known: false }))),
            ("85.02.30-001.25", Err(NationalNumberError::Date)),
        ];
        for (input, expected) in cases {
            let got = parse(input).map(|n| (n.birth_year(), n.kind()));
            assert_eq!(&got, expected, "{input}");
        }
    }

    #[test]
    fn sex_follows_the_serial_parity() {
        assert_eq!(parse("85073003328").unwrap().sex(), Some(Sex::Male));
        assert_eq!(parse("06070500252").unwrap().sex(), Some(Sex::Female));
        assert_eq!(parse("72230000123").unwrap().sex(), None);
    }

    #[test]
    fn the_2000_rule_does_not_reach_into_the_future() {
        // 2060705002 → 52 is valid as a 2006 birth; read as if today were 2005 it is not.
        assert!(parse("06.07.05-002.52").is_ok());
        assert_eq!(NationalRegisterNumber::parse("06.07.05-002.52", 2005), Err(NationalNumberError::Checksum));
    }

    #[test]
    fn malformed_input_is_refused() {
        assert_eq!(parse(""), Err(NationalNumberError::Length));
        assert_eq!(parse("8507300332"), Err(NationalNumberError::Length));
        assert_eq!(parse("850730033288"), Err(NationalNumberError::Length));
        assert_eq!(parse("85O73003328"), Err(NationalNumberError::Length));
        // Month 13 and 33 are neither register nor BIS months.
        assert!(parse("85130000000").is_err());
    }

    #[test]
    fn the_number_never_prints_whole() {
        let number = parse("85.07.30-033.28").unwrap();
        assert_eq!(number.to_string(), "85.07.30-***.**");
        assert_eq!(format!("{number:?}"), "NationalRegisterNumber(85.07.30-***.**)");
        assert_eq!(number.digits(), "85073003328");
    }
}
