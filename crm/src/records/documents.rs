//! Documents attached to cases: the row here, the bytes in a `DocumentStore` (a folder on disk by
//! default). The bytes are written first and the row second; a failed row removes the bytes, so a
//! half-done upload leaves nothing behind.

use std::io;
use std::path::PathBuf;

use rand::RngCore;
use sqlx::{AnyConnection, Row};

use crate::clock::Millis;
use crate::db::Db;
use crate::records::timeline::{self, NewEntry, Summary};

/// Where document bytes live. Keys are random hex chosen by loket, never names from a user, so a
/// store can use them as file names.
pub trait DocumentStore: Send + Sync {
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    fn get(&self, key: &str) -> io::Result<Vec<u8>>;
    fn delete(&self, key: &str) -> io::Result<()>;
}

pub struct DiskStore {
    dir: PathBuf,
}

impl DiskStore {
    pub fn new(dir: PathBuf) -> DiskStore {
        DiskStore { dir }
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "document keys are hex"));
        }
        Ok(self.dir.join(key))
    }
}

impl DocumentStore for DiskStore {
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(key)?;
        // Write beside and rename, so a crash never leaves a truncated document under its key.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes)?;
        std::fs::rename(partial, path)
    }

    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(key)?)
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        std::fs::remove_file(self.path(key)?)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Document {
    pub id: i64,
    pub case_id: i64,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    #[serde(skip)]
    pub storage_key: String,
    pub uploaded_by: String,
    pub uploaded_at: i64,
}

pub struct Upload<'a> {
    pub case_id: i64,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
    pub uploaded_by: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("storing the document failed: {0}")]
    Store(#[from] io::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn store(
    conn: &mut AnyConnection,
    store: &dyn DocumentStore,
    upload: &Upload<'_>,
    now: Millis,
) -> Result<i64, DocumentError> {
    store_with_key(conn, store, upload, now).await.map(|(id, _)| id)
}

async fn store_with_key(
    conn: &mut AnyConnection,
    store: &dyn DocumentStore,
    upload: &Upload<'_>,
    now: Millis,
) -> Result<(i64, String), DocumentError> {
    let mut key_bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut key_bytes);
    let key = hex::encode(key_bytes);
    store.put(&key, upload.bytes)?;
    match insert_row(conn, upload, &key, now).await {
        Ok(id) => Ok((id, key)),
        Err(error) => {
            if let Err(cleanup) = store.delete(&key) {
                tracing::warn!(%cleanup, "removing the bytes of a document whose row failed");
            }
            Err(error.into())
        }
    }
}

/// Documents stored inside a transaction that has not committed yet. Their bytes are written
/// before the transaction ends, so when it fails [`PendingFiles::finish`] removes them: no file
/// outlives its rows.
pub struct PendingFiles<'s> {
    store: &'s dyn DocumentStore,
    keys: Vec<String>,
}

impl<'s> PendingFiles<'s> {
    pub fn new(store: &'s dyn DocumentStore) -> PendingFiles<'s> {
        PendingFiles { store, keys: Vec::new() }
    }

    pub async fn store(
        &mut self,
        conn: &mut AnyConnection,
        upload: &Upload<'_>,
        now: Millis,
    ) -> Result<i64, DocumentError> {
        let (id, key) = store_with_key(conn, self.store, upload, now).await?;
        self.keys.push(key);
        Ok(id)
    }

    /// Commits `tx` when `result` is a success; otherwise, or when the commit fails, removes the
    /// bytes stored through this value.
    pub async fn finish<T, E: From<sqlx::Error>>(
        self,
        tx: sqlx::Transaction<'_, sqlx::Any>,
        result: Result<T, E>,
    ) -> Result<T, E> {
        let result = match result {
            Ok(value) => tx.commit().await.map(|()| value).map_err(E::from),
            Err(error) => Err(error),
        };
        if result.is_err() {
            for key in self.keys {
                if let Err(error) = self.store.delete(&key) {
                    tracing::warn!(%error, "removing the bytes of a document whose transaction failed");
                }
            }
        }
        result
    }
}

async fn insert_row(conn: &mut AnyConnection, upload: &Upload<'_>, key: &str, now: Millis) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO documents (case_id, file_name, content_type, size_bytes, storage_key, uploaded_by, uploaded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(upload.case_id)
    .bind(upload.file_name)
    .bind(upload.content_type)
    .bind(i64::try_from(upload.bytes.len()).unwrap_or(i64::MAX))
    .bind(key)
    .bind(upload.uploaded_by)
    .bind(now.0)
    .fetch_one(&mut *conn)
    .await?;
    let entry = NewEntry {
        case_id: Some(upload.case_id),
        contact_id: None,
        kind: "document",
        actor_name: upload.uploaded_by,
        public: false,
        summary: Summary::new("timeline-document").arg("file", upload.file_name),
        body: None,
    };
    timeline::append(conn, &entry, now).await?;
    Ok(id)
}

pub async fn for_case(db: &Db, case_id: i64) -> Result<Vec<Document>, sqlx::Error> {
    let rows =
        sqlx::query(&format!("{SELECT} WHERE case_id = $1 ORDER BY id")).bind(case_id).fetch_all(db.pool()).await?;
    rows.iter().map(document_from_row).collect()
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Document>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT} WHERE id = $1")).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(document_from_row).transpose()
}

const SELECT: &str =
    "SELECT id, case_id, file_name, content_type, size_bytes, storage_key, uploaded_by, uploaded_at FROM documents";

fn document_from_row(row: &sqlx::any::AnyRow) -> Result<Document, sqlx::Error> {
    Ok(Document {
        id: row.try_get("id")?,
        case_id: row.try_get("case_id")?,
        file_name: row.try_get("file_name")?,
        content_type: row.try_get("content_type")?,
        size_bytes: row.try_get("size_bytes")?,
        storage_key: row.try_get("storage_key")?,
        uploaded_by: row.try_get("uploaded_by")?,
        uploaded_at: row.try_get("uploaded_at")?,
    })
}
