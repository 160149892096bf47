//! Display messages, customer information and cost over real sockets: the ocpp-central
//! server's typed commands (`set_display_message`, `get_display_messages`,
//! `clear_display_message`, `customer_information`, `cost_updated`, `final_cost_v16`)
//! against the station's WebSocket client.

use std::sync::{Arc, Mutex};

use ocpp_central::display::{
    CustomerInformationPart, CustomerRef, DisplayMessage, DisplayQuery, DisplayReport,
};
use ocpp_central::{async_trait, ChargerHandle, Event, HandleV16, HandleV201, HandleV21, Handler};
use ocpp_charger::testing::plug_in_and_present;
use ocpp_charger::Version;
use rust_decimal::Decimal;

mod support;
use support::{station_on_central, until};

#[derive(Default)]
struct Seen {
    reports: Mutex<Vec<DisplayReport>>,
    parts: Mutex<Vec<CustomerInformationPart>>,
    tx: Mutex<Option<String>>,
}

#[async_trait]
impl Handler for Seen {
    async fn on_event(&self, _charger: &ChargerHandle, event: &Event) {
        match event {
            Event::DisplayMessages { report, .. } => {
                self.reports.lock().unwrap().push(report.clone())
            }
            Event::CustomerInformation { part, .. } => {
                self.parts.lock().unwrap().push(part.clone())
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

#[tokio::test]
async fn display_messages_and_customer_information_through_ocpp_central() {
    for v in [Version::V201, Version::V21] {
        let seen = Arc::new(Seen::default());
        let (server, client, h) =
            station_on_central("CP-D", v, seen.clone(), Decimal::from(7400)).await;

        let mut m = DisplayMessage::new(1, "Welcome");
        m.language = Some("en".into());
        assert_eq!(
            h.set_display_message(&m).await.unwrap().status,
            "Accepted",
            "{v}"
        );
        let mut html = DisplayMessage::new(2, "<b>x</b>");
        html.format = "HTML".into();
        assert_eq!(
            h.set_display_message(&html).await.unwrap().status,
            "NotSupportedMessageFormat"
        );
        let mut tx = DisplayMessage::new(3, "x");
        tx.transaction_id = Some("none".into());
        assert_eq!(
            h.set_display_message(&tx).await.unwrap().status,
            "UnknownTransaction"
        );
        // Too long for the schema: refused before anything is sent.
        assert!(h
            .set_display_message(&DisplayMessage::new(4, "x".repeat(60_000)))
            .await
            .is_err());

        let a = h
            .get_display_messages(77, &DisplayQuery::default())
            .await
            .unwrap();
        assert_eq!(a.status, "Accepted");
        until("report", || !seen.reports.lock().unwrap().is_empty()).await;
        let report = seen.reports.lock().unwrap()[0].clone();
        assert_eq!(report.request_id, 77);
        assert!(!report.tbc);
        assert_eq!(report.messages, vec![m.clone()], "{v}");
        let q = DisplayQuery {
            ids: Some(vec![9]),
            ..DisplayQuery::default()
        };
        assert_eq!(
            h.get_display_messages(78, &q).await.unwrap().status,
            "Unknown"
        );
        assert_eq!(h.clear_display_message(1).await.unwrap().status, "Accepted");
        assert_eq!(h.clear_display_message(1).await.unwrap().status, "Unknown");

        // Customer information: exactly one identifier, then the parts.
        let who = CustomerRef::IdToken {
            id_token: "ALICE".into(),
            token_type: "ISO14443".into(),
        };
        plug_in_and_present(&client, 1, "ALICE").unwrap();
        until("transaction", || seen.tx.lock().unwrap().is_some()).await;
        let a = h.customer_information(5, true, false, &who).await.unwrap();
        assert_eq!(a.status, "Accepted");
        until("parts", || !seen.parts.lock().unwrap().is_empty()).await;
        let part = seen.parts.lock().unwrap()[0].clone();
        assert_eq!((part.request_id, part.seq_no, part.tbc), (5, 0, false));
        assert!(part.data.contains("ongoing transaction"), "{}", part.data);
        let a = h
            .customer_information(6, false, false, &CustomerRef::Identifier("C".into()))
            .await
            .unwrap();
        assert_eq!(a.status, "Rejected");

        // Cost: CostUpdated is answered (empty); 1.6-only calls are refused on 2.x.
        let tx = seen.tx.lock().unwrap().clone().unwrap();
        h.cost_updated(&tx, "1.25".parse().unwrap()).await.unwrap();
        assert!(h.final_cost_v16(1, Decimal::ONE, None).await.is_err());
        client.shutdown().await.unwrap();
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn running_cost_on_1_6_through_ocpp_central() {
    let seen = Arc::new(Seen::default());
    let (server, client, h) =
        station_on_central("CP-C", Version::V16, seen.clone(), Decimal::from(7400)).await;
    // The station in the support helper does not take California Pricing: refused with
    // its answer, nothing else broken.
    plug_in_and_present(&client, 1, "ALICE").unwrap();
    until("transaction", || seen.tx.lock().unwrap().is_some()).await;
    let tx = seen.tx.lock().unwrap().clone().unwrap();
    let e = h.cost_updated(&tx, "0.50".parse().unwrap()).await;
    assert!(
        matches!(e, Err(ocpp_central::CallError::Refused(ref s)) if s.contains("UnknownVendorId")),
        "{e:?}"
    );
    assert!(h
        .set_display_message(&DisplayMessage::new(1, "x"))
        .await
        .is_err());
    assert!(h.cost_updated("not-a-number", Decimal::ONE).await.is_err());
    client.shutdown().await.unwrap();
    server.shutdown().await.unwrap();
}
