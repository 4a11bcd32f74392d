//! The municipality's organisation as data: services, skills, queues, and who works which queue
//! with which skills. The router is configured from these rows.

use sqlx::{AnyConnection, Row};

use crate::db::Db;

/// A name in the three languages of the console.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Names {
    pub nl: String,
    pub fr: String,
    pub en: String,
}

impl Names {
    pub fn get(&self, language: crate::i18n::Language) -> &str {
        match language {
            crate::i18n::Language::Nl => &self.nl,
            crate::i18n::Language::Fr => &self.fr,
            crate::i18n::Language::En => &self.en,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SkillKind {
    Language,
    Service,
    Expertise,
}

impl SkillKind {
    fn as_str(self) -> &'static str {
        match self {
            SkillKind::Language => "language",
            SkillKind::Service => "service",
            SkillKind::Expertise => "expertise",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Queue {
    pub code: String,
    pub service_code: String,
    pub language: Option<String>,
    pub support_line: i64,
    pub names: Names,
    pub skills: Vec<(String, i64)>,
}

pub async fn insert_service(conn: &mut AnyConnection, code: &str, names: &Names) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO services (code, name_nl, name_fr, name_en) VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO NOTHING",
    )
    .bind(code)
    .bind(&names.nl)
    .bind(&names.fr)
    .bind(&names.en)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_skill(
    conn: &mut AnyConnection,
    code: &str,
    kind: SkillKind,
    names: &Names,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO skills (code, kind, name_nl, name_fr, name_en) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (code) DO NOTHING",
    )
    .bind(code)
    .bind(kind.as_str())
    .bind(&names.nl)
    .bind(&names.fr)
    .bind(&names.en)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts the queue with its skills unless a queue with that code exists; an existing queue is
/// left as the admin configured it.
pub async fn insert_queue(conn: &mut AnyConnection, queue: &Queue) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO queues (code, service_code, language, support_line, name_nl, name_fr, name_en)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING",
    )
    .bind(&queue.code)
    .bind(&queue.service_code)
    .bind(queue.language.as_deref())
    .bind(queue.support_line)
    .bind(&queue.names.nl)
    .bind(&queue.names.fr)
    .bind(&queue.names.en)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    for (skill, min_level) in &queue.skills {
        sqlx::query("INSERT INTO queue_skills (queue_code, skill_code, min_level) VALUES ($1, $2, $3)")
            .bind(&queue.code)
            .bind(skill)
            .bind(min_level)
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

pub async fn set_user_skill(
    conn: &mut AnyConnection,
    user_id: i64,
    skill: &str,
    level: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_skills (user_id, skill_code, level) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, skill_code) DO UPDATE SET level = excluded.level",
    )
    .bind(user_id)
    .bind(skill)
    .bind(level)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn add_user_queue(conn: &mut AnyConnection, user_id: i64, queue: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO user_queues (user_id, queue_code) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(user_id)
        .bind(queue)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Replaces what a user works: their skills with levels, and their queues. Unknown skill or
/// queue codes fail on the foreign keys, and the caller's transaction leaves nothing half done.
pub async fn replace_user_routing(
    conn: &mut AnyConnection,
    user_id: i64,
    skills: &[(String, i64)],
    queues: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM user_skills WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM user_queues WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    for (skill, level) in skills {
        set_user_skill(conn, user_id, skill, *level).await?;
    }
    for queue in queues {
        add_user_queue(conn, user_id, queue).await?;
    }
    Ok(())
}

/// Every skill, by code, with its names.
pub async fn skills(db: &Db) -> Result<Vec<(String, Names)>, sqlx::Error> {
    sqlx::query("SELECT code, name_nl, name_fr, name_en FROM skills ORDER BY kind, code")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| {
            let names = Names { nl: row.try_get("name_nl")?, fr: row.try_get("name_fr")?, en: row.try_get("name_en")? };
            Ok((row.try_get("code")?, names))
        })
        .collect()
}

/// What the router needs to know of a user: skills with their levels, and the queues they work.
pub async fn user_routing(db: &Db, user_id: i64) -> Result<(Vec<(String, i64)>, Vec<String>), sqlx::Error> {
    let skills = sqlx::query("SELECT skill_code, level FROM user_skills WHERE user_id = $1 ORDER BY skill_code")
        .bind(user_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| Ok((row.try_get("skill_code")?, row.try_get("level")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let queues = sqlx::query_scalar("SELECT queue_code FROM user_queues WHERE user_id = $1 ORDER BY queue_code")
        .bind(user_id)
        .fetch_all(db.pool())
        .await?;
    Ok((skills, queues))
}

pub async fn queues(db: &Db) -> Result<Vec<Queue>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT code, service_code, language, support_line, name_nl, name_fr, name_en FROM queues
         ORDER BY support_line, code",
    )
    .fetch_all(db.pool())
    .await?;
    let skill_rows = sqlx::query("SELECT queue_code, skill_code, min_level FROM queue_skills ORDER BY skill_code")
        .fetch_all(db.pool())
        .await?;
    let mut queues = rows
        .iter()
        .map(|row| {
            Ok(Queue {
                code: row.try_get("code")?,
                service_code: row.try_get("service_code")?,
                language: row.try_get("language")?,
                support_line: row.try_get("support_line")?,
                names: Names { nl: row.try_get("name_nl")?, fr: row.try_get("name_fr")?, en: row.try_get("name_en")? },
                skills: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    for row in skill_rows {
        let queue_code: String = row.try_get("queue_code")?;
        if let Some(queue) = queues.iter_mut().find(|queue| queue.code == queue_code) {
            queue.skills.push((row.try_get("skill_code")?, row.try_get("min_level")?));
        }
    }
    Ok(queues)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Service {
    pub code: String,
    pub names: Names,
}

pub async fn services(db: &Db) -> Result<Vec<Service>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT code, name_nl, name_fr, name_en FROM services ORDER BY code").fetch_all(db.pool()).await?;
    rows.iter()
        .map(|row| {
            Ok(Service {
                code: row.try_get("code")?,
                names: Names { nl: row.try_get("name_nl")?, fr: row.try_get("name_fr")?, en: row.try_get("name_en")? },
            })
        })
        .collect()
}
