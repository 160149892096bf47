//! The local authorization list (1.6 Local Auth List Management profile, §3.5, §5.10 and
//! §5.15; 2.x functional block D): SendLocalList, GetLocalListVersion, and the lookups the
//! authorization rules make in it.
//!
//! The list is part of the state document (see [`crate::store`]), so it survives a restart.
//! It holds at most [`StationConfig::local_list`]'s `max_entries` tokens (1.6
//! `LocalAuthListMaxLength`) and one SendLocalList carries at most `per_message` of them (1.6 `SendLocalListMaxLength`,
//! 2.x `LocalAuthListCtrlr.ItemsPerMessage`); an update that would break either bound is
//! answered `Failed` and changes nothing.

use super::*;

/// The default bound of the local list: 1,000 tokens.
pub const DEFAULT_LOCAL_LIST_MAX: usize = 1000;
/// The default bound of one SendLocalList: 250 tokens.
pub const DEFAULT_SEND_LOCAL_LIST_MAX: usize = 250;

/// One token of the local list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ListEntry {
    /// `Accepted`, `Blocked`, `Expired`, `Invalid`, ... as the version spells it.
    pub(crate) status: String,
    /// After this, the entry counts as `Expired` (1.6 `expiryDate`, 2.x
    /// `cacheExpiryDateTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expiry: Option<DateTime<Utc>>,
    /// 1.6 `parentIdTag`, 2.x `groupIdToken.idToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) group: Option<String>,
}

/// The list and its version, as persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LocalListDoc {
    /// The version of the list (0: empty, never set).
    #[serde(default)]
    pub(crate) version: i32,
    /// Token -> entry.
    #[serde(default)]
    pub(crate) entries: BTreeMap<String, ListEntry>,
}

/// What a list lookup found: whether the token may charge, and its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) accepted: bool,
    pub(crate) group: Option<String>,
}

/// The answer to a SendLocalList, version-neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateStatus {
    Accepted,
    Failed,
    NotSupported,
    VersionMismatch,
}

impl UpdateStatus {
    fn as_str(self, version: Version) -> &'static str {
        match self {
            UpdateStatus::Accepted => "Accepted",
            UpdateStatus::Failed => "Failed",
            // 2.x has no NotSupported: a disabled list fails the update.
            UpdateStatus::NotSupported if version != Version::V16 => "Failed",
            UpdateStatus::NotSupported => "NotSupported",
            UpdateStatus::VersionMismatch => "VersionMismatch",
        }
    }
}

/// Sets the read-only settings that show the bounds and the size of the list.
pub(crate) fn fill_settings(settings: &mut Settings, max: usize, per_message: usize) {
    settings.set_fixed("", "LocalAuthListMaxLength", None, &max.to_string());
    settings.set_fixed("", "SendLocalListMaxLength", None, &per_message.to_string());
    settings.set_fixed(
        "LocalAuthListCtrlr",
        "ItemsPerMessage",
        None,
        &per_message.to_string(),
    );
}

impl Station {
    /// Whether the local list is enabled.
    pub(crate) fn local_list_enabled(&self) -> bool {
        self.settings.flag(Setting::LocalAuthListEnabled)
    }

    /// The version GetLocalListVersion reports: 1.6 -1 when the list is disabled; 0 when
    /// the list is empty; else the version of the last update.
    pub fn local_list_version(&self) -> i32 {
        if !self.local_list_enabled() {
            return if self.v16() { -1 } else { 0 };
        }
        if self.local_list.entries.is_empty() {
            0
        } else {
            self.local_list.version
        }
    }

    /// How many tokens the local list holds.
    pub fn local_list_len(&self) -> usize {
        self.local_list.entries.len()
    }

    /// What the local list says of `token` (`None`: not in it, or the list is disabled). An
    /// entry past its expiry counts as not accepted.
    pub(crate) fn list_lookup(&self, token: &str, now: Instant) -> Option<Known> {
        if !self.local_list_enabled() {
            return None;
        }
        let e = self.local_list.entries.get(token)?;
        let expired = e.expiry.is_some_and(|x| x <= self.cfg.time.wall(now));
        Some(Known {
            accepted: e.status == "Accepted" && !expired,
            group: e.group.clone(),
        })
    }

    /// The local list first, then the cache (1.6 §3.5: the list has priority).
    pub(crate) fn local_lookup(&self, token: &str, now: Instant) -> Option<Known> {
        self.list_lookup(token, now)
            .or_else(|| self.cache_lookup_known(token, now))
    }

    /// Applies a SendLocalList (its payload as JSON) and says how it went.
    pub(crate) fn send_local_list(&mut self, request: &Value) -> UpdateStatus {
        let v16 = self.v16();
        if !self.local_list_enabled() {
            return UpdateStatus::NotSupported;
        }
        let version = int(request, if v16 { "listVersion" } else { "versionNumber" })
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0);
        let full = text(request, "updateType").as_deref() == Some("Full");
        let items = request
            .get("localAuthorizationList")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if items.len() > self.cfg.send_local_list_max {
            return UpdateStatus::Failed;
        }
        // 0 and -1 have a meaning of their own in GetLocalListVersion (1.6 §5.10): no
        // update carries them.
        if version <= 0 {
            return UpdateStatus::Failed;
        }
        if !full && version <= self.local_list_version() {
            return UpdateStatus::VersionMismatch;
        }
        let mut entries = if full {
            BTreeMap::new()
        } else {
            self.local_list.entries.clone()
        };
        for item in items {
            let token = if v16 {
                text(item, "idTag")
            } else {
                item.get("idToken").and_then(|t| text(t, "idToken"))
            };
            let Some(token) = token else {
                return UpdateStatus::Failed;
            };
            let info = item.get(if v16 { "idTagInfo" } else { "idTokenInfo" });
            match info {
                // An entry without its info removes the token (a Differential update; in a
                // Full one it is not added).
                None => {
                    entries.remove(&token);
                }
                Some(info) => {
                    let entry = ListEntry {
                        status: text(info, "status").unwrap_or_default(),
                        expiry: text(
                            info,
                            if v16 {
                                "expiryDate"
                            } else {
                                "cacheExpiryDateTime"
                            },
                        )
                        .and_then(|t| t.parse().ok()),
                        group: if v16 {
                            text(info, "parentIdTag")
                        } else {
                            info.get("groupIdToken").and_then(|g| text(g, "idToken"))
                        },
                    };
                    entries.insert(token, entry);
                }
            }
        }
        if entries.len() > self.cfg.local_list_max {
            return UpdateStatus::Failed;
        }
        // Tokens of the list are not kept in the cache as well (1.6 §3.5).
        for token in entries.keys() {
            self.cache.remove(token);
        }
        self.local_list = LocalListDoc { version, entries };
        let n = self.local_list.entries.len().to_string();
        self.settings
            .set_fixed("LocalAuthListCtrlr", "Entries", None, &n);
        self.save();
        UpdateStatus::Accepted
    }
}

/// The built-in SendLocalList of every version: the request read as JSON, the status answered
/// in the version's typed response.
pub(crate) fn send_local_list<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    let value = serde_json::to_value(&request).unwrap_or_default();
    let status = ctx.station.send_local_list(&value);
    status_response(status.as_str(ctx.station.cfg.version), "SendLocalList")
}

/// A response whose only required field is `status`.
pub(crate) fn status_response<R: serde::de::DeserializeOwned>(
    status: &str,
    action: &str,
) -> Result<R, crate::app::CallError> {
    serde_json::from_value(json!({ "status": status })).map_err(|_| {
        crate::app::CallError::new(
            ocpp_codec::ErrorCode::InternalError,
            format!("{status} is not an answer to {action}"),
        )
    })
}
