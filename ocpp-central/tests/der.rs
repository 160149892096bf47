//! OCPP 2.1 DER messages on the sans-IO session: NotifyDERAlarm, NotifyDERStartStop and
//! ReportDERControl answered and projected into `Event::Der`; bad ones refused with the
//! exact CALLERROR and no event.

use ocpp_central::der::{DerControlItem, DerNotice};
use ocpp_central::testing::Harness;
use ocpp_central::Event;
use ocpp_types::Version;

const BOOT: &str = r#"[2,"b1","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"Volt","vendorName":"ACME"}}]"#;

fn notices(h: &mut Harness) -> Vec<DerNotice> {
    h.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Der { notice, .. } => Some(notice),
            _ => None,
        })
        .collect()
}

#[test]
fn der_messages_become_events() {
    let mut h = Harness::new(Version::V21);
    h.charger_sends(BOOT);
    h.take_events();
    let out = h.charger_sends(
        r#"[2,"a1","NotifyDERAlarm",{"controlType":"HVMustTrip","gridEventFault":"OverVoltage","timestamp":"2025-01-01T00:00:05Z","extraInfo":"253 V"}]"#,
    );
    assert_eq!(out, [r#"[3,"a1",{}]"#]);
    let n = notices(&mut h);
    match &n[..] {
        [DerNotice::Alarm {
            control_type,
            grid_event_fault,
            ended,
            extra_info,
            ..
        }] => {
            assert_eq!(control_type, "HVMustTrip");
            assert_eq!(grid_event_fault.as_deref(), Some("OverVoltage"));
            assert!(!ended);
            assert_eq!(extra_info.as_deref(), Some("253 V"));
        }
        other => panic!("{other:?}"),
    }
    let out = h.charger_sends(
        r#"[2,"s1","NotifyDERStartStop",{"controlId":"L1","started":true,"timestamp":"2025-01-01T00:00:05Z","supersededIds":["L0"]}]"#,
    );
    assert_eq!(out, [r#"[3,"s1",{}]"#]);
    assert!(
        matches!(&notices(&mut h)[..], [DerNotice::StartStop { control_id, started: true, superseded, .. }]
        if control_id == "L1" && superseded == &["L0".to_owned()])
    );
    let out = h.charger_sends(
        r#"[2,"r1","ReportDERControl",{"requestId":5,"tbc":true,"limitMaxDischarge":[{"id":"L1","isDefault":false,"isSuperseded":true,"limitMaxDischarge":{"priority":1,"pctMaxDischargePower":50}}],"curve":[{"id":"V1","curveType":"VoltVar","isDefault":true,"isSuperseded":false,"curve":{"priority":1,"yUnit":"PctMaxVar","curveData":[{"x":90,"y":30}]}}]}]"#,
    );
    assert_eq!(out, [r#"[3,"r1",{}]"#]);
    match &notices(&mut h)[..] {
        [DerNotice::Report {
            request_id: 5,
            tbc: true,
            controls,
        }] => {
            assert!(controls.contains(&DerControlItem {
                id: "L1".into(),
                kind: "LimitMaxDischarge".into(),
                is_default: false,
                superseded: true
            }));
            assert!(controls.contains(&DerControlItem {
                id: "V1".into(),
                kind: "VoltVar".into(),
                is_default: true,
                superseded: false
            }));
        }
        other => panic!("{other:?}"),
    }

    // Bad input: the exact CALLERROR, no event, the session lives on.
    let out = h.charger_sends(
        r#"[2,"x1","NotifyDERAlarm",{"controlType":"Nope","timestamp":"2025-01-01T00:00:05Z"}]"#,
    );
    assert!(
        out[0].starts_with(r#"[4,"x1","PropertyConstraintViolation""#),
        "{}",
        out[0]
    );
    let out = h.charger_sends(r#"[2,"x2","NotifyDERAlarm",{"controlType":"HVMustTrip"}]"#);
    assert!(
        out[0].starts_with(r#"[4,"x2","OccurrenceConstraintViolation""#),
        "{}",
        out[0]
    );
    let out = h.charger_sends(
        r#"[2,"x3","NotifyDERStartStop",{"controlId":"0123456789012345678901234567890123456","started":true,"timestamp":"2025-01-01T00:00:05Z"}]"#,
    );
    assert!(out[0].starts_with(r#"[4,"x3","#), "{}", out[0]);
    assert!(notices(&mut h).is_empty());
    let out = h.charger_sends(r#"[2,"h1","Heartbeat",{}]"#);
    assert!(out[0].starts_with(r#"[3,"h1""#));
}
