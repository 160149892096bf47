//! Write-behind for the high-volume, order-only writes (charger and connector state, the
//! event log, and the projection of journaled transaction messages into sessions and meter
//! values): one task applies them in batches, each batch in one database transaction, so
//! thousands of chargers cost a few commits instead of tens of thousands, and no charger's
//! event handling waits on the database.
//!
//! Projections may lag because the journal row of every transaction message is written
//! before the charger gets its answer: a journal row is marked done ([`Write::JournalDone`],
//! queued after its projection) only in a batch after, or with, the projection's writes,
//! and never when a projection of that charger failed; a crash in between replays the row at
//! the next start (the projection is idempotent).

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use rust_decimal::Decimal;

use super::db::{Db, DbError, SampleRow};
use super::metrics::Metrics;

/// One write.
#[derive(Debug)]
pub(crate) enum Write {
    ChargerConnected {
        identity: String,
        version: &'static str,
        at: DateTime<Utc>,
    },
    ChargerBooted {
        identity: String,
        vendor: String,
        model: String,
        serial_number: Option<String>,
        firmware_version: Option<String>,
        boot_state: &'static str,
        at: DateTime<Utc>,
    },
    ChargerSeen {
        identity: String,
        at: DateTime<Utc>,
    },
    ChargerDisconnected {
        identity: String,
        at: DateTime<Utc>,
    },
    ConnectorStatus {
        charger: String,
        evse: i64,
        connector: Option<i64>,
        status: String,
        error_code: Option<String>,
        since: DateTime<Utc>,
    },
    Event {
        id: i64,
        at: DateTime<Utc>,
        charger: String,
        kind: String,
        detail: String,
    },
    /// A session's meter state and cost, and the samples a message brought.
    SessionProgress {
        charger: String,
        session_id: i64,
        meter_start_wh: Option<Decimal>,
        meter_last_wh: Option<Decimal>,
        energy_wh: Decimal,
        power_w: Option<Decimal>,
        cost: Option<Decimal>,
        samples: Vec<SampleRow>,
    },
    /// A session completed.
    SessionEnded {
        charger: String,
        session_id: i64,
        ended_at: DateTime<Utc>,
        stop_reason: Option<String>,
    },
    /// The charger's journal rows up to `id` are projected.
    JournalDone {
        charger: String,
        id: i64,
    },
}

impl Write {
    /// The charger of a projection write (for [`Write::JournalDone`] to follow its fate).
    fn projection_of(&self) -> Option<&str> {
        match self {
            Write::SessionProgress { charger, .. } | Write::SessionEnded { charger, .. } => {
                Some(charger)
            }
            _ => None,
        }
    }
}

enum Op {
    Write(Write),
    Flush(oneshot::Sender<()>),
}

/// The handle of the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Op>,
}

/// Writes per transaction at most.
const BATCH: usize = 2000;

/// Writes queued at most (four batches): beyond, [`Writer::write`] waits, which holds the
/// charger's event handling and so, through the connection's bounded backlog, reading from
/// the charger: back pressure instead of unbounded memory or dropped writes.
pub(crate) const QUEUE: usize = 4 * BATCH;

impl Writer {
    /// Starts the writer task on the current runtime.
    pub(crate) fn start(db: Db, metrics: Metrics) -> Writer {
        let (tx, mut rx) = mpsc::channel::<Op>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            let mut waiting = Vec::new();
            while let Some(op) = rx.recv().await {
                let mut next = Some(op);
                while let Some(op) = next.take() {
                    match op {
                        Op::Write(w) => batch.push(w),
                        Op::Flush(done) => waiting.push(done),
                    }
                    if batch.len() < BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    coalesce(&mut batch);
                    apply(&db, &metrics, &batch).await;
                    batch.clear();
                }
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
            }
        });
        Writer { tx }
    }

    /// Queues a write, waiting while [`QUEUE`] writes are queued.
    pub(crate) async fn write(&self, w: Write) {
        let _ = self.tx.send(Op::Write(w)).await;
    }

    /// Waits until every write queued before this call is in the database.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Op::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Folds a batch's projection writes so each session and each charger's journal costs one
/// statement per batch, not one per message: the samples of all progress writes of a session
/// go into its last progress write (whose meter state is the latest: the model's state is
/// cumulative), and only the highest journal mark of a charger is kept, at the end of the
/// batch: after every projection write it covers (those of this batch and of earlier ones),
/// so a mark is never applied before the data it vouches for, even one by one.
fn coalesce(batch: &mut Vec<Write>) {
    use std::collections::HashMap;
    let mut last_progress: HashMap<i64, usize> = HashMap::new();
    let mut last_done: HashMap<String, usize> = HashMap::new();
    for (i, w) in batch.iter().enumerate() {
        match w {
            Write::SessionProgress { session_id, .. } => {
                last_progress.insert(*session_id, i);
            }
            Write::JournalDone { charger, .. } => {
                last_done.insert(charger.clone(), i);
            }
            _ => {}
        }
    }
    if last_progress.len() + last_done.len() == 0 {
        return;
    }
    let mut carried: HashMap<i64, Vec<SampleRow>> = HashMap::new();
    let mut max_done: HashMap<String, i64> = HashMap::new();
    let old = std::mem::take(batch);
    let mut marks = Vec::new();
    // First pass in order: gather the samples of each session and the highest journal ids.
    for w in &old {
        match w {
            Write::SessionProgress {
                session_id,
                samples,
                ..
            } => carried
                .entry(*session_id)
                .or_default()
                .extend(samples.iter().cloned()),
            Write::JournalDone { charger, id } => {
                let m = max_done.entry(charger.clone()).or_insert(*id);
                *m = (*m).max(*id);
            }
            _ => {}
        }
    }
    for (i, w) in old.into_iter().enumerate() {
        match w {
            Write::SessionProgress {
                charger,
                session_id,
                meter_start_wh,
                meter_last_wh,
                energy_wh,
                power_w,
                cost,
                ..
            } => {
                if last_progress.get(&session_id) == Some(&i) {
                    batch.push(Write::SessionProgress {
                        charger,
                        session_id,
                        meter_start_wh,
                        meter_last_wh,
                        energy_wh,
                        power_w,
                        cost,
                        samples: carried.remove(&session_id).unwrap_or_default(),
                    });
                }
            }
            Write::JournalDone { charger, .. } => {
                if last_done.get(&charger) == Some(&i) {
                    let id = max_done.get(&charger).copied().unwrap_or(0);
                    marks.push(Write::JournalDone { charger, id });
                }
            }
            other => batch.push(other),
        }
    }
    batch.append(&mut marks);
}

/// How often a failed batch is tried again before it is split.
const ATTEMPTS: u32 = 3;

async fn apply(db: &Db, metrics: &Metrics, batch: &[Write]) {
    let mut attempt = 1;
    let mut result = db.apply_batch(batch).await;
    while result.is_err() && attempt < ATTEMPTS {
        // A busy or briefly unreachable database: wait a little, try again.
        tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        attempt += 1;
        result = db.apply_batch(batch).await;
    }
    if let Err(e) = result {
        // One bad write must not take the batch with it: retry one by one. A charger whose
        // projection failed keeps its journal rows unprojected (replayed at the next start).
        tracing::warn!(
            "batched write of {} failed ({e}); retrying one by one",
            batch.len()
        );
        let mut failed: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for w in batch {
            if let Write::JournalDone { charger, .. } = w {
                if failed.contains(charger.as_str()) {
                    tracing::error!(
                        charger,
                        "journal rows left unprojected: a projection failed"
                    );
                    metrics.error("database", "projection");
                    continue;
                }
            }
            if let Err(e) = db.apply_batch(std::slice::from_ref(w)).await {
                tracing::error!("database write failed: {e}: {w:?}");
                metrics.error("database", "write");
                if let Some(charger) = w.projection_of() {
                    failed.insert(charger);
                }
            }
        }
    }
}

/// Meter values per INSERT statement (7 columns each: well under every database's limit on
/// bound parameters).
const SAMPLES_PER_INSERT: usize = 64;

impl Db {
    /// Applies `batch` in one transaction.
    pub(crate) async fn apply_batch(&self, batch: &[Write]) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        for w in batch {
            let q = match w {
                Write::ChargerConnected { identity, version, at } => sqlx::query(
                    "INSERT INTO chargers (identity, version, connected, first_seen, last_seen) VALUES ($1, $2, 1, $3, $3)
                     ON CONFLICT (identity) DO UPDATE SET version = $2, connected = 1, last_seen = $3",
                )
                .bind(identity.as_str())
                .bind(*version)
                .bind(super::db::ts(*at)),
                Write::ChargerBooted {
                    identity,
                    vendor,
                    model,
                    serial_number,
                    firmware_version,
                    boot_state,
                    at,
                } => sqlx::query(
                    "UPDATE chargers SET vendor = $2, model = $3, serial_number = $4, firmware_version = $5,
                     boot_state = $6, last_seen = $7 WHERE identity = $1",
                )
                .bind(identity.as_str())
                .bind(vendor.as_str())
                .bind(model.as_str())
                .bind(serial_number.as_deref())
                .bind(firmware_version.as_deref())
                .bind(*boot_state)
                .bind(super::db::ts(*at)),
                Write::ChargerSeen { identity, at } => {
                    sqlx::query("UPDATE chargers SET last_seen = $2 WHERE identity = $1")
                        .bind(identity.as_str())
                        .bind(super::db::ts(*at))
                }
                Write::ChargerDisconnected { identity, at } => sqlx::query(
                    "UPDATE chargers SET connected = 0, last_seen = $2 WHERE identity = $1",
                )
                .bind(identity.as_str())
                .bind(super::db::ts(*at)),
                Write::ConnectorStatus {
                    charger,
                    evse,
                    connector,
                    status,
                    error_code,
                    since,
                } => sqlx::query(
                    "INSERT INTO connectors (charger, evse, connector, status, error_code, since) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (charger, evse, connector) DO UPDATE SET status = $4, error_code = $5, since = $6",
                )
                .bind(charger.as_str())
                .bind(*evse)
                .bind(connector.unwrap_or(-1))
                .bind(status.as_str())
                .bind(error_code.as_deref())
                .bind(super::db::ts(*since)),
                Write::Event {
                    id,
                    at,
                    charger,
                    kind,
                    detail,
                } => sqlx::query(
                    "INSERT INTO events (id, at, charger, kind, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(*id)
                .bind(super::db::ts(*at))
                .bind(charger.as_str())
                .bind(kind.as_str())
                .bind(detail.as_str()),
                Write::SessionProgress {
                    session_id,
                    meter_start_wh,
                    meter_last_wh,
                    energy_wh,
                    power_w,
                    cost,
                    samples,
                    ..
                } => {
                    for chunk in samples.chunks(SAMPLES_PER_INSERT) {
                        let mut sql = String::from(
                            "INSERT INTO meter_values (session_id, timestamp, measurand, value, unit, phase, context) VALUES ",
                        );
                        for (i, _) in chunk.iter().enumerate() {
                            let b = i * 7;
                            if i > 0 {
                                sql.push_str(", ");
                            }
                            sql.push_str(&format!(
                                "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                                b + 1,
                                b + 2,
                                b + 3,
                                b + 4,
                                b + 5,
                                b + 6,
                                b + 7
                            ));
                        }
                        sql.push_str(" ON CONFLICT DO NOTHING");
                        let mut q = sqlx::query(&sql);
                        for s in chunk {
                            q = q
                                .bind(*session_id)
                                .bind(super::db::ts(s.timestamp))
                                .bind(s.measurand.as_str())
                                .bind(s.value.to_string())
                                .bind(s.unit.as_deref())
                                .bind(s.phase.as_deref())
                                .bind(s.context.as_deref());
                        }
                        q.execute(&mut *tx).await?;
                    }
                    sqlx::query(
                        "UPDATE sessions SET meter_start_wh = COALESCE($2, meter_start_wh), meter_last_wh = COALESCE($3, meter_last_wh),
                         energy_wh = $4, power_w = COALESCE($5, power_w), cost = COALESCE($6, cost) WHERE id = $1",
                    )
                    .bind(*session_id)
                    .bind(meter_start_wh.map(|d| d.to_string()))
                    .bind(meter_last_wh.map(|d| d.to_string()))
                    .bind(energy_wh.to_string())
                    .bind(power_w.map(|d| d.to_string()))
                    .bind(cost.map(|d| d.to_string()))
                }
                Write::SessionEnded {
                    session_id,
                    ended_at,
                    stop_reason,
                    ..
                } => sqlx::query(
                    "UPDATE sessions SET ended_at = $2, stop_reason = $3, power_w = NULL, status = 'completed' WHERE id = $1",
                )
                .bind(*session_id)
                .bind(super::db::ts(*ended_at))
                .bind(stop_reason.as_deref()),
                Write::JournalDone { charger, id } => sqlx::query(
                    "UPDATE journal SET processed = 1 WHERE charger = $1 AND id <= $2 AND processed = 0",
                )
                .bind(charger.as_str())
                .bind(*id),
            };
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(v: i64) -> SampleRow {
        SampleRow {
            timestamp: Utc::now(),
            measurand: "Energy.Active.Import.Register".into(),
            value: Decimal::from(v),
            unit: None,
            phase: None,
            context: None,
        }
    }

    fn progress(session: i64, energy: i64, samples: Vec<SampleRow>) -> Write {
        Write::SessionProgress {
            charger: "CP".into(),
            session_id: session,
            meter_start_wh: None,
            meter_last_wh: None,
            energy_wh: Decimal::from(energy),
            power_w: None,
            cost: None,
            samples,
        }
    }

    #[test]
    fn a_batch_costs_one_progress_per_session_and_one_mark_per_charger_at_the_end() {
        let mut batch = vec![
            progress(1, 10, vec![sample(1)]),
            Write::JournalDone {
                charger: "CP".into(),
                id: 7,
            },
            progress(2, 5, vec![sample(5)]),
            progress(1, 20, vec![sample(2), sample(3)]),
            Write::JournalDone {
                charger: "CP".into(),
                id: 9,
            },
            progress(1, 30, vec![sample(4)]),
        ];
        coalesce(&mut batch);
        assert_eq!(batch.len(), 3, "{batch:?}");
        match &batch[0] {
            Write::SessionProgress {
                session_id: 2,
                samples,
                ..
            } => assert_eq!(samples.len(), 1),
            other => panic!("{other:?}"),
        }
        match &batch[1] {
            Write::SessionProgress {
                session_id: 1,
                energy_wh,
                samples,
                ..
            } => {
                assert_eq!(*energy_wh, Decimal::from(30), "the latest state");
                let values: Vec<Decimal> = samples.iter().map(|s| s.value).collect();
                assert_eq!(
                    values,
                    [1, 2, 3, 4].map(Decimal::from),
                    "every sample, in order"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&batch[2], Write::JournalDone { id: 9, .. }));
    }
}
