//! SQLite's hot writes in place: the write-behind's batches run on the calling task's
//! thread, through a SQLite connection of their own. (The journal's group commits did too,
//! until a SQLite file's journal moved to segment files, see the `journal_file` module.)
//!
//! sqlx runs every SQLite statement as a command to its connection's worker thread: a
//! transaction of five statements is seven round trips (with `BEGIN` and `COMMIT`), each a
//! wake-up of the worker and one of the task, two context switches on a busy core. SQLite is a
//! library: a commit in write-ahead-log mode with `synchronous=NORMAL` writes its log frames to
//! the page cache and does not wait for the disk, so it costs less than those hops. The other
//! writes (the API's, recovery's bookkeeping) keep sqlx's writer connection; SQLite has one
//! writer at a time, so when one of them holds the write lock, [`Inline::write`] gives the
//! thread back and tries again a millisecond later, for up to [`BUSY_WAIT`], instead of
//! sleeping in SQLite's busy handler on the runtime's thread.
//!
//! PostgreSQL and `sqlite::memory:` (one connection: a second would be a database of its own)
//! keep sqlx for everything.

use std::time::Duration;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, ErrorCode, OpenFlags, Statement};

use super::db::DbError;

/// How long a write waits in all for another connection's write to end before it fails (as
/// sqlx's busy timeout for its connections).
pub(crate) const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The pause between two tries of a write that found the database locked.
const BUSY_PAUSE: Duration = Duration::from_millis(1);

/// Prepared statements kept per connection (the write-behind's statements are a few dozen
/// texts: each is parsed once).
const STATEMENTS: usize = 64;

/// The in-place writer's connection.
pub(crate) struct Inline {
    conn: tokio::sync::Mutex<Connection>,
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inline").finish_non_exhaustive()
    }
}

/// A value bound to a statement's parameter (shared by the sqlx and the in-place paths).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg<'a> {
    /// An integer.
    Int(i64),
    /// Text.
    Text(std::borrow::Cow<'a, str>),
    /// Text or NULL.
    OptText(Option<std::borrow::Cow<'a, str>>),
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Arg::Int(i) => i.to_sql(),
            Arg::Text(s) => s.as_ref().to_sql(),
            Arg::OptText(Some(s)) => s.as_ref().to_sql(),
            Arg::OptText(None) => Ok(ToSqlOutput::from(rusqlite::types::Null)),
        }
    }
}

impl Inline {
    /// Opens the database file at `path` (created and migrated already, in WAL mode) for
    /// writing; `autocheckpoint`: the log's pages after which a commit checkpoints itself.
    pub(crate) fn open(path: &str, autocheckpoint: u32) -> Result<Inline, DbError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never sleep in SQLite's busy handler (on the runtime's thread): `write` waits.
        conn.busy_timeout(Duration::ZERO)?;
        // As sqlx's connections (see `db::pool_options`).
        conn.execute_batch(&format!(
            "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-8192;
             PRAGMA wal_autocheckpoint={autocheckpoint};"
        ))?;
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        Ok(Inline {
            conn: tokio::sync::Mutex::new(conn),
        })
    }

    /// Runs `f` in one transaction (`BEGIN IMMEDIATE`, so the write lock is taken at once or
    /// not at all) and commits it; on an error nothing of it is kept. While another connection
    /// holds the write lock, waits and runs `f` again, for up to [`BUSY_WAIT`].
    pub(crate) async fn write<T>(
        &self,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        loop {
            {
                let mut conn = self.conn.lock().await;
                match transaction(&mut conn, &mut f) {
                    Err(e) if busy(&e) && tokio::time::Instant::now() < deadline => {}
                    result => return result.map_err(DbError::from),
                }
            }
            tokio::time::sleep(BUSY_PAUSE).await;
        }
    }
}

fn transaction<T>(
    conn: &mut Connection,
    f: &mut impl FnMut(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    if !conn.is_autocommit() {
        // A write that unwound (a panic) between its BEGIN and its end left its transaction
        // open: nothing of it is kept, and the connection serves the next write.
        conn.execute_batch("ROLLBACK")?;
    }
    // `BEGIN` and `COMMIT` prepared once too (rusqlite's `Transaction` parses them each time).
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let result = f(conn).and_then(|out| {
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(out)
    });
    if result.is_err() && !conn.is_autocommit() {
        // Nothing of a failed write is kept (a failed ROLLBACK leaves nothing open either).
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// Whether `e` says another connection holds the lock.
fn busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Runs the statement `sql` (parameters `$1`, `$2`, ... as written for both databases) with
/// `args`, prepared once per connection.
pub(crate) fn execute(tx: &Connection, sql: &str, args: &[Arg<'_>]) -> rusqlite::Result<()> {
    // `?N` is SQLite's parameter number N wherever it stands; `$N` is a name, numbered in
    // the order names first appear (`$2` before `$1` would take the first value).
    let mut stmt = tx.prepare_cached(&sql.replace('$', "?"))?;
    run(&mut stmt, args)
}

/// Binds `args` to `stmt`'s parameters 1, 2, ... and runs it.
pub(crate) fn run(stmt: &mut Statement<'_>, args: &[Arg<'_>]) -> rusqlite::Result<()> {
    for (i, arg) in args.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, arg)?;
    }
    stmt.raw_execute()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> (Inline, Connection) {
        let path = dir.join("t.db");
        let other = Connection::open(&path).expect("open");
        other
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (a INTEGER, b TEXT, c TEXT);")
            .expect("schema");
        let inline = Inline::open(path.to_str().expect("utf-8"), 1_000).expect("inline");
        (inline, other)
    }

    /// Column `a` of table `t`, in insertion order, read through `c`.
    fn column_a(c: &Connection) -> Vec<i64> {
        c.prepare("SELECT a FROM t ORDER BY rowid")
            .expect("select")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read")
    }

    #[tokio::test]
    async fn parameters_are_numbered_as_written_and_an_error_keeps_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let (inline, other) = open(dir.path());
        inline
            .write(|tx| {
                execute(
                    tx,
                    "INSERT INTO t (c, b, a) VALUES ($3, $2, $1)",
                    &[Arg::Int(7), Arg::Text("b".into()), Arg::OptText(None)],
                )
            })
            .await
            .expect("insert");
        let failed = inline
            .write(|tx| {
                execute(tx, "INSERT INTO t (a) VALUES ($1)", &[Arg::Int(8)])?;
                execute(tx, "INSERT INTO missing (a) VALUES ($1)", &[Arg::Int(9)])
            })
            .await;
        assert!(matches!(failed, Err(DbError::Sqlite(_))), "{failed:?}");
        let rows: Vec<(i64, String, Option<String>)> = other
            .prepare("SELECT a, b, c FROM t")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(rows, vec![(7, "b".to_owned(), None)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_waits_for_another_connections_lock_and_then_commits() {
        let dir = tempfile::tempdir().expect("dir");
        let (inline, other) = open(dir.path());
        let inline = std::sync::Arc::new(inline);
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let writer = {
            let inline = inline.clone();
            tokio::spawn(async move {
                inline
                    .write(|tx| execute(tx, "INSERT INTO t (a) VALUES ($1)", &[Arg::Int(1)]))
                    .await
            })
        };
        // The write keeps trying (on its pause's timer) while the lock is held.
        for _ in 0..5 {
            tokio::time::sleep(BUSY_PAUSE).await;
        }
        assert!(!writer.is_finished());
        other.execute_batch("COMMIT").expect("unlock");
        writer
            .await
            .expect("task")
            .expect("written once the lock is free");
        let n: i64 = other
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn a_write_that_panicked_leaves_nothing_and_the_next_one_commits() {
        let dir = tempfile::tempdir().expect("dir");
        let (inline, other) = open(dir.path());
        let inline = std::sync::Arc::new(inline);
        let panicked = {
            let inline = inline.clone();
            tokio::spawn(async move {
                inline
                    .write(|tx| {
                        execute(tx, "INSERT INTO t (a) VALUES ($1)", &[Arg::Int(1)])?;
                        panic!("a bug in the middle of a write");
                        #[allow(unreachable_code)]
                        Ok(())
                    })
                    .await
            })
        };
        assert!(panicked.await.is_err(), "the task panicked");
        inline
            .write(|tx| execute(tx, "INSERT INTO t (a) VALUES ($1)", &[Arg::Int(2)]))
            .await
            .expect("the next write");
        assert_eq!(column_a(&other), vec![2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_gives_up_after_the_busy_wait() {
        let dir = tempfile::tempdir().expect("dir");
        let (inline, other) = open(dir.path());
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let started = tokio::time::Instant::now();
        let result = inline
            .write(|tx| execute(tx, "INSERT INTO t (a) VALUES ($1)", &[Arg::Int(1)]))
            .await;
        assert!(
            matches!(result, Err(DbError::Sqlite(ref e)) if busy(e)),
            "{result:?}"
        );
        assert!(started.elapsed() >= BUSY_WAIT);
        other.execute_batch("COMMIT").expect("unlock");
    }

    /// The writer pool's transactions hold SQLite's write lock from their start: another
    /// connection cannot commit between their reads and their writes (which would fail
    /// their first write with `SQLITE_BUSY`, as it did a report part stored while the
    /// journal committed in place), and an in-place write waits for them and then commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_transaction_that_reads_then_writes_takes_turns_with_in_place_writes() {
        use sqlx::Row as _;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("c.db");
        let db = crate::backend::db::Db::open(&format!("sqlite://{}", path.display()))
            .await
            .expect("open");
        sqlx::query("CREATE TABLE t (a INTEGER)")
            .execute(db.writer())
            .await
            .expect("table");
        let other = Connection::open(&path).expect("open");
        other.busy_timeout(Duration::ZERO).expect("no wait");

        let mut tx = db.begin_write().await.expect("begin");
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM t")
            .fetch_one(&mut *tx)
            .await
            .expect("read")
            .try_get("n")
            .expect("n");
        // Before its first write, the transaction already holds the lock.
        let refused = other.execute_batch("BEGIN IMMEDIATE");
        assert!(matches!(refused, Err(ref e) if busy(e)), "{refused:?}");
        let in_place = {
            let db = db.clone();
            tokio::spawn(async move {
                db.inline()
                    .expect("a file has an in-place writer")
                    .write(|c| execute(c, "INSERT INTO t (a) VALUES ($1)", &[Arg::Int(2)]))
                    .await
            })
        };
        sqlx::query("INSERT INTO t (a) VALUES ($1)")
            .bind(n + 1)
            .execute(&mut *tx)
            .await
            .expect("the write after the read");
        tx.commit().await.expect("commit");
        in_place
            .await
            .expect("task")
            .expect("the in-place write, after the transaction");
        assert_eq!(column_a(&other), vec![1, 2]);
    }
}
