//! Reservations and the local list over real sockets: the ocpp-central server's typed
//! commands (`reserve_now`, `cancel_reservation`, `send_local_list`,
//! `get_local_list_version`) against the station's WebSocket client, for each version.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use ocpp_central::reservations::{
    reservation_of, ListEntry, ListUpdate, Reservation, ReservationStatus, TokenInfo,
};
use ocpp_central::{
    async_trait, ChargerHandle, ConnectorStatus, Event, HandleV16, HandleV201, HandleV21, Handler,
};
use ocpp_charger::testing::plug_in_and_present;
use ocpp_charger::Version;
use rust_decimal::Decimal;

mod support;
use support::{station_on_central, until};

/// Keeps what the central system learns about reservations.
#[derive(Default)]
struct Seen {
    used: Mutex<Vec<i32>>,
    updates: Mutex<Vec<ReservationStatus>>,
}

#[async_trait]
impl Handler for Seen {
    async fn on_event(&self, _charger: &ChargerHandle, event: &Event) {
        match event {
            Event::TransactionStarted { request, .. } => {
                if let Some(id) = reservation_of(request) {
                    self.used.lock().unwrap().push(id);
                }
            }
            Event::ReservationStatus { update, .. } => {
                self.updates.lock().unwrap().push(update.clone());
            }
            _ => {}
        }
    }
}
impl HandleV16 for Seen {}
impl HandleV201 for Seen {}
impl HandleV21 for Seen {}

fn entry(token: &str, status: Option<&str>) -> ListEntry {
    ListEntry {
        id_token: token.into(),
        token_type: None,
        info: status.map(|s| TokenInfo {
            status: s.into(),
            expiry: None,
            group: None,
        }),
    }
}

#[tokio::test]
async fn reservations_and_the_local_list_through_ocpp_central() {
    for v in [Version::V16, Version::V201, Version::V21] {
        let seen = Arc::new(Seen::default());
        let (server, client, h) =
            station_on_central("CP-R", v, seen.clone(), Decimal::from(7400)).await;
        let status_of = |evse: i32| {
            h.state()
                .connectors
                .iter()
                .find(|(c, _)| c.evse == evse)
                .map(|(_, s)| s.status.clone())
        };

        // The local list: full, a stale differential, a good one.
        assert_eq!(h.get_local_list_version().await.unwrap(), 0, "{v}");
        let full = [
            entry("ALICE", Some("Accepted")),
            entry("BOB", Some("Accepted")),
        ];
        let a = h.send_local_list(4, ListUpdate::Full, &full).await.unwrap();
        assert_eq!(a.status, "Accepted", "{v}");
        let diff = [entry("BOB", None)];
        let a = h
            .send_local_list(4, ListUpdate::Differential, &diff)
            .await
            .unwrap();
        assert_eq!(a.status, "VersionMismatch", "{v}");
        let a = h
            .send_local_list(5, ListUpdate::Differential, &diff)
            .await
            .unwrap();
        assert_eq!(a.status, "Accepted", "{v}");
        assert_eq!(h.get_local_list_version().await.unwrap(), 5, "{v}");

        // Reserve EVSE 1 for ALICE: Reserved at the central system.
        let expiry = Utc::now() + chrono::Duration::hours(1);
        let reservation = |id: i32, evse: i32| Reservation {
            id,
            evse: Some(evse),
            id_token: "ALICE".into(),
            token_type: None,
            group: None,
            expiry,
            connector_type: None,
        };
        let a = h.reserve_now(&reservation(11, 1)).await.unwrap();
        assert_eq!(a.status, "Accepted", "{v}");
        until("Reserved", || {
            status_of(1) == Some(ConnectorStatus::Reserved)
        })
        .await;
        assert_eq!(
            h.cancel_reservation(99).await.unwrap().status,
            "Rejected",
            "{v}"
        );

        // EVSE 2 reserved then cancelled; a third reservation goes Removed by unavailability
        // (2.x reports it).
        let a = h.reserve_now(&reservation(12, 2)).await.unwrap();
        assert_eq!(a.status, "Accepted", "{v}");
        until("EVSE 2 Reserved", || {
            status_of(2) == Some(ConnectorStatus::Reserved)
        })
        .await;
        assert_eq!(
            h.cancel_reservation(12).await.unwrap().status,
            "Accepted",
            "{v}"
        );
        until("EVSE 2 Available", || {
            status_of(2) == Some(ConnectorStatus::Available)
        })
        .await;
        assert!(h
            .reserve_now(&reservation(13, 2))
            .await
            .unwrap()
            .is_accepted());
        let a = h.change_availability(Some(2), None, false).await.unwrap();
        assert_eq!(a.status, "Accepted", "{v}");
        if v != Version::V16 {
            until("ReservationStatusUpdate Removed", || {
                seen.updates
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|u| u.reservation_id == 13 && u.status == "Removed")
            })
            .await;
        }

        // BOB is in no reservation: refused on EVSE 1; ALICE starts with reservation 11.
        plug_in_and_present(&client, 1, "BOB").unwrap();
        plug_in_and_present(&client, 1, "ALICE").unwrap();
        until("transaction with the reservation", || {
            !seen.used.lock().unwrap().is_empty()
        })
        .await;
        assert_eq!(*seen.used.lock().unwrap(), vec![11], "{v}");
        let txs = h.state().transactions.clone();
        assert_eq!(txs.len(), 1, "{v}");
        assert!(
            txs.values().all(|t| t.id_token.as_deref() == Some("ALICE")),
            "{v}"
        );
        // Used: cancelling is Rejected.
        assert_eq!(
            h.cancel_reservation(11).await.unwrap().status,
            "Rejected",
            "{v}"
        );

        // 1.6 refuses a connector type before sending.
        if v == Version::V16 {
            let mut r = reservation(14, 1);
            r.connector_type = Some("cType2".into());
            assert!(h.reserve_now(&r).await.is_err());
        }
        client.shutdown().await.unwrap();
        server.shutdown().await.unwrap();
    }
}
