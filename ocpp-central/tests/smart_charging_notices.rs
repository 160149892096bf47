//! The smart-charging notifications a 2.x charger sends: answered by the defaults
//! (`Accepted` or the empty answer, never `NotSupported`) and seen as version-neutral
//! `Event::SmartCharging` notices. On virtual time, no sockets.

use ocpp_central::smart_charging::{Purpose, RateUnit};
use ocpp_central::testing::Harness;
use ocpp_central::{Event, SmartChargingNotice};
use ocpp_types::{Decimal, Version};
use serde_json::Value;

const BOOT: &str = r#"[2,"b1","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"Volt","vendorName":"ACME"}}]"#;

fn booted(version: Version) -> Harness {
    let mut h = Harness::new(version);
    let out = h.charger_sends(BOOT);
    let v: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(v[2]["status"], "Accepted", "{}", out[0]);
    h.take_events();
    h
}

/// The answer payload and the one notice the message made.
fn send(h: &mut Harness, frame: &str) -> (Value, SmartChargingNotice) {
    let out = h.charger_sends(frame);
    assert_eq!(out.len(), 1, "{out:?}");
    let v: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(v[0], 3, "answered with a CALLRESULT: {}", out[0]);
    let notices: Vec<SmartChargingNotice> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::SmartCharging { notice, .. } => Some(notice),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    (v[2].clone(), notices.into_iter().next().unwrap())
}

#[test]
fn notifications_are_accepted_and_become_notices_on_both_2x_versions() {
    for version in [Version::V201, Version::V21] {
        let mut h = booted(version);

        let (answer, notice) = send(
            &mut h,
            r#"[2,"n1","NotifyEVChargingNeeds",{"evseId":1,"maxScheduleTuples":3,"chargingNeeds":{"requestedEnergyTransfer":"AC_three_phase","departureTime":"2025-01-01T18:00:00Z","acChargingParameters":{"energyAmount":20000,"evMinCurrent":6,"evMaxCurrent":32,"evMaxVoltage":400}}}]"#,
        );
        assert_eq!(
            answer,
            serde_json::json!({"status": "Accepted"}),
            "{version}"
        );
        let SmartChargingNotice::EvChargingNeeds {
            evse,
            energy_transfer,
            departure_time,
            energy_amount_wh,
            max_schedule_tuples,
        } = notice
        else {
            panic!("{version}: {notice:?}")
        };
        assert_eq!(evse, 1);
        assert_eq!(energy_transfer, "AC_three_phase");
        assert_eq!(
            departure_time.unwrap().to_rfc3339(),
            "2025-01-01T18:00:00+00:00"
        );
        assert_eq!(energy_amount_wh, Some(Decimal::from(20_000)));
        assert_eq!(max_schedule_tuples, Some(3));

        let (answer, notice) = send(
            &mut h,
            r#"[2,"n2","NotifyEVChargingSchedule",{"evseId":1,"timeBase":"2025-01-01T12:00:00Z","chargingSchedule":{"id":1,"chargingRateUnit":"W","chargingSchedulePeriod":[{"startPeriod":0,"limit":7400},{"startPeriod":3600,"limit":3700}]}}]"#,
        );
        assert_eq!(
            answer,
            serde_json::json!({"status": "Accepted"}),
            "{version}"
        );
        let SmartChargingNotice::EvChargingSchedule { evse, schedule, .. } = notice else {
            panic!("{version}: {notice:?}")
        };
        assert_eq!(evse, 1);
        assert_eq!(schedule.charging_rate_unit, RateUnit::W);
        let limits: Vec<_> = schedule
            .periods
            .iter()
            .map(|p| (p.start_period, p.limit))
            .collect();
        assert_eq!(
            limits,
            vec![
                (0, Some(Decimal::from(7400))),
                (3600, Some(Decimal::from(3700)))
            ]
        );

        let (answer, notice) = send(
            &mut h,
            r#"[2,"n3","NotifyChargingLimit",{"evseId":2,"chargingLimit":{"chargingLimitSource":"EMS","isGridCritical":true}}]"#,
        );
        assert_eq!(answer, serde_json::json!({}), "{version}");
        assert_eq!(
            notice,
            SmartChargingNotice::ChargingLimit {
                evse: Some(2),
                source: "EMS".into(),
                grid_critical: Some(true),
                schedules: vec![],
            }
        );

        let (answer, notice) = send(
            &mut h,
            r#"[2,"n4","ClearedChargingLimit",{"chargingLimitSource":"SO"}]"#,
        );
        assert_eq!(answer, serde_json::json!({}), "{version}");
        assert_eq!(
            notice,
            SmartChargingNotice::ChargingLimitCleared {
                evse: None,
                source: "SO".into()
            }
        );

        let (answer, notice) = send(
            &mut h,
            r#"[2,"n5","ReportChargingProfiles",{"requestId":9,"chargingLimitSource":"CSO","evseId":1,"tbc":true,"chargingProfile":[{"id":4,"stackLevel":1,"chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Relative","chargingSchedule":[{"id":1,"chargingRateUnit":"A","chargingSchedulePeriod":[{"startPeriod":0,"limit":16}]}]}]}]"#,
        );
        assert_eq!(answer, serde_json::json!({}), "{version}");
        let SmartChargingNotice::ProfilesReported {
            request_id,
            evse,
            source,
            profiles,
            tbc,
        } = notice
        else {
            panic!("{version}: {notice:?}")
        };
        assert_eq!(
            (request_id, evse, source.as_str(), tbc),
            (9, 1, "CSO", true)
        );
        assert_eq!(profiles.len(), 1);
        assert_eq!(profiles[0].id, 4);
        assert_eq!(profiles[0].purpose, Purpose::TxDefault);
        assert_eq!(
            profiles[0].schedules[0].periods[0].limit,
            Some(Decimal::from(16))
        );
    }
}
