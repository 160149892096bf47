//! The device model, desired configuration and monitoring end to end over real sockets: the
//! example central system (its API, its SQLite database) and ocpp-charger stations on
//! 127.0.0.1, for 1.6, 2.0.1 and 2.1. A report requested through the API arrives (2.x: in
//! NotifyReport parts assembled by `requestId`; 1.6: GetConfiguration) and is stored and
//! searchable; a desired value differs, is applied and then is the same; a refused value is
//! recorded with its status; (2.x) a threshold monitor set through the API fires when the
//! station charges, the event is stored and an alert is open on the API and on `/metrics`.

use ocpp_examples::backend::run::{start, CentralArgs};
use ocpp_types::Version;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[path = "support/e2e.rs"]
mod e2e;
use e2e::{charger, until};
#[path = "support/api.rs"]
mod api;
use api::Api;
#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_desired_configuration_and_monitors_through_the_api() {
    flow(None).await;
}

/// The same on PostgreSQL (skipped loudly without `OCPP_TEST_POSTGRES_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_desired_configuration_and_monitors_on_postgres() {
    flow(Some("device_model")).await;
}

/// The flow for every version, on SQLite (`postgres` `None`) or on a fresh PostgreSQL
/// database named after `postgres`.
async fn flow(postgres: Option<&str>) {
    for (v, id) in [
        (Version::V16, "DM-16"),
        (Version::V201, "DM-201"),
        (Version::V21, "DM-21"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let url = match postgres {
            None => format!("sqlite://{}", dir.path().join("c.db").display()),
            Some(name) => {
                match postgres_database(&format!("{name}_{}", v.as_str().replace('.', ""))).await {
                    Some(url) => url,
                    None => return,
                }
            }
        };
        let central = start(&CentralArgs::with_database(url).ephemeral())
            .await
            .expect("starts");
        let api = Api::admin(&central).await;
        let cp = charger(&central, id, v);
        until("connected", || async {
            let (s, c) = api.get(&format!("/api/chargers/{id}")).await;
            (s == StatusCode::OK && c["connected"] == true).then_some(c)
        })
        .await;

        // A report through the API, assembled and stored.
        let (s, r) = api
            .post(
                &format!("/api/chargers/{id}/reports"),
                json!({ "base": "FullInventory" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}: {r}");
        let request_id = r["requestId"].clone();
        let report = until("the report", || async {
            let (_, list) = api.get(&format!("/api/chargers/{id}/reports")).await;
            list.as_array()?
                .iter()
                .find(|r| r["requestId"] == request_id && r["status"] == "Complete")
                .cloned()
        })
        .await;
        if v != Version::V16 {
            assert!(report["parts"].as_i64().unwrap() > 1, "{report}");
            assert_eq!(report["gaps"], 0);
        }
        let (s, vars) = api
            .get(&format!(
                "/api/chargers/{id}/variables?search=heartbeatinterval"
            ))
            .await;
        assert_eq!(s, StatusCode::OK);
        let hb = &vars.as_array().unwrap()[0];
        assert_eq!(hb["variable"], "HeartbeatInterval", "{vars}");
        assert!(hb["value"].is_string(), "{hb}");
        if v != Version::V16 {
            assert_eq!(hb["characteristics"]["unit"], "s");
            assert_eq!(hb["attributes"][0]["mutability"], "ReadWrite");
        }

        // Desired configuration: differs → apply → same; a refused value keeps its status.
        let (component, key) = if v == Version::V16 {
            ("", "ResetRetries")
        } else {
            ("OCPPCommCtrlr", "ResetRetries")
        };
        let (s, d) = api
            .put(
                "/api/desired-config",
                json!({ "scope": id, "entries": [{ "component": component, "variable": key, "value": "4" }] }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{d}");
        let (_, diff) = api.get(&format!("/api/chargers/{id}/config-diff")).await;
        assert_eq!(diff[0]["state"], "differs", "{diff}");
        assert_eq!(diff[0]["reported"], "1");
        let (s, applied) = api
            .post(
                &format!("/api/chargers/{id}/config-diff/apply"),
                json!(null),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{applied}");
        assert_eq!(applied[0]["status"], "Accepted", "{applied}");
        let (_, diff) = api.get(&format!("/api/chargers/{id}/config-diff")).await;
        assert_eq!(diff[0]["state"], "same", "{diff}");
        let (s, w) = api
            .post(
                &format!("/api/chargers/{id}/variables"),
                json!([{ "component": component, "variable": "HeartbeatInterval", "value": "0" },
                       { "component": component, "variable": "NoSuchThing", "value": "1" }]),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{w}");
        assert_eq!(w[0]["status"], "Rejected", "{w}");
        let unknown = if v == Version::V16 {
            "NotSupported"
        } else {
            "UnknownVariable"
        };
        assert_eq!(w[1]["status"], unknown, "{w}");
        // Bad input: no values.
        let (s, _) = api
            .post(&format!("/api/chargers/{id}/variables"), json!([]))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        if v != Version::V16 {
            // A monitor through the API; a value set through the API crosses it; the alert
            // is open.
            let (s, m) = api
                .post(
                    &format!("/api/chargers/{id}/monitors"),
                    json!([{ "component": "OCPPCommCtrlr", "variable": "OfflineThreshold",
                             "kind": "UpperThreshold", "value": "100", "severity": 2 }]),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{m}");
            assert_eq!(m[0]["status"], "Accepted", "{m}");
            let (s, _) = api
                .post(
                    &format!("/api/chargers/{id}/monitors"),
                    json!([{ "component": "OCPPCommCtrlr", "variable": "OfflineThreshold",
                             "kind": "UpperThreshold", "value": "100", "severity": 12 }]),
                )
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST);
            let (s, w) = api
                .post(
                    &format!("/api/chargers/{id}/variables"),
                    json!([{ "component": "OCPPCommCtrlr", "variable": "OfflineThreshold", "value": "200" }]),
                )
                .await;
            assert_eq!(w[0]["status"], "Accepted", "{s} {w}");
            let alert = until("an alert", || async {
                let (_, list) = api.get("/api/alerts").await;
                list.as_array()?
                    .iter()
                    .find(|a| a["charger"] == id && a["clearedAt"].is_null())
                    .cloned()
            })
            .await;
            assert_eq!(alert["severity"], 2, "{alert}");
            let (_, events) = api.get(&format!("/api/device-events?charger={id}")).await;
            assert_eq!(events[0]["trigger"], "Alerting", "{events}");
            // The gauge is set after the alert is stored (and its charger's old events
            // trimmed): poll it too.
            until("the open-alert gauge", || async {
                let metrics = api.text("/metrics").await;
                metrics
                    .contains("ocpp_open_alerts{severity=\"2\"} 1")
                    .then_some(Value::Null)
            })
            .await;
        }
        cp.shutdown().await;
        central.shutdown().await.unwrap();
    }
}

/// The store's bounds: reports adding up to more than 5,000 variables for a charger keep
/// 5,000 (the rest counted as dropped), a `seqNo` gap of two billion is counted and the
/// report ends `Incomplete`, events keep the newest 1,000 per charger. (A NotifyReport of
/// 60,000 variables does not fit in the 1 MiB frame: the session refuses it before the
/// backend sees it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_bounded() {
    use ocpp_central::device_model::{
        Component, DeviceEvent, DeviceEvents, ReportItem, ReportPart, ReportedAttribute, Variable,
    };
    use ocpp_examples::backend::device_model::{MAX_EVENTS_PER_CHARGER, MAX_VARIABLES_PER_CHARGER};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let central = start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("starts");
    let dm = central.backend().device_model().clone();
    let item = |i: usize| ReportItem {
        component: Component::named("BigCtrlr"),
        variable: Variable::named(format!("V{i}")),
        attributes: vec![ReportedAttribute {
            kind: "Actual".into(),
            value: Some(i.to_string()),
            mutability: "ReadOnly".into(),
            persistent: true,
            constant: false,
        }],
        characteristics: None,
    };
    let part = |seq_no: i32, tbc: bool, items: std::ops::Range<usize>| ReportPart {
        request_id: 3,
        seq_no,
        tbc,
        generated_at: "2030-01-01T00:00:00Z".into(),
        items: items.map(item).collect(),
    };
    dm.on_report("BIG", &part(0, true, 0..4000)).await.unwrap();
    dm.on_report("BIG", &part(2_000_000_000, false, 4000..6000))
        .await
        .unwrap();
    let report = dm.report("BIG", 3).await.unwrap().unwrap();
    assert_eq!(report.status, "Incomplete");
    assert_eq!(report.gaps, 1);
    assert_eq!(report.parts, 2);
    assert_eq!(report.items, MAX_VARIABLES_PER_CHARGER);
    assert_eq!(report.dropped, 6000 - MAX_VARIABLES_PER_CHARGER);
    let vars = dm.variables("BIG", None).await.unwrap();
    assert_eq!(vars.len() as i64, MAX_VARIABLES_PER_CHARGER);
    // Known variables are still updated at the bound.
    dm.on_report("BIG", &part(0, false, 0..1)).await.unwrap();

    let event = |n: i32| DeviceEvent {
        event_id: n,
        timestamp: "2030-01-01T00:00:00Z".into(),
        trigger: "Delta".into(),
        cause: None,
        actual_value: n.to_string(),
        tech_code: None,
        tech_info: None,
        cleared: false,
        transaction_id: None,
        monitor_id: None,
        notification_type: "CustomMonitor".into(),
        component: Component::named("BigCtrlr"),
        variable: Variable::named("V1"),
    };
    for batch in 0..3 {
        let events = DeviceEvents {
            generated_at: "2030-01-01T00:00:00Z".into(),
            seq_no: 0,
            tbc: false,
            events: (0..500).map(|n| event(batch * 500 + n)).collect(),
        };
        dm.on_events("BIG", &events).await.unwrap();
    }
    let kept = dm.events(Some("BIG")).await.unwrap();
    assert_eq!(kept.len() as i64, MAX_EVENTS_PER_CHARGER);
    assert_eq!(kept[0].event_id, 1499, "newest first");
    central.shutdown().await.unwrap();
}
