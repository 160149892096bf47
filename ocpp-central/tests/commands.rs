//! Version-neutral commands: each picks the message of the charger's version and reads the
//! answer into one shape. The charger here is a raw peer that checks the exact frame sent.

use std::sync::Arc;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use ocpp_central::{
    ChargerHandle, Connection, HandleV16, HandleV201, HandleV21, Handler, ResetKind, Session,
    SessionConfig, VariableRef,
};
use ocpp_types::Version;
use serde_json::{json, Value};

struct App;
impl Handler for App {}
impl HandleV16 for App {}
impl HandleV201 for App {}
impl HandleV21 for App {}

struct Peer {
    handle: ChargerHandle,
    to_central: mpsc::Sender<String>,
    from_central: mpsc::Receiver<String>,
}

fn connect(version: Version) -> Peer {
    let conn = Connection::new(
        Session::new(SessionConfig::new("CP", version)),
        Arc::new(App),
    );
    let handle = conn.handle();
    let (to_central, incoming) = mpsc::channel::<String>(16);
    let (outgoing, from_central) = mpsc::channel::<String>(16);
    tokio::spawn(conn.run(incoming, outgoing));
    Peer {
        handle,
        to_central,
        from_central,
    }
}

impl Peer {
    /// Reads the central's CALL, checks its action and payload, answers with `answer`.
    async fn expect(&mut self, action: &str, payload: Value, answer: Value) {
        let frame: Value =
            serde_json::from_str(&self.from_central.next().await.expect("a call")).unwrap();
        assert_eq!(frame[0], 2, "{frame}");
        assert_eq!(frame[2], action, "{frame}");
        assert_eq!(frame[3], payload, "{frame}");
        let id = frame[1].as_str().unwrap().to_owned();
        self.to_central
            .send(json!([3, id, answer]).to_string())
            .await
            .unwrap();
    }
}

macro_rules! run {
    ($peer:expr, $command:expr, $action:expr, $payload:expr, $answer:expr) => {{
        let h = $peer.handle.clone();
        let task = tokio::spawn(async move { $command(h).await });
        $peer.expect($action, $payload, $answer).await;
        task.await.unwrap()
    }};
}

#[tokio::test]
async fn v16_commands_send_the_16_messages() {
    let mut p = connect(Version::V16);
    let a = run!(
        p,
        |h: ChargerHandle| async move { h.remote_start(Some(1), "TAG1").await },
        "RemoteStartTransaction",
        json!({"connectorId": 1, "idTag": "TAG1"}),
        json!({"status": "Accepted"})
    )
    .unwrap();
    assert!(a.is_accepted());
    let a = run!(
        p,
        |h: ChargerHandle| async move { h.remote_stop("42").await },
        "RemoteStopTransaction",
        json!({"transactionId": 42}),
        json!({"status": "Rejected"})
    )
    .unwrap();
    assert_eq!(a.status, "Rejected");
    assert!(!a.is_accepted());
    let a = run!(
        p,
        |h: ChargerHandle| async move { h.reset(ResetKind::Graceful, None).await },
        "Reset",
        json!({"type": "Soft"}),
        json!({"status": "Accepted"})
    )
    .unwrap();
    assert!(a.is_accepted());
    run!(
        p,
        |h: ChargerHandle| async move { h.change_availability(Some(2), None, false).await },
        "ChangeAvailability",
        json!({"connectorId": 2, "type": "Inoperative"}),
        json!({"status": "Scheduled"})
    )
    .unwrap();
    run!(
        p,
        |h: ChargerHandle| async move { h.unlock_connector(1, None).await },
        "UnlockConnector",
        json!({"connectorId": 1}),
        json!({"status": "Unlocked"})
    )
    .unwrap();
    run!(
        p,
        |h: ChargerHandle| async move { h.trigger_message("StatusNotification", Some(1)).await },
        "TriggerMessage",
        json!({"requestedMessage": "StatusNotification", "connectorId": 1}),
        json!({"status": "Accepted"})
    )
    .unwrap();
    let values = run!(
        p,
        |h: ChargerHandle| async move {
            h.get_variables(&[
                VariableRef::new("", "HeartbeatInterval"),
                VariableRef::new("", "Nope"),
            ])
            .await
        },
        "GetConfiguration",
        json!({"key": ["HeartbeatInterval", "Nope"]}),
        json!({"configurationKey": [{"key": "HeartbeatInterval", "readonly": false, "value": "300"}], "unknownKey": ["Nope"]})
    )
    .unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0].value.as_deref(), Some("300"));
    assert_eq!(values[1].status, "UnknownKey");
    let a = run!(
        p,
        |h: ChargerHandle| async move {
            h.set_variable(&VariableRef::new("", "HeartbeatInterval"), "60")
                .await
        },
        "ChangeConfiguration",
        json!({"key": "HeartbeatInterval", "value": "60"}),
        json!({"status": "RebootRequired"})
    )
    .unwrap();
    assert_eq!(a.status, "RebootRequired");
    // What 1.6 cannot carry is refused before anything is sent.
    assert!(p.handle.remote_stop("TX-abc").await.is_err());
    assert!(p.handle.reset(ResetKind::Immediate, Some(1)).await.is_err());
    assert!(p
        .handle
        .trigger_message("LogStatusNotification", None)
        .await
        .is_err());
    assert!(p.handle.remote_start(None, &"x".repeat(21)).await.is_err());
}

#[tokio::test]
async fn v2_commands_send_the_2x_messages() {
    for version in [Version::V201, Version::V21] {
        let mut p = connect(version);
        let h = p.handle.clone();
        let task = tokio::spawn(async move { h.remote_start(Some(2), "TAG2").await });
        let frame: Value = serde_json::from_str(&p.from_central.next().await.unwrap()).unwrap();
        assert_eq!(frame[2], "RequestStartTransaction");
        assert_eq!(frame[3]["evseId"], 2);
        assert_eq!(
            frame[3]["idToken"],
            json!({"idToken": "TAG2", "type": "Central"})
        );
        assert!(frame[3]["remoteStartId"].as_i64().is_some());
        p.to_central
            .send(json!([3, frame[1], {"status": "Accepted", "transactionId": "T-1"}]).to_string())
            .await
            .unwrap();
        assert!(task.await.unwrap().unwrap().is_accepted());
        run!(
            p,
            |h: ChargerHandle| async move { h.remote_stop("T-1").await },
            "RequestStopTransaction",
            json!({"transactionId": "T-1"}),
            json!({"status": "Accepted"})
        )
        .unwrap();
        run!(
            p,
            |h: ChargerHandle| async move { h.reset(ResetKind::Immediate, Some(1)).await },
            "Reset",
            json!({"type": "Immediate", "evseId": 1}),
            json!({"status": "Scheduled"})
        )
        .unwrap();
        run!(
            p,
            |h: ChargerHandle| async move { h.change_availability(Some(1), Some(2), true).await },
            "ChangeAvailability",
            json!({"operationalStatus": "Operative", "evse": {"id": 1, "connectorId": 2}}),
            json!({"status": "Accepted"})
        )
        .unwrap();
        run!(
            p,
            |h: ChargerHandle| async move { h.unlock_connector(1, Some(2)).await },
            "UnlockConnector",
            json!({"evseId": 1, "connectorId": 2}),
            json!({"status": "Unlocked"})
        )
        .unwrap();
        run!(
            p,
            |h: ChargerHandle| async move { h.trigger_message("Heartbeat", None).await },
            "TriggerMessage",
            json!({"requestedMessage": "Heartbeat"}),
            json!({"status": "Accepted"})
        )
        .unwrap();
        run!(
            p,
            |h: ChargerHandle| async move { h.clear_cache().await },
            "ClearCache",
            json!({}),
            json!({"status": "Accepted"})
        )
        .unwrap();
        let values = run!(
            p,
            |h: ChargerHandle| async move {
                h.get_variables(&[VariableRef::new("OCPPCommCtrlr", "HeartbeatInterval")])
                    .await
            },
            "GetVariables",
            json!({"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}),
            json!({"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "300",
                   "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
        )
        .unwrap();
        assert_eq!(values[0].value.as_deref(), Some("300"));
        assert_eq!(values[0].component, "OCPPCommCtrlr");
        let a = run!(
            p,
            |h: ChargerHandle| async move {
                h.set_variable(&VariableRef::new("OCPPCommCtrlr", "HeartbeatInterval"), "60")
                    .await
            },
            "SetVariables",
            json!({"setVariableData": [{"attributeValue": "60", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}),
            json!({"setVariableResult": [{"attributeStatus": "Rejected",
                   "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
        )
        .unwrap();
        assert_eq!(a.status, "Rejected");
    }
}
