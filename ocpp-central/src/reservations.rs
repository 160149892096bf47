//! Reservations and the local authorization list from the central system: version-neutral
//! commands on [`ChargerHandle`], and what the charger's messages say about reservations.
//!
//! | command | 1.6 | 2.0.1 / 2.1 |
//! |---|---|---|
//! | [`reserve_now`](ChargerHandle::reserve_now) | ReserveNow (`connectorId` 0 = any) | ReserveNow (no `evseId` = any) |
//! | [`cancel_reservation`](ChargerHandle::cancel_reservation) | CancelReservation | CancelReservation |
//! | [`send_local_list`](ChargerHandle::send_local_list) | SendLocalList (`listVersion`, `idTagInfo`) | SendLocalList (`versionNumber`, `idTokenInfo`) |
//! | [`get_local_list_version`](ChargerHandle::get_local_list_version) | GetLocalListVersion | GetLocalListVersion |
//!
//! The charger's side: [`Event::ReservationStatus`](crate::Event::ReservationStatus) for a
//! 2.x ReservationStatusUpdate (answered by the default handler), and [`reservation_of`] for
//! the `reservationId` of a 1.6 StartTransaction or a 2.x TransactionEvent (the reservation
//! was used). Values a version cannot carry (a token longer than its schema allows, a
//! connector type on 1.6) are refused before anything is sent ([`CallError::Refused`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::commands::{by_version, Answer};
use crate::handler::ChargerHandle;
use crate::message::AnyRequest;
use crate::session::CallError;

/// A reservation to make ([`ChargerHandle::reserve_now`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The reservation id (the central system chooses it; the same id replaces a held one).
    pub id: i32,
    /// The EVSE (1.6 connector); `None`: any (1.6 connector 0).
    pub evse: Option<i32>,
    /// The token it is for.
    pub id_token: String,
    /// (2.x) The token's type; `Central` when `None`.
    pub token_type: Option<String>,
    /// Its group: 1.6 `parentIdTag`, 2.x `groupIdToken` (type `Central`).
    pub group: Option<String>,
    /// When it expires.
    pub expiry: DateTime<Utc>,
    /// (2.x) The connector type asked for (e.g. `cType2`); refused on 1.6.
    pub connector_type: Option<String>,
}

/// How a SendLocalList changes the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListUpdate {
    /// The list replaces the charger's.
    Full,
    /// The entries are added, changed, or (without info) removed.
    Differential,
}

/// What the list says of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// `Accepted`, `Blocked`, `Expired`, `Invalid` (1.6 also `ConcurrentTx`; 2.x more).
    pub status: String,
    /// Until when (1.6 `expiryDate`, 2.x `cacheExpiryDateTime`).
    pub expiry: Option<DateTime<Utc>>,
    /// Its group (1.6 `parentIdTag`, 2.x `groupIdToken`).
    pub group: Option<String>,
}

/// One entry of a SendLocalList.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The token.
    pub id_token: String,
    /// (2.x) The token's type; `Central` when `None`.
    pub token_type: Option<String>,
    /// What the list says of it; `None` in a differential update removes it.
    pub info: Option<TokenInfo>,
}

/// What a 2.x ReservationStatusUpdate said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationStatus {
    /// The reservation.
    pub reservation_id: i32,
    /// `Expired` or `Removed`.
    pub status: String,
}

/// An expiry in whole seconds, as chargers read them: rounded up, so a reservation or a
/// token is never sent shorter than it was given (truncated, an expiry a second away could
/// arrive already past), except in the last second of year 9999.
fn time(t: &DateTime<Utc>) -> String {
    use chrono::Datelike;
    let up = Some(*t)
        .filter(|t| t.timestamp_subsec_nanos() != 0)
        .and_then(|t| t.checked_add_signed(chrono::TimeDelta::seconds(1)))
        // The last second of year 9999 stays in it (a dateTime has four-digit years).
        .filter(|u| u.year() <= 9999)
        .unwrap_or(*t);
    up.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The typed request from its JSON form; what the schema's types refuse is refused here.
fn typed<Q: serde::de::DeserializeOwned>(action: &str, v: Value) -> Result<Q, CallError> {
    serde_json::from_value(v).map_err(|e| CallError::Refused(format!("{action}: {e}")))
}

fn token2(token: &str, kind: Option<&str>) -> Value {
    json!({ "idToken": token, "type": kind.unwrap_or("Central") })
}

fn reserve_json(v16: bool, r: &Reservation) -> Result<Value, CallError> {
    if v16 {
        if r.connector_type.is_some() {
            return Err(CallError::Refused(
                "OCPP 1.6 reserves a connector, not a connector type".into(),
            ));
        }
        let mut q = json!({
            "connectorId": r.evse.unwrap_or(0),
            "expiryDate": time(&r.expiry),
            "idTag": r.id_token,
            "reservationId": r.id,
        });
        if let Some(g) = &r.group {
            q["parentIdTag"] = json!(g);
        }
        Ok(q)
    } else {
        let mut q = json!({
            "id": r.id,
            "expiryDateTime": time(&r.expiry),
            "idToken": token2(&r.id_token, r.token_type.as_deref()),
        });
        if let Some(e) = r.evse {
            q["evseId"] = json!(e);
        }
        if let Some(g) = &r.group {
            q["groupIdToken"] = token2(g, None);
        }
        if let Some(c) = &r.connector_type {
            q["connectorType"] = json!(c);
        }
        Ok(q)
    }
}

fn list_json(v16: bool, version: i32, update: ListUpdate, entries: &[ListEntry]) -> Value {
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let info = e.info.as_ref().map(|i| {
                let mut info = json!({ "status": i.status });
                if v16 {
                    if let Some(x) = &i.expiry {
                        info["expiryDate"] = json!(time(x));
                    }
                    if let Some(g) = &i.group {
                        info["parentIdTag"] = json!(g);
                    }
                } else {
                    if let Some(x) = &i.expiry {
                        info["cacheExpiryDateTime"] = json!(time(x));
                    }
                    if let Some(g) = &i.group {
                        info["groupIdToken"] = token2(g, None);
                    }
                }
                info
            });
            let mut item = if v16 {
                json!({ "idTag": e.id_token })
            } else {
                json!({ "idToken": token2(&e.id_token, e.token_type.as_deref()) })
            };
            if let Some(info) = info {
                item[if v16 { "idTagInfo" } else { "idTokenInfo" }] = info;
            }
            item
        })
        .collect();
    let kind = match update {
        ListUpdate::Full => "Full",
        ListUpdate::Differential => "Differential",
    };
    let mut q = json!({ "updateType": kind });
    q[if v16 { "listVersion" } else { "versionNumber" }] = json!(version);
    // 2.x: an empty list is left out (the schema asks for at least one item).
    if !items.is_empty() || v16 {
        q["localAuthorizationList"] = Value::Array(items);
    }
    q
}

macro_rules! commands {
    ($m:ident, $feature:literal, $v16:expr, $version_field:ident) => {
        #[cfg(feature = $feature)]
        mod $m {
            use super::*;
            use crate::commands::status_call;
            use ocpp_types::$m as t;

            pub(super) async fn reserve_now(
                h: &ChargerHandle,
                r: &Reservation,
            ) -> Result<Answer, CallError> {
                let q: t::ReserveNowRequest = typed("ReserveNow", reserve_json($v16, r)?)?;
                status_call!(h, q)
            }

            pub(super) async fn cancel_reservation(
                h: &ChargerHandle,
                id: i32,
            ) -> Result<Answer, CallError> {
                status_call!(h, t::CancelReservationRequest::new(id))
            }

            pub(super) async fn send_local_list(
                h: &ChargerHandle,
                version: i32,
                update: ListUpdate,
                entries: &[ListEntry],
            ) -> Result<Answer, CallError> {
                let q: t::SendLocalListRequest =
                    typed("SendLocalList", list_json($v16, version, update, entries))?;
                status_call!(h, q)
            }

            pub(super) async fn get_local_list_version(
                h: &ChargerHandle,
            ) -> Result<i32, CallError> {
                let r = h.call(t::GetLocalListVersionRequest::new()).await?;
                Ok(r.$version_field)
            }
        }
    };
}

commands!(v16, "v16", true, list_version);
commands!(v201, "v201", false, version_number);
commands!(v21, "v21", false, version_number);

/// The reservation a charger's message used: the `reservationId` of a 1.6 StartTransaction
/// or a 2.x TransactionEvent (`None` for any other message).
pub fn reservation_of(request: &AnyRequest) -> Option<i32> {
    match request {
        #[cfg(feature = "v16")]
        AnyRequest::V16(ocpp_types::v16::AnyRequest::StartTransaction(q)) => q.reservation_id,
        #[cfg(feature = "v201")]
        AnyRequest::V201(ocpp_types::v201::AnyRequest::TransactionEvent(q)) => q.reservation_id,
        #[cfg(feature = "v21")]
        AnyRequest::V21(ocpp_types::v21::AnyRequest::TransactionEvent(q)) => q.reservation_id,
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// What a 2.x ReservationStatusUpdate says (`None` for any other message).
pub fn reservation_status(request: &AnyRequest) -> Option<ReservationStatus> {
    macro_rules! v2 {
        ($q:expr) => {
            ReservationStatus {
                reservation_id: $q.reservation_id,
                status: $q.reservation_update_status.as_str().to_owned(),
            }
        };
    }
    match request {
        #[cfg(feature = "v201")]
        AnyRequest::V201(ocpp_types::v201::AnyRequest::ReservationStatusUpdate(q)) => Some(v2!(q)),
        #[cfg(feature = "v21")]
        AnyRequest::V21(ocpp_types::v21::AnyRequest::ReservationStatusUpdate(q)) => Some(v2!(q)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

impl ChargerHandle {
    /// Reserves an EVSE (any EVSE when `evse` is `None`) for a token until its expiry: 1.6
    /// ReserveNow (`connectorId` 0 = any, `parentIdTag`), 2.x ReserveNow (`id`, `evseId`,
    /// `groupIdToken`, `connectorType`). The status is `Accepted`, `Faulted`, `Occupied`,
    /// `Rejected` or `Unavailable`.
    pub async fn reserve_now(&self, reservation: &Reservation) -> Result<Answer, CallError> {
        by_version!(
            self,
            v16::reserve_now(self, reservation).await,
            v201::reserve_now(self, reservation).await,
            v21::reserve_now(self, reservation).await
        )
    }

    /// Cancels reservation `id`: `Accepted`, or `Rejected` when the charger holds none.
    pub async fn cancel_reservation(&self, id: i32) -> Result<Answer, CallError> {
        by_version!(
            self,
            v16::cancel_reservation(self, id).await,
            v201::cancel_reservation(self, id).await,
            v21::cancel_reservation(self, id).await
        )
    }

    /// Sends the local authorization list, whole ([`ListUpdate::Full`]) or as changes, as
    /// version `version` (1.6 `listVersion`, 2.x `versionNumber`). The status is `Accepted`,
    /// `Failed`, `VersionMismatch`, or (1.6) `NotSupported`.
    pub async fn send_local_list(
        &self,
        version: i32,
        update: ListUpdate,
        entries: &[ListEntry],
    ) -> Result<Answer, CallError> {
        by_version!(
            self,
            v16::send_local_list(self, version, update, entries).await,
            v201::send_local_list(self, version, update, entries).await,
            v21::send_local_list(self, version, update, entries).await
        )
    }

    /// The version of the charger's local list: 0 when empty, (1.6) -1 when it has none.
    pub async fn get_local_list_version(&self) -> Result<i32, CallError> {
        by_version!(
            self,
            v16::get_local_list_version(self).await,
            v201::get_local_list_version(self).await,
            v21::get_local_list_version(self).await
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_sent_in_whole_seconds_rounded_up() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            time(&at("2026-12-04T22:59:42.998Z")),
            "2026-12-04T22:59:43Z"
        );
        assert_eq!(
            time(&at("2026-12-04T22:59:42.000000001Z")),
            "2026-12-04T22:59:43Z"
        );
        assert_eq!(time(&at("2026-12-04T22:59:42Z")), "2026-12-04T22:59:42Z");
        assert_eq!(time(&at("9999-12-31T23:59:59.5Z")), "9999-12-31T23:59:59Z");
    }
}
