//! ocpp-central's version-neutral smart-charging commands against this station over
//! 127.0.0.1, for each version: set → composite → report → clear, with exact answers.

use std::sync::Arc;

use ocpp_central::smart_charging::{
    ChargingProfile, ClearProfiles, ProfileQuery, Purpose, RateUnit,
};
use ocpp_central::{CallError, ChargerHandle};
use ocpp_charger::Version;
use rust_decimal::Decimal;

mod support;
use support::{station_on_central, App};

/// The composite of EVSE `evse` over 300 s in W, as (start, limit, phases).
async fn composite(h: &ChargerHandle, evse: i32) -> Vec<(i32, Decimal, u8)> {
    let a = h
        .get_composite_schedule(evse, 300, Some(RateUnit::W))
        .await
        .unwrap();
    assert_eq!(a.status, "Accepted", "EVSE {evse}: {:?}", a.response);
    let s = a.schedule.expect("a schedule");
    assert_eq!(s.evse, evse as u32);
    assert_eq!(s.unit, RateUnit::W);
    s.periods
        .iter()
        .map(|p| (p.start_period, p.limit, p.number_phases))
        .collect()
}

#[tokio::test]
async fn set_composite_report_clear_on_every_version() {
    for v in [Version::V16, Version::V201, Version::V21] {
        let (server, client, h) =
            station_on_central("CP-SC", v, Arc::new(App), Decimal::from(11_000)).await;
        let now = chrono::Utc::now();
        // Nothing installed: the hardware's 32 A on 3 phases at 230 V.
        assert_eq!(
            composite(&h, 1).await,
            vec![(0, Decimal::from(22_080), 3)],
            "{v}"
        );

        let default = ChargingProfile::constant(
            1,
            0,
            Purpose::TxDefault,
            RateUnit::W,
            Decimal::from(11_000),
            now,
        );
        let a = h.set_charging_profile(1, &default).await.unwrap();
        assert_eq!(a.status, "Accepted", "{v}");
        assert_eq!(
            composite(&h, 1).await,
            vec![(0, Decimal::from(11_000), 3)],
            "{v}"
        );
        // EVSE 2 is untouched.
        assert_eq!(
            composite(&h, 2).await,
            vec![(0, Decimal::from(22_080), 3)],
            "{v}"
        );

        // A station maximum below the default (refused off EVSE 0 before it is sent).
        let max = ChargingProfile::constant(
            2,
            0,
            Purpose::ChargingStationMax,
            RateUnit::W,
            Decimal::from(6_900),
            now,
        );
        assert!(matches!(
            h.set_charging_profile(1, &max).await,
            Err(CallError::Refused(_))
        ));
        assert_eq!(
            h.set_charging_profile(0, &max).await.unwrap().status,
            "Accepted"
        );
        // EVSE 0's composite is that maximum; EVSE 1's the lower of it and its default.
        assert_eq!(
            composite(&h, 0).await,
            vec![(0, Decimal::from(6_900), 3)],
            "{v}"
        );
        assert_eq!(
            composite(&h, 1).await,
            vec![(0, Decimal::from(6_900), 3)],
            "{v}"
        );

        // A TxProfile without a transaction: the station refuses it.
        let tx =
            ChargingProfile::constant(3, 1, Purpose::Tx, RateUnit::W, Decimal::from(4_000), now);
        assert_eq!(
            h.set_charging_profile(1, &tx).await.unwrap().status,
            "Rejected",
            "{v}"
        );

        // Reading them back: 2.x only.
        let report = h.get_charging_profiles(&ProfileQuery::default()).await;
        if v == Version::V16 {
            assert!(matches!(report, Err(CallError::Refused(_))), "{report:?}");
        } else {
            let report = report.unwrap();
            assert_eq!(report.status, "Accepted");
            let mut got: Vec<_> = report
                .profiles
                .iter()
                .map(|p| (p.evse, p.source.as_str(), p.profile.id, p.profile.purpose))
                .collect();
            got.sort();
            assert_eq!(
                got,
                vec![
                    (0, "CSO", 2, Purpose::ChargingStationMax),
                    (1, "CSO", 1, Purpose::TxDefault)
                ],
                "{v}"
            );
            let report = h
                .get_charging_profiles(&ProfileQuery {
                    purpose: Some(Purpose::Tx),
                    ..ProfileQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(report.status, "NoProfiles");
            assert!(report.profiles.is_empty());
        }

        // Clear by id, then by purpose; once gone, `Unknown`.
        let by_id = ClearProfiles {
            id: Some(1),
            ..ClearProfiles::default()
        };
        assert_eq!(
            h.clear_charging_profiles(&by_id).await.unwrap().status,
            "Accepted"
        );
        // The station maximum still holds EVSE 1.
        assert_eq!(
            composite(&h, 1).await,
            vec![(0, Decimal::from(6_900), 3)],
            "{v}"
        );
        assert_eq!(
            h.clear_charging_profiles(&by_id).await.unwrap().status,
            "Unknown"
        );
        let by_purpose = ClearProfiles {
            purpose: Some(Purpose::ChargingStationMax),
            ..ClearProfiles::default()
        };
        assert_eq!(
            h.clear_charging_profiles(&by_purpose).await.unwrap().status,
            "Accepted"
        );
        for evse in [0, 1] {
            assert_eq!(
                composite(&h, evse).await,
                vec![(0, Decimal::from(22_080), 3)],
                "{v}"
            );
        }
        let external = ClearProfiles {
            purpose: Some(Purpose::ExternalConstraints),
            ..ClearProfiles::default()
        };
        assert!(matches!(
            h.clear_charging_profiles(&external).await,
            Err(CallError::Refused(_))
        ));
        client.shutdown().await.unwrap();
        server.shutdown().await.unwrap();
    }
}
