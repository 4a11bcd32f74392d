//! Bulk data for load tests and benchmarks (`loket demo generate`): many citizens with phones and
//! e-mails, many cases over the demo's request types, each with its first timeline entry. Rows go
//! in multi-row inserts, a batch per transaction, so 150,000 records take seconds, not minutes.
//! Needs the demo seeded first (services, case types, queues).

use sqlx::AnyConnection;

use crate::clock::Millis;
use crate::db::Db;

const FIRST_NAMES: [&str; 16] = [
    "Emma", "Lucas", "Louise", "Noah", "Olivia", "Adam", "Mila", "Liam", "Elena", "Arthur", "Nora", "Jules", "Fatima",
    "Mohamed", "Sofia", "Victor",
];
const LAST_NAMES: [&str; 16] = [
    "Peeters",
    "Janssens",
    "Maes",
    "Jacobs",
    "Mertens",
    "Willems",
    "Claes",
    "Goossens",
    "Dubois",
    "Lambert",
    "Dupont",
    "Martin",
    "El Amrani",
    "Benali",
    "Wouters",
    "De Smet",
];
const CASE_TYPES: [(&str, &str, &str); 8] = [
    ("passport", "population", "Paspoort aanvragen"),
    ("identity_card", "population", "Nieuwe identiteitskaart"),
    ("certificates", "population", "Attest van woonst"),
    ("driving_licence", "population", "Rijbewijs omwisselen"),
    ("marriage", "civil_status", "Documents pour un mariage"),
    ("birth", "civil_status", "Geboorteaangifte"),
    ("disability", "social_affairs", "Carte de stationnement"),
    ("last_wishes", "social_affairs", "Laatste wilsbeschikking"),
];
const STATUSES: [&str; 5] = ["new", "in_progress", "waiting_for_citizen", "closed", "closed"];
const CHANNELS: [&str; 4] = ["voice", "email", "web_form", "facebook"];
const BATCH: usize = 500;

/// A small deterministic generator, so two runs produce the same data.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self, below: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        usize::try_from(value >> 33).unwrap_or(0) % below.max(1)
    }
}

/// Inserts `contacts` citizens and `cases` cases (numbered `2025-…`, spread over the year before
/// `now`); returns how many of each.
pub async fn generate(db: &Db, contacts: usize, cases: usize, now: Millis) -> Result<(usize, usize), sqlx::Error> {
    let mut sequence = Sequence(0x9E37_79B9_7F4A_7C15);
    let first_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM contacts").fetch_one(db.pool()).await?;
    for start in (0..contacts).step_by(BATCH) {
        let rows: Vec<usize> = (start..(start + BATCH).min(contacts)).collect();
        let mut tx = db.pool().begin().await?;
        insert_contacts(&mut tx, &rows, &mut sequence, now).await?;
        tx.commit().await?;
    }
    let contact_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM contacts WHERE id > $1 ORDER BY id")
        .bind(first_id)
        .fetch_all(db.pool())
        .await?;
    for start in (0..cases).step_by(BATCH) {
        let rows: Vec<usize> = (start..(start + BATCH).min(cases)).collect();
        let mut tx = db.pool().begin().await?;
        insert_cases(&mut tx, &rows, &contact_ids, &mut sequence, now).await?;
        tx.commit().await?;
    }
    Ok((contacts, cases))
}

async fn insert_contacts(
    conn: &mut AnyConnection,
    rows: &[usize],
    sequence: &mut Sequence,
    now: Millis,
) -> Result<(), sqlx::Error> {
    let mut people = Vec::with_capacity(rows.len());
    for &n in rows {
        let first = FIRST_NAMES[sequence.next(FIRST_NAMES.len())];
        let last = LAST_NAMES[sequence.next(LAST_NAMES.len())];
        people.push((n, first, last, national_number(n)));
    }
    let placeholders = values(rows.len(), 8);
    let sql = format!(
        "INSERT INTO contacts (first_name, last_name, national_number, language, city, search_name, created_at, updated_at)
         VALUES {placeholders}"
    );
    let mut query = sqlx::query(&sql);
    for (n, first, last, number) in &people {
        query = query
            .bind(*first)
            .bind(*last)
            .bind(number.clone())
            .bind(if n % 2 == 0 { "nl" } else { "fr" })
            .bind("Brussel")
            .bind(format!("{first} {last}").to_lowercase())
            .bind(now.0)
            .bind(now.0);
    }
    query.execute(&mut *conn).await?;
    // Phones and e-mails by national number, which is unique and known here.
    let sql = format!(
        "INSERT INTO contact_phones (contact_id, e164) SELECT id, '+3247' || substr(national_number, 5, 7) FROM contacts
         WHERE national_number IN ({})",
        (1..=people.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    );
    let mut query = sqlx::query(&sql);
    for (_, _, _, number) in &people {
        query = query.bind(number.clone());
    }
    query.execute(&mut *conn).await?;
    let sql = format!(
        "INSERT INTO contact_emails (contact_id, email) SELECT id, lower(replace(search_name, ' ', '.')) || '.' || id || '@example.be'
         FROM contacts WHERE national_number IN ({})",
        (1..=people.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    );
    let mut query = sqlx::query(&sql);
    for (_, _, _, number) in &people {
        query = query.bind(number.clone());
    }
    query.execute(conn).await?;
    Ok(())
}

async fn insert_cases(
    conn: &mut AnyConnection,
    rows: &[usize],
    contact_ids: &[i64],
    sequence: &mut Sequence,
    now: Millis,
) -> Result<(), sqlx::Error> {
    let year_ms: usize = 365 * 24 * 3600 * 1000;
    let placeholders = values(rows.len(), 11);
    let sql = format!(
        "INSERT INTO cases (number, contact_id, service_code, request_type, channel, support_line, status, status_reason,
                            subject, created_at, updated_at)
         VALUES {placeholders}"
    );
    let mut query = sqlx::query(&sql);
    for &n in rows {
        let (case_type, service, subject) = CASE_TYPES[sequence.next(CASE_TYPES.len())];
        let status = STATUSES[sequence.next(STATUSES.len())];
        let age = i64::try_from(sequence.next(year_ms)).unwrap_or(0);
        let contact = contact_ids.get(sequence.next(contact_ids.len())).copied();
        query = query
            .bind(format!("2025-{:06}", n + 1))
            .bind(contact)
            .bind(service)
            .bind(case_type)
            .bind(CHANNELS[sequence.next(CHANNELS.len())])
            .bind(1 + i64::try_from(sequence.next(2)).unwrap_or(0))
            .bind(status)
            .bind((status == "closed").then_some("resolved"))
            .bind(subject)
            .bind(now.0 - age)
            .bind(now.0 - age / 2);
    }
    query.execute(&mut *conn).await?;
    let first = format!("2025-{:06}", rows.first().map_or(0, |n| n + 1));
    let last = format!("2025-{:06}", rows.last().map_or(0, |n| n + 1));
    sqlx::query(
        "INSERT INTO timeline (at, case_id, kind, actor_name, visibility, summary)
         SELECT created_at, id, 'created', 'loket', 'public', 'case ' || number || ' created (' || channel || ')'
         FROM cases WHERE number >= $1 AND number <= $2",
    )
    .bind(first)
    .bind(last)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO case_number_sequence (year, last_seq) VALUES (2025, $1)
         ON CONFLICT (year) DO UPDATE SET last_seq = CASE WHEN case_number_sequence.last_seq < $1 THEN $1
                                                          ELSE case_number_sequence.last_seq END",
    )
    .bind(i64::try_from(rows.last().map_or(0, |n| n + 1)).unwrap_or(0))
    .execute(conn)
    .await?;
    Ok(())
}

/// `($1, …, $k), ($k+1, …)` for `rows` rows of `columns` values.
fn values(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            format!(
                "({})",
                (1..=columns).map(|column| format!("${}", row * columns + column)).collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A valid, unique national register number for the n-th generated person (born in the 1900s,
/// the serial and the day spreading the numbers).
fn national_number(n: usize) -> String {
    let year = 30 + (n / (28 * 12 * 400)) % 70;
    let month = 1 + (n / (28 * 400)) % 12;
    let day = 1 + (n / 400) % 28;
    let serial = 1 + 2 * (n % 400) + (n / 400) % 2;
    let first_nine = format!("{year:02}{month:02}{day:02}{serial:03}");
    let check = 97 - first_nine.parse::<u64>().unwrap_or(0) % 97;
    format!("{first_nine}{check:02}")
}

#[cfg(test)]
mod tests {
    use loket_be::NationalRegisterNumber;

    use super::*;

    #[test]
    fn generated_national_numbers_are_valid_and_unique() {
        let numbers: std::collections::BTreeSet<String> = (0..60_000).map(national_number).collect();
        assert_eq!(numbers.len(), 60_000);
        for number in numbers.iter().step_by(997) {
            assert!(NationalRegisterNumber::parse(number, 2026).is_ok(), "{number}");
        }
    }
}
