//! Driving a session over a transport other than tokio-tungstenite: plain futures channels,
//! as an embedder with its own sockets or message bus would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use ocpp_central::{
    AnyRequest, AnyResponse, CallError, CallFailure, ChargerHandle, Chargers, Connection,
    ConnectorRef, Event, HandleV16, Handler, Session, SessionConfig, Transaction,
};
use ocpp_types::{v16, Version};
use serde_json::Value;

#[derive(Default)]
struct App {
    events: Mutex<Vec<String>>,
    after_boot: Mutex<Option<Result<v16::GetConfigurationResponse, CallError>>>,
    ended: Mutex<Option<Transaction>>,
    /// What `with_incoming_call` showed the `authorize` handler, before and after an await.
    seen: Mutex<Vec<Option<Seen>>>,
}

/// A call's action, payload and whether it was repaired, as a handler saw it.
type Seen = (&'static str, String, bool);

#[async_trait::async_trait]
impl Handler for App {
    fn v16(&self) -> Option<&dyn HandleV16> {
        Some(self)
    }

    async fn on_event(&self, _charger: &ChargerHandle, event: &Event) {
        if let Event::TransactionEnded { transaction, .. } = event {
            *self.ended.lock().unwrap() = Some(transaction.clone());
        }
        let name = format!("{event:?}");
        self.events
            .lock()
            .unwrap()
            .push(name.split([' ', '{', '(']).next().unwrap().to_owned());
    }

    async fn restore_transactions(&self, identity: &str, version: Version) -> Vec<Transaction> {
        assert_eq!((identity, version), ("CP7", Version::V16));
        let mut tx = Transaction::new(
            "42".into(),
            ConnectorRef::v16(2),
            "2025-01-01T00:00:00Z".parse().unwrap(),
        );
        tx.meter_start_wh = Some(1000.into());
        vec![tx]
    }

    async fn after(&self, charger: &ChargerHandle, request: &AnyRequest, _response: &AnyResponse) {
        // A follow-up call from the after hook: the boot answer is already out, no deadlock.
        if request.action() == "BootNotification" {
            let r = charger.call(v16::GetConfigurationRequest::new()).await;
            *self.after_boot.lock().unwrap() = Some(r);
        }
    }
}

#[async_trait::async_trait]
impl HandleV16 for App {
    async fn authorize(
        &self,
        _charger: &ChargerHandle,
        request: v16::AuthorizeRequest,
    ) -> Result<v16::AuthorizeResponse, CallFailure> {
        let seen = || {
            ocpp_central::with_incoming_call(|c| {
                c.map(|c| (c.action(), c.payload().to_owned(), c.repaired()))
            })
        };
        self.seen.lock().unwrap().push(seen());
        tokio::task::yield_now().await;
        self.seen.lock().unwrap().push(seen());
        let status = if request.id_tag.as_str() == "BAD" {
            v16::AuthorizationStatus::Blocked
        } else {
            v16::AuthorizationStatus::Accepted
        };
        Ok(v16::AuthorizeResponse::new(v16::IdTagInfo::new(status)))
    }
}
// Only the version it speaks: 2.0.1 and 2.1 chargers get the Defaults, and enabling those
// versions' features cannot break this application.

struct Peer {
    to_central: mpsc::Sender<String>,
    from_central: mpsc::Receiver<String>,
}

impl Peer {
    async fn recv(&mut self) -> Value {
        let text = tokio::time::timeout(Duration::from_secs(5), self.from_central.next())
            .await
            .expect("answer in time")
            .expect("open");
        serde_json::from_str(&text).unwrap()
    }
    async fn send(&mut self, text: &str) {
        self.to_central.send(text.to_owned()).await.unwrap();
    }
}

fn start(app: Arc<App>, chargers: &Chargers) -> (Peer, ChargerHandle, tokio::task::JoinHandle<()>) {
    let (to_central, incoming) = mpsc::channel::<String>(16);
    let (outgoing, from_central) = mpsc::channel::<String>(16);
    let session = Session::new(
        SessionConfig::new("CP7", Version::V16).call_timeout(Duration::from_millis(300)),
    );
    let conn = Connection::new(session, app).register(chargers);
    let handle = conn.handle();
    let task = tokio::spawn(async move { conn.run(incoming, outgoing).await.unwrap() });
    (
        Peer {
            to_central,
            from_central,
        },
        handle,
        task,
    )
}

#[tokio::test(start_paused = true)]
async fn handlers_handle_and_after_hook_over_channels() {
    let app = Arc::new(App::default());
    let chargers = Chargers::new();
    let (mut cp, handle, task) = start(app.clone(), &chargers);
    tokio::task::yield_now().await;
    assert_eq!(chargers.identities(), ["CP7"]);

    cp.send(r#"[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#)
        .await;
    let boot = cp.recv().await;
    assert_eq!(boot[1], "b1");
    assert_eq!(boot[2]["status"], "Accepted");
    // Then the after hook's call arrives; answer it.
    let call = cp.recv().await;
    assert_eq!(call[2], "GetConfiguration");
    cp.send(&format!(r#"[3,{},{{"configurationKey":[{{"key":"HeartbeatInterval","readonly":false,"value":"300"}}]}}]"#, call[1]))
        .await;

    // The application's own Authorize decision.
    cp.send(r#"[2,"a1","Authorize",{"idTag":"BAD"}]"#).await;
    assert_eq!(cp.recv().await[2]["idTagInfo"]["status"], "Blocked");

    // A call from another task through the handle; the charger answers while also calling.
    let h2 = handle.clone();
    let remote = tokio::spawn(async move {
        h2.call(v16::RemoteStartTransactionRequest::new(
            "TAG".parse().unwrap(),
        ))
        .await
    });
    let call = cp.recv().await;
    assert_eq!(call[2], "RemoteStartTransaction");
    cp.send(r#"[2,"h1","Heartbeat",{}]"#).await;
    assert_eq!(cp.recv().await[1], "h1");
    cp.send(&format!(r#"[3,{},{{"status":"Accepted"}}]"#, call[1]))
        .await;
    let answer = remote.await.unwrap().unwrap();
    assert_eq!(answer.status, v16::RemoteStartStopStatus::Accepted);

    // A call nobody answers times out (300 ms configured, on paused tokio time: no real waiting).
    let err = handle
        .call(v16::ClearCacheRequest::new())
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    let _ = cp.recv().await; // the unanswered ClearCache

    // A call of the wrong version is refused at once.
    let err = handle
        .call(ocpp_types::v201::ClearCacheRequest::new())
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Refused(_)));

    let state = handle.state();
    assert_eq!(state.boot, ocpp_central::BootState::Accepted);

    // The transport closes: the connection ends, the handle reports disconnection.
    drop(cp);
    task.await.unwrap();
    assert!(!handle.is_connected());
    assert!(chargers.is_empty());
    let err = handle
        .call(v16::ClearCacheRequest::new())
        .await
        .unwrap_err();
    assert!(err.is_disconnected());
    let after = app.after_boot.lock().unwrap().take().unwrap().unwrap();
    assert_eq!(
        after.configuration_key.unwrap()[0].key.as_str(),
        "HeartbeatInterval"
    );
    let events = app.events.lock().unwrap().clone();
    assert_eq!(events.first().map(String::as_str), Some("Connected"));
    assert!(events.contains(&"Booted".to_owned()));
    assert!(events.contains(&"Authorized".to_owned()));
    assert_eq!(events.last().map(String::as_str), Some("Disconnected"));
}

#[tokio::test(start_paused = true)]
async fn a_transaction_restored_by_the_application_ends_with_its_energy() {
    let app = Arc::new(App::default());
    let chargers = Chargers::new();
    let (mut cp, handle, task) = start(app.clone(), &chargers);
    cp.send(r#"[2,"s","StopTransaction",{"transactionId":42,"meterStop":1500,"timestamp":"2025-01-01T01:00:00Z"}]"#)
        .await;
    assert_eq!(cp.recv().await[1], "s");
    drop(cp);
    task.await.unwrap();
    assert!(handle.state().transactions.is_empty());
    let events = app.events.lock().unwrap().clone();
    assert!(
        events.contains(&"TransactionEnded".to_owned()),
        "{events:?}"
    );
    let ended = app.ended.lock().unwrap().clone().unwrap();
    assert_eq!(ended.connector, ConnectorRef::v16(2));
    assert_eq!(ended.energy_wh, 500.into());
}

#[tokio::test(start_paused = true)]
async fn closing_through_the_handle_ends_the_connection_and_fails_pending_calls() {
    let app = Arc::new(App::default());
    let chargers = Chargers::new();
    let (mut cp, handle, task) = start(app, &chargers);
    let h2 = handle.clone();
    let pending = tokio::spawn(async move { h2.call(v16::ClearCacheRequest::new()).await });
    let _ = cp.recv().await;
    handle.close(Some("maintenance".into()));
    task.await.unwrap();
    assert!(pending.await.unwrap().unwrap_err().is_disconnected());
}

struct Plain;
impl Handler for Plain {}

#[tokio::test]
async fn calls_sent_without_waiting_are_all_answered_in_order() {
    // A charger that does not wait for answers (OCPP-J §4.1.1 says it must): the connection
    // reads no further while 16 of its calls are being handled, so none is refused.
    const N: usize = 500;
    let (mut to_central, incoming) = mpsc::channel::<String>(N);
    let (outgoing, mut from_central) = mpsc::channel::<String>(N);
    let conn = Connection::new(
        Session::new(SessionConfig::new("CP-FLOOD", Version::V201)),
        Arc::new(Plain),
    );
    let task = tokio::spawn(conn.run(incoming, outgoing));
    for i in 0..N {
        to_central
            .send(format!(r#"[2,"h{i}","Heartbeat",{{}}]"#))
            .await
            .unwrap();
    }
    for i in 0..N {
        let reply: Value = serde_json::from_str(&from_central.next().await.unwrap()).unwrap();
        assert_eq!(
            (&reply[0], &reply[1]),
            (&3.into(), &format!("h{i}").into()),
            "{reply}"
        );
    }
    drop(to_central);
    task.await.unwrap().unwrap();
}

/// A meter value changes the published state in place when nobody holds a snapshot of it
/// (no copy of the charger's connectors and transactions per message), and a snapshot that
/// is held keeps what it showed.
#[tokio::test(start_paused = true)]
async fn a_meter_value_updates_the_published_state_in_place_and_held_snapshots_keep_theirs() {
    let app = Arc::new(App::default());
    let chargers = Chargers::new();
    let (mut cp, handle, task) = start(app.clone(), &chargers);
    let meter = |id: &str, wh: u32| {
        format!(
            r#"[2,"{id}","MeterValues",{{"connectorId":2,"transactionId":42,"meterValue":[{{"timestamp":"2025-01-01T00:10:00Z","sampledValue":[{{"value":"{wh}","measurand":"Energy.Active.Import.Register","unit":"Wh"}}]}}]}}]"#
        )
    };
    let energy = |h: &ChargerHandle| h.state().transactions.get("42").map(|t| t.energy_wh);
    cp.send(&meter("m1", 1200)).await;
    assert_eq!(cp.recv().await[1], "m1");
    let first = Arc::as_ptr(&handle.state());
    assert_eq!(energy(&handle), Some(200.into()));

    cp.send(&meter("m2", 1300)).await;
    assert_eq!(cp.recv().await[1], "m2");
    assert_eq!(energy(&handle), Some(300.into()));
    assert_eq!(
        Arc::as_ptr(&handle.state()),
        first,
        "changed in place, not copied"
    );

    let held = handle.state();
    cp.send(&meter("m3", 1400)).await;
    assert_eq!(cp.recv().await[1], "m3");
    assert_eq!(energy(&handle), Some(400.into()));
    assert_eq!(
        held.transactions.get("42").map(|t| t.energy_wh),
        Some(300.into())
    );
    assert!(
        !Arc::ptr_eq(&held, &handle.state()),
        "a held snapshot is copied, not changed"
    );

    drop(cp);
    task.await.unwrap();
    assert!(!handle.state().connected);
}

/// A handler method sees the CALL it answers as the charger sent it, byte for byte, in every
/// poll; nothing outside it does.
#[tokio::test(start_paused = true)]
async fn a_handler_sees_the_call_as_the_charger_sent_it() {
    let app = Arc::new(App::default());
    let (mut cp, _handle, task) = start(app.clone(), &Chargers::new());
    let payload = r#"{ "idTag" :"TAG-1"  }"#;
    cp.send(&format!(r#"[2,"a1","Authorize",{payload}]"#)).await;
    assert_eq!(cp.recv().await[2]["idTagInfo"]["status"], "Accepted");
    let want = Some(("Authorize", payload.to_owned(), false));
    assert_eq!(*app.seen.lock().unwrap(), [want.clone(), want]);
    assert!(ocpp_central::with_incoming_call(|c| c.is_none()));
    drop(cp);
    task.await.unwrap();
}
