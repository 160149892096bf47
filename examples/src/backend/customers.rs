//! Customer information (OCPP 2.x block N, use cases N09 / N10) and the backend's own data
//! about a customer.
//!
//! - **From a charger.** [`Customers::request`] writes a `customer_reports` row
//!   (migration [`super::display::MIGRATION`]), sends CustomerInformation and, when the
//!   charger accepts a report, waits for its NotifyCustomerInformation parts (in `seqNo`
//!   order, until the part without `tbc`, at most [`super::display::REPORT_TIMEOUT`]) and
//!   stores their data joined. Row statuses: `Requested`, then the charger's word
//!   (`Accepted`, `Rejected`, `Invalid`), `Failed` without an answer, `Incomplete` when the
//!   report did not complete in time.
//! - **The backend's own.** `GET /api/customers/{id_token}` ([`super::display_api`])
//!   gathers the token row, the sessions it started ([`Customers::session_ids`]), its
//!   reservations ([`Customers::reservation_ids`]) and the reports stored about it
//!   ([`Customers::reports`]), in one answer.
//! - **Clear.** [`Customers::clear_token`] deletes the token and the reports about it,
//!   removes the token from its sessions and reservations (the billing record stays,
//!   without the customer), and, when asked, sends CustomerInformation with `clear` to every
//!   connected 2.x charger (at most [`super::cost::MAX_PARALLEL`] at once).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ocpp_central::display::CustomerRef;
use ocpp_central::ocpp_types::Version;
use ocpp_central::{CallError, ChargerHandle, Chargers};
use serde::Serialize;
use sqlx::Row;

use super::db::{self, Db, DbError};
use super::display::{DisplayError, Displays, REPORT_TIMEOUT};

/// One CustomerInformation sent to a charger, and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    /// Row id.
    pub id: i64,
    /// The charger.
    pub charger: String,
    /// The `requestId` sent.
    pub request_id: i64,
    /// Whom it is about: `idToken:…`, `identifier:…` or `certificate:…`.
    pub customer: String,
    /// A report was asked for.
    pub report: bool,
    /// A clear was asked for.
    pub clear: bool,
    /// See the module docs.
    pub status: String,
    /// The report's data, its parts joined in order.
    pub data: String,
    /// How many parts came.
    pub parts: i64,
    /// When it was sent.
    pub requested_at: DateTime<Utc>,
    /// When the report completed (or the answer came, without a report).
    pub completed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, charger, request_id, customer, report, clear_data, status, data, parts, requested_at, completed_at";

fn row_of(r: &sqlx::any::AnyRow) -> Result<ReportRow, DbError> {
    let completed: Option<String> = r.try_get("completed_at")?;
    Ok(ReportRow {
        id: r.try_get("id")?,
        charger: r.try_get("charger")?,
        request_id: r.try_get("request_id")?,
        customer: r.try_get("customer")?,
        report: r.try_get::<i64, _>("report")? != 0,
        clear: r.try_get::<i64, _>("clear_data")? != 0,
        status: r.try_get("status")?,
        data: r.try_get("data")?,
        parts: r.try_get("parts")?,
        requested_at: db::parse_ts("requested_at", r.try_get("requested_at")?)?,
        completed_at: completed
            .map(|t| db::parse_ts("completed_at", t))
            .transpose()?,
    })
}

/// How a customer is named in `customer_reports`.
pub fn customer_key(c: &CustomerRef) -> String {
    match c {
        CustomerRef::IdToken { id_token, .. } => format!("idToken:{id_token}"),
        CustomerRef::Identifier(i) => format!("identifier:{i}"),
        CustomerRef::Certificate {
            serial_number,
            issuer_name_hash,
            ..
        } => format!("certificate:{issuer_name_hash}/{serial_number}"),
    }
}

/// What a charger said to a clear.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerClear {
    /// The charger.
    pub charger: String,
    /// Its answer word, or `Failed: …`.
    pub status: String,
}

/// The customer-information store and requests.
#[derive(Debug)]
pub struct Customers {
    db: Db,
    displays: Arc<Displays>,
}

impl Customers {
    /// Over `db`, with the report collectors of `displays`.
    pub fn new(db: Db, displays: Arc<Displays>) -> Arc<Customers> {
        Arc::new(Customers { db, displays })
    }

    async fn finish(&self, id: i64, status: &str, data: &str, parts: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE customer_reports SET status = $1, data = $2, parts = $3, completed_at = $4
             WHERE id = $5",
        )
        .bind(status)
        .bind(data)
        .bind(parts)
        .bind(db::ts(Utc::now()))
        .bind(id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Sends CustomerInformation and stores the answer and the report (module docs).
    pub async fn request(
        &self,
        handle: &ChargerHandle,
        customer: &CustomerRef,
        report: bool,
        clear: bool,
    ) -> Result<ReportRow, DisplayError> {
        let pending = self.displays.collectors.register(handle.identity(), true)?;
        let request_id = pending.request_id();
        let row = sqlx::query(
            "INSERT INTO customer_reports (charger, request_id, customer, report, clear_data, status,
                 data, parts, requested_at)
             VALUES ($1, $2, $3, $4, $5, 'Requested', '', 0, $6) RETURNING id",
        )
        .bind(handle.identity())
        .bind(i64::from(request_id))
        .bind(customer_key(customer))
        .bind(i64::from(report))
        .bind(i64::from(clear))
        .bind(db::ts(Utc::now()))
        .fetch_one(self.db.writer())
        .await
        .map_err(DbError::from)?;
        let id: i64 = row.try_get("id").map_err(DbError::from)?;
        let answer = handle
            .customer_information(request_id, report, clear, customer)
            .await;
        let a = match answer {
            Ok(a) => a,
            Err(e) => {
                self.finish(id, "Failed", "", 0).await?;
                return Err(e.into());
            }
        };
        if a.status == "Accepted" && report {
            match pending.customer_parts(REPORT_TIMEOUT).await {
                Ok(parts) => {
                    let data: String = parts.iter().map(|p| p.data.as_str()).collect();
                    let n = i64::try_from(parts.len()).unwrap_or(i64::MAX);
                    self.finish(id, "Accepted", &data, n).await?;
                }
                Err(_) => self.finish(id, "Incomplete", "", 0).await?,
            }
        } else {
            self.finish(id, &a.status, "", 0).await?;
        }
        self.get(id).await?.ok_or_else(|| {
            DisplayError::Db(DbError::Corrupt {
                column: "customer_reports",
                value: id.to_string(),
            })
        })
    }

    /// One report row.
    pub async fn get(&self, id: i64) -> Result<Option<ReportRow>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM customer_reports WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.writer())
        .await?;
        row.as_ref().map(row_of).transpose()
    }

    /// The reports stored about a customer (newest first, at most 100).
    pub async fn reports(&self, key: &str) -> Result<Vec<ReportRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM customer_reports WHERE customer = $1 ORDER BY id DESC LIMIT 100"
        ))
        .bind(key)
        .fetch_all(self.db.writer())
        .await?;
        rows.iter().map(row_of).collect()
    }

    /// The ids of the sessions a token started (newest first, at most 1,000).
    pub async fn session_ids(&self, id_token: &str) -> Result<Vec<i64>, DbError> {
        let rows =
            sqlx::query("SELECT id FROM sessions WHERE id_token = $1 ORDER BY id DESC LIMIT 1000")
                .bind(id_token)
                .fetch_all(self.db.writer())
                .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>("id").map_err(DbError::from))
            .collect()
    }

    /// The ids of the reservations made for a token (newest first, at most 1,000).
    pub async fn reservation_ids(&self, id_token: &str) -> Result<Vec<i64>, DbError> {
        let rows = sqlx::query(
            "SELECT id FROM reservations WHERE id_token = $1 ORDER BY id DESC LIMIT 1000",
        )
        .bind(id_token)
        .fetch_all(self.db.writer())
        .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>("id").map_err(DbError::from))
            .collect()
    }

    /// Removes the backend's data about a token (module docs); returns whether the token
    /// row existed.
    pub async fn clear_token(&self, id_token: &str) -> Result<bool, DbError> {
        let existed = self.db.delete_token(id_token).await?;
        sqlx::query("UPDATE sessions SET id_token = NULL WHERE id_token = $1")
            .bind(id_token)
            .execute(self.db.writer())
            .await?;
        sqlx::query("UPDATE reservations SET id_token = '(cleared)' WHERE id_token = $1")
            .bind(id_token)
            .execute(self.db.writer())
            .await?;
        sqlx::query("DELETE FROM customer_reports WHERE customer = $1")
            .bind(format!("idToken:{id_token}"))
            .execute(self.db.writer())
            .await?;
        Ok(existed)
    }

    /// Sends CustomerInformation `clear` (no report) for a token to every connected 2.x
    /// charger; each charger's answer.
    pub async fn clear_on_chargers(
        &self,
        chargers: &Chargers,
        id_token: &str,
    ) -> Vec<ChargerClear> {
        let who = CustomerRef::IdToken {
            id_token: id_token.to_owned(),
            token_type: "ISO14443".into(),
        };
        let semaphore = Arc::new(tokio::sync::Semaphore::new(super::cost::MAX_PARALLEL));
        let mut tasks = tokio::task::JoinSet::new();
        for id in chargers.identities() {
            let Some(h) = chargers.get(&id).filter(|h| h.is_connected()) else {
                continue;
            };
            if h.version() == Version::V16 {
                continue;
            }
            let Ok(permit) = semaphore.clone().acquire_owned().await else {
                break;
            };
            let who = who.clone();
            tasks.spawn(async move {
                let _permit = permit;
                // A request id of 0: no report is asked for, nothing to collect.
                let status = match h.customer_information(0, false, true, &who).await {
                    Ok(a) => a.status,
                    Err(e) => format!("Failed: {}", describe(&e)),
                };
                ChargerClear {
                    charger: h.identity().to_owned(),
                    status,
                }
            });
        }
        let mut out = Vec::new();
        while let Some(r) = tasks.join_next().await {
            if let Ok(c) = r {
                out.push(c);
            }
        }
        out.sort_by(|a, b| a.charger.cmp(&b.charger));
        out
    }
}

fn describe(e: &CallError) -> String {
    e.to_string()
}
