//! Display messages: the operator sets a message on one charger or many (a site's), lists
//! what a charger reports it holds, and clears one. Each message is a row of
//! `display_messages` (migration [`MIGRATION`]), one per charger and message id, whose
//! status follows the charger:
//!
//! | status | when |
//! |---|---|
//! | `Requested` | the row is written, the SetDisplayMessage is on its way |
//! | `Accepted` | the charger holds it |
//! | `NotSupportedMessageFormat`, `NotSupportedPriority`, `NotSupportedState`, `UnknownTransaction`, `Rejected`, `LanguageNotSupported` | the charger's refusal |
//! | `Failed` | no answer (offline, timeout, CALLERROR, refused before sending) |
//! | `Reported` | the charger listed it in a NotifyDisplayMessages without the backend having set it |
//! | `Cleared` | ClearDisplayMessage `Accepted` |
//! | `Gone` | the charger's last report did not list it (it ended or was replaced) |
//!
//! Listing asks the charger (GetDisplayMessages) and waits for its report parts (until the
//! one without `tbc`, at most [`REPORT_TIMEOUT`]); at most [`MAX_COLLECTORS`] reports (of
//! display messages and customer information together) are awaited at once. The same
//! migration holds `customer_reports` ([`super::customers`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ocpp_central::display::{CustomerInformationPart, DisplayMessage, DisplayQuery};
use ocpp_central::{CallError, ChargerHandle, Event};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::oneshot;

use super::db::{self, Db, DbError};

/// Migration 14: display messages per charger, and the customer-information reports.
pub const MIGRATION: &str = "CREATE TABLE display_messages (
        id {ID},
        charger TEXT NOT NULL,
        message_id BIGINT NOT NULL,
        priority TEXT NOT NULL,
        state TEXT,
        starts_at TEXT,
        ends_at TEXT,
        transaction_id TEXT,
        format TEXT NOT NULL,
        language TEXT,
        content TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (charger, message_id)
    );
    CREATE TABLE customer_reports (
        id {ID},
        charger TEXT NOT NULL,
        request_id BIGINT NOT NULL,
        customer TEXT NOT NULL,
        report BIGINT NOT NULL,
        clear_data BIGINT NOT NULL,
        status TEXT NOT NULL,
        data TEXT NOT NULL,
        parts BIGINT NOT NULL,
        requested_at TEXT NOT NULL,
        completed_at TEXT
    );
    CREATE INDEX customer_reports_customer ON customer_reports (customer, id)";

/// How long a listing waits for the charger's report.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most reports awaited at once (per process).
pub const MAX_COLLECTORS: usize = 64;

/// The most parts one report collects (beyond, the rest is left out).
pub const MAX_PARTS: usize = 64;

/// One display message of one charger.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageRow {
    /// The charger.
    pub charger: String,
    /// The message id on the charger.
    pub id: i64,
    /// `AlwaysFront`, `InFront` or `NormalCycle`.
    pub priority: String,
    /// Shown only in this charger state.
    pub state: Option<String>,
    /// Shown from.
    pub starts_at: Option<DateTime<Utc>>,
    /// Shown until.
    pub ends_at: Option<DateTime<Utc>>,
    /// Shown during this transaction only.
    pub transaction_id: Option<String>,
    /// `ASCII`, `HTML`, `URI`, `UTF8`.
    pub format: String,
    /// The language.
    pub language: Option<String>,
    /// The text.
    pub content: String,
    /// See the module docs.
    pub status: String,
    /// When the status last changed.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "charger, message_id, priority, state, starts_at, ends_at, transaction_id, format, language, content, status, updated_at";

fn opt_ts(name: &'static str, v: Option<String>) -> Result<Option<DateTime<Utc>>, DbError> {
    v.map(|t| db::parse_ts(name, t)).transpose()
}

fn row_of(r: &sqlx::any::AnyRow) -> Result<MessageRow, DbError> {
    Ok(MessageRow {
        charger: r.try_get("charger")?,
        id: r.try_get("message_id")?,
        priority: r.try_get("priority")?,
        state: r.try_get("state")?,
        starts_at: opt_ts("starts_at", r.try_get("starts_at")?)?,
        ends_at: opt_ts("ends_at", r.try_get("ends_at")?)?,
        transaction_id: r.try_get("transaction_id")?,
        format: r.try_get("format")?,
        language: r.try_get("language")?,
        content: r.try_get("content")?,
        status: r.try_get("status")?,
        updated_at: db::parse_ts("updated_at", r.try_get("updated_at")?)?,
    })
}

/// Why a display call could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The charger did not answer (or the request was refused before sending).
    #[error("{0}")]
    Call(#[from] CallError),
    /// Too many reports are awaited already.
    #[error("too many reports are awaited at once")]
    Busy,
    /// The charger's report did not complete in time.
    #[error("the charger's report did not complete within {0:?}")]
    ReportTimeout(Duration),
}

/// What a report collects.
enum Parts {
    Display(Vec<DisplayMessage>),
    Customer(Vec<CustomerInformationPart>),
}

struct Collector {
    parts: Parts,
    count: usize,
    done: Option<oneshot::Sender<Parts>>,
}

/// Reports being awaited, by charger and request id (display messages and customer
/// information share the request ids of this process).
#[derive(Default)]
pub(crate) struct Collectors {
    next: AtomicI32,
    waiting: Mutex<HashMap<(String, i32), Collector>>,
}

impl std::fmt::Debug for Collectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collectors").finish_non_exhaustive()
    }
}

/// A registered report: its request id and where it completes. Dropping it forgets it.
pub(crate) struct Pending<'a> {
    collectors: &'a Collectors,
    key: (String, i32),
    rx: Option<oneshot::Receiver<Parts>>,
}

impl Pending<'_> {
    pub(crate) fn request_id(&self) -> i32 {
        self.key.1
    }

    async fn wait(mut self, timeout: Duration) -> Result<Parts, DisplayError> {
        let Some(rx) = self.rx.take() else {
            return Err(DisplayError::ReportTimeout(timeout));
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(parts)) => Ok(parts),
            _ => Err(DisplayError::ReportTimeout(timeout)),
        }
    }

    /// The customer-information parts, in `seqNo` order.
    pub(crate) async fn customer_parts(
        self,
        timeout: Duration,
    ) -> Result<Vec<CustomerInformationPart>, DisplayError> {
        match self.wait(timeout).await? {
            Parts::Customer(mut p) => {
                p.sort_by_key(|p| p.seq_no);
                Ok(p)
            }
            Parts::Display(_) => Ok(Vec::new()),
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Ok(mut w) = self.collectors.waiting.lock() {
            w.remove(&self.key);
        }
    }
}

impl Collectors {
    /// Registers a report of `charger` (customer information when `customer`).
    pub(crate) fn register(
        &self,
        charger: &str,
        customer: bool,
    ) -> Result<Pending<'_>, DisplayError> {
        let mut w = self.waiting.lock().map_err(|_| DisplayError::Busy)?;
        if w.len() >= MAX_COLLECTORS {
            return Err(DisplayError::Busy);
        }
        // Request ids of this process: 1, 2, ... (wrapping past i32::MAX to 1).
        let id = self
            .next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(if n == i32::MAX { 1 } else { n + 1 })
            })
            .map_or(1, |n| if n == i32::MAX { 1 } else { n + 1 });
        let (tx, rx) = oneshot::channel();
        let key = (charger.to_owned(), id);
        w.insert(
            key.clone(),
            Collector {
                parts: if customer {
                    Parts::Customer(Vec::new())
                } else {
                    Parts::Display(Vec::new())
                },
                count: 0,
                done: Some(tx),
            },
        );
        Ok(Pending {
            collectors: self,
            key,
            rx: Some(rx),
        })
    }

    /// Gives a report part to its collector; the part without `tbc` completes it.
    pub(crate) fn on_event(&self, charger: &ChargerHandle, event: &Event) {
        let (request_id, tbc) = match event {
            Event::DisplayMessages { report, .. } => (report.request_id, report.tbc),
            Event::CustomerInformation { part, .. } => (part.request_id, part.tbc),
            _ => return,
        };
        let Ok(mut w) = self.waiting.lock() else {
            return;
        };
        let key = (charger.identity().to_owned(), request_id);
        let Some(c) = w.get_mut(&key) else {
            return;
        };
        c.count += 1;
        if c.count <= MAX_PARTS {
            match (&mut c.parts, event) {
                (Parts::Display(all), Event::DisplayMessages { report, .. }) => {
                    all.extend(report.messages.iter().cloned())
                }
                (Parts::Customer(all), Event::CustomerInformation { part, .. }) => {
                    all.push(part.clone())
                }
                _ => {}
            }
        }
        if !tbc {
            if let Some(c) = w.remove(&key) {
                if let Some(done) = c.done {
                    let _ = done.send(c.parts);
                }
            }
        }
    }
}

/// The display messages (see the module docs).
#[derive(Debug)]
pub struct Displays {
    db: Db,
    pub(crate) collectors: Collectors,
}

impl Displays {
    /// Over `db`.
    pub fn new(db: Db) -> Arc<Displays> {
        Arc::new(Displays {
            db,
            collectors: Collectors::default(),
        })
    }

    async fn upsert(&self, charger: &str, m: &DisplayMessage, status: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO display_messages (charger, message_id, priority, state, starts_at, ends_at,
                 transaction_id, format, language, content, status, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (charger, message_id) DO UPDATE SET priority = excluded.priority,
                 state = excluded.state, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
                 transaction_id = excluded.transaction_id, format = excluded.format,
                 language = excluded.language, content = excluded.content,
                 status = excluded.status, updated_at = excluded.updated_at",
        )
        .bind(charger)
        .bind(i64::from(m.id))
        .bind(&m.priority)
        .bind(&m.state)
        .bind(m.start.map(db::ts))
        .bind(m.end.map(db::ts))
        .bind(&m.transaction_id)
        .bind(&m.format)
        .bind(&m.language)
        .bind(&m.content)
        .bind(status)
        .bind(db::ts(Utc::now()))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    async fn set_status(&self, charger: &str, id: i64, status: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE display_messages SET status = $1, updated_at = $2
             WHERE charger = $3 AND message_id = $4",
        )
        .bind(status)
        .bind(db::ts(Utc::now()))
        .bind(charger)
        .bind(id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Sets `message` on the charger of `handle`: writes the row, sends SetDisplayMessage,
    /// stores the answer word.
    pub async fn set(
        &self,
        handle: &ChargerHandle,
        message: &DisplayMessage,
    ) -> Result<MessageRow, DisplayError> {
        let charger = handle.identity();
        self.upsert(charger, message, "Requested").await?;
        let status = match handle.set_display_message(message).await {
            Ok(a) => a.status,
            Err(e) => {
                self.set_status(charger, i64::from(message.id), "Failed")
                    .await?;
                return Err(e.into());
            }
        };
        self.set_status(charger, i64::from(message.id), &status)
            .await?;
        Ok(self
            .get(charger, i64::from(message.id))
            .await?
            .ok_or(DbError::Corrupt {
                column: "display_messages",
                value: charger.to_owned(),
            })?)
    }

    /// Clears message `id` on the charger: ClearDisplayMessage; `Cleared` when Accepted.
    pub async fn clear(&self, handle: &ChargerHandle, id: i32) -> Result<String, DisplayError> {
        let a = handle.clear_display_message(id).await?;
        if a.is_accepted() {
            self.set_status(handle.identity(), i64::from(id), "Cleared")
                .await?;
        }
        Ok(a.status)
    }

    /// Asks the charger for its messages (GetDisplayMessages) and waits for the report; the
    /// rows follow it (`Reported` for messages the backend did not set, `Gone` for those
    /// Accepted before and not listed). Returns the charger's messages.
    pub async fn refresh(&self, handle: &ChargerHandle) -> Result<Vec<MessageRow>, DisplayError> {
        let charger = handle.identity();
        let pending = self.collectors.register(charger, false)?;
        let a = handle
            .get_display_messages(pending.request_id(), &DisplayQuery::default())
            .await?;
        let listed = if a.status == "Accepted" {
            match pending.wait(REPORT_TIMEOUT).await? {
                Parts::Display(m) => m,
                Parts::Customer(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let held = self.list(charger).await?;
        for m in &listed {
            let known = held
                .iter()
                .find(|r| r.id == i64::from(m.id))
                .map(|r| r.status.as_str());
            let status = match known {
                Some("Accepted") => "Accepted",
                _ => "Reported",
            };
            self.upsert(charger, m, status).await?;
        }
        for r in held.iter().filter(|r| r.status == "Accepted") {
            if !listed.iter().any(|m| i64::from(m.id) == r.id) {
                self.set_status(charger, r.id, "Gone").await?;
            }
        }
        let ids: Vec<i64> = listed.iter().map(|m| i64::from(m.id)).collect();
        Ok(self
            .list(charger)
            .await?
            .into_iter()
            .filter(|r| ids.contains(&r.id))
            .collect())
    }

    /// One message of a charger.
    pub async fn get(&self, charger: &str, id: i64) -> Result<Option<MessageRow>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM display_messages WHERE charger = $1 AND message_id = $2"
        ))
        .bind(charger)
        .bind(id)
        .fetch_optional(self.db.writer())
        .await?;
        row.as_ref().map(row_of).transpose()
    }

    /// Every stored message of a charger (at most 1,000), by id.
    pub async fn list(&self, charger: &str) -> Result<Vec<MessageRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM display_messages WHERE charger = $1 ORDER BY message_id LIMIT 1000"
        ))
        .bind(charger)
        .fetch_all(self.db.writer())
        .await?;
        rows.iter().map(row_of).collect()
    }
}
