//! Write-behind for the high-volume, order-only writes (charger and connector state, the
//! event log, and the projection of journaled transaction messages into sessions and meter
//! values): one task applies them in batches, each batch in one database transaction, so
//! thousands of chargers cost a few commits instead of tens of thousands, and no charger's
//! event handling waits on the database.
//!
//! Projections may lag because the journal row of every transaction message is written
//! before the charger gets its answer: a charger's journal is marked projected up to a row
//! ([`Write::JournalDone`], queued after the projection) only in a batch after, or with,
//! the projection's writes, and never again once a projection of that charger failed (until
//! the next start, which replays from the mark: the projection is idempotent).

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, Notify};

use rust_decimal::Decimal;

use std::sync::Arc;

use super::db::{Db, DbError};
use super::inline::{self, Arg};
use super::metrics::Metrics;
use super::watermark::Pending;

/// One write.
#[derive(Debug)]
pub(crate) enum Write {
    ChargerConnected {
        identity: String,
        /// The connection now holding it (`<node>|<connection>`).
        owner: String,
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
    /// A heartbeat's `last_seen` (folded: the latest per charger, never moved back).
    ChargerSeen { identity: String, at: DateTime<Utc> },
    ChargerDisconnected {
        identity: String,
        /// The connection that ended: the row is marked offline only if it still holds it.
        owner: String,
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
    /// A session's meter state and cost (its samples are in its journal rows).
    SessionProgress(Progress),
    /// These journal rows of the charger belong to the session (written to
    /// `journal_sessions`; gathered per session like progress, so a second of a session's
    /// meter values costs its page of that table once).
    JournalSession {
        charger: String,
        session_id: i64,
        ids: Vec<i64>,
    },
    /// A meter update's projection in one write (what running transactions send, several a
    /// second per charger): its session's progress (as [`Write::SessionProgress`]), the
    /// journal rows it settles linked to the session (as [`Write::JournalSession`]) and its
    /// charger's mark (as [`Write::JournalDone`]), folded by the gatherer with one lookup by
    /// session instead of three writes, each with its copy of the charger's identity.
    Projected {
        progress: Progress,
        ids: Vec<i64>,
        /// The charger's mark (`None`: the charger's projection stalled).
        upto: Option<i64>,
    },
    /// A session completed.
    SessionEnded {
        charger: String,
        session_id: i64,
        ended_at: DateTime<Utc>,
        stop_reason: Option<String>,
    },
    /// The charger's journal rows up to `upto` are projected.
    JournalDone { charger: String, upto: i64 },
    /// Every journal row up to `upto` is projected (the low-water mark, see `watermark`;
    /// added by the writer itself, never lowered in the database).
    JournalMark {
        upto: i64,
        /// A cluster node's own mark (`journal_node_marks`); `None`: the single node's.
        node: Option<String>,
    },
}

/// A session's meter state and cost, as of its latest message.
#[derive(Debug)]
pub(crate) struct Progress {
    pub(crate) charger: String,
    pub(crate) session_id: i64,
    pub(crate) meter_start_wh: Option<Decimal>,
    pub(crate) meter_last_wh: Option<Decimal>,
    pub(crate) energy_wh: Decimal,
    pub(crate) power_w: Option<Decimal>,
    pub(crate) cost: Option<Decimal>,
}

impl Write {
    /// Whether the write is prompt: anything but a progress write, a link, a mark, a meter
    /// update's projection or a heartbeat's `last_seen` (those fold, and wait for
    /// [`LAZY_LINGER`]).
    fn prompt(&self) -> bool {
        !matches!(
            self,
            Write::ChargerSeen { .. }
                | Write::SessionProgress(_)
                | Write::Projected { .. }
                | Write::JournalDone { .. }
                | Write::JournalSession { .. }
        )
    }

    /// The charger of a projection write (for [`Write::JournalDone`] to follow its fate).
    fn projection_of(&self) -> Option<&str> {
        match self {
            Write::SessionProgress(Progress { charger, .. })
            | Write::Projected {
                progress: Progress { charger, .. },
                ..
            }
            | Write::SessionEnded { charger, .. }
            | Write::JournalSession { charger, .. } => Some(charger),
            _ => None,
        }
    }
}

enum Op {
    Write(Write),
    /// The writes of one message's projection, in order (a session's progress, its journal
    /// rows' link and the charger's mark: one send instead of three).
    Writes(Vec<Write>),
    Flush(oneshot::Sender<()>),
}

/// What the writer task stores batches with, and what it remembers between them.
struct Store {
    db: Db,
    metrics: Metrics,
    pending: Arc<Pending>,
    /// Chargers a projection write failed for: their journal marks stay where they are
    /// until the next start replays from there.
    stalled: std::collections::HashSet<String>,
    /// The low-water mark last stored (0: not yet; the stored one is never lowered).
    stored_mark: i64,
}

impl Store {
    /// Takes the batch `gather` holds now ([`Gather::take`]) and writes it in short
    /// transactions (see [`split`]) with the low-water mark, and settles the marks it
    /// stored. `release`: someone waits (a read, a shutdown), so every held link and mark
    /// goes with it, and the mark this batch settled is stored too: a clean stop leaves
    /// nothing for recovery to read.
    async fn commit(&mut self, gather: &mut Gather, release: bool) {
        let mut batch = gather.take(tokio::time::Instant::now(), release);
        let mark = self.pending.mark();
        if mark > self.stored_mark && !batch.is_empty() {
            batch.push(Write::JournalMark {
                upto: mark,
                node: self.pending.node(),
            });
        }
        for mut part in split(batch) {
            let stored = apply(&self.db, &self.metrics, &mut part, &mut self.stalled).await;
            for (charger, upto) in &stored.marks {
                self.pending.settle(charger, *upto);
            }
            if let Some(m) = stored.low_water {
                self.stored_mark = self.stored_mark.max(m);
            }
            // A SQLite file's parts are written in place, on this thread: the connections
            // that are ready run between two of them.
            tokio::task::yield_now().await;
        }
        let mark = self.pending.mark();
        if release && mark > self.stored_mark {
            let mut alone = vec![Write::JournalMark {
                upto: mark,
                node: self.pending.node(),
            }];
            if apply(&self.db, &self.metrics, &mut alone, &mut self.stalled)
                .await
                .low_water
                .is_some()
            {
                self.stored_mark = mark;
            }
        }
    }
}

/// The handle of the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Op>,
    /// Wakes the writer while it gathers (see [`Writer::nudge`]).
    wake: Arc<Notify>,
}

/// Prompt writes per batch at most (a charger's state, an event, a session's start or end:
/// each is a statement of its own).
const BATCH: usize = 2000;

/// Sessions' progress and chargers' journal marks per batch at most. They fold (one per
/// session, one per charger, however many meter values), so they are bounded by the
/// chargers connected; they do not count as [`BATCH`] writes: at 1,000 chargers in
/// transactions, 1,000 sessions' progress and 1,000 marks made a batch full every few
/// hundredths of a second, and each batch wrote a page per session.
const FOLDED: usize = 65_536;

/// Journal rows linked to their sessions per batch at most (8 bytes each while gathered).
/// A batch writes a page of `journal_sessions` per session however many of its rows it
/// links, so links are gathered for the whole [`LAZY_LINGER`] and do not count as
/// [`BATCH`] writes either: counted one each, 1,000 chargers' meter values filled a batch
/// ten times a second, and their links were most of the in-transaction path's database work.
const LINKS: usize = 262_144;

/// How long the writer gathers writes before it commits them, once one arrives that is not
/// a projection's progress, link or mark, or a heartbeat's `last_seen` (a charger's state,
/// an event, a session's end). The writes are behind the chargers' answers, so this costs
/// no charger any time; it turns a steady trickle into one commit per 20 ms instead of one
/// per message.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// How long the writer gathers when all it has are sessions' progress, journal links and
/// marks (what meter values in transactions produce) and heartbeats' `last_seen`. Each
/// commit writes every database page it touched, once: a session's row updated by ten meter
/// values in a second costs one page, not ten, so an open network's meter values cost a
/// fraction of a page of write-ahead log each instead of two. The journal holds the messages
/// themselves before they are answered, so nothing waits on this, and an API read flushes
/// first ([`Writer::flush`]).
const LAZY_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// How long journal rows' links to their sessions (`journal_sessions`) and the chargers'
/// marks are held from batch to batch before they are written. That table is ordered by
/// session, so a batch writes a page of it per session with new rows: in a running network
/// every open session's once its links fill a page of their own (after about half a
/// minute at ten messages a second), measured as a quarter more pages written a second into
/// a run than in its first seconds. Held for ten seconds, a session's page is written once
/// per ten seconds' rows. Nothing waits on them: an API read flushes first, and a charger's
/// mark is written with its links, so recovery replays what was not marked (at most these
/// ten seconds, projected again idempotently).
const LINK_LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// Writes queued at most (four batches): beyond, [`Writer::write`] waits, which holds the
/// charger's event handling and so, through the connection's bounded backlog, reading from
/// the charger: back pressure instead of unbounded memory or dropped writes.
pub(crate) const QUEUE: usize = 4 * BATCH;

/// Queued entries from which a lazy write wakes the gathering writer to take them (see
/// [`Writer::nudge`]): a quarter of [`QUEUE`], so a fast stream of meter updates is taken
/// a few times a second, long before the queue is full and holds anyone back.
const TAKE_AT: usize = QUEUE / 4;

impl Writer {
    /// Starts the writer task on the current runtime. It settles journal rows in `pending`
    /// as their marks are stored, and stores the low-water mark with its batches.
    ///
    /// While it gathers, the task does not wait on the queue itself (a wait there is woken by
    /// every write): it waits for its deadline or a [`Writer::nudge`], then takes every write
    /// queued. A meter update's projection, queued by its connection's task, then costs no
    /// wake-up and no turn of this task of its own (one per message before: the runtime ran
    /// the woken writer right after each connection's turn).
    pub(crate) fn start(db: Db, metrics: Metrics, pending: Arc<Pending>) -> Writer {
        let (tx, mut rx) = mpsc::channel::<Op>(QUEUE);
        let wake = Arc::new(Notify::new());
        let woken = wake.clone();
        tokio::spawn(async move {
            let mut gather = Gather::default();
            let mut waiting = Vec::new();
            let mut store = Store {
                db,
                metrics,
                pending,
                stalled: std::collections::HashSet::new(),
                stored_mark: 0,
            };
            loop {
                // Idle, the first write wakes the task (it waits on the queue), or the time
                // to release what is held (links and marks, see `LINK_LINGER`).
                let op = match gather.held_until() {
                    None => rx.recv().await,
                    Some(until) => match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(op) => op,
                        Err(_) => {
                            store.commit(&mut gather, false).await;
                            continue;
                        }
                    },
                };
                let Some(op) = op else {
                    // Closed: what is held is written before the task ends.
                    store.commit(&mut gather, true).await;
                    break;
                };
                // Gather for up to LINGER after the first prompt write, LAZY_LINGER when
                // there is none (or until the batch is full or someone waits for a flush).
                let started = tokio::time::Instant::now();
                let lazy_until = started + LAZY_LINGER;
                let mut prompted = false;
                let deadline = tokio::time::sleep_until(lazy_until);
                tokio::pin!(deadline);
                let mut next = Some(op);
                loop {
                    // Every write queued now, until the batch is full or someone waits.
                    while let Some(op) = next.take() {
                        let prompt = match op {
                            Op::Write(w) => gather.push(w),
                            // Every write is gathered (`|`, not `||`).
                            Op::Writes(ws) => ws.into_iter().fold(false, |p, w| gather.push(w) | p),
                            Op::Flush(done) => {
                                waiting.push(done);
                                false
                            }
                        };
                        if prompt && !prompted {
                            prompted = true;
                            let until = tokio::time::Instant::now() + LINGER;
                            deadline.as_mut().reset(until.min(lazy_until));
                        }
                        if gather.full() || !waiting.is_empty() {
                            break;
                        }
                        next = rx.try_recv().ok();
                    }
                    if gather.full() || !waiting.is_empty() || rx.is_closed() && rx.is_empty() {
                        break;
                    }
                    // One timer for the whole gathering (not one per write waited for).
                    tokio::select! {
                        biased;
                        () = woken.notified() => {}
                        () = &mut deadline => break,
                    }
                    next = rx.try_recv().ok();
                }
                store.commit(&mut gather, !waiting.is_empty()).await;
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
            }
        });
        Writer { tx, wake }
    }

    /// Queues a write, waiting while [`QUEUE`] writes are queued.
    pub(crate) async fn write(&self, w: Write) {
        let prompt = w.prompt();
        if self.tx.send(Op::Write(w)).await.is_ok() {
            self.nudge(prompt);
        }
    }

    /// Queues the writes of one message's projection, in order, as one entry of the queue
    /// (each entry holds at most a few: the queue's bound stays a bound on memory).
    pub(crate) async fn write_all(&self, ws: Vec<Write>) {
        if !ws.is_empty() {
            let prompt = ws.iter().any(Write::prompt);
            if self.tx.send(Op::Writes(ws)).await.is_ok() {
                self.nudge(prompt);
            }
        }
    }

    /// Waits until every write queued before this call is in the database.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Op::Flush(done)).await.is_ok() {
            self.nudge(true);
            let _ = wait.await;
        }
    }

    /// Wakes the gathering writer for what was just queued if it is `prompt` (it shortens
    /// the gathering or ends it: a prompt write, a flush), or once [`TAKE_AT`] entries are
    /// queued; a lazy write otherwise waits in the queue for the writer's deadline. (An idle
    /// writer waits on the queue and is woken by any write.)
    fn nudge(&self, prompt: bool) {
        if prompt || QUEUE.saturating_sub(self.tx.capacity()) >= TAKE_AT {
            self.wake.notify_one();
        }
    }
}

/// A batch being gathered, folded as it grows so each session and each charger's journal
/// costs one statement per batch, not one per message: a session's progress replaces the
/// one before it in place (the model's state is cumulative: the last is the latest), and a
/// charger's journal marks become its highest, applied at the end of the batch: after every
/// projection write it covers (those of this batch and of earlier ones), so a mark is never
/// applied before the data it vouches for, even one by one. A charger's heartbeats fold the
/// same way into its latest `last_seen`: at one a minute per charger, they would otherwise
/// be a prompt write every few milliseconds of a large network, and each would cut the
/// gathering of every session's progress short (to [`LINGER`] instead of [`LAZY_LINGER`]).
#[derive(Default)]
struct Gather {
    writes: Vec<Write>,
    /// What the batch holds per session: its progress's place in `writes`, its journal rows
    /// to link and its charger's mark.
    sessions: std::collections::HashMap<i64, Session>,
    /// Sessions with a progress write in `writes`.
    progressed: usize,
    /// Rows linked in `sessions` and `held`.
    linked: usize,
    /// Chargers' marks that came without a session.
    marks: std::collections::HashMap<String, i64>,
    /// Per charger, the links and mark of taken batches, held for [`LINK_LINGER`].
    held: std::collections::HashMap<String, Held>,
    /// Chargers' latest heartbeat times (`last_seen`), written after the ordered writes.
    seen: std::collections::HashMap<String, DateTime<Utc>>,
}

/// A charger's journal links and mark held from batch to batch (see [`LINK_LINGER`]).
struct Held {
    /// When the first of them was held.
    since: tokio::time::Instant,
    /// Its sessions' journal rows (a charger has one session at a time, or a few).
    links: Vec<(i64, Vec<i64>)>,
    /// Its mark.
    upto: Option<i64>,
}

impl Held {
    /// When it is due to be written.
    fn until(&self) -> tokio::time::Instant {
        self.since + LINK_LINGER
    }

    /// `charger`'s entry of `held`, held from `now` if it is new.
    fn of(
        held: &mut std::collections::HashMap<String, Held>,
        charger: String,
        now: tokio::time::Instant,
    ) -> &mut Held {
        held.entry(charger).or_insert_with(|| Held {
            since: now,
            links: Vec::new(),
            upto: None,
        })
    }
}

/// A session's part of a batch being gathered.
struct Session {
    /// Its progress write's index in [`Gather::writes`].
    progress: Option<usize>,
    /// Its charger (of the first write).
    charger: String,
    /// Journal rows to link to it.
    ids: Vec<i64>,
    /// Its charger's mark, from the session's projections.
    upto: Option<i64>,
}

impl Session {
    /// A session of `charger` with nothing gathered yet.
    fn new(charger: String) -> Session {
        Session {
            progress: None,
            charger,
            ids: Vec::new(),
            upto: None,
        }
    }
}

impl Gather {
    /// Adds a write (the lazy ones fold); whether it is prompt ([`Write::prompt`]).
    fn push(&mut self, w: Write) -> bool {
        let prompt = w.prompt();
        match w {
            Write::ChargerSeen { identity, at } => raise(&mut self.seen, identity, at),
            Write::SessionProgress(p) => {
                self.progress(p);
            }
            Write::Projected {
                progress,
                ids,
                upto,
            } => {
                self.linked = self.linked.saturating_add(ids.len());
                let session = self.progress(progress);
                session.ids.extend(ids);
                session.upto = session.upto.max(upto);
            }
            Write::JournalDone { charger, upto } => raise(&mut self.marks, charger, upto),
            Write::JournalSession {
                charger,
                session_id,
                ids,
            } => {
                self.linked = self.linked.saturating_add(ids.len());
                self.sessions
                    .entry(session_id)
                    .or_insert_with(|| Session::new(charger))
                    .ids
                    .extend(ids);
            }
            w => self.writes.push(w),
        }
        prompt
    }

    /// Folds a session's progress in (the latest replaces the one before, where it stands);
    /// returns the session's part of the batch.
    fn progress(&mut self, p: Progress) -> &mut Session {
        use std::collections::hash_map::Entry;
        let index = self.writes.len();
        let session = match self.sessions.entry(p.session_id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Session::new(p.charger.clone())),
        };
        match session.progress.and_then(|i| self.writes.get_mut(i)) {
            Some(slot) => *slot = Write::SessionProgress(p),
            None => {
                session.progress = Some(index);
                self.progressed += 1;
                self.writes.push(Write::SessionProgress(p));
            }
        }
        session
    }

    /// Writes gathered, after folding (a linked row counts as one: each is a row written;
    /// a session's mark as one).
    #[cfg(test)]
    fn len(&self) -> usize {
        let marked = self.sessions.values().filter(|s| s.upto.is_some()).count();
        let held = self.held.values().filter(|h| h.upto.is_some()).count();
        self.writes.len() + self.seen.len() + self.marks.len() + marked + held + self.linked
    }

    /// When the first of what is held is due to be written (`None`: nothing is held).
    fn held_until(&self) -> Option<tokio::time::Instant> {
        self.held.values().map(Held::until).min()
    }

    /// Whether the batch is full: [`BATCH`] prompt writes, [`FOLDED`] sessions, chargers'
    /// marks and heartbeats, or [`LINKS`] linked rows.
    fn full(&self) -> bool {
        self.writes.len().saturating_sub(self.progressed) >= BATCH
            || self.folded() >= FOLDED
            || self.linked >= LINKS
    }

    /// Sessions, chargers' marks and heartbeats gathered or held (each is a row written).
    fn folded(&self) -> usize {
        self.sessions
            .len()
            .saturating_add(self.held.len())
            .saturating_add(self.marks.len())
            .saturating_add(self.seen.len())
    }

    /// The batch taken at `now`: the writes in order, the heartbeats, then the links (by
    /// session) and the marks (sorted by charger) of the chargers whose are released. A
    /// charger's links and mark are held from batch to batch until [`LINK_LINGER`] after the
    /// first of them was held (chargers' phases differ, so a network's are released a few
    /// at a time, not all at once), every charger's at once when they reach [`LINKS`] rows
    /// or [`FOLDED`] entries, or when `release` (someone waits for them: a read, a
    /// shutdown). A charger's mark is never written before the links it vouches for: they
    /// are released together.
    fn take(&mut self, now: tokio::time::Instant, release: bool) -> Vec<Write> {
        let mut batch = std::mem::take(&mut self.writes);
        self.progressed = 0;
        for (session_id, s) in self.sessions.drain() {
            // A session whose part is its progress alone (a start's or an end's) has nothing
            // to hold: an empty entry would wake the idle writer for nothing and count
            // toward the batch's bound.
            if s.upto.is_none() && s.ids.is_empty() {
                continue;
            }
            let h = Held::of(&mut self.held, s.charger, now);
            h.upto = h.upto.max(s.upto);
            if !s.ids.is_empty() {
                match h.links.iter_mut().find(|(id, _)| *id == session_id) {
                    Some((_, ids)) => ids.extend(s.ids),
                    None => h.links.push((session_id, s.ids)),
                }
            }
        }
        for (charger, upto) in self.marks.drain() {
            let h = Held::of(&mut self.held, charger, now);
            h.upto = h.upto.max(Some(upto));
        }
        let all = release || self.linked >= LINKS || self.folded() >= FOLDED;
        let mut links = Vec::new();
        let mut marks = Vec::new();
        let mut released = 0;
        self.held.retain(|charger, h| {
            if !all && h.until() > now {
                return true;
            }
            for (session_id, ids) in h.links.drain(..) {
                released += ids.len();
                links.push((session_id, charger.clone(), ids));
            }
            if let Some(upto) = h.upto {
                marks.push((charger.clone(), upto));
            }
            false
        });
        self.linked = self.linked.saturating_sub(released);
        links.sort_unstable_by_key(|(session, _, _)| *session);
        marks.sort_unstable();
        // Grown once to its size (a batch of a thousand sessions is hundreds of KB: each
        // doubling would be a fresh allocation and a copy).
        batch.reserve_exact(self.seen.len() + links.len() + marks.len());
        batch.extend(
            by_key(&mut self.seen)
                .into_iter()
                .map(|(identity, at)| Write::ChargerSeen { identity, at }),
        );
        batch.extend(
            links
                .into_iter()
                .map(|(session_id, charger, ids)| Write::JournalSession {
                    charger,
                    session_id,
                    ids,
                }),
        );
        batch.extend(
            marks
                .into_iter()
                .map(|(charger, upto)| Write::JournalDone { charger, upto }),
        );
        batch
    }
}

/// Folds `value` into `key`'s entry of `map`: the highest is kept.
fn raise<V: Ord + Copy>(map: &mut std::collections::HashMap<String, V>, key: String, value: V) {
    let kept = map.entry(key).or_insert(value);
    *kept = (*kept).max(value);
}

/// Empties `map` into its entries in key order.
fn by_key<V>(map: &mut std::collections::HashMap<String, V>) -> Vec<(String, V)> {
    let mut entries: Vec<(String, V)> = map.drain().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// How often a failed batch is tried again before it is split.
const ATTEMPTS: u32 = 3;

/// Writes per database transaction when a batch is split (see [`split`]).
const PART: usize = 128;

/// Splits a gathered batch into short database transactions, in the order the batch's own
/// transaction would apply them: the sessions' progress (sorted by session, [`PART`] per
/// transaction), then the other writes in order (one transaction), then the journal marks
/// (sorted by charger, [`PART`] per transaction, the low-water mark with the last). SQLite
/// has one writer: a second's worth of progress in one transaction would hold every
/// journal commit (and so every charger waiting for its answer) for as long as it takes;
/// parts of consecutive keys touch nearly the same pages as the whole, and journal rows
/// commit between them. A crash between parts leaves progress without its marks, which
/// recovery projects again (the projection is idempotent); a mark never precedes its data.
fn split(batch: Vec<Write>) -> Vec<Vec<Write>> {
    let mut progress = Vec::new();
    let mut links = Vec::new();
    let mut others = Vec::new();
    let mut marks = Vec::new();
    let mut low_water = None;
    for w in batch {
        match w {
            Write::SessionProgress(_) => progress.push(w),
            Write::JournalSession { .. } => links.push(w),
            Write::JournalDone { .. } => marks.push(w),
            Write::JournalMark { .. } => low_water = Some(w),
            _ => others.push(w),
        }
    }
    let session = |w: &Write| match w {
        Write::SessionProgress(p) => p.session_id,
        _ => 0,
    };
    progress.sort_by_key(session);
    let mut parts: Vec<Vec<Write>> = Vec::new();
    let chunked = |writes: Vec<Write>, parts: &mut Vec<Vec<Write>>| {
        let mut part = Vec::with_capacity(PART.min(writes.len()));
        for w in writes {
            part.push(w);
            if part.len() == PART {
                parts.push(std::mem::take(&mut part));
            }
        }
        if !part.is_empty() {
            parts.push(part);
        }
    };
    chunked(progress, &mut parts);
    chunked(links, &mut parts);
    if !others.is_empty() {
        parts.push(others);
    }
    chunked(marks, &mut parts);
    if let Some(w) = low_water {
        match parts.last_mut() {
            Some(last) => last.push(w),
            None => parts.push(vec![w]),
        }
    }
    parts
}

/// What a batch stored of the journal's marks.
#[derive(Debug, Default)]
struct Stored {
    /// Chargers' marks (to settle in [`Pending`]).
    marks: Vec<(String, i64)>,
    /// The low-water mark, if the batch carried one and it is stored.
    low_water: Option<i64>,
}

impl Stored {
    fn note(&mut self, w: &Write) {
        match w {
            Write::JournalDone { charger, upto } => self.marks.push((charger.clone(), *upto)),
            Write::JournalMark { upto, .. } => self.low_water = Some(*upto),
            _ => {}
        }
    }
}

/// Applies a batch; returns the journal marks it stored.
async fn apply(
    db: &Db,
    metrics: &Metrics,
    batch: &mut Vec<Write>,
    stalled: &mut std::collections::HashSet<String>,
) -> Stored {
    let mut stored = Stored::default();
    if !stalled.is_empty() {
        batch.retain(|w| match w {
            Write::JournalDone { charger, .. } => !stalled.contains(charger),
            _ => true,
        });
    }
    let mut attempt = 1;
    let started = std::time::Instant::now();
    let mut result = db.apply_batch(batch).await;
    tracing::debug!(writes = batch.len(), took = ?started.elapsed(), "write-behind batch");
    while result.is_err() && attempt < ATTEMPTS {
        // A busy or briefly unreachable database: wait a little, try again.
        tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        attempt += 1;
        result = db.apply_batch(batch).await;
    }
    if result.is_ok() {
        for w in batch.iter() {
            stored.note(w);
        }
    }
    if let Err(e) = result {
        // One bad write must not take the batch with it: retry one by one. A charger whose
        // projection failed keeps its journal rows unprojected (replayed at the next start).
        tracing::warn!(
            "batched write of {} failed ({e}); retrying one by one",
            batch.len()
        );
        for w in batch.iter() {
            if let Write::JournalDone { charger, .. } = w {
                if stalled.contains(charger) {
                    tracing::error!(
                        charger,
                        "journal rows left unprojected: a projection failed"
                    );
                    metrics.error("database", "projection");
                    continue;
                }
            }
            match db.apply_batch(std::slice::from_ref(w)).await {
                Ok(()) => stored.note(w),
                Err(e) => {
                    tracing::error!("database write failed: {e}: {w:?}");
                    metrics.error("database", "write");
                    if let Some(charger) = w.projection_of() {
                        stalled.insert(charger.to_owned());
                    }
                }
            }
        }
    }
    stored
}

/// Session updates per statement (6 columns each).
const PROGRESS_PER_UPDATE: usize = 128;

/// Journal rows linked to their session per statement (2 columns each: well under every
/// database's limit on bound parameters).
const LINKS_PER_INSERT: usize = 512;

impl Db {
    /// Applies `batch` in one transaction: the sessions' progress first (one per session
    /// after [`Gather`]'s folding, and nothing else in a batch touches those columns before them), in
    /// one statement per [`PROGRESS_PER_UPDATE`] sessions; then every other write in order;
    /// then the journal marks (which come last) with [`Db::raise_journal_upto`]. On a SQLite
    /// file the same in place, one prepared statement per write ([`apply_in_place`]).
    pub(crate) async fn apply_batch(&self, batch: &[Write]) -> Result<(), DbError> {
        if let Some(inline) = self.inline() {
            return inline.write(|tx| apply_in_place(tx, batch)).await;
        }
        let mut tx = self.begin_write().await?;
        let marks = marks_of(batch);
        let progress: Vec<&Write> = batch
            .iter()
            .filter(|w| matches!(w, Write::SessionProgress(_)))
            .collect();
        for chunk in progress.chunks(PROGRESS_PER_UPDATE) {
            // VALUES columns are named column1, column2, ... in both databases.
            let sql = format!(
                "UPDATE sessions SET meter_start_wh = COALESCE(v.column2, meter_start_wh),
                 meter_last_wh = COALESCE(v.column3, meter_last_wh), energy_wh = v.column4,
                 power_w = COALESCE(v.column5, power_w), cost = COALESCE(v.column6, cost)
                 FROM (VALUES {}) AS v WHERE sessions.id = v.column1",
                self.values(chunk.len(), 6)
            );
            let args: Vec<[Arg<'static>; 6]> =
                chunk.iter().filter_map(|w| progress_args(w)).collect();
            let mut q = sqlx::query(&sql);
            for arg in args.iter().flatten() {
                q = bind(q, arg);
            }
            q.execute(&mut *tx).await?;
        }
        let links: Vec<(i64, i64)> = links_of(batch).collect();
        for chunk in links.chunks(LINKS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO journal_sessions (session_id, id) VALUES {} ON CONFLICT DO NOTHING",
                self.values(chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (session_id, id) in chunk {
                q = q.bind(*session_id).bind(*id);
            }
            q.execute(&mut *tx).await?;
        }
        for w in batch {
            let Some((sql, args)) = statement(w) else {
                continue;
            };
            let mut q = sqlx::query(sql);
            for arg in &args {
                q = bind(q, arg);
            }
            q.execute(&mut *tx).await?;
        }
        self.raise_journal_upto(&mut tx, &marks).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// [`Db::apply_batch`] in a transaction of the in-place writer (see the `inline` module), in
/// the same order, with one prepared single-row statement per write: a statement prepared
/// once and run again costs SQLite less than parsing a multi-row one of this batch's size.
fn apply_in_place(tx: &rusqlite::Connection, batch: &[Write]) -> rusqlite::Result<()> {
    let mut progress = tx.prepare_cached(
        "UPDATE sessions SET meter_start_wh = COALESCE(?2, meter_start_wh),
         meter_last_wh = COALESCE(?3, meter_last_wh), energy_wh = ?4,
         power_w = COALESCE(?5, power_w), cost = COALESCE(?6, cost) WHERE id = ?1",
    )?;
    for args in batch.iter().filter_map(progress_args) {
        inline::run(&mut progress, &args)?;
    }
    let mut link = tx.prepare_cached(
        "INSERT INTO journal_sessions (session_id, id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for (session_id, id) in links_of(batch) {
        link.execute(rusqlite::params![session_id, id])?;
    }
    for w in batch {
        if let Some((sql, args)) = statement(w) {
            inline::execute(tx, sql, &args)?;
        }
    }
    Db::raise_journal_upto_in_place(tx, &marks_of(batch))
}

/// The journal rows of a batch linked to their session: (session, row) pairs.
fn links_of(batch: &[Write]) -> impl Iterator<Item = (i64, i64)> + '_ {
    batch
        .iter()
        .filter_map(|w| match w {
            Write::JournalSession {
                session_id, ids, ..
            } => Some(ids.iter().map(move |id| (*session_id, *id))),
            _ => None,
        })
        .flatten()
}

/// The journal marks of a batch: each charger's row its journal is projected up to.
fn marks_of(batch: &[Write]) -> Vec<(&str, i64)> {
    batch
        .iter()
        .filter_map(|w| match w {
            Write::JournalDone { charger, upto } => Some((charger.as_str(), *upto)),
            _ => None,
        })
        .collect()
}

/// A session's progress as its statements' values: the session, the meter's start and last
/// reading, the energy, the power and the cost (decimals as text, exactly).
fn progress_args(w: &Write) -> Option<[Arg<'static>; 6]> {
    let Write::SessionProgress(Progress {
        session_id,
        meter_start_wh,
        meter_last_wh,
        energy_wh,
        power_w,
        cost,
        ..
    }) = w
    else {
        return None;
    };
    let decimal = |d: &Option<Decimal>| Arg::OptText(d.map(|d| d.to_string().into()));
    Some([
        Arg::Int(*session_id),
        decimal(meter_start_wh),
        decimal(meter_last_wh),
        Arg::Text(energy_wh.to_string().into()),
        decimal(power_w),
        decimal(cost),
    ])
}

/// Binds `arg` as the next parameter of an sqlx query.
fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    arg: &'q Arg<'_>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match arg {
        Arg::Int(i) => q.bind(*i),
        Arg::Text(t) => q.bind(t.as_ref()),
        Arg::OptText(t) => q.bind(t.as_deref()),
    }
}

/// The statement of a write applied on its own (`None`: the sessions' progress, their journal
/// links and the journal marks, which a batch applies together). Parameters are `$1`, `$2`,
/// ... in both databases.
fn statement(w: &Write) -> Option<(&'static str, Vec<Arg<'_>>)> {
    fn text(s: &str) -> Arg<'_> {
        Arg::Text(s.into())
    }
    fn opt(s: Option<&str>) -> Arg<'_> {
        Arg::OptText(s.map(Into::into))
    }
    fn at(t: &DateTime<Utc>) -> Arg<'static> {
        Arg::Text(super::db::ts(*t).into())
    }
    Some(match w {
        Write::ChargerConnected {
            identity,
            owner,
            version,
            at: when,
        } => (
            "INSERT INTO chargers (identity, version, connected, first_seen, last_seen, owner) VALUES ($1, $2, 1, $3, $3, $4)
             ON CONFLICT (identity) DO UPDATE SET version = $2, connected = 1, last_seen = $3, owner = $4",
            vec![text(identity), text(version), at(when), text(owner)],
        ),
        Write::ChargerBooted {
            identity,
            vendor,
            model,
            serial_number,
            firmware_version,
            boot_state,
            at: when,
        } => (
            "UPDATE chargers SET vendor = $2, model = $3, serial_number = $4, firmware_version = $5,
             boot_state = $6, last_seen = $7 WHERE identity = $1",
            vec![
                text(identity),
                text(vendor),
                text(model),
                opt(serial_number.as_deref()),
                opt(firmware_version.as_deref()),
                text(boot_state),
                at(when),
            ],
        ),
        Write::ChargerSeen { identity, at: when } => (
            // Never back: a heartbeat's time is written after the batch's other writes, some
            // of which (a disconnection, a reconnection) set `last_seen` later than it.
            "UPDATE chargers SET last_seen = $2 WHERE identity = $1
             AND (last_seen IS NULL OR last_seen < $2)",
            vec![text(identity), at(when)],
        ),
        Write::ChargerDisconnected {
            identity,
            owner,
            at: when,
        } => (
            "UPDATE chargers SET connected = 0, last_seen = $2 WHERE identity = $1
             AND (owner = $3 OR owner IS NULL)",
            vec![text(identity), at(when), text(owner)],
        ),
        Write::ConnectorStatus {
            charger,
            evse,
            connector,
            status,
            error_code,
            since,
        } => (
            "INSERT INTO connectors (charger, evse, connector, status, error_code, since) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (charger, evse, connector) DO UPDATE SET status = $4, error_code = $5, since = $6",
            vec![
                text(charger),
                Arg::Int(*evse),
                Arg::Int(connector.unwrap_or(-1)),
                text(status),
                opt(error_code.as_deref()),
                at(since),
            ],
        ),
        Write::Event {
            id,
            at: when,
            charger,
            kind,
            detail,
        } => (
            "INSERT INTO events (id, at, charger, kind, detail) VALUES ($1, $2, $3, $4, $5)",
            vec![
                Arg::Int(*id),
                at(when),
                text(charger),
                text(kind),
                text(detail),
            ],
        ),
        Write::SessionEnded {
            session_id,
            ended_at,
            stop_reason,
            ..
        } => (
            "UPDATE sessions SET ended_at = $2, stop_reason = $3, power_w = NULL, status = 'completed' WHERE id = $1",
            vec![
                Arg::Int(*session_id),
                at(ended_at),
                opt(stop_reason.as_deref()),
            ],
        ),
        Write::JournalMark { upto, node: None } => (
            "UPDATE journal_watermark SET upto = $1 WHERE upto < $1",
            vec![Arg::Int(*upto)],
        ),
        Write::JournalMark {
            upto,
            node: Some(node),
        } => (
            "UPDATE journal_node_marks SET upto = $2 WHERE node = $1 AND upto < $2",
            vec![text(node), Arg::Int(*upto)],
        ),
        // A batch applies these together; a projection is unfolded into them as it is
        // gathered ([`Gather::push`]), before any batch holds it.
        Write::SessionProgress(_)
        | Write::JournalSession { .. }
        | Write::JournalDone { .. }
        | Write::Projected { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(session: i64, energy: i64) -> Write {
        Write::SessionProgress(Progress {
            charger: "CP".into(),
            session_id: session,
            meter_start_wh: None,
            meter_last_wh: None,
            energy_wh: Decimal::from(energy),
            power_w: None,
            cost: None,
        })
    }

    fn done(charger: &str, upto: i64) -> Write {
        Write::JournalDone {
            charger: charger.into(),
            upto,
        }
    }

    #[test]
    fn a_batch_costs_one_progress_per_session_and_one_mark_per_charger_at_the_end() {
        let mut gather = Gather::default();
        let prompt: Vec<bool> = [
            progress(1, 10),
            done("CP", 7),
            progress(2, 5),
            done("CP2", 3),
            progress(1, 20),
            done("CP", 9),
            progress(1, 30),
        ]
        .into_iter()
        .map(|w| gather.push(w))
        .collect();
        assert!(prompt.iter().all(|p| !p), "progress and marks can wait");
        assert_eq!(gather.len(), 4, "folded as it grows");
        let batch = gather.take(tokio::time::Instant::now(), true);
        assert_eq!(batch.len(), 4, "{batch:?}");
        match &batch[0] {
            Write::SessionProgress(Progress {
                session_id: 1,
                energy_wh,
                ..
            }) => assert_eq!(*energy_wh, Decimal::from(30), "the latest state"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &batch[1],
            Write::SessionProgress(Progress { session_id: 2, .. })
        ));
        assert!(
            matches!(&batch[2], Write::JournalDone { charger, upto: 9 } if charger == "CP"),
            "the highest mark, after every projection write: {batch:?}"
        );
        assert!(matches!(&batch[3], Write::JournalDone { charger, upto: 3 } if charger == "CP2"));
        assert_eq!(gather.len(), 0, "taken");
    }

    /// A charger's links and mark are held from batch to batch (progress is not) and written
    /// together once LINK_LINGER has passed since the first of them was held, each charger
    /// on its own time, or every charger's at once when released; a session's rows of
    /// several batches are one write, and a mark never leaves before the links it vouches
    /// for.
    #[test]
    fn links_and_marks_are_held_per_charger_until_due_or_released() {
        let start = tokio::time::Instant::now();
        let mut gather = Gather::default();
        gather.push(progress(1, 10));
        gather.push(link(1, &[7, 8]));
        gather.push(done("CP", 8));
        // A session of another charger whose part is its progress alone holds nothing.
        let Write::SessionProgress(mut alone) = progress(3, 5) else {
            unreachable!("progress() builds a session's progress")
        };
        alone.charger = "CP3".into();
        gather.push(Write::SessionProgress(alone));
        let batch = gather.take(start, false);
        assert_eq!(batch.len(), 2, "the progress only: {batch:?}");
        assert!(batch.iter().all(|w| matches!(w, Write::SessionProgress(_))));
        assert_eq!(
            gather.held.len(),
            1,
            "CP's links and mark, nothing of CP3's"
        );
        assert_eq!(gather.held_until(), Some(start + LINK_LINGER));
        // The next batch, before CP's are due: its links join the session's, its mark
        // raises; CP2's mark is held from now.
        let later = start + LINK_LINGER / 2;
        gather.push(link(1, &[9]));
        gather.push(done("CP", 9));
        gather.push(done("CP2", 3));
        let batch = gather.take(later, false);
        assert!(batch.is_empty(), "{batch:?}");
        assert_eq!(gather.len(), 5, "three rows and two marks held");
        // CP's are due: its links, then its mark; CP2's wait for their own time.
        let batch = gather.take(start + LINK_LINGER, false);
        assert!(
            matches!(&batch[0], Write::JournalSession { session_id: 1, ids, .. } if ids == &[7, 8, 9]),
            "{batch:?}"
        );
        assert!(matches!(&batch[1], Write::JournalDone { charger, upto: 9 } if charger == "CP"));
        assert_eq!(batch.len(), 2);
        assert_eq!(gather.held_until(), Some(later + LINK_LINGER));
        // Every charger's at once when someone waits.
        gather.push(link(2, &[10]));
        gather.push(done("CP", 10));
        let batch = gather.take(start + LINK_LINGER, true);
        assert_eq!(batch.len(), 3, "CP's link and mark, CP2's mark: {batch:?}");
        assert!(matches!(&batch[2], Write::JournalDone { charger, upto: 3 } if charger == "CP2"));
        assert_eq!((gather.len(), gather.held_until()), (0, None));
    }

    /// A network in transactions fills a batch by time, not by its meter values: a
    /// thousand sessions' progress, their chargers' marks and twenty linked rows each leave
    /// it open; prompt writes, folded writes and links each fill it at their own bound.
    #[test]
    fn a_batch_is_full_by_its_prompt_writes_folded_writes_or_links() {
        let mut gather = Gather::default();
        for n in 0..1000 {
            let ids: Vec<i64> = (0..20).map(|k| n * 100 + k).collect();
            gather.push(link(n, &ids));
            gather.push(progress(n, 10));
            gather.push(done(&format!("CP-{n}"), n * 100 + 19));
        }
        assert!(!gather.full(), "{} writes", gather.len());
        let disconnected = || Write::ChargerDisconnected {
            identity: "CP".into(),
            owner: "node|1".into(),
            at: Utc::now(),
        };
        for _ in 0..BATCH - 1 {
            gather.push(disconnected());
        }
        assert!(!gather.full());
        gather.push(disconnected());
        assert!(gather.full(), "BATCH prompt writes");

        let mut gather = Gather::default();
        let ids: Vec<i64> = (0..i64::try_from(LINKS).expect("fits") - 1).collect();
        gather.push(link(1, &ids));
        assert!(!gather.full());
        gather.push(link(2, &[-1]));
        assert!(gather.full(), "LINKS linked rows");

        let mut gather = Gather::default();
        for n in 0..FOLDED / 2 {
            gather.push(progress(i64::try_from(n).expect("fits"), 1));
            gather.push(done(&format!("CP-{n}"), 1));
        }
        assert!(gather.full(), "FOLDED progress and marks");
    }

    #[test]
    fn anything_but_progress_links_marks_and_heartbeats_is_prompt() {
        let mut gather = Gather::default();
        assert!(!gather.push(progress(1, 10)));
        assert!(!gather.push(link(1, &[7])));
        assert!(!gather.push(done("CP", 7)));
        assert!(!gather.push(Write::ChargerSeen {
            identity: "CP".into(),
            at: Utc::now(),
        }));
        assert!(gather.push(Write::SessionEnded {
            charger: "CP".into(),
            session_id: 1,
            ended_at: Utc::now(),
            stop_reason: None,
        }));
    }

    /// A charger's heartbeats fold into its latest `last_seen`, written once after the
    /// batch's ordered writes (where a disconnection before it cannot undo it) and before
    /// the links and marks; each charger's once.
    #[test]
    fn heartbeats_fold_into_the_latest_last_seen_after_the_ordered_writes() {
        let seen = |id: &str, s: i64| Write::ChargerSeen {
            identity: id.into(),
            at: t(s),
        };
        let mut gather = Gather::default();
        gather.push(seen("CP", 10));
        gather.push(Write::ChargerDisconnected {
            identity: "CP".into(),
            owner: "node|1".into(),
            at: t(20),
        });
        gather.push(seen("CP", 30));
        gather.push(seen("CP", 25));
        gather.push(seen("CP2", 5));
        gather.push(done("CP", 3));
        assert_eq!(gather.len(), 4);
        let batch = gather.take(tokio::time::Instant::now(), true);
        assert!(
            matches!(&batch[0], Write::ChargerDisconnected { .. }),
            "{batch:?}"
        );
        assert!(
            matches!(&batch[1], Write::ChargerSeen { identity, at } if identity == "CP" && *at == t(30)),
            "{batch:?}"
        );
        assert!(
            matches!(&batch[2], Write::ChargerSeen { identity, at } if identity == "CP2" && *at == t(5)),
            "{batch:?}"
        );
        assert!(matches!(&batch[3], Write::JournalDone { .. }), "{batch:?}");
        assert_eq!(batch.len(), 4);
    }

    /// On the database, a heartbeat's `last_seen` older than the one stored (a
    /// disconnection's, later) leaves it; a newer one moves it on. SQLite's in-place path
    /// and sqlx's (`sqlite::memory:`) both.
    #[tokio::test]
    async fn last_seen_never_moves_back() {
        let dir = tempfile::tempdir().expect("dir");
        for url in [
            format!("sqlite://{}", dir.path().join("w.db").display()),
            "sqlite::memory:".to_owned(),
        ] {
            let db = Db::open(&url).await.expect("open");
            let metrics = Metrics::new();
            let mut stalled = std::collections::HashSet::new();
            let mut batch = vec![
                Write::ChargerConnected {
                    identity: "CP".into(),
                    owner: "node|1".into(),
                    version: "1.6",
                    at: t(0),
                },
                Write::ChargerDisconnected {
                    identity: "CP".into(),
                    owner: "node|1".into(),
                    at: t(20),
                },
                Write::ChargerSeen {
                    identity: "CP".into(),
                    at: t(10),
                },
            ];
            apply(&db, &metrics, &mut batch, &mut stalled).await;
            let row = db.charger("CP").await.expect("read").expect("row");
            assert_eq!(row.last_seen, Some(t(20)), "{url}");
            let mut batch = vec![Write::ChargerSeen {
                identity: "CP".into(),
                at: t(30),
            }];
            apply(&db, &metrics, &mut batch, &mut stalled).await;
            let row = db.charger("CP").await.expect("read").expect("row");
            assert_eq!(row.last_seen, Some(t(30)), "{url}");
        }
    }

    /// The writer is not woken by lazy writes, yet never holds a charger back for its
    /// deadline: a queue filling up is taken once [`TAKE_AT`] entries wait, a prompt write
    /// ends the gathering [`LINGER`] later, and a flush at once. On virtual time: without
    /// those wake-ups the writes beyond [`QUEUE`], the prompt write's commit and the flush
    /// would each wait for [`LAZY_LINGER`].
    #[tokio::test]
    async fn lazy_writes_wait_for_the_writer_but_a_full_queue_a_prompt_write_and_a_flush_do_not() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = Db::open(&url).await.expect("open");
        let writer = Writer::start(db.clone(), Metrics::new(), Arc::new(Pending::new(0)));
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        let connected = |id: &str| Write::ChargerConnected {
            identity: id.into(),
            owner: "node|1".into(),
            version: "2.0.1",
            at: t(0),
        };
        writer.write(connected("CP")).await;
        // Three queues' worth of heartbeats, lazy: the sender is never held back.
        let n = i64::try_from(3 * QUEUE).expect("fits");
        for s in 1..=n {
            writer
                .write(Write::ChargerSeen {
                    identity: "CP".into(),
                    at: t(s),
                })
                .await;
        }
        assert!(started.elapsed() < LINGER, "{:?}", started.elapsed());
        writer.flush().await;
        assert!(started.elapsed() < LINGER, "{:?}", started.elapsed());
        // Reads on real time (sqlx's pool waits on its threads with timeouts of its own).
        tokio::time::resume();
        let row = db.charger("CP").await.expect("read").expect("row");
        assert_eq!(row.last_seen, Some(t(n)));
        // A prompt write alone is in the database after LINGER, not LAZY_LINGER.
        tokio::time::pause();
        writer.write(connected("CP2")).await;
        tokio::time::sleep(LINGER * 2).await;
        tokio::time::resume();
        assert!(db.charger("CP2").await.expect("read").is_some());
    }

    /// `s` seconds after a fixed moment.
    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).expect("time")
    }

    fn link(session: i64, ids: &[i64]) -> Write {
        Write::JournalSession {
            charger: "CP".into(),
            session_id: session,
            ids: ids.to_vec(),
        }
    }

    /// A session's journal links wait like its progress and gather into one write per
    /// session, after the other writes and before the marks; split gives them parts of their
    /// own between the progress and the other writes, never after a mark.
    #[test]
    fn journal_links_gather_per_session_and_come_before_the_marks() {
        let mut gather = Gather::default();
        let prompt: Vec<bool> = [
            link(2, &[11]),
            done("CP", 11),
            link(1, &[10]),
            link(2, &[12, 13]),
            done("CP", 13),
        ]
        .into_iter()
        .map(|w| gather.push(w))
        .collect();
        assert!(prompt.iter().all(|p| !p), "links can wait");
        assert_eq!(gather.len(), 5, "each linked row counts, the marks fold");
        let batch = gather.take(tokio::time::Instant::now(), true);
        assert_eq!(batch.len(), 3);
        match (&batch[0], &batch[1], &batch[2]) {
            (
                Write::JournalSession {
                    session_id: 1,
                    ids: a,
                    ..
                },
                Write::JournalSession {
                    session_id: 2,
                    ids: b,
                    ..
                },
                Write::JournalDone { upto: 13, .. },
            ) => {
                assert_eq!(a, &[10]);
                assert_eq!(b, &[11, 12, 13]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(gather.len(), 0);

        let mut batch = vec![progress(1, 5), link(1, &[7])];
        batch.push(Write::ChargerSeen {
            identity: "CP".into(),
            at: Utc::now(),
        });
        batch.push(done("CP", 7));
        let parts = split(batch);
        let kinds: Vec<&str> = parts
            .iter()
            .flatten()
            .map(|w| match w {
                Write::SessionProgress(_) => "progress",
                Write::JournalSession { .. } => "link",
                Write::ChargerSeen { .. } => "seen",
                Write::JournalDone { .. } => "mark",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["progress", "link", "seen", "mark"]);
        assert_eq!(parts.len(), 4, "each kind in its own transaction");
    }

    fn projected(
        charger: &str,
        session: i64,
        energy: i64,
        ids: &[i64],
        upto: Option<i64>,
    ) -> Write {
        Write::Projected {
            progress: Progress {
                charger: charger.into(),
                session_id: session,
                meter_start_wh: Some(Decimal::from(1)),
                meter_last_wh: Some(Decimal::from(energy + 1)),
                energy_wh: Decimal::from(energy),
                power_w: None,
                cost: None,
            },
            ids: ids.to_vec(),
            upto,
        }
    }

    /// A meter update's projection is one write that folds into the same batch as its three
    /// parts would: the session's latest progress once, its rows linked, its charger's
    /// highest mark at the end; with no mark when the charger's projection stalled.
    #[test]
    fn a_projection_folds_into_its_progress_links_and_mark() {
        let mut gather = Gather::default();
        let prompt: Vec<bool> = [
            projected("CP", 1, 10, &[10], Some(10)),
            projected("CP2", 2, 5, &[11], Some(11)),
            done("CP", 3),
            projected("CP", 1, 20, &[12, 13], Some(13)),
            projected("CP3", 3, 7, &[14], None),
            progress(3, 8),
        ]
        .into_iter()
        .map(|w| gather.push(w))
        .collect();
        assert!(prompt.iter().all(|p| !p), "projections can wait");
        let batch = gather.take(tokio::time::Instant::now(), true);
        let shown: Vec<String> = batch
            .iter()
            .map(|w| match w {
                Write::SessionProgress(p) => format!(
                    "progress {} {} {:?}",
                    p.session_id, p.energy_wh, p.meter_last_wh
                ),
                Write::JournalSession {
                    charger,
                    session_id,
                    ids,
                } => format!("link {charger} {session_id} {ids:?}"),
                Write::JournalDone { charger, upto } => format!("mark {charger} {upto}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "progress 1 20 Some(21)",
                "progress 2 5 Some(6)",
                "progress 3 8 None",
                "link CP 1 [10, 12, 13]",
                "link CP2 2 [11]",
                "link CP3 3 [14]",
                "mark CP 13",
                "mark CP2 11",
            ]
        );
        assert_eq!(gather.len(), 0, "taken");
        assert!(gather.sessions.is_empty() && gather.progressed == 0);
    }

    #[test]
    fn a_batch_is_split_into_short_transactions_in_its_own_order() {
        let mut batch: Vec<Write> = (0..300).rev().map(|i| progress(i, i)).collect();
        batch.push(Write::ChargerSeen {
            identity: "CP".into(),
            at: Utc::now(),
        });
        batch.extend((0..130).map(|i| done(&format!("CP{i:03}"), i)));
        batch.push(Write::JournalMark {
            upto: 77,
            node: None,
        });
        let parts = split(batch);
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        assert_eq!(sizes, [128, 128, 44, 1, 128, 3], "{sizes:?}");
        let first: Vec<i64> = parts[0]
            .iter()
            .map(|w| match w {
                Write::SessionProgress(p) => p.session_id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(first, (0..128).collect::<Vec<_>>(), "sorted by session");
        assert!(matches!(parts[3][0], Write::ChargerSeen { .. }));
        assert!(
            matches!(parts[5].last(), Some(Write::JournalMark { upto: 77, .. })),
            "the low-water mark comes last"
        );
        assert!(split(Vec::new()).is_empty());
    }
}
