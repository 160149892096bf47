//! Firmware images and rollouts (migration [`MIGRATION`]; the log uploads of the same
//! migration are [`super::uploads`]).
//!
//! - **Images** (`firmware_images`): an operator uploads a file (at most
//!   [`MAX_IMAGE_BYTES`]); the backend stores it (base64 in the row, so both databases keep
//!   it the same way), its SHA-256 and, unless asked not to, an ECDSA P-256 / SHA-256
//!   signature made with the backend's firmware signing key ([`Signer`]) and that key's
//!   certificate. Each image gets a random 128-bit token: chargers download it from
//!   `GET /firmware/{token}/{name}` without an account (a capability URL, the way OCPP's
//!   `location` is used), with `?sha256=` appended so a 1.6 charger, whose UpdateFirmware
//!   carries no signature, can check what it got.
//! - **Rollouts** (`firmware_rollouts`, `firmware_targets`): one image to one or many
//!   chargers. The rollout's id is the `requestId` sent. Each target row follows its
//!   charger: `Requested` (row written), the charger's refusal or `Failed` (no answer), then
//!   every status notification (`Downloading` … `Installed`, or a failure), matched by
//!   `requestId` where the message has one and otherwise (1.6 FirmwareStatusNotification) to
//!   the charger's newest unfinished target. When the charger boots after `Installed` (or
//!   before it, in the same install) its new firmware version is recorded.

use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use ocpp_central::firmware::{FirmwareSignature, FirmwareUpdate, TransferKind};
use ocpp_central::{ChargerHandle, Event};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use sqlx::Row;

use super::db::{self, Db, DbError};

/// Migration 12: firmware images, rollouts and their targets; log requests and their files
/// ([`super::uploads`]).
pub const MIGRATION: &str = "CREATE TABLE firmware_images (
        id {ID},
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        signature TEXT,
        signing_certificate TEXT,
        token TEXT NOT NULL UNIQUE,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE firmware_rollouts (
        id {ID},
        image_id BIGINT NOT NULL,
        signed BIGINT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE firmware_targets (
        rollout_id BIGINT NOT NULL,
        charger TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT,
        installed_version TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (rollout_id, charger)
    );
    CREATE INDEX firmware_targets_charger ON firmware_targets (charger, rollout_id);
    CREATE TABLE log_requests (
        id {ID},
        charger TEXT NOT NULL,
        log_type TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        filename TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX log_requests_charger ON log_requests (charger, id);
    CREATE TABLE log_files (
        id {ID},
        request_id BIGINT NOT NULL,
        charger TEXT NOT NULL,
        name TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX log_files_request ON log_files (request_id, id)";

/// The largest firmware image the API takes: 8 MiB (beyond, 413 and nothing stored).
pub const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;

/// The most chargers one rollout reaches.
pub const MAX_ROLLOUT_CHARGERS: usize = 1000;

/// The most rows one list returns.
pub const MAX_LIST: i64 = 1000;

/// What a rollout's UpdateFirmware is built from besides its image (stored with it, so every
/// node of a cluster sends the same update).
#[derive(Debug, Serialize, Deserialize)]
struct RolloutParams {
    /// The backend's HTTP address the download URL starts with.
    base: String,
    retries: Option<i32>,
    retry_interval: Option<i32>,
    install_at: Option<DateTime<Utc>>,
}

/// The most UpdateFirmware calls of one rollout waiting for their answers at once.
pub const ROLLOUT_CONCURRENCY: usize = 32;

/// A target's statuses after which nothing more is expected.
pub fn is_final(status: &str) -> bool {
    matches!(
        status,
        "Installed"
            | "DownloadFailed"
            | "InstallationFailed"
            | "InstallVerificationFailed"
            | "InvalidSignature"
            | "Rejected"
            | "InvalidCertificate"
            | "RevokedCertificate"
            | "Failed"
    )
}

/// The backend's firmware signing key: ECDSA P-256 with SHA-256, made at start (rcgen,
/// already the example CA's crate), with a self-signed certificate that goes with every
/// signed update as its `signingCertificate`.
pub struct Signer {
    key: rcgen::KeyPair,
    certificate: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// A new key and its certificate.
    pub fn generate() -> Result<Signer, rcgen::Error> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "ocpp-rs example firmware signing",
        );
        let certificate = params.self_signed(&key)?.pem();
        Ok(Signer { key, certificate })
    }

    /// The signature of `data` (DER, base64) and the certificate (PEM).
    pub fn sign(&self, data: &[u8]) -> Result<(String, String), rcgen::Error> {
        use rcgen::SigningKey;
        let sig = self.key.sign(data)?;
        Ok((
            base64::engine::general_purpose::STANDARD.encode(sig),
            self.certificate.clone(),
        ))
    }
}

/// An image, without its content.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageRow {
    /// The id.
    pub id: i64,
    /// The file name.
    pub name: String,
    /// The firmware version it installs.
    pub version: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256, hexadecimal.
    pub sha256: String,
    /// Whether the backend signed it.
    pub signed: bool,
    /// The path chargers download it from (under the backend's HTTP address).
    pub path: String,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

/// One charger of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRow {
    /// The charger.
    pub charger: String,
    /// See the module docs.
    pub status: String,
    /// The charger's error or refusal, if any.
    pub detail: Option<String>,
    /// The firmware version the charger booted with after the install.
    pub installed_version: Option<String>,
    /// When the status last changed.
    pub updated_at: DateTime<Utc>,
}

/// A rollout with its targets and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRow {
    /// The id (the `requestId` sent).
    pub id: i64,
    /// The image.
    pub image_id: i64,
    /// Sent as a signed update.
    pub signed: bool,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// Targets in a final status.
    pub finished: i64,
    /// Targets `Installed`.
    pub installed: i64,
    /// Every charger.
    pub targets: Vec<TargetRow>,
}

/// Why an image or a rollout could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(String),
    /// No such image or rollout.
    #[error("no {0}")]
    Unknown(String),
    /// The OS random generator failed.
    #[error("random: {0}")]
    Random(String),
}

/// A random 128-bit token, hexadecimal (the OS generator).
pub(crate) fn token() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
    Ok(hex(&b))
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&sha2::Sha256::digest(data))
}

/// The firmware store (see the module docs).
#[derive(Debug)]
pub struct Firmware {
    db: Db,
    signer: Option<Signer>,
}

const IMAGE_COLUMNS: &str = "id, name, version, size, sha256, signature, token, created_at";

fn image_of(r: &sqlx::any::AnyRow) -> Result<ImageRow, DbError> {
    let name: String = r.try_get("name")?;
    let token: String = r.try_get("token")?;
    let sha256: String = r.try_get("sha256")?;
    let signature: Option<String> = r.try_get("signature")?;
    Ok(ImageRow {
        id: r.try_get("id")?,
        path: format!("/firmware/{token}/{name}?sha256={sha256}"),
        name,
        version: r.try_get("version")?,
        size: r.try_get("size")?,
        sha256,
        signed: signature.is_some(),
        created_at: db::parse_ts("created_at", r.try_get("created_at")?)?,
    })
}

impl Firmware {
    /// Over `db`, with a fresh signing key (none when the key cannot be made: images are
    /// then stored unsigned).
    pub fn new(db: Db) -> Arc<Firmware> {
        let signer = match Signer::generate() {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("no firmware signing key: {e}");
                None
            }
        };
        Arc::new(Firmware { db, signer })
    }

    /// Stores an image (signed unless `sign` is false).
    pub async fn add_image(
        &self,
        name: &str,
        version: &str,
        data: &[u8],
        sign: bool,
    ) -> Result<ImageRow, FirmwareError> {
        let (signature, certificate) = match (&self.signer, sign) {
            (Some(s), true) => {
                let (sig, cert) = s
                    .sign(data)
                    .map_err(|e| FirmwareError::Sign(e.to_string()))?;
                (Some(sig), Some(cert))
            }
            _ => (None, None),
        };
        let row = sqlx::query(
            "INSERT INTO firmware_images (name, version, size, sha256, signature, signing_certificate, token, content, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(name)
        .bind(version)
        .bind(i64::try_from(data.len()).unwrap_or(i64::MAX))
        .bind(sha256_hex(data))
        .bind(signature)
        .bind(certificate)
        .bind(token().map_err(FirmwareError::Random)?)
        .bind(base64::engine::general_purpose::STANDARD.encode(data))
        .bind(db::ts(Utc::now()))
        .fetch_one(self.db.writer())
        .await
        .map_err(DbError::from)?;
        let id: i64 = row.try_get("id").map_err(DbError::from)?;
        self.image(id)
            .await?
            .ok_or_else(|| FirmwareError::Unknown(format!("image {id}")))
    }

    /// One image.
    pub async fn image(&self, id: i64) -> Result<Option<ImageRow>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {IMAGE_COLUMNS} FROM firmware_images WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.writer())
        .await?;
        row.as_ref().map(image_of).transpose()
    }

    /// The newest images.
    pub async fn images(&self) -> Result<Vec<ImageRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {IMAGE_COLUMNS} FROM firmware_images ORDER BY id DESC LIMIT {MAX_LIST}"
        ))
        .fetch_all(self.db.writer())
        .await?;
        rows.iter().map(image_of).collect()
    }

    /// The content of the image with download token `token` and file name `name`.
    pub async fn download(&self, token: &str, name: &str) -> Result<Option<Vec<u8>>, DbError> {
        let row = sqlx::query("SELECT content FROM firmware_images WHERE token = $1 AND name = $2")
            .bind(token)
            .bind(name)
            .fetch_optional(self.db.writer())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let content: String = row.try_get("content")?;
        base64::engine::general_purpose::STANDARD
            .decode(content)
            .map(Some)
            .map_err(|_| DbError::Corrupt {
                column: "firmware_images.content",
                value: String::new(),
            })
    }

    /// Writes a rollout of image `image_id` to `chargers` (each target `Requested`) and the
    /// UpdateFirmware it sends (signed when `signed` and the image is; `location` built from
    /// `base`, the backend's HTTP address), stored with the rollout so that any node of a
    /// cluster sends the same update to the chargers it holds ([`Firmware::update_of`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_rollout(
        &self,
        image_id: i64,
        chargers: &[String],
        base: &str,
        signed: bool,
        retries: Option<i32>,
        retry_interval: Option<i32>,
        install_at: Option<DateTime<Utc>>,
    ) -> Result<(i64, FirmwareUpdate), FirmwareError> {
        let now = db::ts(Utc::now());
        let params = RolloutParams {
            base: base.to_owned(),
            retries,
            retry_interval,
            install_at,
        };
        let params_text =
            serde_json::to_string(&params).map_err(|e| FirmwareError::Unknown(e.to_string()))?;
        let r = sqlx::query(
            "INSERT INTO firmware_rollouts (image_id, signed, created_at, params) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(image_id)
        .bind(i64::from(signed))
        .bind(&now)
        .bind(&params_text)
        .fetch_one(self.db.writer())
        .await
        .map_err(DbError::from)?;
        let id: i64 = r.try_get("id").map_err(DbError::from)?;
        for c in chargers {
            sqlx::query(
                "INSERT INTO firmware_targets (rollout_id, charger, status, updated_at) VALUES ($1, $2, 'Requested', $3)",
            )
            .bind(id)
            .bind(c)
            .bind(&now)
            .execute(self.db.writer())
            .await
            .map_err(DbError::from)?;
        }
        let update = self
            .update_of(id)
            .await?
            .ok_or_else(|| FirmwareError::Unknown(format!("image {image_id}")))?;
        Ok((id, update))
    }

    /// The UpdateFirmware of rollout `id`, as stored with it (`None`: no such rollout, or
    /// its image is gone).
    pub async fn update_of(&self, id: i64) -> Result<Option<FirmwareUpdate>, FirmwareError> {
        let Some(row) = sqlx::query(
            "SELECT r.signed, r.params, i.name, i.token, i.sha256, i.signature, i.signing_certificate
             FROM firmware_rollouts r JOIN firmware_images i ON i.id = r.image_id WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.writer())
        .await
        .map_err(DbError::from)?
        else {
            return Ok(None);
        };
        let get = |c: &str| -> Result<Option<String>, DbError> { Ok(row.try_get(c)?) };
        let signed: i64 = row.try_get("signed").map_err(DbError::from)?;
        let params: RolloutParams = match get("params")? {
            Some(text) => serde_json::from_str(&text).map_err(|_| DbError::Corrupt {
                column: "firmware_rollouts.params",
                value: text,
            })?,
            // A rollout written before its parameters were stored.
            None => return Ok(None),
        };
        let name = get("name")?.unwrap_or_default();
        let tok = get("token")?.unwrap_or_default();
        let sha = get("sha256")?.unwrap_or_default();
        let signature = match (signed != 0, get("signature")?, get("signing_certificate")?) {
            (true, Some(signature), cert) => Some(FirmwareSignature {
                signing_certificate: cert,
                signature,
            }),
            _ => None,
        };
        Ok(Some(FirmwareUpdate {
            request_id: i32::try_from(id).unwrap_or(i32::MAX),
            location: format!("{}/firmware/{tok}/{name}?sha256={sha}", params.base),
            retrieve: Utc::now(),
            install: params.install_at,
            retries: params.retries,
            retry_interval: params.retry_interval,
            signature,
        }))
    }

    /// Sends rollout `id`'s `update` to `charger` (its handle when connected) and records
    /// the answer on its target row: `Failed` "not connected" without a handle, the
    /// charger's refusal, `Failed` with the error when the call failed; accepted, the row
    /// keeps `Requested` until the charger's statuses arrive.
    pub async fn send(
        &self,
        id: i64,
        update: &FirmwareUpdate,
        charger: &str,
        handle: Option<&ChargerHandle>,
    ) -> Result<(), DbError> {
        let outcome = match handle {
            None => Some(("Failed".to_owned(), Some("not connected".to_owned()))),
            Some(h) => match h.update_firmware(update).await {
                Ok(a) if a.status == "Accepted" || a.status == "AcceptedCanceled" => None,
                Ok(a) => Some((a.status, None)),
                Err(e) => Some(("Failed".to_owned(), Some(e.to_string()))),
            },
        };
        if let Some((status, detail)) = outcome {
            self.set_target(id, charger, &status, detail.as_deref())
                .await?;
        }
        Ok(())
    }

    /// Records that rollout `id` could not reach `charger` (`Failed`, with why: the node
    /// holding it did not answer, ...).
    pub async fn failed(&self, id: i64, charger: &str, why: &str) -> Result<(), DbError> {
        self.set_target(id, charger, "Failed", Some(why)).await
    }

    /// Whether `charger` is a target of rollout `id`.
    pub async fn is_target(&self, id: i64, charger: &str) -> Result<bool, DbError> {
        Ok(
            sqlx::query("SELECT 1 FROM firmware_targets WHERE rollout_id = $1 AND charger = $2")
                .bind(id)
                .bind(charger)
                .fetch_optional(self.db.writer())
                .await?
                .is_some(),
        )
    }

    async fn set_target(
        &self,
        rollout: i64,
        charger: &str,
        status: &str,
        detail: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE firmware_targets SET status = $1, detail = COALESCE($2, detail), updated_at = $3
             WHERE rollout_id = $4 AND charger = $5",
        )
        .bind(status)
        .bind(detail)
        .bind(db::ts(Utc::now()))
        .bind(rollout)
        .bind(charger)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// One rollout with its targets.
    pub async fn get_rollout(&self, id: i64) -> Result<Option<RolloutRow>, DbError> {
        let Some(r) = sqlx::query(
            "SELECT id, image_id, signed, created_at FROM firmware_rollouts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.writer())
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT charger, status, detail, installed_version, updated_at FROM firmware_targets
             WHERE rollout_id = $1 ORDER BY charger",
        )
        .bind(id)
        .fetch_all(self.db.writer())
        .await?;
        let targets = rows
            .iter()
            .map(|t| {
                Ok(TargetRow {
                    charger: t.try_get("charger")?,
                    status: t.try_get("status")?,
                    detail: t.try_get("detail")?,
                    installed_version: t.try_get("installed_version")?,
                    updated_at: db::parse_ts("updated_at", t.try_get("updated_at")?)?,
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        let signed: i64 = r.try_get("signed")?;
        Ok(Some(RolloutRow {
            id: r.try_get("id")?,
            image_id: r.try_get("image_id")?,
            signed: signed != 0,
            created_at: db::parse_ts("created_at", r.try_get("created_at")?)?,
            finished: targets.iter().filter(|t| is_final(&t.status)).count() as i64,
            installed: targets.iter().filter(|t| t.status == "Installed").count() as i64,
            targets,
        }))
    }

    /// The newest rollouts.
    pub async fn rollouts(&self) -> Result<Vec<RolloutRow>, DbError> {
        let ids = sqlx::query(&format!(
            "SELECT id FROM firmware_rollouts ORDER BY id DESC LIMIT {}",
            MAX_LIST.min(100)
        ))
        .fetch_all(self.db.writer())
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for r in &ids {
            let id: i64 = r.try_get("id")?;
            if let Some(row) = self.get_rollout(id).await? {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The charger's newest unfinished target's rollout, or the one `request_id` names.
    async fn target_of(
        &self,
        charger: &str,
        request_id: Option<i32>,
    ) -> Result<Option<i64>, DbError> {
        if let Some(id) = request_id {
            return Ok(Some(i64::from(id)));
        }
        let rows = sqlx::query(
            "SELECT rollout_id, status FROM firmware_targets WHERE charger = $1
             ORDER BY rollout_id DESC LIMIT 16",
        )
        .bind(charger)
        .fetch_all(self.db.writer())
        .await?;
        for r in &rows {
            let status: String = r.try_get("status")?;
            if !is_final(&status) {
                return Ok(Some(r.try_get("rollout_id")?));
            }
        }
        Ok(None)
    }

    /// Follows the charger's firmware status notifications and its boots.
    pub async fn on_event(&self, charger: &ChargerHandle, event: &Event) -> Result<(), DbError> {
        match event {
            Event::TransferStatus { status, .. } if status.kind == TransferKind::Firmware => {
                if status.status == "Idle" {
                    return Ok(());
                }
                let Some(rollout) = self
                    .target_of(charger.identity(), status.request_id)
                    .await?
                else {
                    return Ok(());
                };
                let version = if status.status == "Installed" {
                    charger
                        .state()
                        .info
                        .as_ref()
                        .and_then(|i| i.firmware_version.clone())
                } else {
                    None
                };
                sqlx::query(
                    "UPDATE firmware_targets SET status = $1, updated_at = $2,
                     installed_version = COALESCE($3, installed_version)
                     WHERE rollout_id = $4 AND charger = $5",
                )
                .bind(&status.status)
                .bind(db::ts(Utc::now()))
                .bind(version)
                .bind(rollout)
                .bind(charger.identity())
                .execute(self.db.writer())
                .await?;
            }
            Event::Booted { info, .. } => {
                // A boot during an install: the version it came back with.
                if let Some(v) = &info.firmware_version {
                    sqlx::query(
                        "UPDATE firmware_targets SET installed_version = $1
                         WHERE charger = $2 AND status IN ('Installing', 'InstallRebooting')",
                    )
                    .bind(v)
                    .bind(charger.identity())
                    .execute(self.db.writer())
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
