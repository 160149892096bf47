//! The journal of a SQLite file, kept in append-only segment files beside it (a directory
//! `<database file>.journal`), not in a table.
//!
//! Every transaction message is journaled before it is answered. As a row of a SQLite table
//! each one cost its record, its cell in a page of the table's tree, that page in the
//! write-ahead log at every commit that touched it and again in the checkpoint's copy into the
//! database file: measured, the journal was a seventh of the CPU a charger in a running
//! transaction costs the central system, and nearly all of it was the row (BENCHMARKS.md,
//! section 25). Here a group of messages is one `write` of its records to the end of a file,
//! before its answers go out: the same guarantee as a commit of SQLite in write-ahead-log mode
//! with `synchronous=NORMAL`, which the database runs with (a crash of the process loses
//! nothing written; a power failure can lose what the system had not yet put on disk).
//! The active segment is synced to disk every second (with the database's checkpoint, see
//! `Db::start_checkpoints`), so a power failure loses at most about a second of messages, as
//! the write-ahead log's own sync at each checkpoint bounds it.
//!
//! **Ids.** A record's id is its place: `segment << 36 | offset`, the segment's number and
//! the record's byte offset in it. Ids grow in the order records are written, as the table's
//! did, so the low-water mark and each charger's projected mark work unchanged, and a record
//! is read by id with one seek. Segment numbers start above every id of the journal table of
//! an older database (whose rows stay where they are and are read from there), and stay below
//! 2^17 so that every id is exact in JavaScript (2^53): at [`SEGMENT_BYTES`] a segment, that
//! is 32 TB of journal.
//!
//! **Segments.** Each process that opens the database starts a new segment at its first
//! write, and a segment is closed (and synced) once it holds [`SEGMENT_BYTES`]: nothing is
//! ever appended after the tail of an earlier run, which a power failure may have torn. Records
//! are never deleted: the journal is where a session's meter values live (see
//! `Backend::samples`). Back up the directory with the database file.
//!
//! **Whose.** The directory holds a file `DATABASE` with a token stored in the database
//! (`journal_files`): a database deleted and created again beside its old segments refuses to
//! start instead of replaying another database's messages into its sessions.
//!
//! **Records.** `length (u32 LE) · CRC-32 of the payload (u32 LE) · payload`, the payload a
//! presence byte for the cluster node, then length-prefixed UTF-8 texts: the time written,
//! the charger, its OCPP version, the action, the request and the answer sent, and the node
//! when present. A record that is short, longer than [`MAX_RECORD`], or whose CRC does not
//! match ends its segment's readable part (a torn tail): reading goes on with the next
//! segment.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::db::{DbError, JournalRow};
use super::journal::Entry;

/// Bits of an id that hold the record's offset in its segment.
const SHIFT: u32 = 36;

/// A segment is closed once it holds this many bytes (a group is never split across two).
pub(crate) const SEGMENT_BYTES: u64 = 256 << 20;

/// The highest segment number: ids stay below 2^53.
const MAX_SEGMENT: u64 = (1 << (53 - SHIFT)) - 1;

/// The largest record written or read (a corrupt length beyond it is a torn tail). Messages
/// are far smaller: the central system refuses frames above its message size limit.
pub(crate) const MAX_RECORD: usize = 64 << 20;

/// The file in the journal's directory that names the database it belongs to.
pub(crate) const TOKEN_FILE: &str = "DATABASE";

/// Bytes before a record's payload: its length and its CRC.
const HEADER: usize = 8;

/// One record as read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// Its id (see the module's docs).
    pub(crate) id: i64,
    /// The charger.
    pub(crate) charger: String,
    /// Its OCPP version.
    pub(crate) version: String,
    /// The action.
    pub(crate) action: String,
    /// The request, JSON.
    pub(crate) request: String,
    /// The answer sent, JSON.
    pub(crate) response: String,
    /// When it was written (as the journal table's `at`).
    pub(crate) at: String,
    /// The cluster node that wrote it (`None`: a single node).
    pub(crate) node: Option<String>,
}

impl Record {
    /// The record as a journal row (no error: a row set aside is kept in a table).
    pub(crate) fn into_row(self, session_id: Option<i64>) -> JournalRow {
        JournalRow {
            id: self.id,
            charger: self.charger,
            version: self.version,
            action: self.action,
            request: self.request,
            response: self.response,
            error: None,
            session_id,
        }
    }
}

/// The segment being written.
#[derive(Debug)]
struct Active {
    number: u64,
    file: File,
    /// Bytes written (the next record's offset).
    end: u64,
    /// Written since the last sync.
    dirty: bool,
    /// The group being encoded (kept: one allocation for the life of the segment).
    buf: Vec<u8>,
}

/// The journal's segment files (see the module's docs). Shared by the journal task, recovery
/// and the readers.
#[derive(Debug)]
pub(crate) struct JournalFile {
    dir: PathBuf,
    /// The lowest segment number (above the journal table's ids).
    first: u64,
    /// A segment is closed once it holds this many bytes ([`SEGMENT_BYTES`]).
    segment_bytes: u64,
    active: Mutex<Option<Active>>,
}

fn io(path: &Path, source: std::io::Error) -> DbError {
    DbError::JournalFile {
        path: path.display().to_string(),
        source,
    }
}

/// The id of the record at `offset` of segment `number`.
fn id_of(number: u64, offset: u64) -> Option<i64> {
    if number > MAX_SEGMENT || offset >= 1 << SHIFT {
        return None;
    }
    i64::try_from(number << SHIFT | offset).ok()
}

/// The segment and offset of id `id` (`None`: not an id of a segment).
fn place_of(id: i64) -> Option<(u64, u64)> {
    let id = u64::try_from(id).ok()?;
    Some((id >> SHIFT, id & ((1 << SHIFT) - 1)))
}

impl JournalFile {
    /// The journal in directory `dir` (created if missing); `table_max`: the largest id of
    /// the journal table (segments are numbered above it); `token`: the database's own,
    /// which the directory must carry (its file [`TOKEN_FILE`], written by the first open):
    /// the segments of another database (one deleted and created again beside them) would
    /// be replayed into this one, so they are refused with a clear error instead.
    pub(crate) fn open(dir: PathBuf, table_max: i64, token: &str) -> Result<JournalFile, DbError> {
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let above = u64::try_from(table_max).unwrap_or(0) >> SHIFT;
        let journal = JournalFile {
            dir,
            first: above.saturating_add(1),
            segment_bytes: SEGMENT_BYTES,
            active: Mutex::new(None),
        };
        journal.claim(token)?;
        Ok(journal)
    }

    /// Segments closed at `bytes` instead of [`SEGMENT_BYTES`] (tests).
    #[cfg(test)]
    fn with_segment_bytes(mut self, bytes: u64) -> JournalFile {
        self.segment_bytes = bytes;
        self
    }

    /// Checks that the directory is the database's with `token`, marking it so when it holds
    /// no segment yet.
    fn claim(&self, token: &str) -> Result<(), DbError> {
        let path = self.dir.join(TOKEN_FILE);
        let foreign = |why: String| {
            io(
                &self.dir,
                std::io::Error::other(format!(
                    "{why}: these segments are not this database's journal; move the \
                     directory away (or put back its database) and start again"
                )),
            )
        };
        loop {
            match std::fs::read_to_string(&path) {
                Ok(found) if found.trim() == token => return Ok(()),
                Ok(found) => {
                    return Err(foreign(format!(
                        "it belongs to the database {:?}",
                        found.trim()
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path, e)),
            }
            if !self.segments()?.is_empty() {
                return Err(foreign(format!("it holds segments and no {TOKEN_FILE}")));
            }
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(token.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| io(&path, e))?;
                    return Ok(());
                }
                // Another process marked it at the same moment: read what it wrote.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&path, e)),
            }
        }
    }

    /// Whether `id` is a record of the segments (else a row of the journal table).
    pub(crate) fn holds(&self, id: i64) -> bool {
        place_of(id).is_some_and(|(number, _)| number >= self.first)
    }

    fn path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{number:010}.log"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Active>> {
        // Every step leaves the state consistent: a panic elsewhere cannot leave it torn.
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The segment numbers present, ascending.
    fn segments(&self) -> Result<Vec<u64>, DbError> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io(&self.dir, e))?;
            let name = entry.file_name();
            let number = name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(number) = number.filter(|n| *n >= self.first) {
                out.push(number);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// A new segment, numbered above every one present (another process may be creating
    /// one at the same time: each takes a number of its own).
    fn create(&self) -> Result<Active, DbError> {
        let mut number = self
            .segments()?
            .last()
            .map_or(self.first, |n| n.saturating_add(1));
        loop {
            if number > MAX_SEGMENT {
                return Err(io(
                    &self.dir,
                    std::io::Error::other("no segment number left below 2^17"),
                ));
            }
            let path = self.path(number);
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => {
                    // The new name on disk too (once per segment).
                    if let Ok(dir) = File::open(&self.dir) {
                        let _ = dir.sync_all();
                    }
                    return Ok(Active {
                        number,
                        file,
                        end: 0,
                        dirty: false,
                        buf: Vec::new(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => number += 1,
                Err(e) => return Err(io(&path, e)),
            }
        }
    }

    /// Appends `group` (written at `at`, by cluster node `node`) in one write; returns the
    /// records' ids, in order. On an error nothing of the group is kept.
    pub(crate) fn append(
        &self,
        at: &str,
        node: Option<&str>,
        group: &[&Entry],
    ) -> Result<Vec<i64>, DbError> {
        let mut guard = self.lock();
        let active = match &mut *guard {
            Some(active) => active,
            slot => slot.insert(self.create()?),
        };
        // The segment's path only for an error (not built per group).
        let failed = |number: u64, e: std::io::Error| io(&self.path(number), e);
        let mut buf = std::mem::take(&mut active.buf);
        buf.clear();
        let mut ids = Vec::with_capacity(group.len());
        for e in group {
            let offset = u64::try_from(buf.len())
                .ok()
                .and_then(|n| active.end.checked_add(n));
            let id = offset.and_then(|offset| id_of(active.number, offset));
            let Some(id) = id else {
                return Err(failed(
                    active.number,
                    std::io::Error::other("segment offset out of range"),
                ));
            };
            encode(&mut buf, at, node, e).map_err(|e| failed(active.number, e))?;
            ids.push(id);
        }
        let written = active.file.write_all(&buf);
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        active.buf = buf;
        if let Err(e) = written {
            // Cut what part of the group reached the file (a full disk); when even that
            // fails, the next group starts a new segment.
            let error = failed(active.number, e);
            if active.file.set_len(active.end).is_err() {
                *guard = None;
            }
            return Err(error);
        }
        active.end = active.end.saturating_add(len);
        active.dirty = true;
        if active.end >= self.segment_bytes {
            // Closed: synced off the runtime's threads, the next group starts a new one.
            if let Some(full) = guard.take() {
                sync_later(full.file);
            }
        }
        Ok(ids)
    }

    /// Puts what was written since the last call on disk (the active segment's data), off
    /// the runtime's threads. Called every second.
    pub(crate) fn sync(&self) {
        let mut guard = self.lock();
        let Some(active) = guard.as_mut().filter(|a| a.dirty) else {
            return;
        };
        match active.file.try_clone() {
            Ok(file) => {
                active.dirty = false;
                sync_later(file);
            }
            Err(e) => tracing::warn!("journal: cannot sync segment {}: {e}", active.number),
        }
    }

    /// The records of `ids` (ascending), each read at its place. A record that cannot be
    /// read (lost to a power failure before it was on disk) is skipped and logged.
    pub(crate) fn read(&self, ids: &[i64]) -> Result<Vec<Record>, DbError> {
        let mut out = Vec::with_capacity(ids.len());
        // The segment open now: its number, its path and its reader.
        let mut open: Option<(u64, PathBuf, BufReader<File>)> = None;
        for &id in ids {
            let Some((number, offset)) = place_of(id).filter(|_| self.holds(id)) else {
                continue;
            };
            if open.as_ref().map(|(n, _, _)| *n) != Some(number) {
                let path = self.path(number);
                match File::open(&path) {
                    Ok(file) => open = Some((number, path, BufReader::new(file))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        tracing::warn!(id, "journal: segment {} is missing", path.display());
                        open = None;
                        continue;
                    }
                    Err(e) => return Err(io(&path, e)),
                }
            }
            let Some((_, path, reader)) = open.as_mut() else {
                continue;
            };
            reader
                .seek(SeekFrom::Start(offset))
                .map_err(|e| io(path, e))?;
            match next(reader).map_err(|e| io(path, e))? {
                Some(Decoded::Record(fields)) => out.push(fields.with_id(id)),
                _ => tracing::warn!(id, "journal: record unreadable (lost or torn)"),
            }
        }
        Ok(out)
    }

    /// Every record after id `after` that `keep` keeps, in order: the segments from the one
    /// of `after` on, each up to its end or its first unreadable record (a torn tail).
    pub(crate) fn scan_after(
        &self,
        after: i64,
        mut keep: impl FnMut(&Record) -> bool,
    ) -> Result<Vec<Record>, DbError> {
        let from = if self.holds(after) {
            place_of(after)
        } else {
            None
        };
        let mut out = Vec::new();
        for number in self.segments()? {
            let (start, skip_first) = match from {
                Some((n, _)) if number < n => continue,
                Some((n, offset)) if number == n => (offset, true),
                _ => (0, false),
            };
            let path = self.path(number);
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path, e)),
            };
            let mut reader = BufReader::with_capacity(1 << 16, file);
            reader
                .seek(SeekFrom::Start(start))
                .map_err(|e| io(&path, e))?;
            let mut offset = start;
            let mut first = true;
            loop {
                let at = offset;
                match next(&mut reader).map_err(|e| io(&path, e))? {
                    Some(Decoded::Record(fields)) => {
                        offset = offset.saturating_add(fields.len);
                        let skip = first && skip_first;
                        first = false;
                        if skip {
                            continue;
                        }
                        let Some(id) = id_of(number, at) else {
                            break;
                        };
                        let record = fields.with_id(id);
                        if keep(&record) {
                            out.push(record);
                        }
                    }
                    Some(Decoded::Torn) => {
                        tracing::warn!(
                            segment = number,
                            offset = at,
                            "journal: the segment's tail is unreadable (torn) and ignored"
                        );
                        break;
                    }
                    None => break,
                }
            }
        }
        Ok(out)
    }
}

/// Syncs `file`'s data to disk on a blocking thread (inline when no runtime runs).
fn sync_later(file: File) {
    let sync = move || {
        if let Err(e) = file.sync_data() {
            tracing::warn!("journal: syncing a segment failed: {e}");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(sync)),
        Err(_) => sync(),
    }
}

/// Appends `e`'s record to `buf`.
fn encode(buf: &mut Vec<u8>, at: &str, node: Option<&str>, e: &Entry) -> std::io::Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    buf.push(u8::from(node.is_some()));
    let texts = [
        at,
        e.charger.as_str(),
        e.version,
        e.action,
        e.request.as_str(),
        e.response.as_str(),
    ];
    for text in texts.into_iter().chain(node) {
        let len = u32::try_from(text.len()).map_err(|_| too_large())?;
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(text.as_bytes());
    }
    let payload = buf.len() - start - HEADER;
    if payload > MAX_RECORD {
        buf.truncate(start);
        return Err(too_large());
    }
    let len = u32::try_from(payload).map_err(|_| too_large())?;
    let crc = crc32fast::hash(&buf[start + HEADER..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn too_large() -> std::io::Error {
    std::io::Error::other(format!("a journal record above {MAX_RECORD} bytes"))
}

/// A record's fields, before its id is known.
struct Fields {
    texts: [String; 6],
    node: Option<String>,
    /// The record's size in the file, header included.
    len: u64,
}

impl Fields {
    fn with_id(self, id: i64) -> Record {
        let [at, charger, version, action, request, response] = self.texts;
        Record {
            id,
            charger,
            version,
            action,
            request,
            response,
            at,
            node: self.node,
        }
    }
}

enum Decoded {
    Record(Fields),
    /// Short, too long, or its CRC or texts do not check: the readable part ends here.
    Torn,
}

/// Reads the next record (`None`: the end of the segment, exactly).
fn next(reader: &mut impl Read) -> std::io::Result<Option<Decoded>> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match reader.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER {
        return Ok(Some(Decoded::Torn));
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    let Ok(len) = usize::try_from(len) else {
        return Ok(Some(Decoded::Torn));
    };
    if len > MAX_RECORD {
        return Ok(Some(Decoded::Torn));
    }
    // Read through `take`: a corrupt length cannot allocate more than the file holds.
    let mut payload = Vec::new();
    reader
        .by_ref()
        .take(u64::try_from(len).unwrap_or(u64::MAX))
        .read_to_end(&mut payload)?;
    if payload.len() < len || crc32fast::hash(&payload) != crc {
        return Ok(Some(Decoded::Torn));
    }
    Ok(Some(match decode(&payload) {
        Some((texts, node)) => Decoded::Record(Fields {
            texts,
            node,
            len: u64::try_from(HEADER + len).unwrap_or(u64::MAX),
        }),
        None => Decoded::Torn,
    }))
}

/// A payload's texts and node.
fn decode(payload: &[u8]) -> Option<([String; 6], Option<String>)> {
    let (&flag, mut rest) = payload.split_first()?;
    let mut text = || -> Option<String> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        if tail.len() < len {
            return None;
        }
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        String::from_utf8(bytes.to_vec()).ok()
    };
    let texts = [text()?, text()?, text()?, text()?, text()?, text()?];
    let node = match flag {
        0 => None,
        1 => Some(text()?),
        _ => return None,
    };
    rest.is_empty().then_some((texts, node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(charger: &str, n: usize) -> Entry {
        Entry {
            charger: charger.to_owned(),
            version: "2.0.1",
            action: "TransactionEvent",
            request: format!("{{\"seqNo\":{n},\"é\":\"ü\"}}"),
            response: "{}".to_owned(),
        }
    }

    fn journal(dir: &Path) -> JournalFile {
        JournalFile::open(dir.join("j.journal"), 0, "db-1").expect("open")
    }

    /// Records come back as written, by id and by scan, from several groups and two runs
    /// (each run a segment of its own); a scan starts after the id it is given.
    #[test]
    fn records_read_back_by_id_and_by_scan() {
        let dir = tempfile::tempdir().expect("dir");
        let entries: Vec<Entry> = (0..10)
            .map(|n| entry(&format!("CP-{}", n % 3), n))
            .collect();
        let refs: Vec<&Entry> = entries.iter().collect();
        let first = journal(dir.path());
        let mut ids = first.append("2030-01-01", None, &refs[..4]).expect("group");
        ids.extend(
            first
                .append("2030-01-02", Some("node-a"), &refs[4..6])
                .expect("group"),
        );
        drop(first);
        let second = journal(dir.path());
        ids.extend(
            second
                .append("2030-01-03", None, &refs[6..])
                .expect("group"),
        );
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().all(|&id| second.holds(id) && id < 1 << 53));
        assert_eq!(
            place_of(ids[6]).map(|p| p.0),
            place_of(ids[0]).map(|p| p.0 + 1)
        );

        let read = second.read(&ids).expect("read");
        assert_eq!(read.len(), 10);
        for ((record, e), id) in read.iter().zip(&entries).zip(&ids) {
            assert_eq!(record.id, *id);
            assert_eq!(
                (record.charger.as_str(), record.request.as_str()),
                (e.charger.as_str(), e.request.as_str())
            );
        }
        assert_eq!(read[4].node.as_deref(), Some("node-a"));
        assert_eq!(read[4].at, "2030-01-02");
        assert_eq!(read[9].node, None);

        let all = second.scan_after(0, |_| true).expect("scan");
        assert_eq!(all, read);
        let later = second
            .scan_after(ids[4], |r| r.charger == "CP-0")
            .expect("scan");
        let expected: Vec<i64> = read[5..]
            .iter()
            .filter(|r| r.charger == "CP-0")
            .map(|r| r.id)
            .collect();
        assert_eq!(later.iter().map(|r| r.id).collect::<Vec<_>>(), expected);
    }

    /// A torn tail (a power failure mid-write) and a flipped byte each end what is read of
    /// their segment; the next run writes a segment of its own, read after them.
    #[test]
    fn a_torn_or_corrupt_tail_is_ignored_and_the_next_run_goes_on() {
        let dir = tempfile::tempdir().expect("dir");
        let entries: Vec<Entry> = (0..3).map(|n| entry("CP", n)).collect();
        let refs: Vec<&Entry> = entries.iter().collect();
        let j = journal(dir.path());
        let ids = j.append("t", None, &refs).expect("group");
        drop(j);
        let (number, _) = place_of(ids[2]).expect("place");
        let path = dir
            .path()
            .join("j.journal")
            .join(format!("{number:010}.log"));
        // The last record loses its end.
        let len = std::fs::metadata(&path).expect("meta").len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open")
            .set_len(len - 3)
            .expect("cut");
        let j = journal(dir.path());
        let scanned = j.scan_after(0, |_| true).expect("scan");
        assert_eq!(scanned.iter().map(|r| r.id).collect::<Vec<_>>(), ids[..2]);
        assert_eq!(
            j.read(&ids).expect("read").len(),
            2,
            "the torn one is skipped"
        );
        // The second record's payload is damaged: the segment ends before it.
        let mut bytes = std::fs::read(&path).expect("read");
        let (_, second) = place_of(ids[1]).expect("place");
        let at = usize::try_from(second).expect("offset") + HEADER + 3;
        bytes[at] ^= 0x55;
        std::fs::write(&path, &bytes).expect("write");
        let more = j.append("t", None, &refs[..1]).expect("next run");
        assert!(more[0] > ids[2]);
        let scanned = j.scan_after(0, |_| true).expect("scan");
        assert_eq!(
            scanned.iter().map(|r| r.id).collect::<Vec<_>>(),
            [ids[0], more[0]]
        );
    }

    /// Segments are numbered above the journal table's ids; a segment is closed once full;
    /// ids of the table are not the segments'.
    #[test]
    fn segments_start_above_the_table_and_close_when_full() {
        let dir = tempfile::tempdir().expect("dir");
        let j = JournalFile::open(dir.path().join("j.journal"), 5 << SHIFT, "db-1")
            .expect("open")
            .with_segment_bytes(256 << 10);
        assert!(!j.holds(5 << SHIFT) && !j.holds(12) && !j.holds(-1));
        let big = Entry {
            request: "x".repeat(1 << 10),
            ..entry("CP", 0)
        };
        let group: Vec<&Entry> = std::iter::repeat_n(&big, 64).collect();
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.extend(j.append("t", None, &group).expect("group"));
        }
        let numbers: Vec<u64> = ids
            .iter()
            .filter_map(|&id| place_of(id))
            .map(|p| p.0)
            .collect();
        assert_eq!(numbers.first(), Some(&6), "above the table's ids");
        assert_eq!(numbers.last(), Some(&7), "the first closed once full");
        assert_eq!(j.segments().expect("list"), [6, 7]);
        j.sync();
        assert_eq!(j.read(&ids[255..257]).expect("read").len(), 2);
    }

    /// A directory is its database's: another database's token, or segments without a
    /// token, are refused (never replayed into the wrong database); the same token opens.
    #[test]
    fn another_databases_segments_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let small = entry("CP", 1);
        journal(dir.path())
            .append("t", None, &[&small])
            .expect("group");
        let other = JournalFile::open(dir.path().join("j.journal"), 0, "db-2");
        let why = other.expect_err("another database").to_string();
        assert!(why.contains("not this database's journal"), "{why}");
        assert!(JournalFile::open(dir.path().join("j.journal"), 0, "db-1").is_ok());
        std::fs::remove_file(dir.path().join("j.journal").join(TOKEN_FILE)).expect("rm");
        let why = JournalFile::open(dir.path().join("j.journal"), 0, "db-1")
            .expect_err("no token")
            .to_string();
        assert!(why.contains("holds segments and no DATABASE"), "{why}");
        // An empty directory is taken.
        let empty = JournalFile::open(dir.path().join("new.journal"), 0, "db-3");
        assert!(empty.is_ok());
    }

    /// A record above the bound is refused and nothing of its group is written.
    #[test]
    fn a_record_too_large_is_refused_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let j = journal(dir.path());
        let small = entry("CP", 1);
        let huge = Entry {
            request: "x".repeat(MAX_RECORD + 1),
            ..entry("CP", 2)
        };
        assert!(j.append("t", None, &[&small, &huge]).is_err());
        let ids = j.append("t", None, &[&small]).expect("next");
        let all = j.scan_after(0, |_| true).expect("scan");
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    }
}
