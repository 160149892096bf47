//! Authorization: online, from the cache, or by the offline rules.

use super::*;

impl Station {
    // ----- authorization -----

    /// What the cache says of `token`: whether it may charge (an entry past its expiry may
    /// not) and its group.
    pub(crate) fn cache_lookup_known(
        &self,
        token: &str,
        now: Instant,
    ) -> Option<local_list::Known> {
        if !self.settings.flag(Setting::AuthCacheEnabled) {
            return None;
        }
        let e = self.cache.get(token)?;
        let expired = e.expiry.is_some_and(|x| x <= self.cfg.time.wall(now));
        Some(local_list::Known {
            accepted: e.accepted && !expired,
            group: e.group.clone(),
        })
    }

    /// The group of an idTagInfo / idTokenInfo (1.6 `parentIdTag`, 2.x `groupIdToken`).
    pub(crate) fn group_of(&self, info: &Value) -> Option<String> {
        if self.v16() {
            text(info, "parentIdTag")
        } else {
            info.get("groupIdToken").and_then(|g| text(g, "idToken"))
        }
    }

    /// Records an idTagInfo / idTokenInfo in the cache (not for a token of the local list,
    /// 1.6 §3.5 and 2.x block C: the list has priority); returns whether it is Accepted.
    pub(crate) fn update_cache(&mut self, token: &str, info: &Value) -> bool {
        let accepted = text(info, "status").as_deref() == Some("Accepted");
        let listed = self.local_list_enabled() && self.local_list.entries.contains_key(token);
        if self.settings.flag(Setting::AuthCacheEnabled) && self.cfg.auth_cache_size > 0 && !listed
        {
            let expiry = text(info, "expiryDate")
                .or_else(|| text(info, "cacheExpiryDateTime"))
                .and_then(|t| t.parse().ok());
            let group = self.group_of(info);
            if self.cache.len() >= self.cfg.auth_cache_size && !self.cache.contains_key(token) {
                if let Some(k) = self.cache.keys().next().cloned() {
                    self.cache.remove(&k);
                }
            }
            self.cache.insert(
                token.to_owned(),
                CacheEntry {
                    accepted,
                    expiry,
                    group,
                },
            );
        }
        accepted
    }

    pub(crate) fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Handles a presented token (or a remote start): stops the transaction it started, or
    /// authorizes it (online, from the cache, or by the offline rules).
    pub(crate) fn present(
        &mut self,
        now: Instant,
        evse: Option<u32>,
        token: String,
        token_type: String,
        remote_start_id: Option<i32>,
        remote: bool,
    ) {
        if !remote {
            let owner = self
                .evses
                .iter()
                .find(|e| {
                    evse.is_none_or(|id| id == e.id)
                        && e.tx.as_ref().is_some_and(|t| t.token == token)
                })
                .map(|e| e.id);
            if let Some(id) = owner {
                self.stop_tx(now, id, Stop::LOCAL, Some(token));
                return;
            }
        }
        let auth = Auth {
            token,
            token_type,
            remote_start_id,
            remote,
            group: None,
            reservation: None,
        };
        let needs_online = !remote || self.settings.flag(Setting::AuthorizeRemoteStart);
        if !needs_online {
            self.grant(now, evse, auth);
            return;
        }
        if self.ep.is_some() && self.boot == BootState::Waiting {
            // The boot answer is on its way: decide once it is known.
            self.deferred.push((evse, auth));
            return;
        }
        if self.accepted() {
            // 1.6 §3.5 / 2.x block C: a token valid in the local list or the cache starts at
            // once; the list decides before the cache.
            let known = self.local_lookup(&auth.token, now);
            if self.settings.flag(Setting::LocalPreAuthorize)
                && known.as_ref().is_some_and(|k| k.accepted)
            {
                self.events.push_back(StationEvent::Authorization {
                    id_token: auth.token.clone(),
                    accepted: true,
                });
                let mut auth = auth;
                auth.group = known.and_then(|k| k.group);
                self.grant(now, evse, auth);
                return;
            }
            let p = if self.v16() {
                json!({ "idTag": auth.token })
            } else {
                json!({ "idToken": { "idToken": auth.token, "type": auth.token_type } })
            };
            let pending = Pending::Authorize {
                evse,
                auth: auth.clone(),
            };
            if !self.call(now, "Authorize", &p, pending) {
                // The queue is full: decide as if offline.
                self.authorize_offline(now, evse, auth);
            }
        } else {
            self.authorize_offline(now, evse, auth);
        }
    }

    pub(crate) fn run_deferred(&mut self, now: Instant) {
        for (evse, auth) in std::mem::take(&mut self.deferred) {
            if self.accepted() {
                self.present(
                    now,
                    evse,
                    auth.token,
                    auth.token_type,
                    auth.remote_start_id,
                    auth.remote,
                );
            } else {
                self.authorize_offline(now, evse, auth);
            }
        }
    }

    /// Offline: the local list, then the cache (with `LocalAuthorizeOffline`); a token either
    /// knows as not accepted is refused; an unknown one follows `OfflineTxForUnknownId`.
    pub(crate) fn authorize_offline(&mut self, now: Instant, evse: Option<u32>, mut auth: Auth) {
        let known = self.local_lookup(&auth.token, now);
        let accepted = match &known {
            Some(k) if self.settings.flag(Setting::LocalAuthorizeOffline) => k.accepted,
            Some(k) if !k.accepted => false,
            _ => self.settings.flag(Setting::OfflineTxForUnknownId),
        };
        if auth.group.is_none() {
            auth.group = known.and_then(|k| k.group);
        }
        self.events.push_back(StationEvent::Authorization {
            id_token: auth.token.clone(),
            accepted,
        });
        if accepted {
            self.grant(now, evse, auth);
        }
    }

    /// The EVSE a new authorization goes to: the one given, else a plugged free one, else
    /// any free one.
    pub(crate) fn free_evse(&self, evse: Option<u32>) -> Option<u32> {
        let free =
            |e: &&Evse| e.tx.is_none() && !e.inoperative && !e.faulted && !self.station_inoperative;
        match evse {
            Some(id) => self
                .evses
                .iter()
                .find(|e| e.id == id)
                .filter(free)
                .map(|e| e.id),
            None => self
                .evses
                .iter()
                .filter(free)
                .find(|e| e.plugged && e.auth.is_none())
                .or_else(|| self.evses.iter().filter(free).find(|e| e.auth.is_none()))
                .map(|e| e.id),
        }
    }

    pub(crate) fn grant(&mut self, now: Instant, evse: Option<u32>, mut auth: Auth) {
        if auth.group.is_none() {
            auth.group = self.local_lookup(&auth.token, now).and_then(|k| k.group);
        }
        // Reservations decide which EVSE the token may use ([`reservations`]).
        let Some((id, reservation)) = self.choose_evse(evse, &auth.token, auth.group.as_deref())
        else {
            if self.free_evse(evse).is_some() {
                // A free EVSE, kept for someone else.
                self.events.push_back(StationEvent::ReservationRefused {
                    id_token: auth.token.clone(),
                });
            }
            return;
        };
        auth.reservation = reservation;
        // ConnectionTimeOut is at least 1 s and at most a day (Settings::duration).
        let timeout = self.settings.duration(Setting::ConnectionTimeout);
        let Some(e) = self.evse_mut(id) else { return };
        e.auth = Some(auth);
        e.auth_deadline = (!e.plugged && !timeout.is_zero()).then(|| deadline(now, timeout));
        self.try_start(now, id, true);
    }
}
