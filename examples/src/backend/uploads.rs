//! Log requests and the files chargers upload (tables `log_requests`, `log_files` of
//! migration 12, [`super::firmware::MIGRATION`]).
//!
//! An operator asks a charger for a log: a `log_requests` row is written with a random
//! 128-bit token, and the charger is sent GetLog (any version; 1.6 GetDiagnostics when asked
//! for) with `remoteLocation` = `{backend}/uploads/{token}`. The row's id is the `requestId`.
//! The charger PUTs or POSTs the file there (the raw body; at most [`MAX_LOG_BYTES`],
//! beyond: 413 and nothing stored); an unknown token is 404. The file is stored linked to
//! its request and charger (at most [`MAX_FILES_PER_REQUEST`] per request, then 409). The
//! request's status follows the charger: `Requested`, the answer (`Accepted`, `Rejected`,
//! `AcceptedCanceled`) or `Failed`, then every status notification (`Uploading`,
//! `Uploaded`, `UploadFailure`, ...), matched by `requestId`, or for 1.6 diagnostics to the
//! charger's newest diagnostics request.

use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use ocpp_central::firmware::{LogRequest, LogType, TransferKind};
use ocpp_central::{CallError, ChargerHandle, Event};
use serde::Serialize;
use sqlx::Row;

use super::db::{self, Db, DbError};
use super::firmware::{sha256_hex, token, MAX_LIST};

/// The largest log file a charger may upload: 1 MiB.
pub const MAX_LOG_BYTES: usize = 1024 * 1024;

/// The most files one request keeps (a charger retrying an upload sends it again).
pub const MAX_FILES_PER_REQUEST: i64 = 8;

/// A log request with its files.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogRequestRow {
    /// The id (the `requestId` sent).
    pub id: i64,
    /// The charger.
    pub charger: String,
    /// `DiagnosticsLog`, `SecurityLog` or (1.6 GetDiagnostics) `Diagnostics`.
    pub log_type: String,
    /// See the module docs.
    pub status: String,
    /// The file name the charger announced.
    pub filename: Option<String>,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
    /// The files received.
    pub files: Vec<LogFileRow>,
}

/// A file a charger uploaded.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogFileRow {
    /// The id (`GET /api/logs/files/{id}` gives its content).
    pub id: i64,
    /// The name it was uploaded under.
    pub name: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256, hexadecimal.
    pub sha256: String,
    /// When it arrived.
    pub created_at: DateTime<Utc>,
}

/// Why a log request or an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The charger did not answer (or the request was refused before sending).
    #[error("{0}")]
    Call(#[from] CallError),
    /// No request has this token.
    #[error("no upload is expected here")]
    UnknownToken,
    /// The request already has [`MAX_FILES_PER_REQUEST`] files.
    #[error("this request already has {MAX_FILES_PER_REQUEST} files")]
    TooMany,
    /// The OS random generator failed.
    #[error("random: {0}")]
    Random(String),
}

/// The log requests and files (see the module docs).
#[derive(Debug)]
pub struct Uploads {
    db: Db,
}

impl Uploads {
    /// Over `db`.
    pub fn new(db: Db) -> Arc<Uploads> {
        Arc::new(Uploads { db })
    }

    /// Asks `handle` for a log (`diagnostics`: 1.6 GetDiagnostics), to be uploaded under
    /// `base` (the backend's HTTP address).
    pub async fn request(
        &self,
        handle: &ChargerHandle,
        log_type: LogType,
        diagnostics: bool,
        base: &str,
    ) -> Result<LogRequestRow, UploadError> {
        let tok = token().map_err(UploadError::Random)?;
        let kind = match (diagnostics, log_type) {
            (true, _) => "Diagnostics",
            (false, LogType::Diagnostics) => "DiagnosticsLog",
            (false, LogType::Security) => "SecurityLog",
        };
        let now = db::ts(Utc::now());
        let row = sqlx::query(
            "INSERT INTO log_requests (charger, log_type, token, status, created_at, updated_at)
             VALUES ($1, $2, $3, 'Requested', $4, $4) RETURNING id",
        )
        .bind(handle.identity())
        .bind(kind)
        .bind(&tok)
        .bind(&now)
        .fetch_one(self.db.writer())
        .await
        .map_err(DbError::from)?;
        let id: i64 = row.try_get("id").map_err(DbError::from)?;
        let request = LogRequest {
            request_id: i32::try_from(id).unwrap_or(i32::MAX),
            log_type,
            location: format!("{base}/uploads/{tok}"),
            oldest: None,
            latest: None,
            retries: Some(2),
            retry_interval: Some(5),
        };
        let answer = if diagnostics {
            handle.get_diagnostics(&request).await
        } else {
            handle.get_log(&request).await
        };
        match answer {
            Ok(a) => {
                self.set(id, &a.answer.status, a.filename.as_deref())
                    .await?;
            }
            Err(e) => {
                self.set(id, "Failed", None).await?;
                return Err(e.into());
            }
        }
        self.get(id).await?.ok_or(UploadError::UnknownToken)
    }

    async fn set(&self, id: i64, status: &str, filename: Option<&str>) -> Result<(), DbError> {
        // An upload (status `Uploading`) may already have come in before the answer was
        // stored: the answer's word does not overwrite a later status.
        sqlx::query(
            "UPDATE log_requests SET status = CASE WHEN status = 'Requested' OR $1 = 'Failed'
             OR $1 NOT IN ('Accepted', 'AcceptedCanceled') THEN $1 ELSE status END,
             filename = COALESCE($2, filename), updated_at = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(filename)
        .bind(db::ts(Utc::now()))
        .bind(id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Stores an uploaded file for the request with `token`.
    pub async fn receive(
        &self,
        tok: &str,
        name: &str,
        data: &[u8],
    ) -> Result<LogFileRow, UploadError> {
        let row = sqlx::query("SELECT id, charger FROM log_requests WHERE token = $1")
            .bind(tok)
            .fetch_optional(self.db.writer())
            .await
            .map_err(DbError::from)?
            .ok_or(UploadError::UnknownToken)?;
        let id: i64 = row.try_get("id").map_err(DbError::from)?;
        let charger: String = row.try_get("charger").map_err(DbError::from)?;
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM log_files WHERE request_id = $1")
            .bind(id)
            .fetch_one(self.db.writer())
            .await
            .map_err(DbError::from)?
            .try_get("n")
            .map_err(DbError::from)?;
        if n >= MAX_FILES_PER_REQUEST {
            return Err(UploadError::TooMany);
        }
        let r = sqlx::query(
            "INSERT INTO log_files (request_id, charger, name, size, sha256, content, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(id)
        .bind(&charger)
        .bind(name)
        .bind(i64::try_from(data.len()).unwrap_or(i64::MAX))
        .bind(sha256_hex(data))
        .bind(base64::engine::general_purpose::STANDARD.encode(data))
        .bind(db::ts(Utc::now()))
        .fetch_one(self.db.writer())
        .await
        .map_err(DbError::from)?;
        let file_id: i64 = r.try_get("id").map_err(DbError::from)?;
        let files = self.files(id).await?;
        files
            .into_iter()
            .find(|f| f.id == file_id)
            .ok_or(UploadError::UnknownToken)
    }

    async fn files(&self, request: i64) -> Result<Vec<LogFileRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id, name, size, sha256, created_at FROM log_files WHERE request_id = $1 ORDER BY id",
        )
        .bind(request)
        .fetch_all(self.db.writer())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogFileRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    size: r.try_get("size")?,
                    sha256: r.try_get("sha256")?,
                    created_at: db::parse_ts("created_at", r.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    /// The content of file `id`: its name and bytes.
    pub async fn file(&self, id: i64) -> Result<Option<(String, Vec<u8>)>, DbError> {
        let Some(r) = sqlx::query("SELECT name, content FROM log_files WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.writer())
            .await?
        else {
            return Ok(None);
        };
        let content: String = r.try_get("content")?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|_| DbError::Corrupt {
                column: "log_files.content",
                value: String::new(),
            })?;
        Ok(Some((r.try_get("name")?, data)))
    }

    const COLUMNS: &'static str = "id, charger, log_type, status, filename, created_at, updated_at";

    async fn row(&self, r: &sqlx::any::AnyRow) -> Result<LogRequestRow, DbError> {
        let id: i64 = r.try_get("id")?;
        Ok(LogRequestRow {
            id,
            charger: r.try_get("charger")?,
            log_type: r.try_get("log_type")?,
            status: r.try_get("status")?,
            filename: r.try_get("filename")?,
            created_at: db::parse_ts("created_at", r.try_get("created_at")?)?,
            updated_at: db::parse_ts("updated_at", r.try_get("updated_at")?)?,
            files: self.files(id).await?,
        })
    }

    /// One request.
    pub async fn get(&self, id: i64) -> Result<Option<LogRequestRow>, DbError> {
        let r = sqlx::query(&format!(
            "SELECT {} FROM log_requests WHERE id = $1",
            Self::COLUMNS
        ))
        .bind(id)
        .fetch_optional(self.db.writer())
        .await?;
        match r {
            Some(r) => Ok(Some(self.row(&r).await?)),
            None => Ok(None),
        }
    }

    /// The newest requests (at most 100), of one charger when given.
    pub async fn list(&self, charger: Option<&str>) -> Result<Vec<LogRequestRow>, DbError> {
        let limit = MAX_LIST.min(100);
        let rows = match charger {
            Some(c) => {
                sqlx::query(&format!(
                    "SELECT {} FROM log_requests WHERE charger = $1 ORDER BY id DESC LIMIT {limit}",
                    Self::COLUMNS
                ))
                .bind(c)
                .fetch_all(self.db.writer())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {} FROM log_requests ORDER BY id DESC LIMIT {limit}",
                    Self::COLUMNS
                ))
                .fetch_all(self.db.writer())
                .await?
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.row(r).await?);
        }
        Ok(out)
    }

    /// Follows the charger's diagnostics and log status notifications.
    pub async fn on_event(&self, charger: &ChargerHandle, event: &Event) -> Result<(), DbError> {
        let Event::TransferStatus { status, .. } = event else {
            return Ok(());
        };
        if status.status == "Idle" {
            return Ok(());
        }
        let id = match (status.kind, status.request_id) {
            (TransferKind::Log, Some(id)) => i64::from(id),
            (TransferKind::Diagnostics, _) => {
                let r = sqlx::query(
                    "SELECT id FROM log_requests WHERE charger = $1 AND log_type = 'Diagnostics'
                     ORDER BY id DESC LIMIT 1",
                )
                .bind(charger.identity())
                .fetch_optional(self.db.writer())
                .await?;
                match r {
                    Some(r) => r.try_get("id")?,
                    None => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        sqlx::query(
            "UPDATE log_requests SET status = $1, updated_at = $2 WHERE id = $3 AND charger = $4",
        )
        .bind(&status.status)
        .bind(db::ts(Utc::now()))
        .bind(id)
        .bind(charger.identity())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }
}
