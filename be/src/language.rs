//! The languages loket serves citizens and staff in. Dutch and French are Brussels' languages;
//! English is there for developers and for citizens who ask for it. (German-speaking citizens,
//! Belgium's third language, are served in one of these for now.)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "lowercase"))]
pub enum Language {
    #[default]
    Nl,
    Fr,
    En,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Nl, Language::Fr, Language::En];

    pub fn code(self) -> &'static str {
        match self {
            Language::Nl => "nl",
            Language::Fr => "fr",
            Language::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|language| language.code() == code)
    }

    /// The first of these languages named in an `Accept-Language` header, Dutch when none is.
    pub fn negotiate(accept_language: &str) -> Language {
        accept_language
            .split(',')
            .filter_map(|part| part.split(';').next())
            .filter_map(|tag| tag.trim().split('-').next())
            .find_map(|primary| Language::from_code(&primary.to_ascii_lowercase()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_first_known() {
        assert_eq!(Language::negotiate("fr-BE,fr;q=0.9,en;q=0.8"), Language::Fr);
        assert_eq!(Language::negotiate("de-DE, en;q=0.5"), Language::En);
        assert_eq!(Language::negotiate("de"), Language::Nl);
        assert_eq!(Language::negotiate(""), Language::Nl);
    }

    #[test]
    fn codes_round_trip() {
        for language in Language::ALL {
            assert_eq!(Language::from_code(language.code()), Some(language));
        }
        assert_eq!(Language::from_code("de"), None);
    }
}
