//! The chargers' local authorization lists, kept from the token table (`id_tokens`).
//!
//! - **Full push** ([`LocalLists::push_full`], `POST /api/chargers/{id}/local-list`): every
//!   token with its status, as version `n + 1` of the charger's list, in pieces of at most
//!   [`CHUNK`] tokens: the first a `Full` update, the others `Differential` updates, each
//!   one version further (a charger takes one SendLocalList of a bounded size: 1.6
//!   `SendLocalListMaxLength`, 2.x `ItemsPerMessage`). The version is stored per charger
//!   (table `local_list_versions`, migration 11) after each piece the charger accepted.
//!   From the first push on, the charger's list is *managed*.
//! - **Differential updates**: when a token is added, changed or removed through the API, every
//!   managed charger that is connected gets a `Differential` update of that token (removed:
//!   an entry without its info) as version `n + 1`, in a background task; a `VersionMismatch`
//!   or `Failed` answer is followed by a full push.
//! - **On connection** (and boot) a managed charger whose GetLocalListVersion differs from
//!   the stored version gets a full push: it missed updates while offline, or lost its list.
//! - One push at a time (a lock), so the versions of a charger never race. Which chargers
//!   are managed is kept in memory too (loaded at start), so a connection of an unmanaged
//!   charger costs no database read.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use ocpp_central::reservations::{ListEntry, ListUpdate, TokenInfo};
use ocpp_central::{BootState, CallError, ChargerHandle, Chargers, Event};
use serde::Serialize;
use sqlx::Row;

use super::db::{self, Db, DbError};

/// The most tokens one SendLocalList carries.
pub const CHUNK: usize = 100;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pushed {
    /// The charger's answer to the last SendLocalList sent (`Accepted`, `Failed`,
    /// `VersionMismatch`, 1.6 `NotSupported`).
    pub status: String,
    /// The version stored for the charger now.
    pub version: i64,
    /// Tokens sent.
    pub entries: usize,
    /// SendLocalLists sent.
    pub messages: usize,
}

/// A charger's list as the backend knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListState {
    /// The version last accepted by the charger (`null`: never pushed).
    pub version: Option<i64>,
    /// Tokens in the last full push.
    pub entries: Option<i64>,
    /// What the charger says now (GetLocalListVersion), when connected.
    pub charger_version: Option<i32>,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The charger did not answer.
    #[error("{0}")]
    Call(#[from] CallError),
}

/// The local lists (see the module docs).
#[derive(Debug)]
pub struct LocalLists {
    db: Db,
    chargers: Chargers,
    lock: tokio::sync::Mutex<()>,
    /// The chargers whose list is managed (a row in `local_list_versions`).
    managed: Mutex<HashSet<String>>,
}

impl LocalLists {
    /// Over `db`, reaching chargers through `chargers`; reads which chargers are managed.
    pub async fn load(db: Db, chargers: Chargers) -> Result<Arc<LocalLists>, DbError> {
        let mut managed = HashSet::new();
        for r in sqlx::query("SELECT charger FROM local_list_versions")
            .fetch_all(db.reader())
            .await?
        {
            managed.insert(r.try_get("charger")?);
        }
        Ok(Arc::new(LocalLists {
            db,
            chargers,
            lock: tokio::sync::Mutex::new(()),
            managed: Mutex::new(managed),
        }))
    }

    fn is_managed(&self, charger: &str) -> bool {
        self.managed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(charger)
    }

    /// Every managed charger as stored (any node of a cluster may have made it managed).
    pub async fn managed_stored(&self) -> Result<Vec<String>, DbError> {
        sqlx::query("SELECT charger FROM local_list_versions ORDER BY charger")
            .fetch_all(self.db.reader())
            .await?
            .iter()
            .map(|r| Ok(r.try_get("charger")?))
            .collect()
    }

    async fn stored(&self, charger: &str) -> Result<Option<(i64, i64)>, DbError> {
        let row =
            sqlx::query("SELECT version, entries FROM local_list_versions WHERE charger = $1")
                .bind(charger)
                .fetch_optional(self.db.writer())
                .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("version")?, r.try_get("entries")?)),
            None => None,
        })
    }

    async fn store(&self, charger: &str, version: i64, entries: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO local_list_versions (charger, version, entries, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (charger) DO UPDATE SET version = excluded.version,
                entries = excluded.entries, updated_at = excluded.updated_at",
        )
        .bind(charger)
        .bind(version)
        .bind(entries)
        .bind(db::ts(Utc::now()))
        .execute(self.db.writer())
        .await?;
        self.managed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(charger.to_owned());
        Ok(())
    }

    /// The stored version and, when connected, the charger's.
    pub async fn state(
        &self,
        charger: &str,
        handle: Option<&ChargerHandle>,
    ) -> Result<ListState, ListError> {
        let stored = self.stored(charger).await?;
        let charger_version = match handle.filter(|h| h.is_connected()) {
            Some(h) => Some(h.get_local_list_version().await?),
            None => None,
        };
        Ok(ListState {
            version: stored.map(|s| s.0),
            entries: stored.map(|s| s.1),
            charger_version,
        })
    }

    /// Sends the whole token table (see the module docs).
    pub async fn push_full(&self, handle: &ChargerHandle) -> Result<Pushed, ListError> {
        let _one = self.lock.lock().await;
        self.push_full_locked(handle).await
    }

    async fn push_full_locked(&self, handle: &ChargerHandle) -> Result<Pushed, ListError> {
        let tokens = self.db.tokens().await?;
        let entries: Vec<ListEntry> = tokens
            .iter()
            .map(|t| entry(&t.id_token, Some(&t.status)))
            .collect();
        let id = handle.identity().to_owned();
        let mut version = self.stored(&id).await?.map_or(0, |s| s.0);
        let mut pushed = Pushed {
            status: String::new(),
            version,
            entries: entries.len(),
            messages: 0,
        };
        let mut pieces: Vec<&[ListEntry]> = entries.chunks(CHUNK).collect();
        if pieces.is_empty() {
            pieces.push(&[]);
        }
        for (i, piece) in pieces.into_iter().enumerate() {
            let next = version.saturating_add(1).min(i64::from(i32::MAX));
            let kind = if i == 0 {
                ListUpdate::Full
            } else {
                ListUpdate::Differential
            };
            let answer = handle
                .send_local_list(i32::try_from(next).unwrap_or(i32::MAX), kind, piece)
                .await?;
            pushed.messages += 1;
            pushed.status = answer.status.clone();
            if !answer.is_accepted() {
                break;
            }
            version = next;
            self.store(
                &id,
                version,
                i64::try_from(entries.len()).unwrap_or(i64::MAX),
            )
            .await?;
            pushed.version = version;
        }
        Ok(pushed)
    }

    /// A token changed (`status` `None`: removed): every managed, connected charger gets a
    /// differential update, in the background.
    pub fn token_changed(self: &Arc<Self>, id_token: &str, status: Option<&str>) {
        let me = self.clone();
        let e = entry(id_token, status);
        tokio::spawn(async move {
            if let Err(err) = me.propagate(e).await {
                tracing::warn!("local list update failed: {err}");
            }
        });
    }

    async fn propagate(&self, e: ListEntry) -> Result<(), ListError> {
        let mut managed: Vec<String> = self
            .managed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        managed.sort();
        let _one = self.lock.lock().await;
        for charger in managed {
            let Some(h) = self.chargers.get(&charger).filter(|h| h.is_connected()) else {
                continue;
            };
            let Some((version, entries)) = self.stored(&charger).await? else {
                continue;
            };
            let next = version.saturating_add(1).min(i64::from(i32::MAX));
            let answer = h
                .send_local_list(
                    i32::try_from(next).unwrap_or(i32::MAX),
                    ListUpdate::Differential,
                    std::slice::from_ref(&e),
                )
                .await;
            match answer {
                Ok(a) if a.is_accepted() => self.store(&charger, next, entries).await?,
                Ok(_) => {
                    self.push_full_locked(&h).await?;
                }
                Err(err) => tracing::warn!("local list update of {charger} failed: {err}"),
            }
        }
        Ok(())
    }

    /// Follows connections: a managed charger whose list version differs is brought up to
    /// date (in the background).
    pub fn on_event(self: &Arc<Self>, charger: &ChargerHandle, event: &Event) {
        let sync = match event {
            Event::Connected { .. } => true,
            Event::Booted { state, .. } => *state == BootState::Accepted,
            _ => false,
        };
        if !sync || !self.is_managed(charger.identity()) {
            return;
        }
        let me = self.clone();
        let h = charger.clone();
        tokio::spawn(async move {
            if let Err(err) = me.sync(&h).await {
                tracing::warn!("local list sync of {} failed: {err}", h.identity());
            }
        });
    }

    async fn sync(&self, h: &ChargerHandle) -> Result<(), ListError> {
        let _one = self.lock.lock().await;
        let Some((version, _)) = self.stored(h.identity()).await? else {
            return Ok(());
        };
        let theirs = h.get_local_list_version().await?;
        if i64::from(theirs) != version {
            self.push_full_locked(h).await?;
        }
        Ok(())
    }
}

fn entry(id_token: &str, status: Option<&str>) -> ListEntry {
    ListEntry {
        id_token: id_token.to_owned(),
        token_type: None,
        info: status.map(|s| TokenInfo {
            status: s.to_owned(),
            expiry: None,
            group: None,
        }),
    }
}
