//! Firmware updates and log uploads over real sockets: the ocpp-central server's typed
//! commands (`update_firmware`, `get_log`, `get_diagnostics`) against the station's
//! WebSocket client, for each version, with the status notifications projected into
//! `Event::TransferStatus`.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use ocpp_central::firmware::{
    FirmwareSignature, FirmwareUpdate, LogRequest, LogType, TransferKind, TransferStatus,
};
use ocpp_central::{async_trait, ChargerHandle, Event, HandleV16, HandleV201, HandleV21, Handler};
use ocpp_charger::station::{FirmwareProgress, LogProgress};
use ocpp_charger::ws::ClientEvent;
use ocpp_charger::{StationEvent, Version};
use rust_decimal::Decimal;

mod support;
use support::{station_on_central_with, until};

#[derive(Default)]
struct Seen(Mutex<Vec<TransferStatus>>);

#[async_trait]
impl Handler for Seen {
    async fn on_event(&self, _charger: &ChargerHandle, event: &Event) {
        if let Event::TransferStatus { status, .. } = event {
            self.0.lock().unwrap().push(status.clone());
        }
    }
}
impl HandleV16 for Seen {}
impl HandleV201 for Seen {}
impl HandleV21 for Seen {}

impl Seen {
    fn words(&self, kind: TransferKind) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.status.clone())
            .collect()
    }
}

/// The next station event matching `f`.
async fn next_event<T>(
    client: &mut ocpp_charger::ws::ClientHandle,
    mut f: impl FnMut(&StationEvent) -> Option<T>,
) -> T {
    loop {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), client.events.recv())
            .await
            .expect("an event in time")
            .expect("the client runs");
        if let ClientEvent::Station(e) = e {
            if let Some(t) = f(&e) {
                return t;
            }
        }
    }
}

#[tokio::test]
async fn firmware_and_logs_through_ocpp_central() {
    for (v, signed) in [
        (Version::V16, false),
        (Version::V16, true),
        (Version::V201, true),
        (Version::V21, false),
    ] {
        let seen = Arc::new(Seen::default());
        let (server, mut client, h) =
            station_on_central_with("CP-F", v, seen.clone(), Decimal::from(7400), |c| {
                c.transfers(true)
            })
            .await;
        let update = FirmwareUpdate {
            request_id: 5,
            location: "https://fw.example/2.0.bin".into(),
            retrieve: Utc::now(),
            install: None,
            retries: Some(1),
            retry_interval: Some(1),
            signature: signed.then(|| FirmwareSignature {
                signing_certificate: Some(
                    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----".into(),
                ),
                signature: "c2ln".into(),
            }),
        };
        let a = h.update_firmware(&update).await.unwrap();
        assert_eq!(a.status, "Accepted", "{v}");
        let (rid, location) = next_event(&mut client, |e| match e {
            StationEvent::FirmwareDownload {
                request_id,
                location,
                ..
            } => Some((*request_id, location.clone())),
            _ => None,
        })
        .await;
        assert_eq!(location, update.location);
        let report = |p: FirmwareProgress| {
            client
                .with(move |s, now| {
                    s.firmware_progress(now, rid, p);
                })
                .unwrap()
        };
        report(FirmwareProgress::Downloaded);
        if signed {
            report(FirmwareProgress::SignatureVerified);
        }
        next_event(&mut client, |e| {
            matches!(e, StationEvent::FirmwareInstall { .. }).then_some(())
        })
        .await;
        let report = |p: FirmwareProgress| {
            client
                .with(move |s, now| {
                    s.firmware_progress(now, rid, p);
                })
                .unwrap()
        };
        report(FirmwareProgress::Installing);
        report(FirmwareProgress::Installed);
        until("Installed at the central system", || {
            seen.words(TransferKind::Firmware)
                .last()
                .map(String::as_str)
                == Some("Installed")
        })
        .await;
        let words = seen.words(TransferKind::Firmware);
        assert_eq!(&words[..2], ["Downloading", "Downloaded"], "{v}");
        if v != Version::V16 || signed {
            assert!(seen
                .0
                .lock()
                .unwrap()
                .iter()
                .all(|s| s.request_id == Some(5)));
        }

        // Logs: GetLog on every version, GetDiagnostics on 1.6.
        let log = LogRequest {
            request_id: 9,
            log_type: LogType::Diagnostics,
            location: "https://up.example/logs".into(),
            oldest: None,
            latest: None,
            retries: Some(0),
            retry_interval: None,
        };
        let a = h.get_log(&log).await.unwrap();
        assert_eq!(a.answer.status, "Accepted", "{v}");
        let name = a.filename.clone().expect("a file name");
        let (id, file) = next_event(&mut client, |e| match e {
            StationEvent::LogUpload {
                request_id,
                file_name,
                ..
            } => Some((*request_id, file_name.clone())),
            _ => None,
        })
        .await;
        assert_eq!((id, file), (9, name));
        client
            .with(move |s, now| {
                s.log_progress(now, 9, LogProgress::Uploaded);
            })
            .unwrap();
        until("Uploaded", || {
            seen.words(TransferKind::Log).last().map(String::as_str) == Some("Uploaded")
        })
        .await;
        if v == Version::V16 {
            let a = h.get_diagnostics(&log).await.unwrap();
            assert!(a.filename.is_some());
            client
                .with(|s, now| {
                    s.log_progress(now, 0, LogProgress::UploadFailed);
                })
                .unwrap();
            until("UploadFailed", || {
                seen.words(TransferKind::Diagnostics)
                    .last()
                    .map(String::as_str)
                    == Some("UploadFailed")
            })
            .await;
        } else {
            assert!(h.get_diagnostics(&log).await.is_err(), "{v}: refused");
        }
        client.shutdown().await;
        server.shutdown().await.unwrap();
    }
}
