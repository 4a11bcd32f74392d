//! The language of a text whose channel does not say (an e-mail to a mailbox without a language,
//! a Facebook comment): the most frequent language among short, common words (articles,
//! pronouns, prepositions) of Dutch, French and English. Enough to pick a queue; an agent can
//! always move the case.

use super::Language;

const DUTCH: &[&str] = &[
    "de",
    "het",
    "een",
    "en",
    "ik",
    "je",
    "u",
    "uw",
    "wij",
    "mijn",
    "is",
    "van",
    "voor",
    "met",
    "op",
    "niet",
    "dat",
    "die",
    "zijn",
    "heb",
    "hebben",
    "graag",
    "ook",
    "naar",
    "bij",
    "om",
    "te",
    "er",
    "maar",
    "dank",
    "goedendag",
];
const FRENCH: &[&str] = &[
    "le", "la", "les", "un", "une", "et", "je", "vous", "votre", "nous", "mon", "ma", "est", "pour", "avec", "dans",
    "pas", "que", "qui", "sur", "du", "des", "au", "ai", "merci", "bonjour", "madame", "monsieur", "suis", "ce",
];
const ENGLISH: &[&str] = &[
    "the", "a", "an", "and", "i", "you", "your", "we", "my", "is", "for", "with", "in", "not", "that", "this", "to",
    "of", "have", "please", "thank", "thanks", "hello", "dear", "am", "would", "could", "it", "be", "on",
];

/// Words read, at most: the opening of a message says its language.
const MAX_WORDS: usize = 400;

/// `None` when fewer than three common words were found or two languages tie.
pub fn language(text: &str) -> Option<Language> {
    let mut counts = [0usize; 3];
    let words = text
        .split(|c: char| !c.is_alphabetic() && c != '\'')
        .filter(|word| !word.is_empty())
        .take(MAX_WORDS)
        .map(str::to_lowercase);
    for word in words {
        // French elisions: "l'adresse", "j'ai" count as "le", "je".
        let word = match word.split_once('\'') {
            Some(("l", _)) => "le".to_owned(),
            Some(("j", _)) => "je".to_owned(),
            Some(("d", _)) => "du".to_owned(),
            Some(("qu", _)) => "que".to_owned(),
            _ => word,
        };
        for (index, list) in [DUTCH, FRENCH, ENGLISH].iter().enumerate() {
            if list.contains(&word.as_str()) {
                counts[index] += 1;
            }
        }
    }
    let best = counts.iter().copied().max().unwrap_or(0);
    if best < 3 || counts.iter().filter(|&&count| count == best).count() > 1 {
        return None;
    }
    let index = counts.iter().position(|&count| count == best)?;
    Some(Language::ALL[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_languages_are_told_apart() {
        let cases = [
            ("Goedendag, ik heb graag een attest van woonst voor mijn zoon. Met dank!", Some(Language::Nl)),
            ("Bonjour, je voudrais un certificat de résidence pour mon fils. Merci d'avance.", Some(Language::Fr)),
            ("J'ai perdu ma carte d'identité, que dois-je faire ?", Some(Language::Fr)),
            ("Hello, I would like a certificate of residence for my son. Thank you.", Some(Language::En)),
            ("Paspoort", None),
            ("", None),
            ("2026-000042 12345", None),
        ];
        for (text, expected) in cases {
            assert_eq!(language(text), expected, "{text}");
        }
    }
}
