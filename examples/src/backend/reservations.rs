//! Reservations: the operator reserves an EVSE (or any EVSE) of a charger for a token until an
//! expiry, and cancels it; each reservation is a row of `reservations` (migration
//! [`MIGRATION`]) whose id is the `reservationId` sent, and whose status follows the
//! charger:
//!
//! | status | when |
//! |---|---|
//! | `Requested` | the row is written, the ReserveNow is on its way |
//! | `Accepted` | the charger holds it |
//! | `Faulted`, `Occupied`, `Rejected`, `Unavailable` | the charger's refusal |
//! | `Failed` | the ReserveNow got no answer (offline, timeout, CALLERROR) |
//! | `Used` | a transaction started with its `reservationId` (1.6 StartTransaction, 2.x TransactionEvent) |
//! | `Cancelled` | CancelReservation `Accepted` |
//! | `Expired` | 2.x ReservationStatusUpdate `Expired`, or (1.6, which reports none) past its expiry when read |
//! | `Removed` | 2.x ReservationStatusUpdate `Removed` (its EVSE became Faulted or Unavailable) |
//!
//! The table also holds `local_list_versions` ([`super::local_list`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ocpp_central::reservations::{reservation_of, Reservation};
use ocpp_central::{CallError, ChargerHandle, Event};
use serde::Serialize;
use sqlx::Row;

use super::db::{self, Db, DbError};

/// Migration 11: reservations, and the version of each charger's local list.
pub const MIGRATION: &str = "CREATE TABLE reservations (
        id {ID},
        charger TEXT NOT NULL,
        evse BIGINT,
        id_token TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        status TEXT NOT NULL,
        transaction_id TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX reservations_charger ON reservations (charger, id);
    CREATE INDEX reservations_status ON reservations (status, expires_at);
    CREATE TABLE local_list_versions (
        charger TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
        entries BIGINT NOT NULL,
        updated_at TEXT NOT NULL
    )";

/// The most rows one list returns.
pub const MAX_LIST: i64 = 1000;

/// One reservation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationRow {
    /// The id (the `reservationId` sent to the charger).
    pub id: i64,
    /// The charger.
    pub charger: String,
    /// The EVSE (1.6 connector); `null`: any.
    pub evse: Option<i64>,
    /// The token.
    pub id_token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// See the module docs.
    pub status: String,
    /// The transaction that used it.
    pub transaction_id: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

fn row_of(r: &sqlx::any::AnyRow) -> Result<ReservationRow, DbError> {
    Ok(ReservationRow {
        id: r.try_get("id")?,
        charger: r.try_get("charger")?,
        evse: r.try_get("evse")?,
        id_token: r.try_get("id_token")?,
        expires_at: db::parse_ts("expires_at", r.try_get("expires_at")?)?,
        status: r.try_get("status")?,
        transaction_id: r.try_get("transaction_id")?,
        created_at: db::parse_ts("created_at", r.try_get("created_at")?)?,
        updated_at: db::parse_ts("updated_at", r.try_get("updated_at")?)?,
    })
}

const COLUMNS: &str =
    "id, charger, evse, id_token, expires_at, status, transaction_id, created_at, updated_at";

/// Why a reservation could not be made or cancelled.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The charger did not answer (or the request was refused before sending).
    #[error("{0}")]
    Call(#[from] CallError),
    /// No such reservation.
    #[error("no reservation {0}")]
    Unknown(i64),
    /// The id no longer fits a 32-bit `reservationId`.
    #[error("reservation id {0} is beyond 32 bits")]
    IdRange(i64),
}

/// The reservations (see the module docs).
#[derive(Debug)]
pub struct Reservations {
    db: Db,
}

impl Reservations {
    /// Over `db`.
    pub fn new(db: Db) -> Arc<Reservations> {
        Arc::new(Reservations { db })
    }

    /// Reserves through `handle`: writes the row, sends ReserveNow, stores the answer.
    pub async fn reserve(
        &self,
        handle: &ChargerHandle,
        evse: Option<i32>,
        id_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<ReservationRow, ReserveError> {
        let now = db::ts(Utc::now());
        let row = sqlx::query(
            "INSERT INTO reservations (charger, evse, id_token, expires_at, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'Requested', $5, $5) RETURNING id",
        )
        .bind(handle.identity())
        .bind(evse.map(i64::from))
        .bind(id_token)
        .bind(db::ts(expires_at))
        .bind(&now)
        .fetch_one(self.db.writer())
        .await
        .map_err(DbError::from)?;
        let id: i64 = row.try_get("id").map_err(DbError::from)?;
        let Ok(reservation_id) = i32::try_from(id) else {
            self.set_status(id, "Failed", None).await?;
            return Err(ReserveError::IdRange(id));
        };
        let answer = handle
            .reserve_now(&Reservation {
                id: reservation_id,
                evse,
                id_token: id_token.to_owned(),
                token_type: None,
                group: None,
                expiry: expires_at,
                connector_type: None,
            })
            .await;
        match answer {
            Ok(a) => {
                self.set_status(id, &a.status, None).await?;
            }
            Err(e) => {
                self.set_status(id, "Failed", None).await?;
                return Err(e.into());
            }
        }
        self.get(id).await?.ok_or(ReserveError::Unknown(id))
    }

    /// Cancels reservation `id` through `handle`; returns the charger's answer word and the
    /// row (`Cancelled` when Accepted).
    pub async fn cancel(
        &self,
        handle: &ChargerHandle,
        id: i64,
    ) -> Result<(String, ReservationRow), ReserveError> {
        let reservation_id = i32::try_from(id).map_err(|_| ReserveError::IdRange(id))?;
        let a = handle.cancel_reservation(reservation_id).await?;
        if a.is_accepted() {
            self.set_status(id, "Cancelled", None).await?;
        }
        let row = self.get(id).await?.ok_or(ReserveError::Unknown(id))?;
        Ok((a.status, row))
    }

    async fn set_status(
        &self,
        id: i64,
        status: &str,
        transaction_id: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE reservations SET status = $1, transaction_id = COALESCE($2, transaction_id),
             updated_at = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(transaction_id)
        .bind(db::ts(Utc::now()))
        .bind(id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Reservations a charger holds (`Accepted`) whose expiry has passed become `Expired`
    /// (1.6 reports no expiry; 2.x does, and this is its fallback).
    async fn expire(&self) -> Result<(), DbError> {
        let now = db::ts(Utc::now());
        sqlx::query(
            "UPDATE reservations SET status = 'Expired', updated_at = $1
             WHERE status = 'Accepted' AND expires_at <= $1",
        )
        .bind(now)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// One reservation.
    pub async fn get(&self, id: i64) -> Result<Option<ReservationRow>, DbError> {
        self.expire().await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM reservations WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.db.writer())
            .await?;
        row.as_ref().map(row_of).transpose()
    }

    /// The newest reservations (at most [`MAX_LIST`]), of one charger when given.
    pub async fn list(&self, charger: Option<&str>) -> Result<Vec<ReservationRow>, DbError> {
        self.expire().await?;
        let rows = match charger {
            Some(c) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM reservations WHERE charger = $1 ORDER BY id DESC LIMIT {MAX_LIST}"
                ))
                .bind(c)
                .fetch_all(self.db.writer())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM reservations ORDER BY id DESC LIMIT {MAX_LIST}"
                ))
                .fetch_all(self.db.writer())
                .await?
            }
        };
        rows.iter().map(row_of).collect()
    }

    /// Follows the charger's messages: a transaction started with a reservation (`Used`), a
    /// 2.x ReservationStatusUpdate (`Expired` / `Removed`). Only a reservation of that
    /// charger changes.
    pub async fn on_event(&self, charger: &ChargerHandle, event: &Event) -> Result<(), DbError> {
        let (id, status, tx) = match event {
            Event::TransactionStarted {
                request,
                transaction,
                ..
            } => match reservation_of(request) {
                Some(id) => (id, "Used", Some(transaction.id.as_str())),
                None => return Ok(()),
            },
            Event::ReservationStatus { update, .. } => {
                let status = match update.status.as_str() {
                    "Expired" => "Expired",
                    _ => "Removed",
                };
                (update.reservation_id, status, None)
            }
            _ => return Ok(()),
        };
        sqlx::query(
            "UPDATE reservations SET status = $1, transaction_id = COALESCE($2, transaction_id),
             updated_at = $3 WHERE id = $4 AND charger = $5",
        )
        .bind(status)
        .bind(tx)
        .bind(db::ts(Utc::now()))
        .bind(i64::from(id))
        .bind(charger.identity())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }
}

/// Whether a reservation's status is final.
pub fn is_final(status: &str) -> bool {
    !matches!(status, "Requested" | "Accepted")
}
