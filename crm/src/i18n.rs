//! The console's languages and its UI strings, from Fluent files in `crm/locales/<lang>/`.
//!
//! Dutch and French are the municipality's languages; English is there for developers and for
//! citizens who ask for it. A key missing in one language is a test failure, not a fallback.
//! `detect` tells the language of a citizen's text.

pub mod detect;

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Unicode isolation marks around arguments would end up inside HTML attributes.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

pub use loket_be::Language;

static NL: LanguageIdentifier = langid!("nl");
static FR: LanguageIdentifier = langid!("fr");
static EN: LanguageIdentifier = langid!("en");

/// The console's strings in a language.
pub trait Texts {
    /// The UI string for `key`; the key itself when it is missing, so a gap shows on screen.
    fn text(self, key: &str) -> String;
    fn text_with(self, key: &str, args: &[(&str, String)]) -> String;
}

impl Texts for Language {
    fn text(self, key: &str) -> String {
        LOCALES.try_lookup(identifier(self), key).unwrap_or_else(|| key.to_owned())
    }

    fn text_with(self, key: &str, args: &[(&str, String)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue> = args
            .iter()
            .map(|(name, value)| (Cow::Owned((*name).to_owned()), FluentValue::from(value.clone())))
            .collect();
        LOCALES.try_lookup_with_args(identifier(self), key, &args).unwrap_or_else(|| key.to_owned())
    }
}

fn identifier(language: Language) -> &'static LanguageIdentifier {
    match language {
        Language::Nl => &NL,
        Language::Fr => &FR,
        Language::En => &EN,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(language: Language) -> BTreeSet<String> {
        let path = format!("{}/locales/{}/console.ftl", env!("CARGO_MANIFEST_DIR"), language.code());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
        text.lines()
            .filter(|line| !line.starts_with([' ', '#', '.']) && line.contains(" ="))
            .map(|line| line.split(" =").next().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn every_language_has_every_key() {
        let english = keys(Language::En);
        assert!(english.len() > 20, "the parser found too few keys: {english:?}");
        for language in [Language::Nl, Language::Fr] {
            let other = keys(language);
            let missing: Vec<_> = english.difference(&other).collect();
            let extra: Vec<_> = other.difference(&english).collect();
            assert!(missing.is_empty() && extra.is_empty(), "{language:?}: missing {missing:?}, extra {extra:?}");
        }
    }

    #[test]
    fn strings_differ_per_language() {
        assert_eq!(Language::Nl.text("login-title"), "Aanmelden");
        assert_eq!(Language::Fr.text("login-title"), "Connexion");
        assert_eq!(Language::En.text("login-title"), "Sign in");
        assert_eq!(Language::Fr.text_with("home-welcome", &[("name", "Ana".into())]), "Bienvenue, Ana");
    }
}
