//! The device model and monitoring over real sockets: the ocpp-central server's typed
//! commands (`read_variables`, `write_variables`, `get_configuration`,
//! `change_configuration`, `get_base_report`, `get_report`, the monitoring commands) against
//! the station's WebSocket client, and the events that carry the station's NotifyReport,
//! NotifyMonitoringReport and NotifyEvent, for each version.

use std::sync::{Arc, Mutex};

use ocpp_central::device_model::{
    Component, ComponentVariable, DeviceEvents, Monitor, MonitoringReportPart, ReadVariable,
    ReportBase, ReportPart, Variable, WriteVariable,
};
use ocpp_central::{
    async_trait, CallError, ChargerHandle, Event, HandleV16, HandleV201, HandleV21, Handler,
};
use ocpp_charger::Version;
use rust_decimal::Decimal;

mod support;
use support::{station_on_central, until};

/// Keeps the report parts and events the central system receives.
#[derive(Default)]
struct Seen {
    reports: Mutex<Vec<ReportPart>>,
    monitoring: Mutex<Vec<MonitoringReportPart>>,
    events: Mutex<Vec<DeviceEvents>>,
}

#[async_trait]
impl Handler for Seen {
    async fn on_event(&self, _charger: &ChargerHandle, event: &Event) {
        match event {
            Event::Report { part, .. } => self.reports.lock().unwrap().push(part.clone()),
            Event::MonitoringReport { part, .. } => {
                self.monitoring.lock().unwrap().push(part.clone())
            }
            Event::DeviceEvents { events, .. } => self.events.lock().unwrap().push(events.clone()),
            _ => {}
        }
    }
}
impl HandleV16 for Seen {}
impl HandleV201 for Seen {}
impl HandleV21 for Seen {}

fn read(component: &str, variable: &str, attribute: Option<&str>) -> ReadVariable {
    ReadVariable {
        component: Component::named(component),
        variable: Variable::named(variable),
        attribute: attribute.map(str::to_owned),
    }
}

fn write(component: &str, variable: &str, value: &str) -> WriteVariable {
    WriteVariable {
        component: Component::named(component),
        variable: Variable::named(variable),
        attribute: None,
        value: value.into(),
    }
}

#[tokio::test]
async fn configuration_1_6_through_the_typed_commands() {
    let seen = Arc::new(Seen::default());
    let (server, _client, h) =
        station_on_central("DMC-16", Version::V16, seen, Decimal::from(7400)).await;
    let c = h
        .get_configuration(&["HeartbeatInterval".into(), "Nope".into()])
        .await
        .unwrap();
    assert_eq!(c.known[0].key, "HeartbeatInterval");
    assert_eq!(c.unknown, ["Nope"]);
    assert!(!h.get_configuration(&[]).await.unwrap().known.is_empty());
    assert_eq!(
        h.change_configuration("ResetRetries", "3")
            .await
            .unwrap()
            .status,
        "Accepted"
    );
    let r = h
        .read_variables(&[read("", "ResetRetries", None), read("", "Nope", None)])
        .await
        .unwrap();
    assert_eq!(r[0].value.as_deref(), Some("3"));
    assert_eq!(r[1].status, "UnknownKey");
    let w = h
        .write_variables(&[write("", "ResetRetries", "x"), write("", "Nope", "1")])
        .await
        .unwrap();
    assert_eq!(w[0].status, "Rejected");
    assert_eq!(w[1].status, "NotSupported");
    assert!(matches!(
        h.get_base_report(1, ReportBase::FullInventory).await,
        Err(CallError::Refused(_))
    ));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn device_model_and_monitoring_through_the_typed_commands() {
    for (v, id) in [(Version::V201, "DMC-201"), (Version::V21, "DMC-21")] {
        let seen = Arc::new(Seen::default());
        let (server, _client, h) =
            station_on_central(id, v, seen.clone(), Decimal::from(7400)).await;
        let r = h
            .read_variables(&[
                read("OCPPCommCtrlr", "OfflineThreshold", None),
                read("OCPPCommCtrlr", "OfflineThreshold", Some("Target")),
                read("Nope", "OfflineThreshold", None),
            ])
            .await
            .unwrap();
        let statuses: Vec<&str> = r.iter().map(|x| x.status.as_str()).collect();
        assert_eq!(
            statuses,
            ["Accepted", "NotSupportedAttributeType", "UnknownComponent"]
        );
        let w = h
            .write_variables(&[
                write("OCPPCommCtrlr", "OfflineThreshold", "90"),
                write("OCPPCommCtrlr", "WebSocketPingInterval", "20"),
            ])
            .await
            .unwrap();
        assert_eq!(w[0].status, "Accepted");
        assert_eq!(w[1].status, "RebootRequired");
        assert!(matches!(
            h.get_configuration(&[]).await,
            Err(CallError::Refused(_))
        ));

        // A full report arrives in parts numbered from 0, the last without tbc.
        assert_eq!(
            h.get_base_report(7, ReportBase::FullInventory)
                .await
                .unwrap()
                .status,
            "Accepted"
        );
        until("the report's last part", || {
            seen.reports
                .lock()
                .unwrap()
                .iter()
                .any(|p| p.request_id == 7 && !p.tbc)
        })
        .await;
        let parts: Vec<ReportPart> = seen
            .reports
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.request_id == 7)
            .cloned()
            .collect();
        for (n, p) in parts.iter().enumerate() {
            assert_eq!(p.seq_no, n as i32);
        }
        let items: Vec<_> = parts.iter().flat_map(|p| p.items.clone()).collect();
        let offline = items
            .iter()
            .find(|i| i.variable.name == "OfflineThreshold")
            .unwrap();
        assert_eq!(offline.attributes[0].value.as_deref(), Some("90"));
        assert_eq!(
            offline.characteristics.as_ref().unwrap().data_type,
            "integer"
        );
        // GetReport filters.
        let filter = [ComponentVariable {
            component: Component {
                evse: Some(1),
                ..Component::named("EVSE")
            },
            variable: Some(Variable::named("Power")),
        }];
        assert_eq!(
            h.get_report(8, &filter, &[]).await.unwrap().status,
            "Accepted"
        );
        assert_eq!(
            h.get_report(9, &[], &["Problem".into()])
                .await
                .unwrap()
                .status,
            "EmptyResultSet"
        );
        until("the filtered report", || {
            seen.reports
                .lock()
                .unwrap()
                .iter()
                .any(|p| p.request_id == 8)
        })
        .await;
        let power = seen
            .reports
            .lock()
            .unwrap()
            .iter()
            .find(|p| p.request_id == 8)
            .cloned()
            .unwrap();
        assert_eq!(power.items.len(), 1);
        let kinds: Vec<&str> = power.items[0]
            .attributes
            .iter()
            .map(|a| a.kind.as_str())
            .collect();
        assert_eq!(kinds, ["Actual", "MaxSet"]);

        // A monitor, its report, its event, clearing it.
        let m = h
            .set_variable_monitoring(&[Monitor {
                id: None,
                component: Component::named("OCPPCommCtrlr"),
                variable: Variable::named("OfflineThreshold"),
                kind: "UpperThreshold".into(),
                value: "100".into(),
                severity: 3,
                transaction: false,
            }])
            .await
            .unwrap();
        assert_eq!(m[0].status, "Accepted");
        let monitor = m[0].id.unwrap();
        assert_eq!(
            h.get_monitoring_report(11, &[], &[]).await.unwrap().status,
            "Accepted"
        );
        until("the monitoring report", || {
            !seen.monitoring.lock().unwrap().is_empty()
        })
        .await;
        assert_eq!(
            seen.monitoring.lock().unwrap()[0].monitors[0].id,
            Some(monitor)
        );
        h.write_variables(&[write("OCPPCommCtrlr", "OfflineThreshold", "150")])
            .await
            .unwrap();
        until("the event", || !seen.events.lock().unwrap().is_empty()).await;
        let e = seen.events.lock().unwrap()[0].events[0].clone();
        assert_eq!(
            (
                e.trigger.as_str(),
                e.monitor_id,
                e.actual_value.as_str(),
                e.cleared
            ),
            ("Alerting", Some(monitor), "150", false)
        );
        assert_eq!(h.set_monitoring_level(5).await.unwrap().status, "Accepted");
        assert!(matches!(
            h.set_monitoring_level(10).await,
            Err(CallError::Refused(_))
        ));
        let cleared = h.clear_variable_monitoring(&[monitor, 999]).await.unwrap();
        assert_eq!(
            cleared,
            [
                (monitor, "Accepted".to_owned()),
                (999, "NotFound".to_owned())
            ]
        );
        assert_eq!(
            h.set_monitoring_base("FactoryDefault")
                .await
                .unwrap()
                .status,
            "Accepted"
        );
        server.shutdown().await.unwrap();
    }
}
