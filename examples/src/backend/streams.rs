//! Periodic event streams (OCPP 2.1): the operator opens a stream on a charger's variable
//! (a monitor with `periodicEventStream`), the charger's samples are stored, the API reads
//! them back and the dashboard charts one. Tables of migration [`MIGRATION`]:
//!
//! | table | rows |
//! |---|---|
//! | `event_streams` | one per charger and stream id: its monitor, variable, parameters and status, the count and last sample |
//! | `stream_samples` | every sample received, newest [`MAX_SAMPLES_PER_STREAM`] per stream |
//!
//! A stream's status: `Requested` (the SetVariableMonitoring was accepted, the charger has
//! not opened it yet), `Open` (OpenPeriodicEventStream received), `Closing` (the monitor was
//! cleared), `Closed` (ClosePeriodicEventStream received). Bounds: at most
//! [`MAX_STREAMS_PER_CHARGER`] streams a charger may have open or requested (the charger's
//! further opens are not stored, and their samples dropped); samples of a stream without a
//! row are dropped (a charger cannot grow the tables with made-up stream ids); closed
//! streams beyond the newest [`MAX_CLOSED_PER_CHARGER`] are deleted with their samples.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ocpp_central::streams::{StreamData, StreamInfo, StreamNotice};
use ocpp_central::{ChargerHandle, Event};
use serde::Serialize;
use sqlx::Row;

use super::db::{self, Db, DbError};

/// Migration 17: the streams and their samples, and the chargers' DER events
/// ([`super::der`]).
pub const MIGRATION: &str = "CREATE TABLE event_streams (
        id {ID},
        charger TEXT NOT NULL,
        stream_id BIGINT NOT NULL,
        monitor_id BIGINT NOT NULL,
        component TEXT NOT NULL,
        variable TEXT NOT NULL,
        send_interval BIGINT,
        send_values BIGINT,
        status TEXT NOT NULL,
        samples BIGINT NOT NULL,
        last_at TEXT,
        last_value TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE (charger, stream_id)
    );
    CREATE TABLE stream_samples (
        id {ID},
        charger TEXT NOT NULL,
        stream_id BIGINT NOT NULL,
        at TEXT NOT NULL,
        value TEXT NOT NULL
    );
    CREATE INDEX stream_samples_stream ON stream_samples (charger, stream_id, id);
    CREATE TABLE der_events (
        id {ID},
        charger TEXT NOT NULL,
        kind TEXT NOT NULL,
        control TEXT NOT NULL,
        grid_event_fault TEXT,
        ended BIGINT NOT NULL,
        detail TEXT,
        at TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX der_events_charger ON der_events (charger, id)";

/// The samples kept per stream (the oldest are deleted beyond).
pub const MAX_SAMPLES_PER_STREAM: i64 = 10_000;

/// The streams a charger may have requested or open at once.
pub const MAX_STREAMS_PER_CHARGER: i64 = 32;

/// The closed streams kept per charger (with their samples).
pub const MAX_CLOSED_PER_CHARGER: i64 = 32;

/// The most samples one read returns.
pub const MAX_READ: i64 = 5_000;

/// Rows per INSERT of samples.
const CHUNK: usize = 200;

/// One stream of one charger.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamRow {
    /// The charger.
    pub charger: String,
    /// The stream's id on the charger.
    pub stream_id: i64,
    /// The monitor whose events it carries.
    pub monitor_id: i64,
    /// The monitored component (`EVSE/1`, `ChargingStation`...).
    pub component: String,
    /// The monitored variable.
    pub variable: String,
    /// Seconds between the charger's sends.
    pub interval: Option<i64>,
    /// Samples per send.
    pub values: Option<i64>,
    /// `Requested`, `Open`, `Closing`, `Closed`.
    pub status: String,
    /// Samples received.
    pub samples: i64,
    /// When the last sample was taken.
    pub last_at: Option<DateTime<Utc>>,
    /// The last sample's value.
    pub last_value: Option<String>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// One stored sample.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SampleRow {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// Its value, as the charger sent it.
    pub value: String,
}

const COLUMNS: &str = "charger, stream_id, monitor_id, component, variable, send_interval, send_values, status, samples, last_at, last_value, updated_at";

fn row_of(r: &sqlx::any::AnyRow) -> Result<StreamRow, DbError> {
    Ok(StreamRow {
        charger: r.try_get("charger")?,
        stream_id: r.try_get("stream_id")?,
        monitor_id: r.try_get("monitor_id")?,
        component: r.try_get("component")?,
        variable: r.try_get("variable")?,
        interval: r.try_get("send_interval")?,
        values: r.try_get("send_values")?,
        status: r.try_get("status")?,
        samples: r.try_get("samples")?,
        last_at: r
            .try_get::<Option<String>, _>("last_at")?
            .map(|t| db::parse_ts("last_at", t))
            .transpose()?,
        last_value: r.try_get("last_value")?,
        updated_at: db::parse_ts("updated_at", r.try_get("updated_at")?)?,
    })
}

/// The stream store (see the module docs).
#[derive(Debug)]
pub struct Streams {
    db: Db,
}

impl Streams {
    /// Over `db`.
    pub fn new(db: Db) -> Arc<Streams> {
        Arc::new(Streams { db })
    }

    /// Whether `charger` may have one more stream.
    pub async fn has_room(&self, charger: &str) -> Result<bool, DbError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM event_streams WHERE charger = $1 AND status IN ('Requested', 'Open')",
        )
        .bind(charger)
        .fetch_one(self.db.writer())
        .await?
        .try_get("n")?;
        Ok(n < MAX_STREAMS_PER_CHARGER)
    }

    /// Writes the row of a stream the charger accepted a monitor for (`Requested`).
    pub async fn requested(
        &self,
        charger: &str,
        monitor_id: i64,
        component: &str,
        variable: &str,
        interval: Option<i64>,
        values: Option<i64>,
    ) -> Result<StreamRow, DbError> {
        let now = db::ts(Utc::now());
        sqlx::query(&format!(
            "INSERT INTO event_streams ({COLUMNS}) VALUES ($1, $2, $2, $3, $4, $5, $6, 'Requested', 0, NULL, NULL, $7)
             ON CONFLICT (charger, stream_id) DO UPDATE SET monitor_id = excluded.monitor_id,
                 component = excluded.component, variable = excluded.variable,
                 send_interval = excluded.send_interval, send_values = excluded.send_values,
                 status = CASE WHEN event_streams.status = 'Open' THEN 'Open' ELSE 'Requested' END,
                 updated_at = excluded.updated_at"
        ))
        .bind(charger)
        .bind(monitor_id)
        .bind(component)
        .bind(variable)
        .bind(interval)
        .bind(values)
        .bind(&now)
        .execute(self.db.writer())
        .await?;
        self.get(charger, monitor_id)
            .await?
            .ok_or_else(|| DbError::Corrupt {
                column: "event_streams",
                value: "the row written is gone".into(),
            })
    }

    /// One stream.
    pub async fn get(&self, charger: &str, stream_id: i64) -> Result<Option<StreamRow>, DbError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM event_streams WHERE charger = $1 AND stream_id = $2"
        ))
        .bind(charger)
        .bind(stream_id)
        .fetch_optional(self.db.writer())
        .await?
        .map(|r| row_of(&r))
        .transpose()
    }

    /// A charger's streams, newest first.
    pub async fn list(&self, charger: &str) -> Result<Vec<StreamRow>, DbError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM event_streams WHERE charger = $1 ORDER BY id DESC"
        ))
        .bind(charger)
        .fetch_all(self.db.writer())
        .await?
        .iter()
        .map(row_of)
        .collect()
    }

    /// Sets a stream's status (and parameters, when given).
    pub async fn set_status(
        &self,
        charger: &str,
        stream_id: i64,
        status: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE event_streams SET status = $1, updated_at = $2 WHERE charger = $3 AND stream_id = $4",
        )
        .bind(status)
        .bind(db::ts(Utc::now()))
        .bind(charger)
        .bind(stream_id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Marks a stream `Closing` (its monitor was cleared), unless the charger's close
    /// already arrived.
    pub async fn closing(&self, charger: &str, stream_id: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE event_streams SET status = 'Closing', updated_at = $1
             WHERE charger = $2 AND stream_id = $3 AND status <> 'Closed'",
        )
        .bind(db::ts(Utc::now()))
        .bind(charger)
        .bind(stream_id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Sets a stream's parameters (after an accepted AdjustPeriodicEventStream).
    pub async fn set_params(
        &self,
        charger: &str,
        stream_id: i64,
        interval: Option<i64>,
        values: Option<i64>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE event_streams SET send_interval = $1, send_values = $2, updated_at = $3 WHERE charger = $4 AND stream_id = $5",
        )
        .bind(interval)
        .bind(values)
        .bind(db::ts(Utc::now()))
        .bind(charger)
        .bind(stream_id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// The newest `limit` samples of a stream (at most [`MAX_READ`]), oldest first.
    pub async fn samples(
        &self,
        charger: &str,
        stream_id: i64,
        limit: i64,
    ) -> Result<Vec<SampleRow>, DbError> {
        let limit = limit.clamp(1, MAX_READ);
        let rows = sqlx::query(&format!(
            "SELECT at, value FROM stream_samples WHERE charger = $1 AND stream_id = $2 ORDER BY id DESC LIMIT {limit}"
        ))
        .bind(charger)
        .bind(stream_id)
        .fetch_all(self.db.writer())
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(SampleRow {
                    at: db::parse_ts("at", r.try_get("at")?)?,
                    value: r.try_get("value")?,
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        out.reverse();
        Ok(out)
    }

    async fn opened(&self, charger: &str, info: &StreamInfo) -> Result<(), DbError> {
        let now = db::ts(Utc::now());
        let interval = info.params.interval.map(i64::from);
        let values = info.params.values.map(i64::from);
        // The row written when the operator asked (keyed by the monitor) becomes the
        // stream's; a stream the backend did not ask for gets a row while there is room.
        let moved = sqlx::query(
            "UPDATE event_streams SET stream_id = $1, status = 'Open', send_interval = $2, send_values = $3, updated_at = $4
             WHERE charger = $5 AND monitor_id = $6 AND status IN ('Requested', 'Open')",
        )
        .bind(i64::from(info.id))
        .bind(interval)
        .bind(values)
        .bind(&now)
        .bind(charger)
        .bind(i64::from(info.monitor_id))
        .execute(self.db.writer())
        .await?
        .rows_affected();
        if moved == 0 && self.has_room(charger).await? {
            sqlx::query(&format!(
                "INSERT INTO event_streams ({COLUMNS}) VALUES ($1, $2, $3, '', '', $4, $5, 'Open', 0, NULL, NULL, $6)
                 ON CONFLICT (charger, stream_id) DO UPDATE SET monitor_id = excluded.monitor_id, status = 'Open',
                     send_interval = excluded.send_interval, send_values = excluded.send_values, updated_at = excluded.updated_at"
            ))
            .bind(charger)
            .bind(i64::from(info.id))
            .bind(i64::from(info.monitor_id))
            .bind(interval)
            .bind(values)
            .bind(&now)
            .execute(self.db.writer())
            .await?;
        }
        Ok(())
    }

    async fn closed(&self, charger: &str, id: i32) -> Result<(), DbError> {
        self.set_status(charger, i64::from(id), "Closed").await?;
        // Retention of closed streams: the newest MAX_CLOSED_PER_CHARGER, with their samples.
        let old = sqlx::query(&format!(
            "SELECT stream_id FROM event_streams WHERE charger = $1 AND status = 'Closed' ORDER BY id DESC LIMIT 1000 OFFSET {MAX_CLOSED_PER_CHARGER}"
        ))
        .bind(charger)
        .fetch_all(self.db.writer())
        .await?;
        for r in old {
            let sid: i64 = r.try_get("stream_id")?;
            sqlx::query("DELETE FROM stream_samples WHERE charger = $1 AND stream_id = $2")
                .bind(charger)
                .bind(sid)
                .execute(self.db.writer())
                .await?;
            sqlx::query("DELETE FROM event_streams WHERE charger = $1 AND stream_id = $2")
                .bind(charger)
                .bind(sid)
                .execute(self.db.writer())
                .await?;
        }
        Ok(())
    }

    /// Stores one NotifyPeriodicEventStream's samples (dropped for a stream without a row);
    /// returns how many were stored.
    pub async fn store(&self, charger: &str, data: &StreamData) -> Result<usize, DbError> {
        let sid = i64::from(data.id);
        let known =
            sqlx::query("SELECT status FROM event_streams WHERE charger = $1 AND stream_id = $2")
                .bind(charger)
                .bind(sid)
                .fetch_optional(self.db.writer())
                .await?;
        if known.is_none() || data.samples.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db.begin_write().await?;
        for chunk in data.samples.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO stream_samples (charger, stream_id, at, value) VALUES {}",
                self.db.values(chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q.bind(charger).bind(sid).bind(db::ts(s.at)).bind(&s.value);
            }
            q.execute(&mut *tx).await?;
        }
        let n = data.samples.len();
        let last = &data.samples[n - 1];
        sqlx::query(
            "UPDATE event_streams SET samples = samples + $1, last_at = $2, last_value = $3, updated_at = $4,
                 status = CASE WHEN status = 'Requested' THEN 'Open' ELSE status END
             WHERE charger = $5 AND stream_id = $6",
        )
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .bind(db::ts(last.at))
        .bind(&last.value)
        .bind(db::ts(Utc::now()))
        .bind(charger)
        .bind(sid)
        .execute(&mut *tx)
        .await?;
        // Retention: the newest MAX_SAMPLES_PER_STREAM samples of this stream.
        sqlx::query(&format!(
            "DELETE FROM stream_samples WHERE charger = $1 AND stream_id = $2 AND id <= (
                 SELECT id FROM stream_samples WHERE charger = $1 AND stream_id = $2 ORDER BY id DESC LIMIT 1 OFFSET {MAX_SAMPLES_PER_STREAM})"
        ))
        .bind(charger)
        .bind(sid)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Follows the charger's stream messages.
    pub async fn on_event(&self, charger: &ChargerHandle, event: &Event) -> Result<(), DbError> {
        match event {
            Event::EventStream { notice, .. } => match notice {
                StreamNotice::Opened(info) => self.opened(charger.identity(), info).await,
                StreamNotice::Closed { id } => self.closed(charger.identity(), *id).await,
            },
            Event::StreamData { data } => self.store(charger.identity(), data).await.map(|_| ()),
            _ => Ok(()),
        }
    }
}
