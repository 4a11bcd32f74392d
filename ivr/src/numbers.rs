//! Numbers as words, for the prompts that announce a caller's place in the queue and the expected
//! wait. Each number from 0 to 99 is one prompt (`number-42`), spoken whole: glued fragments sound
//! wrong in Dutch (`tweeëntwintig`) and in French (`septante et un`).

use crate::flow::Language;

/// The largest number with a prompt of its own; larger ones are announced as "more than" it.
pub const LARGEST: u32 = 99;

/// The prompt ids that say `n`.
pub fn speak(n: u32) -> Vec<String> {
    if n > LARGEST { vec!["more-than".to_owned(), prompt_id(LARGEST)] } else { vec![prompt_id(n)] }
}

pub fn prompt_id(n: u32) -> String {
    format!("number-{n}")
}

/// `n` (0–99) written out: Belgian French (septante, nonante), Dutch, English.
pub fn words(n: u32, language: Language) -> String {
    assert!(n <= LARGEST, "numbers have prompts up to {LARGEST}");
    match language {
        Language::Nl => dutch(n),
        Language::Fr => french(n),
        Language::En => english(n),
    }
}

const NL_UNITS: [&str; 20] = [
    "nul",
    "een",
    "twee",
    "drie",
    "vier",
    "vijf",
    "zes",
    "zeven",
    "acht",
    "negen",
    "tien",
    "elf",
    "twaalf",
    "dertien",
    "veertien",
    "vijftien",
    "zestien",
    "zeventien",
    "achttien",
    "negentien",
];
const NL_TENS: [&str; 10] =
    ["", "", "twintig", "dertig", "veertig", "vijftig", "zestig", "zeventig", "tachtig", "negentig"];

fn dutch(n: u32) -> String {
    let (tens, unit) = ((n / 10) as usize, (n % 10) as usize);
    match (n, unit) {
        (0..20, _) => NL_UNITS[n as usize].to_owned(),
        (_, 0) => NL_TENS[tens].to_owned(),
        // "twee" and "drie" end in a vowel: "tweeëntwintig", "drieëndertig".
        (_, 2 | 3) => format!("{}ën{}", NL_UNITS[unit], NL_TENS[tens]),
        _ => format!("{}en{}", NL_UNITS[unit], NL_TENS[tens]),
    }
}

const FR_UNITS: [&str; 20] = [
    "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze", "treize",
    "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf",
];
const FR_TENS: [&str; 10] =
    ["", "", "vingt", "trente", "quarante", "cinquante", "soixante", "septante", "quatre-vingt", "nonante"];

fn french(n: u32) -> String {
    let (tens, unit) = ((n / 10) as usize, (n % 10) as usize);
    match (n, unit) {
        (0..20, _) => FR_UNITS[n as usize].to_owned(),
        (80, _) => "quatre-vingts".to_owned(),
        (_, 0) => FR_TENS[tens].to_owned(),
        (81, _) => "quatre-vingt-un".to_owned(),
        (_, 1) => format!("{} et un", FR_TENS[tens]),
        _ => format!("{}-{}", FR_TENS[tens], FR_UNITS[unit]),
    }
}

const EN_UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

fn english(n: u32) -> String {
    let (tens, unit) = ((n / 10) as usize, (n % 10) as usize);
    match (n, unit) {
        (0..20, _) => EN_UNITS[n as usize].to_owned(),
        (_, 0) => EN_TENS[tens].to_owned(),
        _ => format!("{}-{}", EN_TENS[tens], EN_UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn belgian_french_dutch_and_english() {
        for (n, nl, fr, en) in [
            (0, "nul", "zéro", "zero"),
            (1, "een", "un", "one"),
            (17, "zeventien", "dix-sept", "seventeen"),
            (21, "eenentwintig", "vingt et un", "twenty-one"),
            (22, "tweeëntwintig", "vingt-deux", "twenty-two"),
            (33, "drieëndertig", "trente-trois", "thirty-three"),
            (70, "zeventig", "septante", "seventy"),
            (71, "eenenzeventig", "septante et un", "seventy-one"),
            (77, "zevenenzeventig", "septante-sept", "seventy-seven"),
            (80, "tachtig", "quatre-vingts", "eighty"),
            (81, "eenentachtig", "quatre-vingt-un", "eighty-one"),
            (88, "achtentachtig", "quatre-vingt-huit", "eighty-eight"),
            (90, "negentig", "nonante", "ninety"),
            (91, "eenennegentig", "nonante et un", "ninety-one"),
            (99, "negenennegentig", "nonante-neuf", "ninety-nine"),
        ] {
            assert_eq!(words(n, Language::Nl), nl);
            assert_eq!(words(n, Language::Fr), fr);
            assert_eq!(words(n, Language::En), en);
        }
    }

    #[test]
    fn large_numbers_are_announced_as_more_than_the_largest() {
        assert_eq!(speak(7), ["number-7"]);
        assert_eq!(speak(99), ["number-99"]);
        assert_eq!(speak(250), ["more-than", "number-99"]);
    }
}
