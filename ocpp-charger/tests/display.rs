//! Display messages (2.x block O), customer information (block N, N09/N10) and the running
//! cost (block I; 1.6 California Pricing) on the station, on virtual time: every answer word,
//! the reports, expiry, the end with a transaction, a restart, and hostile inputs.

use std::time::Duration;

use ocpp_charger::app::{Application, Context, Diagnostics, Display};
use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{
    Customer, DisplayConfig, DisplayMessage, MemoryStore, MessagePriority, StationConfig,
    StationEvent, Version,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

const V2X: [Version; 2] = [Version::V201, Version::V21];

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

fn status(pair: &VirtualPair, id: &str) -> String {
    match pair.central.answer(id) {
        Some(Ok(v)) => v["status"].as_str().unwrap_or_default().to_owned(),
        other => panic!("no result for {id}: {other:?}"),
    }
}

fn error(pair: &VirtualPair, id: &str) -> String {
    match pair.central.answer(id) {
        Some(Err(code)) => code.clone(),
        other => panic!("no error for {id}: {other:?}"),
    }
}

/// Wall time `secs` after the test clock's start (2025-01-01T00:00:00Z).
fn at(secs: i64) -> String {
    let start: chrono::DateTime<chrono::Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
    (start + chrono::Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn message(id: i64, priority: &str, content: &str) -> Value {
    json!({ "message": {
        "id": id,
        "priority": priority,
        "message": { "format": "UTF8", "content": content, "language": "en" },
    }})
}

fn set(pair: &mut VirtualPair, m: Value) -> String {
    let id = pair.central_call("SetDisplayMessage", m);
    status(pair, &id)
}

fn shown(pair: &VirtualPair) -> Vec<String> {
    let now = pair.clock.now();
    pair.station
        .displayed_messages(now)
        .into_iter()
        .map(|m| m.content)
        .collect()
}

fn start_tx(pair: &mut VirtualPair, tag: &str) -> String {
    pair.plug_in(1);
    pair.present(1, tag);
    pair.station
        .transaction(1)
        .and_then(|t| t.transaction_id)
        .expect("a transaction")
}

#[test]
fn set_get_notify_clear() {
    for v in V2X {
        let mut pair = pair_with(v, |c| c);
        assert_eq!(
            set(&mut pair, message(1, "NormalCycle", "Welcome")),
            "Accepted"
        );
        assert_eq!(
            set(&mut pair, message(2, "AlwaysFront", "Closed at 10pm")),
            "Accepted"
        );
        // Highest priority first.
        assert_eq!(shown(&pair), ["Closed at 10pm", "Welcome"], "{v}");
        assert!(pair
            .events
            .iter()
            .any(|e| matches!(e, StationEvent::DisplayChanged)));
        // Replace by id.
        assert_eq!(set(&mut pair, message(1, "InFront", "Hello")), "Accepted");
        assert_eq!(shown(&pair), ["Closed at 10pm", "Hello"], "{v}");
        assert_eq!(pair.station.display_messages().len(), 2);

        let id = pair.central_call("GetDisplayMessages", json!({ "requestId": 7 }));
        assert_eq!(status(&pair, &id), "Accepted");
        let reports = pair.central.payloads("NotifyDisplayMessages");
        assert_eq!(reports.len(), 1, "{v}");
        assert_eq!(reports[0]["requestId"], 7);
        assert_eq!(reports[0]["tbc"], false);
        assert_eq!(reports[0]["messageInfo"].as_array().map(Vec::len), Some(2));
        // Filters: by id, priority, state (all must match).
        let id = pair.central_call(
            "GetDisplayMessages",
            json!({ "requestId": 8, "id": [2], "priority": "AlwaysFront" }),
        );
        assert_eq!(status(&pair, &id), "Accepted");
        let last = pair.central.payloads("NotifyDisplayMessages")[1].clone();
        assert_eq!(
            last["messageInfo"][0]["message"]["content"],
            "Closed at 10pm"
        );
        let id = pair.central_call(
            "GetDisplayMessages",
            json!({ "requestId": 9, "id": [2], "priority": "NormalCycle" }),
        );
        assert_eq!(status(&pair, &id), "Unknown");
        let id = pair.central_call(
            "GetDisplayMessages",
            json!({ "requestId": 10, "state": "Charging" }),
        );
        assert_eq!(status(&pair, &id), "Unknown");
        assert_eq!(pair.central.payloads("NotifyDisplayMessages").len(), 2);

        let id = pair.central_call("ClearDisplayMessage", json!({ "id": 2 }));
        assert_eq!(status(&pair, &id), "Accepted");
        let id = pair.central_call("ClearDisplayMessage", json!({ "id": 2 }));
        assert_eq!(status(&pair, &id), "Unknown");
        assert_eq!(shown(&pair), ["Hello"]);
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn every_refusal_word() {
    for v in V2X {
        let cfg = DisplayConfig {
            max_messages: 2,
            priorities: vec![MessagePriority::InFront, MessagePriority::NormalCycle],
            states: vec!["Charging".into()],
            ..DisplayConfig::default()
        };
        let mut pair = pair_with(v, |c| c.display(cfg));
        let mut html = message(1, "NormalCycle", "<b>x</b>");
        html["message"]["message"]["format"] = json!("HTML");
        assert_eq!(set(&mut pair, html), "NotSupportedMessageFormat");
        assert_eq!(
            set(&mut pair, message(1, "AlwaysFront", "x")),
            "NotSupportedPriority"
        );
        let mut idle = message(1, "NormalCycle", "x");
        idle["message"]["state"] = json!("Idle");
        assert_eq!(set(&mut pair, idle), "NotSupportedState");
        let mut tx = message(1, "NormalCycle", "x");
        tx["message"]["transactionId"] = json!("no-such-tx");
        assert_eq!(set(&mut pair, tx), "UnknownTransaction");
        let mut over = message(1, "NormalCycle", "x");
        over["message"]["endDateTime"] = json!(at(-1));
        assert_eq!(set(&mut pair, over), "Rejected", "ended already");
        assert_eq!(set(&mut pair, message(1, "NormalCycle", "a")), "Accepted");
        assert_eq!(set(&mut pair, message(2, "NormalCycle", "b")), "Accepted");
        assert_eq!(
            set(&mut pair, message(3, "NormalCycle", "c")),
            "Rejected",
            "full"
        );
        // A replacement still fits.
        assert_eq!(set(&mut pair, message(2, "InFront", "b2")), "Accepted");
        assert_eq!(pair.station.display_messages().len(), 2);

        let mut none = pair_with(v, |c| {
            c.display(DisplayConfig {
                available: false,
                ..DisplayConfig::default()
            })
        });
        assert_eq!(set(&mut none, message(1, "NormalCycle", "x")), "Rejected");
        let i = none
            .station
            .settings()
            .index("DisplayMessageCtrlr", "Available", None)
            .unwrap();
        assert_eq!(none.station.settings().value_at(i), "false");
    }
}

#[test]
fn messages_start_and_expire_on_the_injected_clock() {
    for v in V2X {
        let mut pair = pair_with(v, |c| c);
        let mut m = message(5, "NormalCycle", "Happy hour");
        m["message"]["startDateTime"] = json!(at(60));
        m["message"]["endDateTime"] = json!(at(120));
        assert_eq!(set(&mut pair, m), "Accepted");
        assert!(shown(&pair).is_empty(), "not yet");
        pair.advance(Duration::from_secs(61));
        assert_eq!(shown(&pair), ["Happy hour"]);
        pair.advance(Duration::from_secs(60));
        assert!(shown(&pair).is_empty(), "ended");
        assert!(pair.station.display_messages().is_empty(), "removed");
        let changes = pair
            .events
            .iter()
            .filter(|e| matches!(e, StationEvent::DisplayChanged))
            .count();
        assert_eq!(changes, 2, "shown, then gone");
    }
}

#[test]
fn a_transaction_message_ends_with_its_transaction() {
    for v in V2X {
        let mut pair = pair_with(v, |c| c);
        let tx = start_tx(&mut pair, "ALICE");
        let mut m = message(3, "InFront", "Charging for Alice");
        m["message"]["transactionId"] = json!(tx);
        m["message"]["state"] = json!("Charging");
        assert_eq!(set(&mut pair, m), "Accepted");
        assert_eq!(shown(&pair), ["Charging for Alice"]);
        pair.present(1, "ALICE");
        assert!(pair.station.transaction(1).is_none());
        assert!(shown(&pair).is_empty());
        assert!(pair.station.display_messages().is_empty());
    }
}

#[test]
fn messages_survive_a_restart() {
    for v in V2X {
        let clock = TestClock::new();
        let store = MemoryStore::new();
        let mut pair = VirtualPair::with(
            test_config(v, &clock),
            Box::new(store.clone()),
            MockCentral::new(v),
            clock,
        );
        pair.connect();
        let mut m = message(4, "NormalCycle", "Kept");
        m["message"]["endDateTime"] = json!(at(300));
        assert_eq!(set(&mut pair, m), "Accepted");
        let VirtualPair { central, clock, .. } = pair;
        let mut pair = VirtualPair::with(
            test_config(v, &clock),
            Box::new(store.clone()),
            central,
            clock,
        );
        pair.connect();
        assert_eq!(shown(&pair), ["Kept"], "{v}");
        pair.advance(Duration::from_secs(301));
        assert!(shown(&pair).is_empty(), "still expires after the restart");
    }
}

#[test]
fn hostile_display_inputs_are_answered() {
    for v in V2X {
        let mut pair = pair_with(v, |c| c);
        // 60,000 characters: beyond the schema's bound, a CALLERROR; nothing held.
        let id = pair.central_call(
            "SetDisplayMessage",
            message(1, "NormalCycle", &"x".repeat(60_000)),
        );
        assert_eq!(error(&pair, &id), "TypeConstraintViolation");
        assert!(pair.station.display_messages().is_empty());
        // id i32::MAX, endDateTime in year 9999: accepted, the timer stays within a day.
        let mut m = message(i64::from(i32::MAX), "NormalCycle", "far");
        m["message"]["endDateTime"] = json!("9999-12-31T23:59:59Z");
        assert_eq!(set(&mut pair, m), "Accepted");
        let now = pair.clock.now();
        let next = pair.station.poll_timeout().unwrap();
        assert!(next <= now + Duration::from_secs(86_400));
        // An id beyond 32 bits: refused by the typed decoding.
        let id = pair.central_call("SetDisplayMessage", message(1 << 40, "NormalCycle", "x"));
        assert_eq!(error(&pair, &id), "TypeConstraintViolation");
        // 60,000 ids asked: one answer, reports bounded by what is held.
        let ids: Vec<i64> = (0..60_000).collect();
        let id = pair.central_call("GetDisplayMessages", json!({ "requestId": 1, "id": ids }));
        assert_eq!(status(&pair, &id), "Unknown");
        let ids: Vec<i64> = (i64::from(i32::MAX) - 59_999..=i64::from(i32::MAX)).collect();
        let id = pair.central_call("GetDisplayMessages", json!({ "requestId": 2, "id": ids }));
        assert_eq!(status(&pair, &id), "Accepted");
        assert_eq!(pair.central.payloads("NotifyDisplayMessages").len(), 1);
        // 40 messages fill the station (32), the rest is Rejected; a report of all is cut
        // into parts of 8 with tbc on all but the last.
        let mut accepted = 0;
        for i in 0..40 {
            if set(&mut pair, message(i, "NormalCycle", "m")) == "Accepted" {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 31, "32 held with the first one");
        let id = pair.central_call("GetDisplayMessages", json!({ "requestId": 3 }));
        assert_eq!(status(&pair, &id), "Accepted");
        let parts: Vec<Value> = pair
            .central
            .payloads("NotifyDisplayMessages")
            .into_iter()
            .filter(|p| p["requestId"] == 3)
            .cloned()
            .collect();
        assert_eq!(parts.len(), 4);
        assert!(parts[..3].iter().all(|p| p["tbc"] == true));
        assert_eq!(parts[3]["tbc"], false);
        pair.assert_no_invalid_outgoing();
        // Still working.
        pair.present(1, "ALICE");
        pair.plug_in(1);
        assert!(pair.station.transaction(1).is_some());
    }
}

#[test]
fn cost_updated_and_transaction_event_cost_reach_the_application_exactly() {
    for v in V2X {
        let mut pair = pair_with(v, |c| c);
        pair.central.replies.insert(
            "TransactionEvent".into(),
            r#"{"totalCost":1.230,"updatedPersonalMessage":{"format":"UTF8","content":"Thanks, Alice"}}"#
                .into(),
        );
        let tx = start_tx(&mut pair, "ALICE");
        let id = pair.central_call_raw(
            "CostUpdated",
            &format!(r#"{{"totalCost":4.105,"transactionId":"{tx}"}}"#),
        );
        assert_eq!(pair.central.answer(&id), Some(&Ok(json!({}))));
        let costs: Vec<(Decimal, &str, bool)> = pair
            .events
            .iter()
            .filter_map(|e| match e {
                StationEvent::Cost {
                    total_cost,
                    source,
                    final_cost,
                    ..
                } => Some((*total_cost, *source, *final_cost)),
                _ => None,
            })
            .collect();
        assert_eq!(costs[0], (Decimal::new(1230, 3), "TransactionEvent", false));
        assert_eq!(
            costs.last().copied(),
            Some((Decimal::new(4105, 3), "CostUpdated", false))
        );
        assert_eq!(
            costs.last().unwrap().0.to_string(),
            "4.105",
            "digits as sent"
        );
        let display = shown(&pair);
        assert!(
            display.contains(&"Cost so far: 4.105".to_owned()),
            "{display:?}"
        );
        assert!(display.contains(&"Thanks, Alice".to_owned()), "{display:?}");
        // The answer to Ended is the final cost; the lines go with the transaction.
        pair.present(1, "ALICE");
        assert!(pair.events.iter().any(|e| matches!(
            e,
            StationEvent::Cost {
                final_cost: true,
                ..
            }
        )));
        assert!(shown(&pair).is_empty());
    }
}

#[test]
fn cost_is_not_shown_without_a_display() {
    let mut pair = pair_with(Version::V201, |c| {
        c.display(DisplayConfig {
            show_cost: false,
            ..DisplayConfig::default()
        })
    });
    let tx = start_tx(&mut pair, "ALICE");
    pair.central_call_raw(
        "CostUpdated",
        &format!(r#"{{"totalCost":2,"transactionId":"{tx}"}}"#),
    );
    assert!(pair
        .events
        .iter()
        .any(|e| matches!(e, StationEvent::Cost { .. })));
    assert!(shown(&pair).is_empty());
}

#[test]
fn california_pricing_on_1_6_behind_the_flag() {
    let data = r#"{\"transactionId\":1,\"cost\":0.705,\"state\":\"Charging\"}"#;
    let payload = format!(
        r#"{{"vendorId":"org.openchargealliance.costmsg","messageId":"RunningCost","data":"{data}"}}"#
    );
    // Off: the DataTransfer handler's answer (none set: UnknownVendorId).
    let mut off = pair_with(Version::V16, |c| c);
    start_tx(&mut off, "ALICE");
    let id = off.central_call_raw("DataTransfer", &payload);
    assert_eq!(status(&off, &id), "UnknownVendorId");
    // On: Accepted and reported exactly.
    let mut pair = pair_with(Version::V16, |c| c.cost_messages(true));
    start_tx(&mut pair, "ALICE");
    let id = pair.central_call_raw("DataTransfer", &payload);
    assert_eq!(status(&pair, &id), "Accepted");
    assert!(pair.events.iter().any(|e| matches!(
        e,
        StationEvent::Cost { transaction_id, total_cost, source: "RunningCost", .. }
            if transaction_id == "1" && total_cost.to_string() == "0.705"
    )));
    assert!(shown(&pair).contains(&"Cost so far: 0.705".to_owned()));
    let fin = r#"{"vendorId":"org.openchargealliance.costmsg","messageId":"FinalCost","data":"{\"transactionId\":1,\"cost\":3.10,\"priceText\":\"3.10 EUR, thank you\"}"}"#;
    let id = pair.central_call_raw("DataTransfer", fin);
    assert_eq!(status(&pair, &id), "Accepted");
    assert!(shown(&pair).contains(&"3.10 EUR, thank you".to_owned()));
    let bad = r#"{"vendorId":"org.openchargealliance.costmsg","messageId":"RunningCost","data":"{\"cost\":\"lots\"}"}"#;
    let id = pair.central_call_raw("DataTransfer", bad);
    assert_eq!(status(&pair, &id), "Rejected");
    let other = r#"{"vendorId":"org.openchargealliance.costmsg","messageId":"Other"}"#;
    let id = pair.central_call_raw("DataTransfer", other);
    assert_eq!(status(&pair, &id), "UnknownMessageId");
}

#[derive(Default)]
struct Crm {
    cleared: Vec<Customer>,
}

impl Diagnostics for Crm {
    fn customer_data(&mut self, _ctx: &mut Context<'_>, customer: &Customer) -> Vec<String> {
        match customer {
            Customer::Identifier(i) => vec![format!("crm: customer {i}, contract 42")],
            _ => vec!["crm: nothing".into()],
        }
    }
    fn clear_customer(&mut self, _ctx: &mut Context<'_>, customer: &Customer) {
        self.cleared.push(customer.clone());
    }
}

impl Application for Crm {
    fn diagnostics(&mut self) -> Option<&mut dyn Diagnostics> {
        Some(self)
    }
}

fn customer_information(pair: &mut VirtualPair, p: Value) -> String {
    let id = pair.central_call("CustomerInformation", p);
    status(pair, &id)
}

#[test]
fn customer_information_reports_and_clears() {
    for v in V2X {
        let mut pair = pair_with(v, |c| c.application(Crm::default()));
        let list = json!({
            "versionNumber": 2,
            "updateType": "Full",
            "localAuthorizationList": [
                { "idToken": { "idToken": "ALICE", "type": "ISO14443" },
                  "idTokenInfo": { "status": "Accepted" } }
            ],
        });
        pair.central_call("SendLocalList", list);
        let r = pair.central_call(
            "ReserveNow",
            json!({ "id": 11, "expiryDateTime": at(600), "evseId": 1,
                    "idToken": { "idToken": "ALICE", "type": "ISO14443" } }),
        );
        assert_eq!(status(&pair, &r), "Accepted");
        let alice = json!({ "idToken": "ALICE", "type": "ISO14443" });
        // Exactly one identifier.
        assert_eq!(
            customer_information(
                &mut pair,
                json!({ "requestId": 1, "report": true, "clear": false })
            ),
            "Invalid"
        );
        assert_eq!(
            customer_information(
                &mut pair,
                json!({ "requestId": 1, "report": true, "clear": false,
                        "idToken": alice, "customerIdentifier": "C-1" })
            ),
            "Invalid"
        );
        assert_eq!(
            customer_information(
                &mut pair,
                json!({ "requestId": 1, "report": false, "clear": false, "idToken": alice })
            ),
            "Rejected"
        );
        assert_eq!(
            customer_information(
                &mut pair,
                json!({ "requestId": 5, "report": true, "clear": false, "idToken": alice })
            ),
            "Accepted"
        );
        let parts = pair.central.payloads("NotifyCustomerInformation");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0]["requestId"], 5);
        assert_eq!(parts[0]["seqNo"], 0);
        assert_eq!(parts[0]["tbc"], false);
        let data = parts[0]["data"].as_str().unwrap();
        assert!(data.contains("local list: Accepted"), "{data}");
        assert!(data.contains("reservation 11"), "{data}");
        assert!(data.contains("crm: nothing"), "{data}");
        // Report and clear: the report is of what was held; then it is gone.
        assert_eq!(
            customer_information(
                &mut pair,
                json!({ "requestId": 6, "report": true, "clear": true, "idToken": alice })
            ),
            "Accepted"
        );
        assert!(pair.station.reservations().is_empty());
        assert_eq!(pair.station.local_list_len(), 0);
        assert!(pair
            .events
            .iter()
            .any(|e| matches!(e, StationEvent::CustomerCleared { .. })));
        assert_eq!(
            customer_information(
                &mut pair,
                json!({ "requestId": 7, "report": true, "clear": false, "idToken": alice })
            ),
            "Accepted"
        );
        let last = pair
            .central
            .payloads("NotifyCustomerInformation")
            .last()
            .cloned()
            .cloned();
        assert_eq!(last.unwrap()["data"], "crm: nothing");
        // By identifier: the application's lines.
        assert_eq!(
            customer_information(
                &mut pair,
                json!({ "requestId": 8, "report": true, "clear": false, "customerIdentifier": "C-1" })
            ),
            "Accepted"
        );
        let last = pair
            .central
            .payloads("NotifyCustomerInformation")
            .last()
            .cloned()
            .cloned();
        assert_eq!(last.unwrap()["data"], "crm: customer C-1, contract 42");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn customer_reports_are_cut_into_bounded_parts() {
    struct Chatty;
    impl Diagnostics for Chatty {
        fn customer_data(&mut self, _ctx: &mut Context<'_>, _c: &Customer) -> Vec<String> {
            // 60,000 characters, multi-byte.
            vec!["é".repeat(60_000)]
        }
    }
    impl Application for Chatty {
        fn diagnostics(&mut self) -> Option<&mut dyn Diagnostics> {
            Some(self)
        }
    }
    let mut pair = pair_with(Version::V201, |c| c.application(Chatty));
    assert_eq!(
        customer_information(
            &mut pair,
            json!({ "requestId": 1, "report": true, "clear": false, "customerIdentifier": "X" })
        ),
        "Accepted"
    );
    let parts = pair.central.payloads("NotifyCustomerInformation");
    assert_eq!(parts.len(), ocpp_charger::station::MAX_CUSTOMER_PARTS);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["seqNo"], i);
        assert_eq!(p["tbc"], i + 1 < parts.len());
        assert!(p["data"].as_str().unwrap().chars().count() <= 512);
    }
    assert!(parts.last().unwrap()["data"]
        .as_str()
        .unwrap()
        .ends_with("[cut: more than the station reports]"));
    pair.assert_no_invalid_outgoing();
}

/// A display that records what it was told to show.
#[derive(Default)]
struct Screen {
    shown: std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>>,
}

impl Display for Screen {
    fn show_messages(&mut self, _ctx: &mut Context<'_>, messages: &[DisplayMessage]) {
        let texts = messages.iter().map(|m| m.content.clone()).collect();
        self.shown.lock().unwrap().push(texts);
    }
}

impl Application for Screen {
    fn display(&mut self) -> Option<&mut dyn Display> {
        Some(self)
    }
}

#[test]
fn the_application_is_told_what_to_show() {
    let screen = Screen::default();
    let seen = screen.shown.clone();
    let mut pair = pair_with(Version::V201, |c| c.application(screen));
    assert_eq!(set(&mut pair, message(1, "NormalCycle", "a")), "Accepted");
    assert_eq!(set(&mut pair, message(2, "AlwaysFront", "b")), "Accepted");
    let id = pair.central_call("ClearDisplayMessage", json!({ "id": 2 }));
    assert_eq!(status(&pair, &id), "Accepted");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            vec!["a".to_owned()],
            vec!["b".into(), "a".into()],
            vec!["a".into()]
        ]
    );
}
