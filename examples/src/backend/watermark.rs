//! The journal's low-water mark: every journal row at or below it is projected (or set
//! aside), so recovery at start reads the journal from there on, and not from the beginning.
//!
//! The mark is kept in memory and stored by the write-behind task with the batches it
//! commits anyway, so journaling a message costs its own row and its session index entry,
//! and nothing per charger (a mark raised by a trigger on every insert cost one more page
//! of write-ahead log per commit). The journal task registers each row as it is committed;
//! the writer settles a charger's rows up to a mark once that mark is in the database; the
//! low-water mark is one below the oldest row not settled. A row that is never settled (its
//! charger's projection failed, or the charger went away with rows unprojected) holds the
//! mark where it is until the next start, which replays from there: conservative, never
//! past a row that was not projected.
//!
//! Bounds: at most [`PER_CHARGER`] unsettled rows are remembered per charger. A charger with
//! more (only one whose projection is stuck can get there: the write-behind queue bounds
//! what is in flight) keeps its oldest row, which holds the mark, and is not tracked
//! further until the next start; the memory stays bounded by the chargers connected.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

/// Unsettled journal rows remembered per charger at most (see the module's docs).
pub(crate) const PER_CHARGER: usize = 4096;

#[derive(Debug, Default)]
struct Rows {
    ids: VecDeque<i64>,
    /// More than [`PER_CHARGER`] rows: the oldest is kept (and holds the mark), the rest is
    /// not tracked, and nothing of this charger is settled again until the next start.
    overflowed: bool,
}

#[derive(Debug, Default)]
struct Inner {
    chargers: HashMap<String, Rows>,
    /// Every unsettled row remembered, of all chargers (the first is the oldest).
    unsettled: BTreeSet<i64>,
    /// The highest row registered, or the mark the database held at start.
    high: i64,
    /// A cluster node: its id. Journal ids come from one shared sequence, so this node's
    /// rows settled say nothing of the rows other nodes wrote below them: a node's mark
    /// covers only the rows it wrote (the journal's `node` column), and is stored per node
    /// (`journal_node_marks`, see `cluster.rs`).
    node: Option<String>,
}

/// The journal rows written and not yet settled (see the module's docs). Shared by the
/// journal task, the write-behind task and recovery.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    inner: Mutex<Inner>,
}

impl Pending {
    /// Starts from the mark stored in the database.
    pub(crate) fn new(stored: i64) -> Pending {
        Pending {
            inner: Mutex::new(Inner {
                high: stored,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state stays consistent at every step: a panic elsewhere cannot leave it torn.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers committed rows of chargers. Rows must be registered in increasing order of
    /// id, all of them before the first of them can be settled (the journal task registers
    /// each group as it commits it; recovery registers everything it replays before it
    /// replays anything).
    pub(crate) fn register<'a>(&self, rows: impl IntoIterator<Item = (&'a str, i64)>) {
        let mut inner = self.lock();
        for (charger, id) in rows {
            inner.high = inner.high.max(id);
            // The charger's identity is copied only when it has no unsettled rows yet.
            let entry = match inner.chargers.get_mut(charger) {
                Some(entry) => entry,
                None => inner.chargers.entry(charger.to_owned()).or_default(),
            };
            if entry.overflowed {
                continue;
            }
            if entry.ids.len() >= PER_CHARGER {
                entry.overflowed = true;
                continue;
            }
            entry.ids.push_back(id);
            inner.unsettled.insert(id);
        }
    }

    /// The charger's rows up to `upto` are projected and marked so in the database.
    pub(crate) fn settle(&self, charger: &str, upto: i64) {
        let mut inner = self.lock();
        let Inner {
            chargers,
            unsettled,
            ..
        } = &mut *inner;
        let Some(rows) = chargers.get_mut(charger) else {
            return;
        };
        if rows.overflowed {
            return;
        }
        while let Some(&id) = rows.ids.front() {
            if id > upto {
                break;
            }
            rows.ids.pop_front();
            unsettled.remove(&id);
        }
        if rows.ids.is_empty() {
            chargers.remove(charger);
        }
    }

    /// Makes this the mark of cluster node `node`, starting from `stored` (its mark in the
    /// database): from now on it covers only the rows this node writes and replays. Call
    /// before any row is registered (the node joins before it recovers or accepts chargers).
    pub(crate) fn join(&self, node: &str, stored: i64) {
        let mut inner = self.lock();
        inner.node = Some(node.to_owned());
        inner.high = stored;
    }

    /// The cluster node whose rows this tracks (`None`: a single node, every row).
    pub(crate) fn node(&self) -> Option<String> {
        self.lock().node.clone()
    }

    /// Every journal row (of this node, on a cluster) at or below this is projected (or set
    /// aside, or was at start).
    pub(crate) fn mark(&self) -> i64 {
        let inner = self.lock();
        match inner.unsettled.first() {
            Some(&oldest) => oldest.saturating_sub(1).min(inner.high),
            None => inner.high,
        }
    }

    /// Chargers with unsettled rows (for tests and the documented bound).
    #[cfg(test)]
    fn chargers(&self) -> usize {
        self.lock().chargers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_stays_below_the_oldest_unsettled_row_of_any_charger() {
        let p = Pending::new(10);
        assert_eq!(p.mark(), 10, "the stored mark at start");
        p.register([("A", 11), ("B", 12), ("A", 13)]);
        assert_eq!(p.mark(), 10);
        p.settle("B", 12);
        assert_eq!(p.mark(), 10, "A's row 11 is not settled");
        p.settle("A", 11);
        assert_eq!(p.mark(), 12, "A's row 13 is next");
        p.settle("A", 13);
        assert_eq!(p.mark(), 13);
        assert_eq!(p.chargers(), 0, "settled chargers are forgotten");
    }

    #[test]
    fn a_mark_for_another_charger_or_below_settles_nothing() {
        let p = Pending::new(0);
        p.register([("A", 5), ("A", 7)]);
        p.settle("B", 100);
        p.settle("A", 4);
        assert_eq!(p.mark(), 4);
        p.settle("A", 6);
        assert_eq!(p.mark(), 6);
    }

    #[test]
    fn a_charger_past_the_bound_holds_the_mark_with_its_oldest_row_and_memory_stays_bounded() {
        let p = Pending::new(0);
        let ids: Vec<i64> = (1..=(PER_CHARGER as i64 + 10_000)).collect();
        p.register(ids.iter().map(|&id| ("A", id)));
        assert_eq!(p.lock().unsettled.len(), PER_CHARGER);
        p.settle("A", i64::MAX);
        assert_eq!(p.mark(), 0, "not settled past rows it no longer tracks");
        p.register([("B", i64::MAX)]);
        p.settle("B", i64::MAX);
        assert_eq!(p.mark(), 0);
    }

    #[test]
    fn a_cluster_node_starts_from_its_own_mark_and_advances_it() {
        let p = Pending::new(3);
        p.join("n1", 40);
        assert_eq!(p.node().as_deref(), Some("n1"));
        assert_eq!(p.mark(), 40, "the node's stored mark, not the shared one");
        p.register([("A", 41), ("B", 45)]);
        p.settle("B", 45);
        assert_eq!(p.mark(), 40);
        p.settle("A", 41);
        assert_eq!(p.mark(), 45, "the mark advances on a cluster node too");
    }

    #[test]
    fn extreme_ids_do_not_overflow() {
        let p = Pending::new(i64::MAX - 1);
        p.register([("A", i64::MAX)]);
        assert_eq!(p.mark(), i64::MAX - 1);
        p.settle("A", i64::MAX);
        assert_eq!(p.mark(), i64::MAX);
        let p = Pending::new(0);
        p.register([("A", i64::MIN)]);
        assert_eq!(p.mark(), i64::MIN);
    }
}
