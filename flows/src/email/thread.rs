//! Which case a message belongs to, decided from evidence gathered by the caller.
//!
//! Order (Salesforce's, `contact-center-anchors.md` §2): a case number in the subject, then the
//! Message-IDs of In-Reply-To and References. FreeScout merged unrelated mails and mixed up
//! mailboxes; two rules keep loket from that: a subject's number threads only a sender the case
//! knows (a number is easy to type or guess, a Message-ID is not), and a Message-ID is looked up
//! among all mailboxes' messages and loket's own sent mail, never per mailbox.

/// A case named by a number in the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenMatch {
    pub case_id: i64,
    /// The sender is the case's contact or was mailed from the case.
    pub sender_known: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The cases the subject's numbers name, in the subject's order.
    pub by_number: Vec<TokenMatch>,
    /// The case of the nearest ancestor (In-Reply-To first) that loket knows.
    pub by_reference: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thread {
    Existing { case_id: i64, by: ThreadedBy },
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadedBy {
    Number,
    Reference,
}

pub fn decide(evidence: &Evidence) -> Thread {
    if let Some(token) = evidence.by_number.iter().find(|token| token.sender_known) {
        return Thread::Existing { case_id: token.case_id, by: ThreadedBy::Number };
    }
    match evidence.by_reference {
        Some(case_id) => Thread::Existing { case_id, by: ThreadedBy::Reference },
        None => Thread::New,
    }
}

/// The case numbers (`2026-000042`, as `crm::records::cases` writes them) in a subject, bracketed
/// or not, in order and without repeats; at most three, so a subject cannot make loket look up
/// hundreds.
pub fn case_numbers(subject: &str) -> Vec<String> {
    let bytes = subject.as_bytes();
    let mut found: Vec<String> = Vec::new();
    let mut start = 0;
    while start + 11 <= bytes.len() && found.len() < 3 {
        let window = &bytes[start..start + 11];
        let shaped = window[4] == b'-' && window.iter().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit());
        let alone = (start == 0 || !bytes[start - 1].is_ascii_digit())
            && bytes.get(start + 11).is_none_or(|b| !b.is_ascii_digit());
        if shaped && alone {
            // The window is ASCII digits and a dash: valid UTF-8 on its own.
            let number = String::from_utf8_lossy(window).into_owned();
            if !found.contains(&number) {
                found.push(number);
            }
            start += 11;
        } else {
            start += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_in_subjects() {
        assert_eq!(case_numbers("Re: [2026-000042] Paspoort"), ["2026-000042"]);
        assert_eq!(case_numbers("RE: Uw dossier 2026-000042: Paspoort"), ["2026-000042"]);
        assert_eq!(case_numbers("2026-000001 en 2025-123456 en 2026-000001"), ["2026-000001", "2025-123456"]);
        assert!(case_numbers("rekening BE12 2026-0000421 of 12026-000042").is_empty());
        assert!(case_numbers("Réponse à 2026-00004 ‘é’").is_empty());
        assert!(case_numbers("").is_empty());
        assert_eq!(case_numbers("€2026-000042€").len(), 1, "multi-byte neighbours");
    }

    #[test]
    fn a_known_senders_number_wins_then_references_then_new() {
        let known = TokenMatch { case_id: 1, sender_known: true };
        let stranger = TokenMatch { case_id: 2, sender_known: false };
        let check =
            |by_number: Vec<TokenMatch>, by_reference: Option<i64>| decide(&Evidence { by_number, by_reference });
        assert_eq!(check(vec![known], Some(3)), Thread::Existing { case_id: 1, by: ThreadedBy::Number });
        assert_eq!(check(vec![stranger, known], None), Thread::Existing { case_id: 1, by: ThreadedBy::Number });
        assert_eq!(check(vec![stranger], Some(3)), Thread::Existing { case_id: 3, by: ThreadedBy::Reference });
        assert_eq!(check(vec![stranger], None), Thread::New, "a guessed number opens no one else's case");
        assert_eq!(check(vec![], None), Thread::New);
    }
}
