//! Reservations (1.6 Reservation profile, §5.1 and §5.13; 2.x functional block H):
//! ReserveNow, CancelReservation, the 2.x ReservationStatusUpdate, and the rule of who may
//! start on a reserved EVSE.
//!
//! - A reservation is for one EVSE (1.6 connector), or for any (1.6 connector 0 with
//!   `ReserveConnectorZeroSupported`, 2.x without `evseId` with
//!   `ReservationCtrlr.NonEvseSpecific`): then the station keeps as many EVSEs free as it holds
//!   such reservations, and shows the last free ones `Reserved`.
//! - At most one reservation per EVSE and, in all, at most as many as the station has EVSEs:
//!   a ReserveNow beyond is answered `Occupied` (or `Faulted` / `Unavailable` when that is
//!   why no EVSE is free). A ReserveNow with the id of a held reservation replaces it.
//! - Only the reserved token, or a token of the same group (1.6 `parentIdTag`, 2.x
//!   `groupIdToken`, learned from the Authorize answer, the local list or the cache), starts
//!   on the EVSE; the transaction carries the `reservationId` and ends the reservation.
//! - A reservation ends when used, cancelled, at its expiry (on the injected clock), or when
//!   its EVSE becomes Faulted or Unavailable. On 2.x an expiry is reported as
//!   ReservationStatusUpdate `Expired`, the end of a Faulted / Unavailable EVSE's as
//!   `Removed` (block H); at most [`MAX_PENDING_RESERVATION_UPDATES`] wait while
//!   offline.
//! - The reservations are part of the state document: they survive a restart.

use super::*;

/// The most ReservationStatusUpdates kept while the station cannot send them; beyond, the
/// oldest is dropped.
pub const MAX_PENDING_RESERVATION_UPDATES: usize = 64;

/// One reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reservation {
    /// The central system's `reservationId` (2.x `id`).
    pub(crate) id: i32,
    /// The EVSE (1.6 connector); 0: any.
    pub(crate) evse: u32,
    /// The reserved token.
    pub(crate) token: String,
    /// 1.6 `parentIdTag`, 2.x `groupIdToken.idToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) group: Option<String>,
    /// When it expires.
    pub(crate) expiry: DateTime<Utc>,
    /// (2.x) The connector type asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) connector_type: Option<String>,
}

/// The reservations and the status updates still to send, as persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ReservationDoc {
    #[serde(default)]
    pub(crate) held: Vec<Reservation>,
    /// (2.x) ReservationStatusUpdates to send: reservation id and status.
    #[serde(default)]
    pub(crate) updates: VecDeque<(i32, String)>,
}

/// A reservation as the central system describes it, version-neutral.
#[derive(Debug, Clone)]
pub(crate) struct ReserveRequest {
    pub(crate) reservation: Reservation,
    /// The EVSE id as sent (may be negative or unknown).
    pub(crate) evse: i64,
}

/// A snapshot of a held reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationInfo {
    /// The reservation id.
    pub id: i32,
    /// The EVSE (1.6 connector); 0: any EVSE.
    pub evse: u32,
    /// The reserved token.
    pub id_token: String,
    /// Its group (1.6 `parentIdTag`, 2.x `groupIdToken`).
    pub group: Option<String>,
    /// When it expires.
    pub expiry: DateTime<Utc>,
}

impl Station {
    /// The reservations the station holds.
    pub fn reservations(&self) -> Vec<ReservationInfo> {
        self.reservations
            .held
            .iter()
            .map(|r| ReservationInfo {
                id: r.id,
                evse: r.evse,
                id_token: r.token.clone(),
                group: r.group.clone(),
                expiry: r.expiry,
            })
            .collect()
    }

    fn usable(&self, e: &Evse) -> bool {
        e.tx.is_none() && !e.inoperative && !e.faulted && !self.station_inoperative
    }

    fn specific(&self, evse: u32) -> Option<&Reservation> {
        self.reservations.held.iter().find(|r| r.evse == evse)
    }

    fn any_evse_count(&self) -> usize {
        self.reservations
            .held
            .iter()
            .filter(|r| r.evse == 0)
            .count()
    }

    /// Free for anyone: usable, nobody on it, not reserved for someone.
    fn available(&self, e: &Evse) -> bool {
        self.usable(e) && e.auth.is_none() && !e.plugged && self.specific(e.id).is_none()
    }

    fn available_except(&self, evse: u32) -> usize {
        self.evses
            .iter()
            .filter(|e| e.id != evse && self.available(e))
            .count()
    }

    /// Whether the EVSE shows `Reserved`: reserved for someone, or one of the last free EVSEs
    /// kept for reservations of any EVSE.
    pub(crate) fn shows_reserved(&self, e: &Evse) -> bool {
        if self.specific(e.id).is_some() {
            return true;
        }
        let any = self.any_evse_count();
        any > 0 && self.available(e) && self.available_except(0) <= any
    }

    /// The EVSE `token` (of `group`) may use, and the reservation it uses: the one asked
    /// for when it is free and not kept for someone else; else (none asked for) the token's
    /// reserved EVSE, else a free one, a plugged one first. `None`: no EVSE for it.
    pub(crate) fn choose_evse(
        &self,
        evse: Option<u32>,
        token: &str,
        group: Option<&str>,
    ) -> Option<(u32, Option<i32>)> {
        let matches = |r: &Reservation| {
            r.token == token || (r.group.is_some() && r.group.as_deref() == group)
        };
        let any_count = self.any_evse_count();
        let any_match = self
            .reservations
            .held
            .iter()
            .find(|r| r.evse == 0 && matches(r))
            .map(|r| r.id);
        let take = |e: &Evse| -> Option<(u32, Option<i32>)> {
            if let Some(r) = self.specific(e.id) {
                return matches(r).then_some((e.id, Some(r.id)));
            }
            if any_match.is_some() {
                return Some((e.id, any_match));
            }
            (self.available_except(e.id) >= any_count).then_some((e.id, None))
        };
        match evse {
            Some(id) => {
                let e = self.evses.iter().find(|e| e.id == id)?;
                if !self.usable(e) {
                    return None;
                }
                take(e)
            }
            None => {
                let mine = self.reservations.held.iter().find_map(|r| {
                    let e = self.evses.iter().find(|e| e.id == r.evse)?;
                    (matches(r) && self.usable(e)).then_some((e.id, Some(r.id)))
                });
                if mine.is_some() {
                    return mine;
                }
                let free = |e: &&Evse| self.usable(e) && self.specific(e.id).is_none();
                self.evses
                    .iter()
                    .filter(free)
                    .filter(|e| e.plugged && e.auth.is_none())
                    .chain(self.evses.iter().filter(free).filter(|e| e.auth.is_none()))
                    .find_map(take)
            }
        }
    }

    /// ReserveNow: the version's status word.
    pub(crate) fn reserve(&mut self, now: Instant, request: ReserveRequest) -> &'static str {
        if !self.v16() && !self.settings.flag(Setting::ReservationEnabled) {
            return "Rejected";
        }
        let r = request.reservation;
        if r.expiry <= self.cfg.time.wall(now) {
            return "Rejected";
        }
        // A reservation with the same id is replaced (1.6 §5.13, 2.x block H): judge the
        // new one without it.
        let old = self.reservations.held.iter().position(|x| x.id == r.id);
        let replaced = old.map(|i| self.reservations.held.remove(i));
        let status = self.reserve_status(request.evse);
        if status == "Accepted" {
            let evse = r.evse;
            let id = r.id;
            self.reservations.held.push(r);
            self.events.push_back(StationEvent::Reserved {
                reservation_id: id,
                evse,
            });
            self.save();
        } else if let (Some(i), Some(old)) = (old, replaced) {
            self.reservations.held.insert(i, old);
        }
        status
    }

    fn reserve_status(&self, evse: i64) -> &'static str {
        if evse == 0 {
            if !self.settings.flag(Setting::ReserveAnyEvse) {
                return "Rejected";
            }
            if self.available_except(0) > self.any_evse_count() {
                return "Accepted";
            }
            if self.evses.iter().all(|e| e.faulted) {
                return "Faulted";
            }
            if self.station_inoperative || self.evses.iter().all(|e| e.inoperative) {
                return "Unavailable";
            }
            return "Occupied";
        }
        let Some(e) = u32::try_from(evse)
            .ok()
            .and_then(|id| self.evses.iter().find(|e| e.id == id))
        else {
            return "Rejected";
        };
        if e.faulted {
            "Faulted"
        } else if e.inoperative || self.station_inoperative {
            "Unavailable"
        } else if !self.available(e) || self.available_except(e.id) < self.any_evse_count() {
            "Occupied"
        } else {
            "Accepted"
        }
    }

    /// CancelReservation: whether it was held.
    pub(crate) fn cancel_reservation(&mut self, id: i32) -> bool {
        let Some(i) = self.reservations.held.iter().position(|r| r.id == id) else {
            return false;
        };
        self.reservations.held.remove(i);
        self.events.push_back(StationEvent::ReservationEnded {
            reservation_id: id,
            reason: "Cancelled",
        });
        self.save();
        true
    }

    /// A transaction started with reservation `id`: it is used.
    pub(crate) fn use_reservation(&mut self, id: i32) {
        if let Some(i) = self.reservations.held.iter().position(|r| r.id == id) {
            self.reservations.held.remove(i);
            self.events.push_back(StationEvent::ReservationEnded {
                reservation_id: id,
                reason: "Used",
            });
            self.save();
        }
    }

    /// After every input: ends expired reservations and those of Faulted / Unavailable
    /// EVSEs, sends the 2.x status updates, and sets the next expiry's deadline.
    pub(crate) fn reservation_step(&mut self, now: Instant) {
        let wall = self.cfg.time.wall(now);
        let mut ended: Vec<(i32, &'static str)> = Vec::new();
        let evses = &self.evses;
        let station_down = self.station_inoperative;
        self.reservations.held.retain(|r| {
            if r.expiry <= wall {
                ended.push((r.id, "Expired"));
                return false;
            }
            let down = r.evse != 0
                && evses
                    .iter()
                    .find(|e| e.id == r.evse)
                    .is_none_or(|e| e.faulted || e.inoperative || station_down);
            if down {
                ended.push((r.id, "Removed"));
            }
            !down
        });
        for (id, reason) in ended {
            self.events.push_back(StationEvent::ReservationEnded {
                reservation_id: id,
                reason,
            });
            if !self.v16() {
                if self.reservations.updates.len() >= MAX_PENDING_RESERVATION_UPDATES {
                    self.reservations.updates.pop_front();
                }
                self.reservations.updates.push_back((id, reason.to_owned()));
            }
            self.save();
        }
        while self.accepted() {
            let Some((id, status)) = self.reservations.updates.front().cloned() else {
                break;
            };
            let p = json!({ "reservationId": id, "reservationUpdateStatus": status });
            if !self.call(now, "ReservationStatusUpdate", &p, Pending::Plain) {
                break;
            }
            self.reservations.updates.pop_front();
            self.save();
        }
        self.next_expiry = self
            .reservations
            .held
            .iter()
            .map(|r| r.expiry)
            .min()
            .map(|x| deadline(now, (x - wall).to_std().unwrap_or(Duration::ZERO)));
    }
}

/// Reads a ReserveNow of any version (its payload as JSON).
fn read_reserve(v16: bool, q: &Value) -> Option<ReserveRequest> {
    let (id, evse, token, group, expiry, connector_type) = if v16 {
        (
            int(q, "reservationId")?,
            int(q, "connectorId")?,
            text(q, "idTag")?,
            text(q, "parentIdTag"),
            text(q, "expiryDate")?,
            None,
        )
    } else {
        (
            int(q, "id")?,
            int(q, "evseId").unwrap_or(0),
            q.get("idToken").and_then(|t| text(t, "idToken"))?,
            q.get("groupIdToken").and_then(|t| text(t, "idToken")),
            text(q, "expiryDateTime")?,
            text(q, "connectorType"),
        )
    };
    Some(ReserveRequest {
        reservation: Reservation {
            id: i32::try_from(id).ok()?,
            evse: u32::try_from(evse).unwrap_or(u32::MAX),
            token,
            group,
            expiry: expiry.parse().ok()?,
            connector_type,
        },
        evse,
    })
}

/// The built-in ReserveNow of every version.
pub(crate) fn reserve_now<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    let value = serde_json::to_value(&request).unwrap_or_default();
    let status = match read_reserve(ctx.station.v16(), &value) {
        Some(r) => ctx.station.reserve(ctx.now, r),
        None => "Rejected",
    };
    local_list::status_response(status, "ReserveNow")
}

/// The built-in CancelReservation of every version.
pub(crate) fn cancel_reservation<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    let value = serde_json::to_value(&request).unwrap_or_default();
    let held = int(&value, "reservationId")
        .and_then(|id| i32::try_from(id).ok())
        .is_some_and(|id| ctx.station.cancel_reservation(id));
    local_list::status_response(
        if held { "Accepted" } else { "Rejected" },
        "CancelReservation",
    )
}
