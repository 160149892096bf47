//! Firmware updates (1.6 UpdateFirmware and SignedUpdateFirmware, 2.x block L) and log
//! uploads (1.6 GetDiagnostics, GetLog) on the station, on virtual time: every status of each
//! version's message, the retrieve and install times, retries, the wait for transactions, a
//! restart in the middle, the triggers, and hostile requests.

use std::time::Duration;

use ocpp_charger::station::{FirmwareProgress, FirmwareStatus, LogProgress};
use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{MemoryStore, StationEvent, Version};
use serde_json::{json, Value};

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

/// Which message a test sends: 1.6 UpdateFirmware, 1.6 SignedUpdateFirmware, 2.x.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Plain16,
    Signed16,
    V2(Version),
}

const KINDS: [Kind; 4] = [
    Kind::Plain16,
    Kind::Signed16,
    Kind::V2(Version::V201),
    Kind::V2(Version::V21),
];

impl Kind {
    fn version(self) -> Version {
        match self {
            Kind::Plain16 | Kind::Signed16 => Version::V16,
            Kind::V2(v) => v,
        }
    }
    fn action(self) -> &'static str {
        match self {
            Kind::Signed16 => "SignedUpdateFirmware",
            _ => "UpdateFirmware",
        }
    }
    fn notification(self) -> &'static str {
        match self {
            Kind::Signed16 => "SignedFirmwareStatusNotification",
            _ => "FirmwareStatusNotification",
        }
    }
    fn signed(self) -> bool {
        self != Kind::Plain16
    }
    /// The request; `signature` only for the signed kinds.
    fn request(self, location: &str, retrieve: &str, retries: Option<i64>, interval: i64) -> Value {
        let mut q = match self {
            Kind::Plain16 => json!({ "location": location, "retrieveDate": retrieve }),
            _ => json!({
                "requestId": 42,
                "firmware": {
                    "location": location,
                    "retrieveDateTime": retrieve,
                    "signingCertificate": CERT,
                    "signature": "c2lnbmF0dXJl",
                }
            }),
        };
        if let Some(r) = retries {
            q["retries"] = json!(r);
        }
        q["retryInterval"] = json!(interval);
        q
    }
}

fn pair(v: Version, store: &MemoryStore, clock: TestClock, central: MockCentral) -> VirtualPair {
    let mut pair = VirtualPair::with(
        test_config(v, &clock).transfers(true),
        Box::new(store.clone()),
        central,
        clock,
    );
    pair.connect();
    pair
}

fn fresh(v: Version) -> (VirtualPair, MemoryStore) {
    let store = MemoryStore::new();
    (
        pair(v, &store, TestClock::new(), MockCentral::new(v)),
        store,
    )
}

/// The station's answer to call `id`, from what it sent (the mock central system's own
/// record is keyed by message ids, which start again after a restart of the pair).
fn answer(pair: &VirtualPair, id: &str) -> Result<Value, String> {
    let frame: Value = serde_json::from_str(pair.answer_frame(id).expect("an answer")).unwrap();
    match frame[0].as_i64() {
        Some(3) => Ok(frame[2].clone()),
        _ => Err(frame[2].as_str().unwrap_or_default().to_owned()),
    }
}

/// Wall time `secs` after the test clock's start (2025-01-01T00:00:00Z).
fn at(secs: i64) -> String {
    let start: chrono::DateTime<chrono::Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
    (start + chrono::Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn statuses(pair: &VirtualPair, action: &str) -> Vec<String> {
    pair.central
        .payloads(action)
        .iter()
        .map(|p| p["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn downloads(pair: &VirtualPair) -> Vec<(i32, u32)> {
    pair.events
        .iter()
        .filter_map(|e| match e {
            StationEvent::FirmwareDownload {
                request_id,
                attempt,
                ..
            } => Some((*request_id, *attempt)),
            _ => None,
        })
        .collect()
}

fn installs(pair: &VirtualPair) -> usize {
    pair.events_where(|e| matches!(e, StationEvent::FirmwareInstall { .. }))
        .len()
}

fn progress(pair: &mut VirtualPair, id: i32, p: FirmwareProgress) -> bool {
    let mut taken = false;
    pair.station_input(|s, now| taken = s.firmware_progress(now, id, p));
    taken
}

#[test]
fn an_update_runs_through_every_status_and_survives_the_reboot() {
    for kind in KINDS {
        let v = kind.version();
        let (mut pair, store) = fresh(v);
        let q = kind.request("https://fw.example/2.0.bin", &at(60), Some(1), 30);
        let id = pair.central_call(kind.action(), q);
        let a = answer(&pair, &id).expect("a result");
        if kind != Kind::Plain16 {
            assert_eq!(a["status"], "Accepted", "{kind:?}");
        }
        assert!(downloads(&pair).is_empty(), "not before the retrieve time");
        pair.advance(Duration::from_secs(60));
        let rid = if kind == Kind::Plain16 { 0 } else { 42 };
        assert_eq!(downloads(&pair), vec![(rid, 1)], "{kind:?}");
        assert_eq!(pair.station.firmware_status(), FirmwareStatus::Downloading);
        assert!(progress(&mut pair, rid, FirmwareProgress::Downloaded));
        if kind.signed() {
            assert_eq!(
                installs(&pair),
                0,
                "{kind:?}: not before the signature is checked"
            );
            assert!(progress(
                &mut pair,
                rid,
                FirmwareProgress::SignatureVerified
            ));
        }
        assert_eq!(installs(&pair), 1, "{kind:?}");
        assert!(progress(&mut pair, rid, FirmwareProgress::Installing));
        assert!(progress(&mut pair, rid, FirmwareProgress::InstallRebooting));
        // The reboot: a new station from the same store, which still holds the update.
        let VirtualPair { central, clock, .. } = pair;
        let mut pair = pair_from(v, &store, clock, central);
        let held = pair.station.firmware_update().expect("the update survives");
        assert_eq!(held.request_id, rid);
        assert!(progress(&mut pair, rid, FirmwareProgress::Installed));
        assert!(pair.station.firmware_update().is_none());
        let expected: &[&str] = match kind {
            Kind::Plain16 => &["Downloading", "Downloaded", "Installing", "Installed"],
            _ => &[
                "DownloadScheduled",
                "Downloading",
                "Downloaded",
                "SignatureVerified",
                "Installing",
                "InstallRebooting",
                "Installed",
            ],
        };
        assert_eq!(statuses(&pair, kind.notification()), expected, "{kind:?}");
        if kind.signed() {
            assert!(
                pair.central
                    .payloads(kind.notification())
                    .iter()
                    .all(|p| p["requestId"] == 42),
                "{kind:?}"
            );
        }
        // Installed: a security event says so.
        assert!(pair
            .events_where(|e| matches!(e, StationEvent::SecurityEvent { kind, .. } if kind == "FirmwareUpdated"))
            .len()
            == 1);
        pair.assert_no_invalid_outgoing();
    }
}

fn pair_from(
    v: Version,
    store: &MemoryStore,
    clock: TestClock,
    central: MockCentral,
) -> VirtualPair {
    pair(v, store, clock, central)
}

#[test]
fn a_failed_download_is_retried_on_the_interval_then_given_up() {
    for kind in KINDS {
        let (mut pair, _) = fresh(kind.version());
        let rid = if kind == Kind::Plain16 { 0 } else { 42 };
        pair.central_call(
            kind.action(),
            kind.request("http://fw.example/x", &at(0), Some(2), 30),
        );
        assert_eq!(downloads(&pair), vec![(rid, 1)], "{kind:?}");
        assert!(progress(&mut pair, rid, FirmwareProgress::DownloadFailed));
        pair.advance(Duration::from_secs(29));
        assert_eq!(
            downloads(&pair).len(),
            1,
            "{kind:?}: not before the interval"
        );
        pair.advance(Duration::from_secs(1));
        assert_eq!(downloads(&pair), vec![(rid, 1), (rid, 2)], "{kind:?}");
        assert!(progress(&mut pair, rid, FirmwareProgress::DownloadFailed));
        pair.advance(Duration::from_secs(30));
        assert_eq!(downloads(&pair).len(), 3, "{kind:?}");
        assert!(progress(&mut pair, rid, FirmwareProgress::DownloadFailed));
        pair.advance(Duration::from_secs(3600));
        assert_eq!(
            downloads(&pair).len(),
            3,
            "{kind:?}: retries 2 = three attempts"
        );
        let s = statuses(&pair, kind.notification());
        assert_eq!(
            s.last().map(String::as_str),
            Some("DownloadFailed"),
            "{kind:?}"
        );
        assert!(pair.station.firmware_update().is_none());
        // A late report of the finished update changes nothing.
        assert!(!progress(&mut pair, rid, FirmwareProgress::Downloaded));
    }
}

#[test]
fn a_bad_signature_ends_the_update_and_is_reported_in_each_versions_words() {
    for kind in KINDS {
        let (mut pair, _) = fresh(kind.version());
        let rid = if kind == Kind::Plain16 { 0 } else { 42 };
        pair.central_call(
            kind.action(),
            kind.request("http://fw.example/x", &at(0), None, 1),
        );
        assert!(progress(&mut pair, rid, FirmwareProgress::Downloaded) || kind == Kind::Plain16);
        let last = if kind == Kind::Plain16 {
            // 1.6 has no signature: the application's verification fails the install.
            assert_eq!(installs(&pair), 1);
            assert!(progress(
                &mut pair,
                rid,
                FirmwareProgress::InstallVerificationFailed
            ));
            "InstallationFailed"
        } else {
            assert!(progress(&mut pair, rid, FirmwareProgress::InvalidSignature));
            assert!(pair
                .events_where(|e| matches!(e, StationEvent::SecurityEvent { kind, .. } if kind == "InvalidFirmwareSignature"))
                .len()
                == 1);
            "InvalidSignature"
        };
        assert_eq!(
            installs(&pair),
            usize::from(kind == Kind::Plain16),
            "{kind:?}"
        );
        let s = statuses(&pair, kind.notification());
        assert_eq!(s.last().map(String::as_str), Some(last), "{kind:?}");
        assert!(pair.station.firmware_update().is_none());
    }
}

#[test]
fn the_install_waits_for_its_time_and_for_transactions_to_end() {
    for kind in [Kind::Signed16, Kind::V2(Version::V201)] {
        let (mut pair, _) = fresh(kind.version());
        let mut q = kind.request("http://fw.example/x", &at(0), None, 1);
        q["firmware"]["installDateTime"] = json!(at(120));
        pair.central_call(kind.action(), q);
        progress(&mut pair, 42, FirmwareProgress::Downloaded);
        progress(&mut pair, 42, FirmwareProgress::SignatureVerified);
        assert_eq!(
            pair.station.firmware_status(),
            FirmwareStatus::InstallScheduled
        );
        pair.plug_in(1);
        pair.present(1, "TAG1");
        assert!(pair.station.transaction(1).is_some(), "{kind:?}");
        pair.advance(Duration::from_secs(200));
        assert_eq!(installs(&pair), 0, "{kind:?}: a transaction runs");
        pair.present(1, "TAG1");
        pair.unplug(1);
        assert!(pair.station.transaction(1).is_none(), "{kind:?}");
        assert_eq!(installs(&pair), 1, "{kind:?}");
        assert!(statuses(&pair, kind.notification()).contains(&"InstallScheduled".to_owned()));
    }
}

#[test]
fn a_new_update_cancels_the_one_under_way() {
    for kind in [
        Kind::Signed16,
        Kind::V2(Version::V201),
        Kind::V2(Version::V21),
    ] {
        let (mut pair, _) = fresh(kind.version());
        pair.central_call(
            kind.action(),
            kind.request("http://fw.example/a", &at(600), None, 1),
        );
        let mut q = kind.request("http://fw.example/b", &at(0), None, 1);
        q["requestId"] = json!(43);
        let id = pair.central_call(kind.action(), q);
        assert_eq!(
            answer(&pair, &id).unwrap()["status"],
            "AcceptedCanceled",
            "{kind:?}"
        );
        assert_eq!(
            pair.events_where(|e| matches!(e, StationEvent::FirmwareCanceled { request_id: 42 }))
                .len(),
            1
        );
        assert_eq!(downloads(&pair), vec![(43, 1)], "{kind:?}");
        // While installing, a new one is refused.
        progress(&mut pair, 43, FirmwareProgress::Downloaded);
        progress(&mut pair, 43, FirmwareProgress::SignatureVerified);
        assert_eq!(installs(&pair), 1);
        let id = pair.central_call(
            kind.action(),
            kind.request("http://fw.example/c", &at(0), None, 1),
        );
        assert_eq!(
            answer(&pair, &id).unwrap()["status"],
            "Rejected",
            "{kind:?}"
        );
        assert_eq!(pair.station.firmware_update().unwrap().request_id, 43);
    }
}

#[test]
fn trigger_message_reports_the_current_status_or_idle() {
    for kind in KINDS {
        let v = kind.version();
        let (mut pair, _) = fresh(v);
        let trigger = |_: Version| json!({ "requestedMessage": "FirmwareStatusNotification" });
        let trigger_action = if kind == Kind::Signed16 {
            "ExtendedTriggerMessage"
        } else {
            "TriggerMessage"
        };
        let id = pair.central_call(trigger_action, trigger(v));
        assert_eq!(answer(&pair, &id).unwrap()["status"], "Accepted");
        assert_eq!(
            statuses(&pair, kind.notification()),
            vec!["Idle"],
            "{kind:?}"
        );
        pair.central_call(
            kind.action(),
            kind.request("http://fw.example/a", &at(0), None, 1),
        );
        pair.central_call(trigger_action, trigger(v));
        let s = statuses(&pair, kind.notification());
        assert_eq!(
            s.last().map(String::as_str),
            Some("Downloading"),
            "{kind:?}"
        );
        if kind.signed() {
            let p = pair.central.payloads(kind.notification());
            assert_eq!(p.last().unwrap()["requestId"], 42, "{kind:?}");
            assert!(p[0].get("requestId").is_none(), "Idle carries no requestId");
        }
    }
}

#[test]
fn hostile_update_requests_are_answered_per_spec() {
    for kind in KINDS {
        let v = kind.version();
        let (mut pair, _) = fresh(v);
        // Not a URL: 1.6 UpdateFirmware (no status in its answer) gets a CALLERROR, the
        // others Rejected.
        let id = pair.central_call(kind.action(), kind.request("not a url", &at(0), None, 1));
        match kind {
            Kind::Plain16 => {
                let frame = pair.answer_frame(&id).unwrap();
                assert!(frame.contains("PropertyConstraintViolation"), "{frame}");
            }
            _ => assert_eq!(
                answer(&pair, &id).unwrap()["status"],
                "Rejected",
                "{kind:?}"
            ),
        }
        // 60,000 characters: the schemas with a maxLength refuse it; 1.6 UpdateFirmware
        // (none) gets the station's own bound.
        let long = format!("https://fw.example/{}", "a".repeat(60_000));
        let id = pair.central_call(kind.action(), kind.request(&long, &at(0), None, 1));
        let frame = pair.answer_frame(&id).unwrap().to_owned();
        assert!(
            frame.starts_with("[4,"),
            "{kind:?}: {}",
            &frame[..80.min(frame.len())]
        );
        assert!(pair.station.firmware_update().is_none(), "{kind:?}");
        // A signing certificate that is not one.
        if kind.signed() {
            let mut q = kind.request("https://fw.example/x", &at(0), None, 1);
            q["firmware"]["signingCertificate"] = json!("garbage");
            let id = pair.central_call(kind.action(), q);
            assert_eq!(answer(&pair, &id).unwrap()["status"], "InvalidCertificate");
            assert!(pair.station.firmware_update().is_none());
        }
        // retries i32::MAX, retrieve in year 9999: accepted, bounded, scheduled within a day.
        let q = kind.request(
            "https://fw.example/x",
            "9999-12-31T23:59:59Z",
            Some(i64::from(i32::MAX)),
            i64::from(i32::MAX),
        );
        let id = pair.central_call(kind.action(), q);
        assert!(answer(&pair, &id).is_ok(), "{kind:?}");
        let u = pair.station.firmware_update().expect("held").clone();
        assert_eq!(
            u.retries_left,
            ocpp_charger::station::firmware::MAX_TRANSFER_RETRIES
        );
        assert!(u.retry_interval <= Duration::from_secs(86_400));
        let wake = pair.station.poll_timeout().expect("a deadline");
        assert!(wake <= pair.clock.now() + Duration::from_secs(86_400));
        pair.advance(Duration::from_secs(2 * 86_400));
        assert!(
            downloads(&pair).is_empty(),
            "{kind:?}: year 9999 is not here yet"
        );
        // Negative retries and interval count as 0.
        let q = kind.request("https://fw.example/y", &at(0), Some(-5), -5);
        let id = pair.central_call(kind.action(), q);
        if kind == Kind::V2(Version::V21) {
            // 2.1's schema sets a minimum of 0.
            assert!(pair
                .answer_frame(&id)
                .unwrap()
                .contains("PropertyConstraintViolation"));
            continue;
        }
        assert!(
            answer(&pair, &id).is_ok(),
            "{kind:?}: {:?}",
            pair.answer_frame(&id)
        );
        let u = pair.station.firmware_update().expect("held");
        assert_eq!(u.retries_left, 0);
        assert_eq!(u.retry_interval, Duration::ZERO);
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn without_transfers_the_old_refusals_stand() {
    for kind in KINDS {
        let v = kind.version();
        let clock = TestClock::new();
        let mut pair = VirtualPair::with(
            test_config(v, &clock),
            Box::new(MemoryStore::new()),
            MockCentral::new(v),
            clock,
        );
        pair.connect();
        let id = pair.central_call(
            kind.action(),
            kind.request("https://fw.example/x", &at(0), None, 1),
        );
        match kind {
            Kind::Plain16 => assert!(pair.answer_frame(&id).unwrap().contains("NotSupported")),
            _ => assert_eq!(answer(&pair, &id).unwrap()["status"], "Rejected"),
        }
        assert!(downloads(&pair).is_empty());
    }
}

// ----- logs -----

fn uploads(pair: &VirtualPair) -> Vec<(i32, u32, String, String)> {
    pair.events
        .iter()
        .filter_map(|e| match e {
            StationEvent::LogUpload {
                request_id,
                attempt,
                location,
                file_name,
                ..
            } => Some((*request_id, *attempt, location.clone(), file_name.clone())),
            _ => None,
        })
        .collect()
}

fn log_progress(pair: &mut VirtualPair, id: i32, p: LogProgress) -> bool {
    let mut taken = false;
    pair.station_input(|s, now| taken = s.log_progress(now, id, p));
    taken
}

fn get_log(id: i64, location: &str, retries: i64) -> Value {
    json!({
        "logType": "DiagnosticsLog",
        "requestId": id,
        "retries": retries,
        "retryInterval": 10,
        "log": { "remoteLocation": location, "oldestTimestamp": at(-3600) },
    })
}

#[test]
fn get_diagnostics_uploads_and_reports() {
    let (mut pair, _) = fresh(Version::V16);
    let id = pair.central_call(
        "GetDiagnostics",
        json!({ "location": "http://up.example/d", "retries": 1, "retryInterval": 10, "startTime": at(-60) }),
    );
    let name = answer(&pair, &id).unwrap()["fileName"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(name.ends_with(".log"), "{name}");
    let up = uploads(&pair);
    assert_eq!(
        up,
        vec![(0, 1, "http://up.example/d".to_owned(), name.clone())]
    );
    assert!(log_progress(&mut pair, 0, LogProgress::UploadFailed));
    pair.advance(Duration::from_secs(10));
    assert_eq!(uploads(&pair).len(), 2);
    assert!(log_progress(&mut pair, 0, LogProgress::Uploaded));
    assert_eq!(
        statuses(&pair, "DiagnosticsStatusNotification"),
        vec!["Uploading", "Uploading", "Uploaded"]
    );
    // Trigger: Idle now.
    pair.central_call(
        "TriggerMessage",
        json!({ "requestedMessage": "DiagnosticsStatusNotification" }),
    );
    assert_eq!(
        statuses(&pair, "DiagnosticsStatusNotification")
            .last()
            .unwrap(),
        "Idle"
    );
    // Not a URL: CALLERROR (the answer has no status).
    let id = pair.central_call("GetDiagnostics", json!({ "location": "nowhere" }));
    assert!(pair
        .answer_frame(&id)
        .unwrap()
        .contains("PropertyConstraintViolation"));
    let id = pair.central_call(
        "GetDiagnostics",
        json!({ "location": format!("http://x/{}", "a".repeat(60_000)) }),
    );
    assert!(pair.answer_frame(&id).unwrap().starts_with("[4,"));
    assert!(pair.station.log_upload().is_none());
    pair.assert_no_invalid_outgoing();
}

#[test]
fn get_log_uploads_retries_and_reports_with_the_request_id() {
    for v in [Version::V16, Version::V201, Version::V21] {
        let (mut pair, store) = fresh(v);
        let id = pair.central_call("GetLog", get_log(7, "https://up.example/logs", 2));
        let a = answer(&pair, &id).unwrap();
        assert_eq!(a["status"], "Accepted", "{v}");
        let name = a["filename"].as_str().unwrap().to_owned();
        assert_eq!(
            uploads(&pair),
            vec![(7, 1, "https://up.example/logs".to_owned(), name)]
        );
        // Trigger during the upload: Uploading with the id.
        pair.central_call(
            "TriggerMessage",
            json!({ "requestedMessage": "LogStatusNotification" }),
        );
        // A restart while uploading asks again.
        let VirtualPair { central, clock, .. } = pair;
        let mut pair = pair_from(v, &store, clock, central);
        assert_eq!(pair.station.log_upload().unwrap().request_id, 7);
        assert_eq!(
            uploads(&pair).last().map(|u| u.1),
            Some(2),
            "{v}: asked again"
        );
        // Fail three times: the two retries, then it gives up.
        for attempt in 3..=4 {
            assert!(log_progress(&mut pair, 7, LogProgress::UploadFailed));
            pair.advance(Duration::from_secs(9));
            assert_eq!(uploads(&pair).last().map(|u| u.1), Some(attempt - 1), "{v}");
            pair.advance(Duration::from_secs(1));
            assert_eq!(uploads(&pair).last().map(|u| u.1), Some(attempt), "{v}");
        }
        assert!(log_progress(&mut pair, 7, LogProgress::UploadFailed));
        pair.advance(Duration::from_secs(100));
        assert_eq!(uploads(&pair).last().map(|u| u.1), Some(4), "{v}");
        let s = statuses(&pair, "LogStatusNotification");
        assert_eq!(
            s.last().map(String::as_str),
            Some("UploadFailure"),
            "{v}: {s:?}"
        );
        assert!(pair
            .central
            .payloads("LogStatusNotification")
            .iter()
            .all(|p| p["requestId"] == 7));
        assert!(pair.station.log_upload().is_none());
        // A new request during one: AcceptedCanceled; PermissionDenied ends it at once.
        pair.central_call("GetLog", get_log(8, "https://up.example/logs", 5));
        let id = pair.central_call("GetLog", get_log(9, "https://up.example/logs", 5));
        assert_eq!(
            answer(&pair, &id).unwrap()["status"],
            "AcceptedCanceled",
            "{v}"
        );
        assert!(
            !log_progress(&mut pair, 8, LogProgress::Uploaded),
            "the old one is gone"
        );
        assert!(log_progress(&mut pair, 9, LogProgress::PermissionDenied));
        assert_eq!(
            statuses(&pair, "LogStatusNotification").last().unwrap(),
            "PermissionDenied"
        );
        // Hostile: not a URL, requestId fine: Rejected; nothing held.
        let id = pair.central_call("GetLog", get_log(10, "::", 1));
        assert_eq!(
            answer(&pair, &id).unwrap()["status"],
            "Rejected",
            "{v}: {:?}",
            pair.answer_frame(&id)
        );
        let id = pair.central_call("GetLog", get_log(11, "https://x/", i64::from(i32::MAX)));
        assert_eq!(answer(&pair, &id).unwrap()["status"], "Accepted", "{v}");
        assert_eq!(pair.station.log_upload().unwrap().retries_left, 10);
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn a_location_may_be_as_long_as_the_version_allows() {
    let long = format!("https://fw.example/{}", "a".repeat(1500));
    for (v, taken) in [(Version::V201, false), (Version::V21, true)] {
        let (mut pair, _) = fresh(v);
        let kind = Kind::V2(v);
        let id = pair.central_call(kind.action(), kind.request(&long, &at(0), None, 1));
        if taken {
            assert_eq!(answer(&pair, &id).unwrap()["status"], "Accepted", "{v}");
            assert_eq!(downloads(&pair).len(), 1);
        } else {
            // 2.0.1's schema: at most 512.
            assert!(pair.answer_frame(&id).unwrap().starts_with("[4,"), "{v}");
            assert!(pair.station.firmware_update().is_none());
        }
        let log = get_log(3, &long, 0);
        let id = pair.central_call("GetLog", log);
        if taken {
            assert_eq!(answer(&pair, &id).unwrap()["status"], "Accepted", "{v}");
        } else {
            assert!(pair.answer_frame(&id).unwrap().starts_with("[4,"), "{v}");
        }
    }
}
