//! OCPP 2.1 tariffs over real sockets: ocpp-central's typed commands (`set_default_tariff`,
//! `get_tariffs`, `clear_tariffs`, `change_transaction_tariff`) against the station's
//! WebSocket client, the refusals before sending, and `Event::TariffCost` for the tariff and
//! the cost the station reports.

use std::sync::{Arc, Mutex};

use ocpp_central::tariffs::CostReport;
use ocpp_central::{
    async_trait, CallError, ChargerHandle, Event, HandleV16, HandleV201, HandleV21, Handler,
};
use ocpp_charger::station::tariffs::TariffConfig;
use ocpp_charger::testing::plug_in_and_present;
use ocpp_charger::Version;
use ocpp_types::v21::{
    TariffChangeStatusEnumType, TariffClearStatusEnumType, TariffGetStatusEnumType,
    TariffSetStatusEnumType, TariffType,
};
use rust_decimal::Decimal;

mod support;
use support::{station_on_central, station_on_central_with, until};

#[derive(Default)]
struct Seen {
    reports: Mutex<Vec<CostReport>>,
    tx: Mutex<Option<String>>,
}

#[async_trait]
impl Handler for Seen {
    async fn on_event(&self, _charger: &ChargerHandle, event: &Event) {
        match event {
            Event::TariffCost { report, .. } => {
                self.reports.lock().unwrap().push((**report).clone())
            }
            Event::TransactionStarted { transaction, .. } => {
                *self.tx.lock().unwrap() = Some(transaction.id.clone())
            }
            _ => {}
        }
    }
}
impl HandleV16 for Seen {}
impl HandleV201 for Seen {}
impl HandleV21 for Seen {}

fn tariff(id: &str, kwh: &str) -> TariffType {
    serde_json::from_str(&format!(
        r#"{{"tariffId":"{id}","currency":"EUR","energy":{{"prices":[{{"priceKwh":{kwh}}}]}},
        "fixedFee":{{"prices":[{{"priceFixed":1}}]}}}}"#
    ))
    .unwrap()
}

#[tokio::test]
async fn tariff_commands_through_ocpp_central() {
    let seen = Arc::new(Seen::default());
    let (server, client, h) = station_on_central_with(
        "CP-T",
        Version::V21,
        seen.clone(),
        Decimal::from(7400),
        |c| {
            c.tariffs(TariffConfig {
                local_cost: true,
                ..TariffConfig::default()
            })
        },
    )
    .await;
    let a = h
        .set_default_tariff(0, &tariff("T1", "0.30"))
        .await
        .unwrap();
    assert_eq!(a.status, TariffSetStatusEnumType::Accepted);
    let a = h
        .set_default_tariff(0, &tariff("T1", "0.40"))
        .await
        .unwrap();
    assert_eq!(a.status, TariffSetStatusEnumType::DuplicateTariffId);
    // Refused before sending: 60,000 elements, a negative price, a negative EVSE.
    let mut big = tariff("BIG", "0.1");
    let one = big.energy.as_ref().unwrap().prices[0].clone();
    big.energy.as_mut().unwrap().prices = vec![one; 60_000];
    big.fixed_fee = None;
    match h.set_default_tariff(0, &big).await {
        Err(CallError::Refused(why)) => assert!(why.contains("60000 price elements"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        h.set_default_tariff(0, &tariff("N", "-1")).await,
        Err(CallError::Refused(_))
    ));
    assert!(matches!(
        h.set_default_tariff(-1, &tariff("T1", "0.30")).await,
        Err(CallError::Refused(_))
    ));
    assert!(matches!(
        h.clear_tariffs(Some(&[]), None).await,
        Err(CallError::Refused(_))
    ));
    let g = h.get_tariffs(0).await.unwrap();
    assert_eq!(g.status, TariffGetStatusEnumType::Accepted);
    assert_eq!(g.tariff_assignments.unwrap()[0].tariff_id.as_str(), "T1");

    // A transaction: Started names T1 (Event::TariffCost), the change is accepted, the end
    // carries the station's cost.
    plug_in_and_present(&client, 1, "ALICE").unwrap();
    until("transaction", || seen.tx.lock().unwrap().is_some()).await;
    let tx = seen.tx.lock().unwrap().clone().unwrap();
    until("tariff report", || !seen.reports.lock().unwrap().is_empty()).await;
    let first = seen.reports.lock().unwrap()[0].clone();
    assert_eq!(
        (first.transaction_id.as_str(), first.tariff_id.as_deref()),
        (tx.as_str(), Some("T1"))
    );
    let a = h
        .change_transaction_tariff("nope", &tariff("T2", "0.2"))
        .await
        .unwrap();
    assert_eq!(a.status, TariffChangeStatusEnumType::TxNotFound);
    let a = h
        .change_transaction_tariff(&tx, &tariff("T2", "0.2"))
        .await
        .unwrap();
    assert_eq!(a.status, TariffChangeStatusEnumType::Accepted);
    plug_in_and_present(&client, 1, "ALICE").unwrap();
    until("cost details", || {
        seen.reports
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.cost_details.is_some())
    })
    .await;
    let ended = seen
        .reports
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.cost_details.is_some())
        .cloned()
        .unwrap();
    let details = ended.cost_details.unwrap();
    assert_eq!(details.total_cost.currency.as_str(), "EUR");
    assert!(details.total_cost.total.incl_tax.unwrap() >= Decimal::ONE);

    let c = h.clear_tariffs(None, None).await.unwrap();
    assert_eq!(
        c.clear_tariffs_result[0].status,
        TariffClearStatusEnumType::Accepted
    );
    let g = h.get_tariffs(0).await.unwrap();
    assert_eq!(g.status, TariffGetStatusEnumType::NoTariff);
    client.shutdown().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn older_versions_are_refused_before_sending() {
    for v in [Version::V16, Version::V201] {
        let seen = Arc::new(Seen::default());
        let (server, client, h) = station_on_central("CP-O", v, seen, Decimal::from(7400)).await;
        let t = tariff("T1", "0.3");
        assert!(
            matches!(
                h.set_default_tariff(0, &t).await,
                Err(CallError::Refused(_))
            ),
            "{v}"
        );
        assert!(matches!(h.get_tariffs(0).await, Err(CallError::Refused(_))));
        assert!(matches!(
            h.clear_tariffs(None, None).await,
            Err(CallError::Refused(_))
        ));
        assert!(matches!(
            h.change_transaction_tariff("x", &t).await,
            Err(CallError::Refused(_))
        ));
        client.shutdown().await.unwrap();
        server.shutdown().await.unwrap();
    }
}
