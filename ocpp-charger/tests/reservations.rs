//! Reservations (1.6 §5.13, 2.x block H) and the local authorization list (1.6 §5.15 / §3.5,
//! 2.x block D) on the station, on virtual time: every answer word, the Reserved status,
//! who may start on a reserved EVSE, the end of a reservation (used, cancelled, expired),
//! list versions, offline authorization from the list, the bounds, and a restart.

use std::time::Duration;

use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{MemoryStore, Setting, StationConfig, StationEvent, Version};
use serde_json::{json, Value};

const ALL: [Version; 3] = [Version::V16, Version::V201, Version::V21];

fn pair_with(v: Version, f: impl FnOnce(StationConfig) -> StationConfig) -> VirtualPair {
    let clock = TestClock::new();
    let cfg = f(test_config(v, &clock));
    let mut pair = VirtualPair::with(
        cfg,
        Box::new(MemoryStore::new()),
        MockCentral::new(v),
        clock,
    );
    pair.connect();
    pair
}

fn connected(v: Version) -> VirtualPair {
    pair_with(v, |c| c)
}

fn result(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("no result for {id}: {other:?}"),
    }
}

fn status(pair: &VirtualPair, id: &str) -> String {
    result(pair, id)["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Wall time `secs` after the test clock's start (2025-01-01T00:00:00Z).
fn at(secs: i64) -> String {
    let start: chrono::DateTime<chrono::Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
    (start + chrono::Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A ReserveNow in `v`'s words; `evse` `None`: any EVSE.
fn reserve(
    pair: &mut VirtualPair,
    id: i64,
    evse: Option<i64>,
    token: &str,
    group: Option<&str>,
    expiry: &str,
) -> String {
    let v = pair.station.version();
    let p = if v == Version::V16 {
        let mut p = json!({
            "connectorId": evse.unwrap_or(0),
            "expiryDate": expiry,
            "idTag": token,
            "reservationId": id,
        });
        if let Some(g) = group {
            p["parentIdTag"] = json!(g);
        }
        p
    } else {
        let mut p = json!({
            "id": id,
            "expiryDateTime": expiry,
            "idToken": { "idToken": token, "type": "Central" },
        });
        if let Some(e) = evse {
            p["evseId"] = json!(e);
        }
        if let Some(g) = group {
            p["groupIdToken"] = json!({ "idToken": g, "type": "Central" });
        }
        p
    };
    let id = pair.central_call("ReserveNow", p);
    status(pair, &id)
}

fn cancel(pair: &mut VirtualPair, id: i64) -> String {
    let id = pair.central_call("CancelReservation", json!({ "reservationId": id }));
    status(pair, &id)
}

/// The last StatusNotification's status for `evse`.
fn last_status(pair: &VirtualPair, evse: u32) -> Option<String> {
    let v16 = pair.station.version() == Version::V16;
    pair.central
        .payloads("StatusNotification")
        .into_iter()
        .rev()
        .find(|p| p[if v16 { "connectorId" } else { "evseId" }] == evse)
        .and_then(|p| p[if v16 { "status" } else { "connectorStatus" }].as_str())
        .map(str::to_owned)
}

/// The started transaction messages' `reservationId`s.
fn started_reservations(pair: &VirtualPair) -> Vec<Value> {
    if pair.station.version() == Version::V16 {
        pair.central
            .payloads("StartTransaction")
            .into_iter()
            .map(|p| p["reservationId"].clone())
            .collect()
    } else {
        pair.central
            .payloads("TransactionEvent")
            .into_iter()
            .filter(|p| p["eventType"] == "Started")
            .map(|p| p["reservationId"].clone())
            .collect()
    }
}

#[test]
fn only_the_reserved_token_starts_and_uses_the_reservation() {
    for v in ALL {
        let mut pair = connected(v);
        assert_eq!(
            reserve(&mut pair, 7, Some(1), "ALICE", None, &at(3600)),
            "Accepted",
            "{v}"
        );
        assert_eq!(pair.station.status(1), Some("Reserved"), "{v}");
        assert_eq!(last_status(&pair, 1).as_deref(), Some("Reserved"), "{v}");
        // A second reservation of the same EVSE: Occupied.
        assert_eq!(
            reserve(&mut pair, 8, Some(1), "BOB", None, &at(3600)),
            "Occupied",
            "{v}"
        );

        // Someone else, authorized by the central system, may not start on it.
        pair.plug_in(1);
        pair.present(1, "BOB");
        assert!(pair.station.transaction(1).is_none(), "{v}");
        assert!(
            !pair
                .events_where(|e| matches!(e, StationEvent::ReservationRefused { id_token } if id_token == "BOB"))
                .is_empty(),
            "{v}"
        );
        assert_eq!(pair.station.reservations().len(), 1, "{v}");

        // The reserved token starts, with the reservation's id, which ends it.
        pair.present(1, "ALICE");
        let tx = pair.station.transaction(1).expect("started");
        assert_eq!(tx.id_token, "ALICE", "{v}");
        assert_eq!(started_reservations(&pair), vec![json!(7)], "{v}");
        assert!(pair.station.reservations().is_empty(), "{v}");
        assert!(
            !pair
                .events_where(|e| matches!(
                    e,
                    StationEvent::ReservationEnded {
                        reservation_id: 7,
                        reason: "Used"
                    }
                ))
                .is_empty(),
            "{v}"
        );
        // Used: cancelling it now is Rejected.
        assert_eq!(cancel(&mut pair, 7), "Rejected", "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn a_reservation_expires_on_the_injected_clock() {
    for v in ALL {
        let mut pair = connected(v);
        assert_eq!(
            reserve(&mut pair, 3, Some(1), "ALICE", None, &at(600)),
            "Accepted",
            "{v}"
        );
        pair.advance(Duration::from_secs(599));
        assert_eq!(pair.station.status(1), Some("Reserved"), "{v}");
        assert!(
            pair.central.payloads("ReservationStatusUpdate").is_empty(),
            "{v}"
        );
        pair.advance(Duration::from_secs(2));
        assert_eq!(pair.station.status(1), Some("Available"), "{v}");
        assert_eq!(last_status(&pair, 1).as_deref(), Some("Available"), "{v}");
        assert!(pair.station.reservations().is_empty(), "{v}");
        let updates = pair.central.payloads("ReservationStatusUpdate");
        if v == Version::V16 {
            assert!(updates.is_empty());
        } else {
            assert_eq!(
                updates,
                vec![&json!({ "reservationId": 3, "reservationUpdateStatus": "Expired" })],
                "{v}"
            );
        }
        // Anyone may start now.
        pair.plug_in(1);
        pair.present(1, "BOB");
        assert!(pair.station.transaction(1).is_some(), "{v}");
        assert_eq!(started_reservations(&pair), vec![Value::Null], "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn cancel_frees_the_evse_and_an_unknown_id_is_rejected() {
    for v in ALL {
        let mut pair = connected(v);
        assert_eq!(cancel(&mut pair, 1), "Rejected", "{v}");
        assert_eq!(
            reserve(&mut pair, 1, Some(1), "ALICE", None, &at(600)),
            "Accepted",
            "{v}"
        );
        // The same id again replaces it (another token, a later expiry).
        assert_eq!(
            reserve(&mut pair, 1, Some(1), "CAROL", None, &at(900)),
            "Accepted",
            "{v}"
        );
        let held = pair.station.reservations();
        assert_eq!(held.len(), 1, "{v}");
        assert_eq!(held[0].id_token, "CAROL", "{v}");
        assert_eq!(cancel(&mut pair, 1), "Accepted", "{v}");
        assert_eq!(pair.station.status(1), Some("Available"), "{v}");
        assert_eq!(last_status(&pair, 1).as_deref(), Some("Available"), "{v}");
        assert_eq!(cancel(&mut pair, 1), "Rejected", "{v}");
        // A cancelled reservation is not reported as expired or removed.
        pair.advance(Duration::from_secs(1000));
        assert!(
            pair.central.payloads("ReservationStatusUpdate").is_empty(),
            "{v}"
        );
    }
}

#[test]
fn each_refusal_has_its_word() {
    for v in ALL {
        let mut pair = pair_with(v, |c| c.evses(2));
        // Unknown EVSE, an expiry already past.
        assert_eq!(
            reserve(&mut pair, 1, Some(9), "A", None, &at(600)),
            "Rejected",
            "{v}"
        );
        assert_eq!(
            reserve(&mut pair, 1, Some(1), "A", None, &at(-1)),
            "Rejected",
            "{v}"
        );
        // A transaction on EVSE 1: Occupied.
        pair.plug_in(1);
        pair.present(1, "X");
        assert!(pair.station.transaction(1).is_some(), "{v}");
        assert_eq!(
            reserve(&mut pair, 1, Some(1), "A", None, &at(600)),
            "Occupied",
            "{v}"
        );
        // EVSE 2 faulted, then inoperative.
        pair.station_input(|s, now| {
            s.handle_hardware(
                now,
                ocpp_charger::HardwareEvent::Fault {
                    evse: 2,
                    faulted: true,
                },
            )
        });
        assert_eq!(
            reserve(&mut pair, 2, Some(2), "A", None, &at(600)),
            "Faulted",
            "{v}"
        );
        pair.station_input(|s, now| {
            s.handle_hardware(
                now,
                ocpp_charger::HardwareEvent::Fault {
                    evse: 2,
                    faulted: false,
                },
            )
        });
        let p = if v == Version::V16 {
            json!({ "connectorId": 2, "type": "Inoperative" })
        } else {
            json!({ "evse": { "id": 2 }, "operationalStatus": "Inoperative" })
        };
        let id = pair.central_call("ChangeAvailability", p);
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        assert_eq!(
            reserve(&mut pair, 2, Some(2), "A", None, &at(600)),
            "Unavailable",
            "{v}"
        );
        // Nothing free for a reservation of any EVSE either.
        assert_eq!(
            reserve(&mut pair, 3, None, "A", None, &at(600)),
            "Occupied",
            "{v}"
        );
        assert!(pair.station.reservations().is_empty(), "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn a_reserved_evse_that_goes_unavailable_ends_its_reservation() {
    for v in ALL {
        let mut pair = connected(v);
        assert_eq!(
            reserve(&mut pair, 5, Some(1), "A", None, &at(600)),
            "Accepted",
            "{v}"
        );
        pair.station_input(|s, now| {
            s.handle_hardware(
                now,
                ocpp_charger::HardwareEvent::Fault {
                    evse: 1,
                    faulted: true,
                },
            )
        });
        assert!(pair.station.reservations().is_empty(), "{v}");
        let updates = pair.central.payloads("ReservationStatusUpdate");
        if v == Version::V16 {
            assert!(updates.is_empty());
        } else {
            assert_eq!(
                updates,
                vec![&json!({ "reservationId": 5, "reservationUpdateStatus": "Removed" })],
                "{v}"
            );
        }
    }
}

#[test]
fn a_reservation_of_any_evse_keeps_the_last_one_free() {
    for v in ALL {
        let mut pair = pair_with(v, |c| c.evses(2));
        assert_eq!(
            reserve(&mut pair, 1, None, "ALICE", None, &at(3600)),
            "Accepted",
            "{v}"
        );
        // Two free EVSEs for one reservation: both still Available.
        assert_eq!(pair.station.status(1), Some("Available"), "{v}");
        assert_eq!(pair.station.status(2), Some("Available"), "{v}");
        // Another reservation of any EVSE would leave none for the first: Occupied.
        // (Only after BOB takes EVSE 1; now there is room for exactly one more.)
        pair.plug_in(1);
        pair.present(1, "BOB");
        assert!(pair.station.transaction(1).is_some(), "{v}");
        assert_eq!(pair.station.status(2), Some("Reserved"), "{v}");
        assert_eq!(
            reserve(&mut pair, 2, None, "DAVE", None, &at(3600)),
            "Occupied",
            "{v}"
        );
        // The last free EVSE is kept for ALICE.
        pair.plug_in(2);
        pair.present(2, "CAROL");
        assert!(pair.station.transaction(2).is_none(), "{v}");
        pair.present(2, "ALICE");
        assert!(pair.station.transaction(2).is_some(), "{v}");
        assert_eq!(
            started_reservations(&pair),
            vec![Value::Null, json!(1)],
            "{v}"
        );
        pair.assert_no_invalid_outgoing();
    }
    // 1.6 without ReserveConnectorZeroSupported: connector 0 is Rejected.
    let mut pair = pair_with(Version::V16, |c| {
        c.setting(Setting::ReserveAnyEvse, "false")
    });
    assert_eq!(reserve(&mut pair, 1, None, "A", None, &at(600)), "Rejected");
}

#[test]
fn a_token_of_the_reserved_group_may_start() {
    for v in ALL {
        let mut pair = connected(v);
        // BOB's group is FLEET (from the local list).
        let list = if v == Version::V16 {
            json!({ "listVersion": 1, "updateType": "Full", "localAuthorizationList": [
                { "idTag": "BOB", "idTagInfo": { "status": "Accepted", "parentIdTag": "FLEET" } }
            ]})
        } else {
            json!({ "versionNumber": 1, "updateType": "Full", "localAuthorizationList": [
                { "idToken": { "idToken": "BOB", "type": "Central" },
                  "idTokenInfo": { "status": "Accepted", "groupIdToken": { "idToken": "FLEET", "type": "Central" } } }
            ]})
        };
        let id = pair.central_call("SendLocalList", list);
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        assert_eq!(
            reserve(&mut pair, 4, Some(1), "ALICE", Some("FLEET"), &at(600)),
            "Accepted",
            "{v}"
        );
        pair.plug_in(1);
        pair.present(1, "BOB");
        assert!(pair.station.transaction(1).is_some(), "{v}");
        assert_eq!(started_reservations(&pair), vec![json!(4)], "{v}");
    }
}

#[test]
fn reservations_and_the_list_survive_a_restart() {
    for v in ALL {
        let clock = TestClock::new();
        let store = MemoryStore::new();
        let mut pair = VirtualPair::with(
            test_config(v, &clock),
            Box::new(store.clone()),
            MockCentral::new(v),
            clock,
        );
        pair.connect();
        assert_eq!(
            reserve(&mut pair, 9, Some(1), "ALICE", None, &at(600)),
            "Accepted",
            "{v}"
        );
        let id = pair.central_call("SendLocalList", full_list(v, 3, &[("ALICE", "Accepted")]));
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        let VirtualPair { central, clock, .. } = pair;
        let mut pair = VirtualPair::with(
            test_config(v, &clock),
            Box::new(store.clone()),
            central,
            clock,
        );
        pair.connect();
        assert_eq!(pair.station.status(1), Some("Reserved"), "{v}");
        assert_eq!(pair.station.reservations().len(), 1, "{v}");
        assert_eq!(pair.station.local_list_version(), 3, "{v}");
        // Still enforced, still expiring.
        pair.plug_in(1);
        pair.present(1, "BOB");
        assert!(pair.station.transaction(1).is_none(), "{v}");
        pair.advance(Duration::from_secs(601));
        assert!(pair.station.reservations().is_empty(), "{v}");
        pair.present(1, "BOB");
        assert!(pair.station.transaction(1).is_some(), "{v}");
    }
}

#[test]
fn hostile_reservations_are_answered() {
    for v in ALL {
        let mut pair = connected(v);
        // Year 9999 and reservationId i32::MAX: accepted; the timer stays within a day.
        assert_eq!(
            reserve(
                &mut pair,
                i64::from(i32::MAX),
                Some(1),
                "A",
                None,
                "9999-12-31T23:59:59Z"
            ),
            "Accepted",
            "{v}"
        );
        let now = pair.clock.now();
        let next = pair.station.poll_timeout().expect("a deadline");
        assert!(next <= now + Duration::from_secs(86_400), "{v}");
        pair.advance(Duration::from_secs(3 * 86_400));
        assert_eq!(pair.station.reservations().len(), 1, "{v}");
        assert_eq!(cancel(&mut pair, i64::from(i32::MAX)), "Accepted", "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

// ----- the local authorization list -----

fn full_list(v: Version, version: i32, entries: &[(&str, &str)]) -> Value {
    list(
        v,
        version,
        "Full",
        entries.iter().map(|(t, s)| (*t, Some(*s))),
    )
}

fn list<'a>(
    v: Version,
    version: i32,
    kind: &str,
    entries: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Value {
    let items: Vec<Value> = entries
        .map(|(t, s)| {
            if v == Version::V16 {
                let mut e = json!({ "idTag": t });
                if let Some(s) = s {
                    e["idTagInfo"] = json!({ "status": s });
                }
                e
            } else {
                let mut e = json!({ "idToken": { "idToken": t, "type": "Central" } });
                if let Some(s) = s {
                    e["idTokenInfo"] = json!({ "status": s });
                }
                e
            }
        })
        .collect();
    if v == Version::V16 {
        json!({ "listVersion": version, "updateType": kind, "localAuthorizationList": items })
    } else {
        json!({ "versionNumber": version, "updateType": kind, "localAuthorizationList": items })
    }
}

fn list_version(pair: &mut VirtualPair) -> Value {
    let id = pair.central_call("GetLocalListVersion", json!({}));
    let r = result(pair, &id);
    if pair.station.version() == Version::V16 {
        r["listVersion"].clone()
    } else {
        r["versionNumber"].clone()
    }
}

#[test]
fn full_then_differential_with_version_checks() {
    for v in ALL {
        let mut pair = connected(v);
        assert_eq!(list_version(&mut pair), 0, "{v}");
        let p = full_list(v, 5, &[("A", "Accepted"), ("B", "Blocked")]);
        let id = pair.central_call("SendLocalList", p);
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        assert_eq!(list_version(&mut pair), 5, "{v}");
        // A differential update must carry a higher version.
        for stale in [4, 5] {
            let p = list(
                v,
                stale,
                "Differential",
                [("C", Some("Accepted"))].into_iter(),
            );
            let id = pair.central_call("SendLocalList", p);
            assert_eq!(status(&pair, &id), "VersionMismatch", "{v} {stale}");
        }
        // Without its info an entry is removed; with it, added.
        let p = list(
            v,
            6,
            "Differential",
            [("A", None), ("C", Some("Accepted"))].into_iter(),
        );
        let id = pair.central_call("SendLocalList", p);
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        assert_eq!(list_version(&mut pair), 6, "{v}");
        assert_eq!(pair.station.local_list_len(), 2, "{v}");
        // A full update may go back to any version and replaces everything.
        let id = pair.central_call("SendLocalList", full_list(v, 2, &[("Z", "Accepted")]));
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        assert_eq!(list_version(&mut pair), 2, "{v}");
        assert_eq!(pair.station.local_list_len(), 1, "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn offline_the_list_decides() {
    for v in ALL {
        let mut pair = pair_with(v, |c| c.evses(3));
        let p = full_list(v, 1, &[("A", "Accepted"), ("B", "Blocked")]);
        let id = pair.central_call("SendLocalList", p);
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        pair.disconnect();
        for (evse, token) in [(1, "A"), (2, "B"), (3, "UNKNOWN")] {
            pair.plug_in(evse);
            pair.present(evse, token);
        }
        assert!(
            pair.station.transaction(1).is_some(),
            "{v}: A is in the list"
        );
        assert!(pair.station.transaction(2).is_none(), "{v}: B is blocked");
        assert!(
            pair.station.transaction(3).is_none(),
            "{v}: unknown offline"
        );
    }
}

#[test]
fn the_list_has_priority_over_the_cache_and_pre_authorizes() {
    for v in ALL {
        let mut pair = pair_with(v, |c| {
            c.evses(2).setting(Setting::LocalPreAuthorize, "true")
        });
        // B is cached as Accepted (online Authorize), then the list blocks it.
        pair.plug_in(1);
        pair.present(1, "B");
        assert!(pair.station.transaction(1).is_some(), "{v}");
        pair.present(1, "B"); // stops
        assert!(pair.station.transaction(1).is_none(), "{v}");
        let p = full_list(v, 1, &[("A", "Accepted"), ("B", "Blocked")]);
        let id = pair.central_call("SendLocalList", p);
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        // Online with LocalPreAuthorize: A starts without asking the central system.
        let authorizes = pair.central.actions_named("Authorize");
        pair.plug_in(2);
        pair.present(2, "A");
        assert!(pair.station.transaction(2).is_some(), "{v}");
        assert_eq!(pair.central.actions_named("Authorize"), authorizes, "{v}");
        // Offline, B is refused: the list says Blocked, whatever the cache held.
        pair.disconnect();
        pair.unplug(1);
        pair.plug_in(1);
        pair.present(1, "B");
        assert!(pair.station.transaction(1).is_none(), "{v}");
    }
}

#[test]
fn the_bounds_fail_the_update_and_change_nothing() {
    for v in ALL {
        let mut pair = pair_with(v, |c| c.local_list(3, 2));
        // More than one message may carry.
        let p = full_list(
            v,
            1,
            &[("A", "Accepted"), ("B", "Accepted"), ("C", "Accepted")],
        );
        let id = pair.central_call("SendLocalList", p);
        assert_eq!(status(&pair, &id), "Failed", "{v}");
        assert_eq!(list_version(&mut pair), 0, "{v}");
        let p = full_list(v, 1, &[("A", "Accepted"), ("B", "Accepted")]);
        let id = pair.central_call("SendLocalList", p);
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        // More than the list holds.
        let p = list(
            v,
            2,
            "Differential",
            [("C", Some("Accepted")), ("D", Some("Accepted"))].into_iter(),
        );
        let id = pair.central_call("SendLocalList", p);
        assert_eq!(status(&pair, &id), "Failed", "{v}");
        assert_eq!(list_version(&mut pair), 1, "{v}");
        assert_eq!(pair.station.local_list_len(), 2, "{v}");
        // A version of 0 is not a list version.
        let id = pair.central_call("SendLocalList", full_list(v, 0, &[("A", "Accepted")]));
        assert_eq!(status(&pair, &id), "Failed", "{v}");
    }
}

/// 60,000 entries (several MB) are beyond the frame limit (`ocpp_codec`'s
/// `DEFAULT_MAX_MESSAGE_SIZE`): a CALLERROR in the version's words; 5,000 (within it) are
/// beyond `SendLocalListMaxLength`: `Failed`. Either way the list is as it was.
#[test]
fn huge_lists_are_answered_and_change_nothing() {
    for v in ALL {
        let mut pair = connected(v);
        let id = pair.central_call("SendLocalList", full_list(v, 1, &[("A", "Accepted")]));
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        let names: Vec<String> = (0..60_000).map(|i| format!("T{i}")).collect();
        let huge = |n: usize| {
            list(
                v,
                2,
                "Differential",
                names[..n].iter().map(|n| (n.as_str(), Some("Accepted"))),
            )
        };
        let id = pair.central_call("SendLocalList", huge(60_000));
        let code = if v == Version::V16 {
            "FormationViolation"
        } else {
            "FormatViolation"
        };
        assert_eq!(pair.central.answer(&id), Some(&Err(code.to_owned())), "{v}");
        let id = pair.central_call("SendLocalList", huge(5_000));
        assert_eq!(status(&pair, &id), "Failed", "{v}");
        assert_eq!(list_version(&mut pair), 1, "{v}");
        assert_eq!(pair.station.local_list_len(), 1, "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn a_disabled_list_and_cache_answer_per_version() {
    for v in ALL {
        let mut pair = connected(v);
        let p = if v == Version::V16 {
            json!({ "key": "LocalAuthListEnabled", "value": "false" })
        } else {
            json!({ "setVariableData": [
                { "component": { "name": "LocalAuthListCtrlr" }, "variable": { "name": "Enabled" }, "attributeValue": "false" },
                { "component": { "name": "AuthCacheCtrlr" }, "variable": { "name": "Enabled" }, "attributeValue": "false" }
            ]})
        };
        let action = if v == Version::V16 {
            "ChangeConfiguration"
        } else {
            "SetVariables"
        };
        pair.central_call(action, p);
        let expected_version = if v == Version::V16 { -1 } else { 0 };
        assert_eq!(list_version(&mut pair), expected_version, "{v}");
        let id = pair.central_call("SendLocalList", full_list(v, 1, &[("A", "Accepted")]));
        let refused = if v == Version::V16 {
            "NotSupported"
        } else {
            "Failed"
        };
        assert_eq!(status(&pair, &id), refused, "{v}");
        // ClearCache: 2.x with the cache disabled is Rejected (C11); 1.6 Accepted.
        let id = pair.central_call("ClearCache", json!({}));
        let clear = if v == Version::V16 {
            "Accepted"
        } else {
            "Rejected"
        };
        assert_eq!(status(&pair, &id), clear, "{v}");
        pair.assert_no_invalid_outgoing();
    }
}
