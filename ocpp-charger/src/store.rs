//! Durable storage for the outbox and the station's persistent state.
//!
//! The [`Station`](crate::Station) is sans-IO: it never touches its store. It hands out the
//! writes to make as [`Persist`] work ([`Station::poll_persist`](crate::Station::poll_persist)),
//! the driver performs them on a [`Store`] away from the async runtime's threads (the `ws`
//! driver uses `tokio::task::spawn_blocking`), and reports each one back
//! ([`Station::handle_persisted`](crate::Station::handle_persisted)). Every
//! transaction-related message is appended *before* it is transmitted: the station holds it
//! back until its [`Persist::Append`] is reported done. It is removed only when the central
//! system has confirmed it (or it was given up), so a disconnect or a process restart loses
//! nothing. Alongside the messages the store keeps one small state document (ongoing
//! transactions, 1.6 transaction id mapping, counters, changed configuration); the station
//! marks it dirty on every change and asks for one rewrite per batch of work.
//!
//! At start-up the application loads what the store holds with [`Saved::load`] and builds the
//! station from it ([`Station::new`](crate::Station::new)).
//!
//! - [`MemoryStore`]: in memory; clones share the same contents, so a test can drop a station
//!   and build a new one from the same store.
//! - [`FileStore`]: one file per queued message in a directory, each written to a temporary
//!   file, `fsync`ed and renamed into place (then the directory is `fsync`ed), so a crash at any
//!   point leaves either the whole message or none of it. Removal unlinks the file. File names
//!   carry the message's sequence number, so loading sorts them back into order.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// One queued outgoing message of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Order of the message in the outbox (strictly increasing).
    pub seq: u64,
    /// The OCPP action, e.g. `"StartTransaction"`.
    pub action: String,
    /// The payload as JSON text. For 1.6 messages of a transaction whose id the central
    /// system has not issued yet, `transactionId` is filled in when the message is sent.
    pub payload: String,
    /// The station-local key of the transaction this message belongs to (1.6 id patching).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_tx: Option<u64>,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O error of the file store.
    #[error("store I/O error: {0}")]
    Io(#[from] io::Error),
    /// A stored file that does not parse.
    #[error("corrupt stored record {0}")]
    Corrupt(String),
    /// The store cannot be reached any more (e.g. the thread writing to it panicked).
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// One write the station asks its driver to make durable, in order
/// ([`Station::poll_persist`](crate::Station::poll_persist)). Perform it with
/// [`Persist::apply`] and report it with
/// [`Station::handle_persisted`](crate::Station::handle_persisted).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Persist {
    /// Add this outbox message ([`Store::append`]). The station does not transmit it before
    /// this write is reported.
    Append(StoredMessage),
    /// Remove the outbox message with this sequence number ([`Store::remove`]).
    Remove(u64),
    /// Replace the state document ([`Store::save_state`]). It describes the station when the
    /// work was polled, so it is never older than the message writes before it.
    State(String),
}

impl Persist {
    /// Performs this write on `store` (blocking: call it where blocking is allowed).
    pub fn apply(&self, store: &mut dyn Store) -> Result<(), StoreError> {
        match self {
            Persist::Append(message) => store.append(message),
            Persist::Remove(seq) => store.remove(*seq),
            Persist::State(state) => store.save_state(state),
        }
    }
}

/// What a [`Store`] held when the process started: the queued outbox messages and the state
/// document, read once by the application before it builds the station
/// ([`Station::new`](crate::Station::new)). [`Saved::default`] is a station with no past.
#[derive(Debug, Default)]
pub struct Saved {
    pub(crate) messages: Vec<StoredMessage>,
    pub(crate) state: crate::station::StateDoc,
}

impl Saved {
    /// Reads `store` (blocking). Fails when the store cannot be read or its state document
    /// does not parse.
    pub fn load(store: &mut dyn Store) -> Result<Saved, StoreError> {
        let state = match store.load_state()? {
            Some(text) => {
                serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("state.json".into()))?
            }
            None => crate::station::StateDoc::default(),
        };
        let mut messages = store.load_messages()?;
        messages.sort_by_key(|m| m.seq);
        Ok(Saved { messages, state })
    }

    /// The queued outbox messages, in order.
    pub fn messages(&self) -> &[StoredMessage] {
        &self.messages
    }
}

/// Durable, ordered storage of outbox messages plus one state document.
pub trait Store: Send {
    /// Every queued message, in `seq` order.
    fn load_messages(&mut self) -> Result<Vec<StoredMessage>, StoreError>;
    /// Adds a message durably (it must survive a crash once this returns).
    fn append(&mut self, message: &StoredMessage) -> Result<(), StoreError>;
    /// Removes the message with `seq` (confirmed or given up).
    fn remove(&mut self, seq: u64) -> Result<(), StoreError>;
    /// The state document last saved, if any.
    fn load_state(&mut self) -> Result<Option<String>, StoreError>;
    /// Replaces the state document durably.
    fn save_state(&mut self, state: &str) -> Result<(), StoreError>;
}

#[derive(Debug, Default)]
struct MemoryInner {
    messages: BTreeMap<u64, StoredMessage>,
    state: Option<String>,
}

/// An in-memory [`Store`]. Clones share their contents (like a disk that outlives the
/// process), which is what restart tests need.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryInner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn load_messages(&mut self) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(self.lock().messages.values().cloned().collect())
    }
    fn append(&mut self, message: &StoredMessage) -> Result<(), StoreError> {
        self.lock().messages.insert(message.seq, message.clone());
        Ok(())
    }
    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        self.lock().messages.remove(&seq);
        Ok(())
    }
    fn load_state(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.lock().state.clone())
    }
    fn save_state(&mut self, state: &str) -> Result<(), StoreError> {
        self.lock().state = Some(state.to_owned());
        Ok(())
    }
}

/// A [`Store`] in a directory: `msg-<seq>.json` per queued message and `state.json`, each
/// written atomically (temporary file, `fsync`, rename, directory `fsync`).
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    sync: bool,
}

impl FileStore {
    /// Opens (creating it if needed) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        Ok(FileStore { dir, sync: true })
    }

    /// Skips `fsync` (faster, for simulators; a power loss may then lose the last writes,
    /// a process crash still does not).
    pub fn without_fsync(mut self) -> FileStore {
        self.sync = false;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn message_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("msg-{seq:020}.json"))
    }

    fn write_atomic(&self, name: &Path, contents: &[u8]) -> io::Result<()> {
        let tmp = name.with_extension("tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(contents)?;
            if self.sync {
                f.sync_all()?;
            }
        }
        fs::rename(&tmp, name)?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> io::Result<()> {
        if self.sync {
            // Makes the rename / unlink itself durable (POSIX).
            if let Ok(d) = fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Store for FileStore {
    fn load_messages(&mut self) -> Result<Vec<StoredMessage>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with("msg-") && name.ends_with(".json")) {
                continue;
            }
            let text = fs::read_to_string(entry.path())?;
            let msg: StoredMessage =
                serde_json::from_str(&text).map_err(|_| StoreError::Corrupt(name.to_owned()))?;
            out.push(msg);
        }
        out.sort_by_key(|m| m.seq);
        Ok(out)
    }

    fn append(&mut self, message: &StoredMessage) -> Result<(), StoreError> {
        let text = serde_json::to_vec(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.write_atomic(&self.message_path(message.seq), &text)?;
        Ok(())
    }

    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        match fs::remove_file(self.message_path(seq)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.sync_dir()?;
        Ok(())
    }

    fn load_state(&mut self) -> Result<Option<String>, StoreError> {
        match fs::read_to_string(self.dir.join("state.json")) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn save_state(&mut self, state: &str) -> Result<(), StoreError> {
        self.write_atomic(&self.dir.join("state.json"), state.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64) -> StoredMessage {
        StoredMessage {
            seq,
            action: "MeterValues".into(),
            payload: format!(r#"{{"n":{seq}}}"#),
            local_tx: Some(1),
        }
    }

    #[test]
    fn file_store_keeps_order_across_reopen() {
        let dir = std::env::temp_dir().join(format!("ocpp-charger-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut s = FileStore::open(&dir).unwrap();
        for seq in [3, 1, 12, 2] {
            s.append(&msg(seq)).unwrap();
        }
        s.remove(2).unwrap();
        s.save_state("{\"a\":1}").unwrap();
        let mut again = FileStore::open(&dir).unwrap();
        let seqs: Vec<u64> = again
            .load_messages()
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, [1, 3, 12]);
        assert_eq!(again.load_state().unwrap().as_deref(), Some("{\"a\":1}"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn memory_store_clones_share() {
        let mut a = MemoryStore::new();
        let mut b = a.clone();
        a.append(&msg(1)).unwrap();
        assert_eq!(b.load_messages().unwrap().len(), 1);
        b.remove(1).unwrap();
        assert!(a.is_empty());
    }
}
