//! Alerts that notify: when a charger's health flag ([`super::analytics::health`]: `down`,
//! `degrading`, `ok`) changes, one webhook per transition to the operator's URL, HMAC-signed.
//!
//! - **Detection.** Every [`AlertConfig::every`] the checker computes every charger's flag
//!   and compares it with the last one stored (`alert_states`): a change to `down` or
//!   `degrading` queues the event `down` / `degrading`, a change back to `ok` queues
//!   `recovered`; no change queues nothing (dedupe, across restarts too). A charger seen for
//!   the first time queues an event only when it is not `ok`. The new flag is written only
//!   if the stored one is still the one read, and each delivery is claimed before it is
//!   sent, so several checkers (cluster nodes) send each alert once.
//! - **Delivery.** Each event is a row of `alert_deliveries` (the delivery log): `POST` of the
//!   JSON payload with header `Alert-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`
//!   (the scheme of the payment webhooks, [`super::payments::sign_webhook`]); a 2xx answer
//!   is `delivered`; anything else is retried after [`AlertConfig::backoff`] doubled per
//!   attempt (at most 1 hour), up to [`AlertConfig::max_attempts`], then `failed`. Without a
//!   configured URL nothing is queued.
//! - **Bounds.** At most [`MAX_DUE`] deliveries are sent per pass; the log keeps the newest
//!   [`MAX_LOG`] rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use super::db::{self, Db, DbError};

/// The most deliveries one pass sends.
pub const MAX_DUE: i64 = 100;
/// The delivery log keeps this many rows (oldest removed first).
pub const MAX_LOG: i64 = 10_000;
/// How long one delivery waits for its answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How the alerts behave.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// How often flags are checked and due deliveries sent (default 15 s).
    pub every: Duration,
    /// The wait after the first failed attempt, doubled each time (default 5 s).
    pub backoff: Duration,
    /// Attempts before a delivery is `failed` (default 6).
    pub max_attempts: i64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            every: Duration::from_secs(15),
            backoff: Duration::from_secs(5),
            max_attempts: 6,
        }
    }
}

/// The operator's webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http://` or `https://` URL.
    pub url: String,
    /// The HMAC key.
    pub secret: String,
}

/// One delivery of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Id.
    pub id: i64,
    /// The charger.
    pub charger: String,
    /// `down`, `degrading` or `recovered`.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// What the last failed attempt got.
    pub last_error: Option<String>,
    /// When the event was queued.
    pub created_at: String,
    /// The JSON sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// The alerts: the webhook target, the checker and the sender.
pub struct Alerts {
    db: Db,
    config: AlertConfig,
    http: reqwest::Client,
}

impl Alerts {
    /// Alerts over `db`.
    pub fn new(db: Db, config: AlertConfig) -> Arc<Alerts> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        Arc::new(Alerts { db, config, http })
    }

    /// The configuration.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Sets (or, with `None`, removes) the webhook.
    pub async fn set_target(&self, target: Option<&Target>) -> Result<(), DbError> {
        match target {
            Some(t) => sqlx::query(
                "INSERT INTO alert_settings (id, url, secret, updated_at) VALUES (1, $1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at",
            )
            .bind(&t.url)
            .bind(&t.secret)
            .bind(db::ts(Utc::now()))
            .execute(self.db.writer())
            .await?,
            None => sqlx::query("DELETE FROM alert_settings WHERE id = 1")
                .execute(self.db.writer())
                .await?,
        };
        Ok(())
    }

    /// The webhook, if set.
    pub async fn target(&self) -> Result<Option<Target>, DbError> {
        let row = sqlx::query("SELECT url, secret FROM alert_settings WHERE id = 1")
            .fetch_optional(self.db.reader())
            .await?;
        row.map(|r| {
            Ok(Target {
                url: r.try_get("url")?,
                secret: r.try_get("secret")?,
            })
        })
        .transpose()
    }

    /// Compares every charger's flag at `now` with the stored one and queues one delivery
    /// per transition (see the module docs); the events queued.
    pub async fn check(&self, now: DateTime<Utc>) -> Result<usize, DbError> {
        let flags = super::analytics::all_health(&self.db, now).await?;
        let known: std::collections::HashMap<String, String> =
            sqlx::query("SELECT charger, flag FROM alert_states")
                .fetch_all(self.db.reader())
                .await?
                .iter()
                .map(|r| Ok((r.try_get("charger")?, r.try_get("flag")?)))
                .collect::<Result<_, DbError>>()?;
        let target = self.target().await?;
        let mut queued = 0;
        for h in flags {
            let before = known.get(&h.charger).map(String::as_str);
            if before == Some(h.flag.as_str()) {
                continue;
            }
            let event = match (before, h.flag.as_str()) {
                (None, "ok") => None,
                (_, "ok") => Some("recovered"),
                (_, flag) => Some(flag),
            };
            let mut tx = self.db.begin_write().await?;
            // The transition is taken only if the stored flag is still the one read: of two
            // checkers (cluster nodes) seeing it, one queues the alert.
            let taken = match before {
                None => sqlx::query(
                    "INSERT INTO alert_states (charger, flag, since) VALUES ($1, $2, $3)
                     ON CONFLICT (charger) DO NOTHING",
                )
                .bind(&h.charger)
                .bind(&h.flag)
                .bind(db::ts(now))
                .execute(&mut *tx)
                .await?,
                Some(b) => sqlx::query(
                    "UPDATE alert_states SET flag = $1, since = $2 WHERE charger = $3 AND flag = $4",
                )
                .bind(&h.flag)
                .bind(db::ts(now))
                .bind(&h.charger)
                .bind(b)
                .execute(&mut *tx)
                .await?,
            };
            if taken.rows_affected() != 1 {
                continue;
            }
            if let (Some(event), Some(_)) = (event, &target) {
                let payload = json!({
                    "event": event,
                    "charger": h.charger,
                    "flag": h.flag,
                    "previous": before.unwrap_or("ok"),
                    "at": db::ts(now),
                    "connected": h.connected,
                    "faults": h.faults,
                    "reconnects": h.reconnects,
                    "errorCodes": h.error_codes,
                });
                sqlx::query(
                    "INSERT INTO alert_deliveries (charger, event, payload, status, attempts, next_at, created_at, updated_at)
                     VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4)",
                )
                .bind(&h.charger)
                .bind(event)
                .bind(payload.to_string())
                .bind(db::ts(now))
                .execute(&mut *tx)
                .await?;
                queued += 1;
            }
            tx.commit().await?;
        }
        if queued > 0 {
            sqlx::query(
                "DELETE FROM alert_deliveries WHERE id <= (SELECT COALESCE(MAX(id), 0) FROM alert_deliveries) - $1",
            )
            .bind(MAX_LOG)
            .execute(self.db.writer())
            .await?;
        }
        Ok(queued)
    }

    /// Sends the deliveries due at `now` (at most [`MAX_DUE`]); how many were delivered.
    pub async fn send_due(&self, now: DateTime<Utc>) -> Result<usize, DbError> {
        let Some(target) = self.target().await? else {
            return Ok(0);
        };
        let due = sqlx::query(
            "SELECT id, payload, attempts FROM alert_deliveries WHERE status = 'pending' AND next_at <= $1
             ORDER BY id LIMIT $2",
        )
        .bind(db::ts(now))
        .bind(MAX_DUE)
        .fetch_all(self.db.reader())
        .await?;
        let mut delivered = 0;
        for r in due {
            let id: i64 = r.try_get("id")?;
            let payload: String = r.try_get("payload")?;
            // Claimed for the length of an attempt, so another sender (a cluster node) skips it.
            let lease = now + chrono::Duration::from_std(TIMEOUT * 2).unwrap_or_default();
            let claimed = sqlx::query(
                "UPDATE alert_deliveries SET next_at = $1 WHERE id = $2 AND status = 'pending' AND next_at <= $3",
            )
            .bind(db::ts(lease))
            .bind(id)
            .bind(db::ts(now))
            .execute(self.db.writer())
            .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            let attempts = r.try_get::<i64, _>("attempts")?.saturating_add(1);
            let t = Utc::now().timestamp();
            let sent = self
                .http
                .post(&target.url)
                .header("content-type", "application/json")
                .header(
                    "alert-signature",
                    super::payments::sign_webhook(&target.secret, t, &payload),
                )
                .body(payload)
                .send()
                .await;
            let error = match sent {
                Ok(resp) if resp.status().is_success() => None,
                Ok(resp) => Some(format!("HTTP {}", resp.status().as_u16())),
                Err(e) => Some(e.to_string()),
            };
            let (status, next) = match &error {
                None => ("delivered", now),
                Some(_) if attempts >= self.config.max_attempts => ("failed", now),
                Some(_) => {
                    let shift = u32::try_from(attempts - 1).unwrap_or(u32::MAX).min(20);
                    let wait = self
                        .config
                        .backoff
                        .saturating_mul(1u32 << shift)
                        .min(Duration::from_secs(3600));
                    (
                        "pending",
                        now + chrono::Duration::from_std(wait).unwrap_or_default(),
                    )
                }
            };
            if error.is_none() {
                delivered += 1;
            }
            sqlx::query(
                "UPDATE alert_deliveries SET status = $1, attempts = $2, last_error = $3, next_at = $4, updated_at = $5
                 WHERE id = $6",
            )
            .bind(status)
            .bind(attempts)
            .bind(error)
            .bind(db::ts(next))
            .bind(db::ts(Utc::now()))
            .bind(id)
            .execute(self.db.writer())
            .await?;
        }
        Ok(delivered)
    }

    /// The newest `limit` (1 to 500) deliveries, newest first.
    pub async fn deliveries(&self, limit: i64) -> Result<Vec<Delivery>, DbError> {
        sqlx::query(
            "SELECT id, charger, event, payload, status, attempts, last_error, created_at FROM alert_deliveries
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit.clamp(1, 500))
        .fetch_all(self.db.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(Delivery {
                id: r.try_get("id")?,
                charger: r.try_get("charger")?,
                event: r.try_get("event")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                created_at: r.try_get("created_at")?,
                payload: serde_json::from_str(&r.try_get::<String, _>("payload")?)
                    .unwrap_or_default(),
            })
        })
        .collect()
    }
}

/// Runs the checker and the sender every [`AlertConfig::every`] until the backend is gone.
pub fn spawn(backend: &Arc<super::Backend>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(backend);
    tokio::spawn(async move {
        loop {
            let Some(b) = weak.upgrade() else { return };
            let every = b.alerts().config().every;
            b.flush().await;
            let now = Utc::now();
            if let Err(e) = b.alerts().check(now).await {
                tracing::warn!("alert check failed (tried again): {e}");
            }
            if let Err(e) = b.alerts().send_due(now).await {
                tracing::warn!("alert delivery failed (tried again): {e}");
            }
            drop(b);
            tokio::time::sleep(every).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_checkers_queue_each_transition_once() {
        let db = Db::open("sqlite::memory:").await.expect("db");
        sqlx::query(
            "INSERT INTO chargers (identity, registered, connected) VALUES ('A-1', 1, 0), ('A-2', 1, 1)",
        )
        .execute(db.writer())
        .await
        .expect("chargers");
        let a = Alerts::new(db.clone(), AlertConfig::default());
        let b = Alerts::new(db.clone(), AlertConfig::default());
        // No webhook: the flags are followed, nothing is queued.
        assert_eq!(a.check(Utc::now()).await.expect("check"), 0);
        sqlx::query("UPDATE chargers SET connected = 1 WHERE identity = 'A-1'")
            .execute(db.writer())
            .await
            .expect("up");
        a.set_target(Some(&Target {
            url: "http://127.0.0.1:9/".into(),
            secret: "0123456789abcdef".into(),
        }))
        .await
        .expect("target");
        sqlx::query("UPDATE chargers SET connected = 0 WHERE identity = 'A-2'")
            .execute(db.writer())
            .await
            .expect("down");
        let now = Utc::now();
        let (x, y) = tokio::join!(a.check(now), b.check(now));
        let (x, y) = (x.expect("a"), y.expect("b"));
        // A-1 recovered, A-2 went down: two alerts in all, whoever queued them.
        assert_eq!(x + y, 2, "{x} + {y}");
        let log = a.deliveries(10).await.expect("log");
        let mut seen: Vec<(String, String)> = log
            .iter()
            .map(|d| (d.charger.clone(), d.event.clone()))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("A-1".to_owned(), "recovered".to_owned()),
                ("A-2".to_owned(), "down".to_owned())
            ]
        );
        // Nothing changes: nothing more.
        assert_eq!(
            a.check(Utc::now()).await.expect("again") + b.check(Utc::now()).await.expect("again"),
            0
        );
    }
}
