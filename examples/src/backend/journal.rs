//! Group commit for the journal: transaction messages are journaled before they are answered,
//! so each one waits for its row. One task takes every row queued at the moment, stores them
//! at once (on a SQLite file, one write to the journal's segment file, see
//! [`super::journal_file`]; on PostgreSQL, one database transaction) and answers each caller
//! with its row id: under load a commit carries many chargers' messages instead of each
//! connection contending for the database's write lock (SQLite has one writer; its busy
//! handler sleeps) and committing alone. Each committed row is registered with the low-water
//! mark ([`super::watermark`]) before its caller hears of it.

use chrono::Utc;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::db::{ts, Backend, Db, DbError};
use super::metrics::Metrics;
use super::watermark::Pending;

/// One row to journal.
pub(crate) struct Entry {
    pub(crate) charger: String,
    pub(crate) version: &'static str,
    pub(crate) action: &'static str,
    pub(crate) request: String,
    pub(crate) response: String,
}

type Job = (Entry, oneshot::Sender<Result<i64, String>>);

/// Rows per commit at most.
const GROUP: usize = 512;

/// Rows waiting for the journal task at most (beyond, callers wait: back pressure).
const QUEUE: usize = 4 * GROUP;

/// How often the journal task lets other tasks run before a commit, at most, while each
/// round brings more rows.
const YIELDS: usize = 4;

/// A group smaller than this waits [`LINGER`] for more rows while the journal is busy.
const LINGER_BELOW: usize = 32;

/// How long a small group waits for more rows while the journal is busy (PostgreSQL's
/// `commit_delay` with `commit_siblings`): at a steady ten thousand rows a second a commit
/// then carries about ten rows instead of two or three, and each commit costs the database's
/// thread a round trip, its locks and the log frames of every page it touched. One timer
/// tick: the answers of those messages wait up to a millisecond more.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// Rows per second from which the journal counts as busy (and small groups linger). Below,
/// as in an open network of ten thousand chargers sending meter values every ten seconds,
/// every group commits at once: its rows come too far apart for a wait to gather more.
const BUSY_ROWS_PER_S: u64 = 4_000;

/// The journal's recent rate of rows, over windows of [`RATE_WINDOW`].
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

/// Rows committed per window, to tell a busy journal from a quiet one.
#[derive(Debug)]
struct Rate {
    since: Instant,
    rows: u64,
    /// Rows per second in the last full window.
    per_s: u64,
}

impl Rate {
    fn new(now: Instant) -> Rate {
        Rate {
            since: now,
            rows: 0,
            per_s: 0,
        }
    }

    /// `rows` were committed at `now`.
    fn add(&mut self, now: Instant, rows: usize) {
        self.rows = self.rows.saturating_add(rows as u64);
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= RATE_WINDOW {
            let micros = u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            self.per_s = self.rows.saturating_mul(1_000_000) / micros;
            self.rows = 0;
            self.since = now;
        }
    }

    /// Whether a group of `rows` waits for more at `now`: it is small, and rows came at
    /// [`BUSY_ROWS_PER_S`] or more in the last window, which ended at most a window ago.
    fn linger(&self, now: Instant, rows: usize) -> bool {
        rows < LINGER_BELOW
            && self.per_s >= BUSY_ROWS_PER_S
            && now.saturating_duration_since(self.since) < 2 * RATE_WINDOW
    }
}

/// Moves the rows queued now into `group`, up to [`GROUP`].
fn drain(rx: &mut mpsc::Receiver<Job>, group: &mut Vec<Job>) {
    while group.len() < GROUP {
        match rx.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
}

/// The handle of the journal task. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    tx: mpsc::Sender<Job>,
}

impl Journal {
    /// Starts the journal task on the current runtime.
    pub(crate) fn start(db: Db, pending: std::sync::Arc<Pending>, metrics: Metrics) -> Journal {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            let mut group: Vec<Job> = Vec::with_capacity(GROUP);
            let mut rate = Rate::new(Instant::now());
            while let Some(job) = rx.recv().await {
                group.push(job);
                drain(&mut rx, &mut group);
                // Let the connections that are ready to run queue their rows before this
                // commit: a charger's send wakes this task next (tokio runs the task a send
                // wakes before the others), so without this, a commit carries the few rows
                // queued while the previous one ran. Each commit costs a round trip to the
                // database's thread, the write-ahead log frames of every page it touched and
                // the wake-ups of both; under load, one commit of many rows instead of many of
                // a few. When nothing else is ready, the yield returns at once.
                for _ in 0..YIELDS {
                    if group.len() >= GROUP {
                        break;
                    }
                    let before = group.len();
                    tokio::task::yield_now().await;
                    drain(&mut rx, &mut group);
                    if group.len() == before {
                        break;
                    }
                }
                if rate.linger(Instant::now(), group.len()) {
                    let deadline = Instant::now() + LINGER;
                    while group.len() < GROUP {
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(job)) => {
                                group.push(job);
                                drain(&mut rx, &mut group);
                            }
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                rate.add(Instant::now(), group.len());
                metrics.journal_group(group.len());
                let entries: Vec<&Entry> = group.iter().map(|(e, _)| e).collect();
                let node = pending.node();
                match insert_all(&db, node.as_deref(), &entries).await {
                    Ok(ids) => {
                        pending.register(
                            group
                                .iter()
                                .zip(&ids)
                                .map(|((e, _), id)| (e.charger.as_str(), *id)),
                        );
                        for ((_, reply), id) in group.drain(..).zip(ids) {
                            let _ = reply.send(Ok(id));
                        }
                    }
                    Err(e) => {
                        let why = e.to_string();
                        for (_, reply) in group.drain(..) {
                            let _ = reply.send(Err(why.clone()));
                        }
                    }
                }
            }
        });
        Journal { tx }
    }

    /// Journals one row; returns its id once it is committed.
    pub(crate) async fn insert(&self, entry: Entry) -> Result<i64, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((entry, reply))
            .await
            .map_err(|_| "the journal task stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the journal task stopped".to_owned())?
    }
}

/// Rows per INSERT statement (7 columns each: well under every database's limit on bound
/// parameters). Each statement is one round trip to the database's connection.
const ROWS_PER_INSERT: usize = 128;

impl Db {
    /// Journals a transaction message and the answer about to be sent, alone; returns the
    /// row id. (The backend journals through its group-commit task, which also registers the
    /// row with the low-water mark; this is the same write without it: what a process that
    /// died before projecting the row leaves, replayed at the next start.)
    pub async fn journal_insert(
        &self,
        charger: &str,
        version: &'static str,
        action: &'static str,
        request: &str,
        response: &str,
    ) -> Result<i64, DbError> {
        self.journal_insert_by(None, charger, version, action, request, response)
            .await
    }

    /// [`Db::journal_insert`] as cluster node `node` writes it (what that node leaves when
    /// it dies before projecting the row).
    pub async fn journal_insert_by(
        &self,
        node: Option<&str>,
        charger: &str,
        version: &'static str,
        action: &'static str,
        request: &str,
        response: &str,
    ) -> Result<i64, DbError> {
        let entry = Entry {
            charger: charger.to_owned(),
            version,
            action,
            request: request.to_owned(),
            response: response.to_owned(),
        };
        let ids = insert_all(self, node, &[&entry]).await?;
        ids.first().copied().ok_or(DbError::Corrupt {
            column: "journal.id",
            value: "no id returned".to_owned(),
        })
    }
}

/// Inserts `group` atomically; returns the row ids, in order. On a SQLite file, appended to
/// the journal's segment file (see the `journal_file` module). Otherwise a group of up to
/// [`ROWS_PER_INSERT`] rows is one statement, committed alone (one round trip to the
/// database); a larger one is a transaction of several. `node`: the cluster node writing them (`None` on a single node).
async fn insert_all(db: &Db, node: Option<&str>, group: &[&Entry]) -> Result<Vec<i64>, DbError> {
    let at = ts(Utc::now());
    if let Some(file) = db.journal_file() {
        // A SQLite file: one write of the group to the journal's segment file.
        return file.append(&at, node, group);
    }
    if group.len() <= ROWS_PER_INSERT {
        let mut conn = db.writer().acquire().await?;
        return insert_chunk(db, &mut conn, node, group, &at).await;
    }
    let mut tx = db.begin_write().await?;
    let mut ids = Vec::with_capacity(group.len());
    for chunk in group.chunks(ROWS_PER_INSERT) {
        ids.extend(insert_chunk(db, &mut tx, node, chunk, &at).await?);
    }
    tx.commit().await?;
    Ok(ids)
}

/// One multi-row INSERT of `chunk`; returns the row ids, in order.
///
/// On SQLite the ids come from the connection's last row id (`last_insert_rowid()`), asked
/// in the same call as the INSERT (a second statement of the one query: one round trip to
/// sqlx's SQLite thread): the journal's `id` is its rowid without `AUTOINCREMENT` and its rows
/// are never deleted, so each row of one statement gets one more than the largest before it
/// (consecutive ids ending at the last), and a statement holds SQLite's write lock from start
/// to end. One small result row per statement instead of one per journaled message (sqlx's
/// `Any` driver builds each). PostgreSQL's sequence promises no such thing: its ids come back
/// with `RETURNING`.
async fn insert_chunk(
    db: &Db,
    conn: &mut sqlx::AnyConnection,
    node: Option<&str>,
    chunk: &[&Entry],
    at: &str,
) -> Result<Vec<i64>, DbError> {
    let sqlite = db.backend() == Backend::Sqlite;
    let sql = format!(
        "INSERT INTO journal (charger, version, action, request, response, at, node) VALUES {}{}",
        db.values(chunk.len(), 7),
        if sqlite {
            "; SELECT last_insert_rowid(), changes()"
        } else {
            " RETURNING id"
        }
    );
    let mut q = sqlx::query(&sql);
    for e in chunk {
        q = q
            .bind(e.charger.as_str())
            .bind(e.version)
            .bind(e.action)
            .bind(e.request.as_str())
            .bind(e.response.as_str())
            .bind(at)
            .bind(node);
    }
    let corrupt = |value: String| DbError::Corrupt {
        column: "journal.id",
        value,
    };
    if sqlite {
        // The INSERT yields no row, the SELECT one (`fetch_one` would stop at the first
        // statement).
        let rows = q.fetch_all(&mut *conn).await?;
        let row = rows
            .first()
            .ok_or_else(|| corrupt("no last row id".to_owned()))?;
        let last: i64 = row.try_get(0)?;
        let written: i64 = row.try_get(1)?;
        let n = i64::try_from(chunk.len()).map_err(|_| corrupt(format!("{} rows", chunk.len())))?;
        if written != n || last < n {
            return Err(corrupt(format!(
                "{written} rows written for {n} (last id {last})"
            )));
        }
        return Ok((last - n + 1..=last).collect());
    }
    let rows = q.fetch_all(&mut *conn).await?;
    // One statement assigns increasing ids in the order of its VALUES; RETURNING's row order
    // is not promised, so the ids are matched to the rows sorted.
    let mut ids = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    if ids.len() != chunk.len() {
        return Err(corrupt(format!(
            "{} ids for {} rows",
            ids.len(),
            chunk.len()
        )));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Entry {
        Entry {
            charger: format!("CP-{}", n % 7),
            version: "1.6",
            action: "MeterValues",
            request: format!("{{\"n\":{n}}}"),
            response: "{}".to_owned(),
        }
    }

    /// A small group lingers only while the journal is busy: not at the start, not below
    /// the busy rate, not when the last busy window is long gone, never when large.
    #[test]
    fn small_groups_linger_only_while_the_journal_is_busy() {
        let t0 = Instant::now();
        let mut rate = Rate::new(t0);
        assert!(!rate.linger(t0, 1), "a new journal is quiet");
        // 300 rows in 100 ms: 3,000 a second, below the busy rate.
        for i in 1..=10 {
            rate.add(t0 + RATE_WINDOW * i / 10, 30);
        }
        assert_eq!(rate.per_s, 3_000);
        assert!(!rate.linger(t0 + RATE_WINDOW, 1));
        // 1,000 rows in the next 100 ms: 10,000 a second.
        for i in 11..=20 {
            rate.add(t0 + RATE_WINDOW * i / 10, 100);
        }
        assert_eq!(rate.per_s, 10_000);
        let now = t0 + RATE_WINDOW * 2;
        assert!(rate.linger(now, 1));
        assert!(rate.linger(now, LINGER_BELOW - 1));
        assert!(
            !rate.linger(now, LINGER_BELOW),
            "a large group commits at once"
        );
        assert!(
            !rate.linger(now + RATE_WINDOW * 2, 1),
            "a row after a quiet spell commits at once"
        );
        // Two billion rows at once: no overflow.
        rate.add(now + RATE_WINDOW, usize::MAX);
        assert!(rate.per_s > 0);
    }

    /// An older database's journal rows stay in its table and are read with the segment
    /// files' (numbered above them): replayed in order, read as a session's, set aside in
    /// their own place, counted and listed together.
    #[tokio::test]
    async fn the_journal_table_of_an_older_database_is_read_with_the_segment_files() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let db = Db::open(&url).await.expect("db");
        // What an older version left: rows in the table (one of them a session's).
        let insert = "INSERT INTO journal (id, charger, version, action, request, response, at)
                      VALUES ($1, 'CP-OLD', '1.6', 'MeterValues', $2, '{}', '2030-01-01T00:00:00Z')";
        for (id, text) in [(41_i64, "{\"old\":1}"), (42, "{\"old\":2}")] {
            sqlx::query(insert)
                .bind(id)
                .bind(text)
                .execute(db.writer())
                .await
                .expect("old row");
        }
        drop(db);
        let db = Db::open(&url).await.expect("reopen");
        let new = db
            .journal_insert("CP-OLD", "1.6", "MeterValues", "{\"new\":1}", "{}")
            .await
            .expect("new row");
        let other = db
            .journal_insert("CP-A", "1.6", "MeterValues", "{\"new\":2}", "{}")
            .await
            .expect("new row");
        assert!(new > 42 && other > new);
        let file = db.journal_file().expect("a file's journal");
        assert!(file.holds(new) && !file.holds(42));

        let rows = db.journal_unprocessed().await.expect("rows");
        let order: Vec<(&str, i64)> = rows.iter().map(|r| (r.charger.as_str(), r.id)).collect();
        assert_eq!(
            order,
            [
                ("CP-A", other),
                ("CP-OLD", 41),
                ("CP-OLD", 42),
                ("CP-OLD", new)
            ]
        );
        assert_eq!(rows[3].request, "{\"new\":1}");

        for id in [42, new] {
            sqlx::query("INSERT INTO journal_sessions (session_id, id) VALUES (7, $1)")
                .bind(id)
                .execute(db.writer())
                .await
                .expect("link");
        }
        let session = db.session_journal(7).await.expect("session");
        let read: Vec<(i64, &str, Option<i64>)> = session
            .iter()
            .map(|r| (r.id, r.request.as_str(), r.session_id))
            .collect();
        assert_eq!(
            read,
            [(42, "{\"old\":2}", Some(7)), (new, "{\"new\":1}", Some(7))]
        );

        // Set aside: the table's row in place, the file's copied; both leave the session,
        // the replay and are listed, oldest first.
        for row in rows.iter().filter(|r| r.id == 42 || r.id == new) {
            db.journal_set_aside(row, "broken").await.expect("aside");
        }
        assert_eq!(db.journal_set_aside_count().await.expect("count"), 2);
        let aside = db.journal_set_aside_rows(10).await.expect("list");
        assert_eq!(aside.iter().map(|r| r.id).collect::<Vec<_>>(), [42, new]);
        assert!(aside.iter().all(|r| r.error.as_deref() == Some("broken")));
        assert_eq!(aside[1].request, "{\"new\":1}");
        assert!(db.session_journal(7).await.expect("session").is_empty());
        let left: Vec<i64> = db
            .journal_unprocessed()
            .await
            .expect("rows")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, [other, 41]);
    }

    /// The ids handed back are those of the rows written, in order: a group larger than one
    /// statement (a transaction of three), then one alone, on a database that already holds
    /// rows.
    #[tokio::test]
    async fn ids_are_those_of_the_rows_written() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("j.db").display());
        let db = Db::open(&url).await.expect("db");
        let first = db
            .journal_insert("CP-X", "1.6", "Heartbeat", "{\"n\":-1}", "{}")
            .await
            .expect("insert");
        let entries: Vec<Entry> = (0..300).map(entry).collect();
        let group: Vec<&Entry> = entries.iter().collect();
        let ids = insert_all(&db, None, &group).await.expect("group");
        let alone = entry(300);
        let last = insert_all(&db, None, &[&alone]).await.expect("alone");
        assert_eq!(ids.len(), 300);
        assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > first);
        let rows = db.journal_unprocessed().await.expect("rows");
        let by_id: std::collections::HashMap<i64, &str> =
            rows.iter().map(|r| (r.id, r.request.as_str())).collect();
        assert_eq!(by_id.get(&first).copied(), Some("{\"n\":-1}"));
        for (id, e) in ids.iter().zip(&entries) {
            assert_eq!(by_id.get(id).copied(), Some(e.request.as_str()), "row {id}");
        }
        assert_eq!(by_id.get(&last[0]).copied(), Some("{\"n\":300}"));
        assert_eq!(rows.len(), 302);
    }
}
