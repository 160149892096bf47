//! Signed meter values (metering law, e.g. Germany's Eichrecht): every signed sample a charger
//! sends (1.6 `SignedData`, 2.x `signedMeterValue`) is a row of `signed_values` (migration
//! [`MIGRATION`]) with its session, transaction, timestamp, measurand, context, the signed data
//! verbatim, the plain reading next to it and a verification status from
//! [`ocpp_central::signed::verify`]:
//!
//! | status | when |
//! |---|---|
//! | `Verified` | the OCMF signature matches the key |
//! | `Invalid` | malformed OCMF, an unusable key, or a signature that does not match |
//! | `NoKey` | OCMF, but no key known (yet: registering one re-checks these rows) |
//! | `Unsupported` | another encoding (EDL, SML, ...) or algorithm (secp192k1): kept verbatim |
//!
//! The key a value is checked against, first found wins (`keySource` in the API):
//! 1. `operator`: registered for the charger and the meter serial (OCMF `MS`) through the
//!    API, or for the charger and any meter;
//! 2. `message`: sent with the value itself (2.x `publicKey`);
//! 3. `learned`: sent with an earlier value of the same charger and meter (2.x
//!    `PublicKeyWithSignedMeterValue` = `OncePerTransaction` sends it once);
//! 4. `device_model`: the charger's reported `PublicKey` variable (2.x, [`super::device_model`]).
//!
//! A key registered by the operator is the trust anchor: a value whose own key differs is
//! checked against the operator's, and is `Invalid` when that does not match.
//!
//! Bound: at most [`SignedConfig::max_per_session`] rows per session (default
//! [`MAX_PER_SESSION`]). Past it a value is not stored as a row: the session goes on, the
//! journal keeps the charger's message verbatim, and each message with values over the bound
//! records a `limit_reached` event (limit `signed_values`, with the session and how many were
//! not kept) and counts in the `errors` metric (`limit_reached` / `signed_values`).
//!
//! Rows are idempotent: a message projected twice (recovery after a crash) adds nothing, by
//! the unique key (charger, transaction (empty when none), timestamp, SHA-256 of the data).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ocpp_central::signed as ocmf;
use ocpp_central::MeterSample;
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::db::{self, Db, DbError};

/// Migration 15: the signed values and the meters' public keys.
pub const MIGRATION: &str = "CREATE TABLE signed_values (
        id {ID},
        charger TEXT NOT NULL,
        session_id BIGINT,
        transaction_id TEXT NOT NULL,
        sampled_at TEXT NOT NULL,
        measurand TEXT NOT NULL,
        context TEXT,
        phase TEXT,
        location TEXT,
        data TEXT NOT NULL,
        encoding TEXT,
        signing_method TEXT,
        public_key TEXT,
        plain_value TEXT,
        plain_unit TEXT,
        signed_wh TEXT,
        meter_serial TEXT,
        status TEXT NOT NULL,
        detail TEXT,
        key_source TEXT,
        digest TEXT NOT NULL,
        received_at TEXT NOT NULL,
        UNIQUE (charger, transaction_id, sampled_at, digest)
    );
    CREATE INDEX signed_values_session ON signed_values (session_id, id);
    CREATE TABLE meter_keys (
        charger TEXT NOT NULL,
        meter_serial TEXT NOT NULL,
        source TEXT NOT NULL,
        public_key TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger, meter_serial, source)
    )";

/// The default bound of signed rows per session.
pub const MAX_PER_SESSION: usize = 10_000;

/// The most rows one listing or export returns.
pub const MAX_LISTED: i64 = 100_000;

/// The most `NoKey` rows one key registration re-checks.
pub const MAX_RECHECKED: i64 = 10_000;

/// Settings.
#[derive(Debug, Clone, Copy)]
pub struct SignedConfig {
    /// Signed rows kept per session (see the module docs).
    pub max_per_session: usize,
}

/// One stored signed value.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedRow {
    /// Row id.
    pub id: i64,
    /// The charger.
    pub charger: String,
    /// The session (absent: meter values outside a known transaction).
    pub session_id: Option<i64>,
    /// The transaction id on the wire.
    pub transaction_id: Option<String>,
    /// The sample's timestamp.
    pub timestamp: DateTime<Utc>,
    /// The measurand.
    pub measurand: String,
    /// The reading context.
    pub context: Option<String>,
    /// The phase.
    pub phase: Option<String>,
    /// The location.
    pub location: Option<String>,
    /// The signed data exactly as sent.
    pub signed_data: String,
    /// 2.x `encodingMethod` (absent on 1.6).
    pub encoding: Option<String>,
    /// 2.x `signingMethod`.
    pub signing_method: Option<String>,
    /// The key it was checked against (absent: none known).
    pub public_key: Option<String>,
    /// Where that key came from: `operator`, `message`, `learned`, `device_model`.
    pub key_source: Option<String>,
    /// The unsigned reading next to it (2.x: the sample's value; 1.6: the plain sample of
    /// the same timestamp, measurand, phase and context), in Wh for energy, as exact text.
    pub plain_value: Option<String>,
    /// `Wh` when `plainValue` was converted to Wh, else the unit as sent.
    pub plain_unit: Option<String>,
    /// The signed energy (the OCMF payload's last reading in Wh/kWh), in Wh, exact text.
    pub signed_wh: Option<String>,
    /// The meter serial (OCMF `MS`).
    pub meter_serial: Option<String>,
    /// `Verified`, `Invalid`, `NoKey` or `Unsupported`.
    pub status: String,
    /// Why it is not `Verified`.
    pub detail: Option<String>,
}

const COLUMNS: &str = "id, charger, session_id, transaction_id, sampled_at, measurand, context, phase, location, data, encoding, signing_method, public_key, key_source, plain_value, plain_unit, signed_wh, meter_serial, status, detail";

fn row_of(r: &sqlx::any::AnyRow) -> Result<SignedRow, DbError> {
    Ok(SignedRow {
        id: r.try_get("id")?,
        charger: r.try_get("charger")?,
        session_id: r.try_get("session_id")?,
        transaction_id: Some(r.try_get::<String, _>("transaction_id")?).filter(|t| !t.is_empty()),
        timestamp: db::parse_ts("sampled_at", r.try_get("sampled_at")?)?,
        measurand: r.try_get("measurand")?,
        context: r.try_get("context")?,
        phase: r.try_get("phase")?,
        location: r.try_get("location")?,
        signed_data: r.try_get("data")?,
        encoding: r.try_get("encoding")?,
        signing_method: r.try_get("signing_method")?,
        public_key: r.try_get("public_key")?,
        key_source: r.try_get("key_source")?,
        plain_value: r.try_get("plain_value")?,
        plain_unit: r.try_get("plain_unit")?,
        signed_wh: r.try_get("signed_wh")?,
        meter_serial: r.try_get("meter_serial")?,
        status: r.try_get("status")?,
        detail: r.try_get("detail")?,
    })
}

/// A meter key registered by the operator.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterKey {
    /// The meter serial it is for (empty: any meter of the charger).
    pub meter_serial: String,
    /// `operator` or `learned` (sent by the charger with a value).
    pub source: String,
    /// The key as registered.
    pub public_key: String,
    /// When it was set.
    pub updated_at: DateTime<Utc>,
}

/// What storing a message's signed values found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Rows written.
    pub written: usize,
    /// Values over the session's bound (not written as rows).
    pub over_bound: usize,
}

/// The signed-values store.
#[derive(Debug)]
pub struct Signed {
    db: Db,
    max_per_session: AtomicUsize,
}

fn digest(data: &str) -> String {
    Sha256::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The unsigned reading next to a signed sample: its own value (2.x), or the plain sample of
/// the same timestamp, measurand, phase and context (1.6). In Wh when it is energy.
fn plain(s: &MeterSample, all: &[MeterSample]) -> (Option<String>, Option<String>) {
    let own = if s.has_value() {
        Some(s)
    } else {
        all.iter().find(|o| {
            o.has_value()
                && o.timestamp == s.timestamp
                && o.measurand == s.measurand
                && o.phase == s.phase
                && o.context == s.context
        })
    };
    match own {
        Some(o) => match o.energy_wh() {
            Some(wh) => (Some(wh.normalize().to_string()), Some("Wh".to_owned())),
            None => (
                Some(o.value.to_string()),
                o.unit.as_deref().map(str::to_owned),
            ),
        },
        None => (None, None),
    }
}

impl Signed {
    /// Over `db`, with the default bound.
    pub fn new(db: Db) -> Arc<Signed> {
        Arc::new(Signed {
            db,
            max_per_session: AtomicUsize::new(MAX_PER_SESSION),
        })
    }

    /// Applies `config`.
    pub fn configure(&self, config: SignedConfig) {
        self.max_per_session
            .store(config.max_per_session, Ordering::Relaxed);
    }

    /// The rows kept per session.
    pub fn max_per_session(&self) -> usize {
        self.max_per_session.load(Ordering::Relaxed)
    }

    async fn key(
        &self,
        charger: &str,
        serial: &str,
        source: &str,
    ) -> Result<Option<String>, DbError> {
        let row = sqlx::query(
            "SELECT public_key FROM meter_keys WHERE charger = $1 AND meter_serial = $2 AND source = $3",
        )
        .bind(charger)
        .bind(serial)
        .bind(source)
        .fetch_optional(self.db.writer())
        .await?;
        Ok(row.map(|r| r.try_get("public_key")).transpose()?)
    }

    async fn device_model_key(&self, charger: &str) -> Result<Option<String>, DbError> {
        let rows = sqlx::query(
            "SELECT attributes FROM device_variables WHERE charger = $1 AND variable = 'PublicKey'",
        )
        .bind(charger)
        .fetch_all(self.db.writer())
        .await?;
        for r in rows {
            let text: String = r.try_get("attributes")?;
            let attrs: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let actual = attrs.as_array().and_then(|a| {
                a.iter()
                    .find(|x| x["type"].as_str().is_none_or(|t| t == "Actual"))
                    .and_then(|x| x["value"].as_str())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            });
            if actual.is_some() {
                return Ok(actual);
            }
        }
        Ok(None)
    }

    /// The key to check a value of `charger`'s meter `serial` against, with its source (see
    /// the module docs).
    async fn resolve(
        &self,
        charger: &str,
        serial: &str,
        own: Option<&str>,
    ) -> Result<Option<(String, &'static str)>, DbError> {
        for s in [serial, ""] {
            if let Some(k) = self.key(charger, s, "operator").await? {
                return Ok(Some((k, "operator")));
            }
        }
        if let Some(k) = own {
            return Ok(Some((k.to_owned(), "message")));
        }
        for s in [serial, ""] {
            if let Some(k) = self.key(charger, s, "learned").await? {
                return Ok(Some((k, "learned")));
            }
        }
        Ok(self
            .device_model_key(charger)
            .await?
            .map(|k| (k, "device_model")))
    }

    async fn put_key(
        &self,
        charger: &str,
        serial: &str,
        source: &str,
        key: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO meter_keys (charger, meter_serial, source, public_key, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (charger, meter_serial, source) DO UPDATE SET
                 public_key = excluded.public_key, updated_at = excluded.updated_at",
        )
        .bind(charger)
        .bind(serial)
        .bind(source)
        .bind(key)
        .bind(db::ts(Utc::now()))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    async fn count(&self, session: i64) -> Result<usize, DbError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM signed_values WHERE session_id = $1")
            .bind(session)
            .fetch_one(self.db.writer())
            .await?
            .try_get("n")?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Stores the signed samples among `samples` (one message's) for `charger`, in `session`
    /// when known, verifying each. Idempotent (see the module docs).
    pub async fn store(
        &self,
        charger: &str,
        session: Option<i64>,
        transaction_id: Option<&str>,
        samples: &[MeterSample],
    ) -> Result<Stored, DbError> {
        let mut out = Stored::default();
        if !samples.iter().any(|s| s.signed.is_some()) {
            return Ok(out);
        }
        let mut room = match session {
            Some(id) => self.max_per_session().saturating_sub(self.count(id).await?),
            None => usize::MAX,
        };
        for s in samples {
            let Some(sv) = &s.signed else { continue };
            if room == 0 {
                out.over_bound += 1;
                continue;
            }
            // The meter serial names the key; parse once without a key to learn it.
            let first = ocmf::verify(&sv.data, sv.encoding.as_deref(), None, None);
            let serial = first
                .ocmf
                .as_ref()
                .and_then(|o| o.meter_serial.clone())
                .unwrap_or_default();
            if let Some(k) = sv.public_key.as_deref() {
                if ocmf::check_public_key(k).is_ok() {
                    self.put_key(charger, &serial, "learned", k).await?;
                }
            }
            let key = self
                .resolve(charger, &serial, sv.public_key.as_deref())
                .await?;
            let v = ocmf::verify(
                &sv.data,
                sv.encoding.as_deref(),
                sv.signing_method.as_deref(),
                key.as_ref().map(|k| k.0.as_str()),
            );
            let (plain_value, plain_unit) = plain(s, samples);
            let signed_wh = v
                .ocmf
                .as_ref()
                .and_then(|o| o.energy_wh())
                .map(|d: Decimal| d.normalize().to_string());
            let done = sqlx::query(
                "INSERT INTO signed_values (charger, session_id, transaction_id, sampled_at,
                     measurand, context, phase, location, data, encoding, signing_method,
                     public_key, key_source, plain_value, plain_unit, signed_wh, meter_serial,
                     status, detail, digest, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18, $19, $20, $21)
                 ON CONFLICT (charger, transaction_id, sampled_at, digest) DO NOTHING",
            )
            .bind(charger)
            .bind(session)
            .bind(transaction_id.unwrap_or(""))
            .bind(db::ts(s.timestamp))
            .bind(s.measurand.as_ref())
            .bind(s.context.as_deref())
            .bind(s.phase.as_deref())
            .bind(s.location.as_deref())
            .bind(&sv.data)
            .bind(&sv.encoding)
            .bind(&sv.signing_method)
            .bind(key.as_ref().map(|k| k.0.clone()))
            .bind(key.as_ref().map(|k| k.1))
            .bind(plain_value)
            .bind(plain_unit)
            .bind(signed_wh)
            .bind(Some(serial).filter(|s| !s.is_empty()))
            .bind(v.status.as_str())
            .bind(v.detail)
            .bind(digest(&sv.data))
            .bind(db::ts(Utc::now()))
            .execute(self.db.writer())
            .await?;
            if done.rows_affected() > 0 {
                out.written += 1;
                room -= 1;
            }
        }
        Ok(out)
    }

    /// A session's signed values, in arrival order (at most [`MAX_LISTED`]).
    pub async fn list(&self, session: i64) -> Result<Vec<SignedRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM signed_values WHERE session_id = $1 ORDER BY id LIMIT $2"
        ))
        .bind(session)
        .bind(MAX_LISTED)
        .fetch_all(self.db.reader())
        .await?;
        rows.iter().map(row_of).collect()
    }

    /// The signed values per status of each of `sessions`.
    pub async fn summary(
        &self,
        sessions: &[i64],
    ) -> Result<BTreeMap<i64, BTreeMap<String, i64>>, DbError> {
        let mut out: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
        if sessions.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT session_id, status, COUNT(*) AS n FROM signed_values
             WHERE session_id IN ({}) GROUP BY session_id, status",
            self.db.params_from(sessions.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for s in sessions {
            q = q.bind(*s);
        }
        for r in q.fetch_all(self.db.reader()).await? {
            let id: i64 = r.try_get("session_id")?;
            out.entry(id)
                .or_default()
                .insert(r.try_get("status")?, r.try_get("n")?);
        }
        Ok(out)
    }

    /// The keys of a charger's meters (registered and learned).
    pub async fn keys(&self, charger: &str) -> Result<Vec<MeterKey>, DbError> {
        let rows = sqlx::query(
            "SELECT meter_serial, source, public_key, updated_at FROM meter_keys
             WHERE charger = $1 ORDER BY meter_serial, source",
        )
        .bind(charger)
        .fetch_all(self.db.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MeterKey {
                    meter_serial: r.try_get("meter_serial")?,
                    source: r.try_get("source")?,
                    public_key: r.try_get("public_key")?,
                    updated_at: db::parse_ts("updated_at", r.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    /// Registers the key of `charger`'s meter `serial` (empty: any meter), then checks the
    /// charger's `NoKey` values again (at most [`MAX_RECHECKED`]); returns how many it
    /// re-checked. The caller has checked the key ([`ocmf::check_public_key`]).
    pub async fn register_key(
        &self,
        charger: &str,
        serial: &str,
        key: &str,
    ) -> Result<usize, DbError> {
        self.put_key(charger, serial, "operator", key).await?;
        let rows = sqlx::query(
            "SELECT id, data, encoding, signing_method, meter_serial FROM signed_values
             WHERE charger = $1 AND status = 'NoKey' ORDER BY id LIMIT $2",
        )
        .bind(charger)
        .bind(MAX_RECHECKED)
        .fetch_all(self.db.writer())
        .await?;
        let mut n = 0;
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let data: String = r.try_get("data")?;
            let encoding: Option<String> = r.try_get("encoding")?;
            let method: Option<String> = r.try_get("signing_method")?;
            let row_serial: Option<String> = r.try_get("meter_serial")?;
            let row_serial = row_serial.unwrap_or_default();
            if !serial.is_empty() && row_serial != serial {
                continue;
            }
            let Some((k, source)) = self.resolve(charger, &row_serial, None).await? else {
                continue;
            };
            let v = ocmf::verify(&data, encoding.as_deref(), method.as_deref(), Some(&k));
            sqlx::query(
                "UPDATE signed_values SET status = $1, detail = $2, public_key = $3,
                     key_source = $4 WHERE id = $5",
            )
            .bind(v.status.as_str())
            .bind(v.detail)
            .bind(&k)
            .bind(source)
            .bind(id)
            .execute(self.db.writer())
            .await?;
            n += 1;
        }
        Ok(n)
    }
}

/// Escapes text for XML content and attributes.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The export of a session's OCMF values in the XML the S.A.F.E. Transparenzsoftware reads:
/// `<values><value transactionId=".." context=".."><signedData format="OCMF"
/// encoding="plain">OCMF|...</signedData><publicKey encoding="plain">...</publicKey></value>
/// </values>`. Values that are not OCMF (Unsupported) are left out; base64 data is decoded to
/// the plain OCMF string. The key is the one the value was checked against (left out when
/// none is known).
pub fn export_xml(rows: &[SignedRow]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<values>\n");
    for r in rows {
        let Some(text) = ocmf::ocmf_text(&r.signed_data) else {
            continue;
        };
        out.push_str(&format!(
            "  <value transactionId=\"{}\" context=\"{}\">\n    <signedData format=\"OCMF\" encoding=\"plain\">{}</signedData>\n",
            xml(r.transaction_id.as_deref().unwrap_or("")),
            xml(r.context.as_deref().unwrap_or("")),
            xml(&text)
        ));
        if let Some(k) = &r.public_key {
            out.push_str(&format!(
                "    <publicKey encoding=\"{}\">{}</publicKey>\n",
                key_encoding(k),
                xml(k.trim())
            ));
        }
        out.push_str("  </value>\n");
    }
    out.push_str("</values>\n");
    out
}

/// The `encoding` attribute of a key in the export: `plain` for hex (the OCMF convention),
/// `base64` otherwise.
fn key_encoding(k: &str) -> &'static str {
    let k = k.trim();
    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_hexdigit()) {
        "plain"
    } else {
        "base64"
    }
}

/// The plain export: one OCMF string per line (values that are not OCMF left out).
pub fn export_ocmf(rows: &[SignedRow]) -> String {
    let mut out = String::new();
    for r in rows {
        if let Some(text) = ocmf::ocmf_text(&r.signed_data) {
            out.push_str(&text.replace(['\r', '\n'], " "));
            out.push('\n');
        }
    }
    out
}
