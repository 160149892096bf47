//! The application API (`ocpp_charger::app`) and the typed decoding of calls and answers, on
//! virtual time: overrides answer, defaults are the built-in behaviour, and what the typed
//! codec refuses gets its exact code and pointer.

use ocpp_charger::app::{
    Application, BuiltIn, CallError, Context, Firmware, RemoteControl, Reset, ResetStatus,
    UnlockConnector, UnlockStatus,
};
use ocpp_charger::ocpp_types::v201;
use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{BootState, MemoryStore, StationConfig, Version};
use serde_json::{json, Value};

const ALL: [Version; 3] = [Version::V16, Version::V201, Version::V21];

fn pair_with(
    v: Version,
    central: MockCentral,
    config: impl FnOnce(StationConfig) -> StationConfig,
) -> VirtualPair {
    let clock = TestClock::new();
    let cfg = config(test_config(v, &clock));
    let mut pair = VirtualPair::with(cfg, Box::new(MemoryStore::new()), central, clock);
    pair.connect();
    pair
}

fn answer(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("no CALLRESULT for {id}: {other:?}"),
    }
}

/// Counts resets, answers them itself and lets the station do one (the built-in behaviour)
/// only for a hard reset; refuses to unlock anything.
#[derive(Default)]
struct Custom {
    resets: u32,
    firmware: Vec<String>,
}

impl RemoteControl for Custom {
    fn reset(&mut self, ctx: &mut Context<'_>, request: Reset) -> Result<ResetStatus, CallError> {
        self.resets += 1;
        if request.kind == ocpp_charger::app::ResetType::Soft {
            return Ok(ResetStatus::Rejected);
        }
        BuiltIn.reset(ctx, request)
    }

    fn unlock_connector(
        &mut self,
        _ctx: &mut Context<'_>,
        _request: UnlockConnector,
    ) -> Result<UnlockStatus, CallError> {
        Ok(UnlockStatus::UnknownConnector)
    }
}

impl Firmware for Custom {
    fn update_firmware_v201(
        &mut self,
        _ctx: &mut Context<'_>,
        request: v201::UpdateFirmwareRequest,
    ) -> Result<v201::UpdateFirmwareResponse, CallError> {
        self.firmware
            .push(request.firmware.location.as_str().to_owned());
        Ok(v201::UpdateFirmwareResponse::new(
            v201::UpdateFirmwareStatusEnumType::Accepted,
        ))
    }
}

impl Application for Custom {
    fn remote_control(&mut self) -> Option<&mut dyn RemoteControl> {
        Some(self)
    }
    fn firmware(&mut self) -> Option<&mut dyn Firmware> {
        Some(self)
    }
}

#[test]
fn an_override_answers_and_can_call_the_built_in_behaviour() {
    let v = Version::V16;
    let mut pair = pair_with(v, MockCentral::new(v), |c| c.application(Custom::default()));
    let id = pair.central_call("Reset", json!({ "type": "Soft" }));
    assert_eq!(answer(&pair, &id)["status"], "Rejected");
    assert_eq!(pair.central.actions_named("BootNotification"), 1);
    let id = pair.central_call("Reset", json!({ "type": "Hard" }));
    assert_eq!(answer(&pair, &id)["status"], "Accepted");
    // The built-in reset ran after the answer: the station booted again.
    assert_eq!(pair.central.actions_named("BootNotification"), 2);
    // A neutral answer in the version's words: 1.6 has no UnknownConnector.
    let id = pair.central_call("UnlockConnector", json!({ "connectorId": 1 }));
    assert_eq!(answer(&pair, &id)["status"], "NotSupported");
    pair.assert_no_invalid_outgoing();
}

#[test]
fn a_per_version_override_answers_its_version_only() {
    let payload = json!({
        "requestId": 1,
        "firmware": { "location": "https://fw.example/1.bin", "retrieveDateTime": "2025-01-01T00:00:00Z" }
    });
    let v = Version::V201;
    let mut pair = pair_with(v, MockCentral::new(v), |c| c.application(Custom::default()));
    let id = pair.central_call("UpdateFirmware", payload.clone());
    assert_eq!(answer(&pair, &id), json!({ "status": "Accepted" }));
    // 2.1 was not overridden: the built-in refusal.
    let v = Version::V21;
    let mut pair = pair_with(v, MockCentral::new(v), |c| c.application(Custom::default()));
    let id = pair.central_call("UpdateFirmware", payload);
    assert_eq!(answer(&pair, &id), json!({ "status": "Rejected" }));
}

#[test]
fn without_an_application_the_built_in_answers_apply() {
    for (v, action, payload, status) in [
        (
            Version::V16,
            "ReserveNow",
            json!({"connectorId":1,"expiryDate":"2025-01-02T00:00:00Z","idTag":"T","reservationId":1}),
            "Accepted",
        ),
        (
            Version::V16,
            "SendLocalList",
            json!({"listVersion":1,"updateType":"Full"}),
            "Accepted",
        ),
        (
            Version::V201,
            "ReserveNow",
            json!({"id":1,"expiryDateTime":"2025-01-02T00:00:00Z","idToken":{"idToken":"T","type":"Central"}}),
            "Accepted",
        ),
    ] {
        let mut pair = pair_with(v, MockCentral::new(v), |c| c);
        let id = pair.central_call(action, payload);
        assert_eq!(answer(&pair, &id)["status"], status, "{v} {action}");
    }
    // No status in the response: CALLERROR NotSupported.
    let mut pair = pair_with(Version::V16, MockCentral::new(Version::V16), |c| c);
    let id = pair.central_call(
        "UpdateFirmware",
        json!({"location":"ftp://x/fw","retrieveDate":"2025-01-01T00:00:00Z"}),
    );
    let frame = pair.answer_frame(&id).unwrap_or_default();
    assert!(frame.contains("\"NotSupported\""), "{frame}");
}

#[test]
fn an_integer_beyond_32_bits_gets_the_codecs_code_and_pointer() {
    for v in ALL {
        let (action, payload, pointer) = match v {
            Version::V16 => (
                "UnlockConnector",
                r#"{"connectorId":4294967296}"#,
                "/connectorId",
            ),
            _ => (
                "UnlockConnector",
                r#"{"evseId":1,"connectorId":4294967296}"#,
                "/connectorId",
            ),
        };
        let mut pair = pair_with(v, MockCentral::new(v), |c| c);
        let id = pair.central_call_raw(action, payload);
        let frame: Value = serde_json::from_str(pair.answer_frame(&id).unwrap_or("null")).unwrap();
        assert_eq!(frame[2], "TypeConstraintViolation", "{v}: {frame}");
        assert_eq!(frame[4]["pointer"], pointer, "{v}: {frame}");
    }
    // A schema violation in the version's words, with the pointer.
    let mut pair = pair_with(Version::V16, MockCentral::new(Version::V16), |c| c);
    let id = pair.central_call_raw("ChangeAvailability", r#"{"connectorId":1}"#);
    let frame: Value = serde_json::from_str(pair.answer_frame(&id).unwrap_or("null")).unwrap();
    assert_eq!(frame[2], "OccurenceConstraintViolation", "{frame}");
}

#[test]
fn a_bad_callresult_gets_a_callresulterror_on_2_1_only() {
    let bad =
        r#"{"status":"Accepted","currentTime":"2025-01-01T00:00:00Z","interval":99999999999}"#;
    for v in ALL {
        let pair = pair_with(v, MockCentral::new(v).boot_replies(&[bad]), |c| c);
        assert_eq!(pair.station.boot_state(), BootState::Pending, "{v}");
        let errors: Vec<&String> = pair
            .station_sent
            .iter()
            .filter(|t| t.starts_with("[5,"))
            .collect();
        if v == Version::V21 {
            assert_eq!(errors.len(), 1, "{v}: {:?}", pair.station_sent);
            let frame: Value = serde_json::from_str(errors[0]).unwrap();
            assert_eq!(frame[2], "TypeConstraintViolation", "{frame}");
            assert_eq!(frame[4]["pointer"], "/interval", "{frame}");
        } else {
            assert!(errors.is_empty(), "{v}: {errors:?}");
        }
    }
}
