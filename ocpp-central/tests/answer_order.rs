//! Answers released together leave together: when one event lets the handlers of several
//! connections finish at once (a group commit of the messages they stored, say), every one of
//! those answers is sent before the application's hooks of any of them run. A peer reading
//! the answers (a charger, a local TLS proxy) is then woken once for the group, and no answer
//! waits behind another connection's hooks.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::channel::mpsc;
use futures::SinkExt;
use ocpp_central::{
    AnyRequest, AnyResponse, CallFailure, ChargerHandle, Connection, HandleV16, HandleV201,
    HandleV21, Handler, Session, SessionConfig,
};
use ocpp_types::{v16, Version};
use tokio::sync::Semaphore;

/// What happened, in order: `sent <charger> <frame>` and `after <charger> <action>`.
type Log = Arc<Mutex<Vec<String>>>;

struct App {
    log: Log,
    /// Heartbeats wait for a permit (the "commit" that releases them all).
    gate: Arc<Semaphore>,
}

#[async_trait]
impl Handler for App {
    fn v16(&self) -> Option<&dyn HandleV16> {
        Some(self)
    }

    async fn after(&self, charger: &ChargerHandle, request: &AnyRequest, _: &AnyResponse) {
        self.log
            .lock()
            .unwrap()
            .push(format!("after {} {}", charger.identity(), request.action()));
    }
}

#[async_trait]
impl HandleV16 for App {
    async fn heartbeat(
        &self,
        charger: &ChargerHandle,
        request: v16::HeartbeatRequest,
    ) -> Result<v16::HeartbeatResponse, CallFailure> {
        self.gate
            .acquire()
            .await
            .map_err(|_| CallFailure::internal("closed"))?
            .forget();
        charger.defaults().typed(&request)
    }
}
impl HandleV201 for App {}
impl HandleV21 for App {}

/// A connection of charger `id` whose sent frames are logged as they are handed to the
/// transport; returns the sender of its incoming frames.
fn connect(id: &str, app: &Arc<App>, log: &Log) -> mpsc::Sender<String> {
    let conn = Connection::new(
        Session::new(SessionConfig::new(id, Version::V16).refuse_before_accepted(false)),
        app.clone(),
    );
    let (to_central, incoming) = mpsc::channel::<String>(16);
    let log = log.clone();
    let who = id.to_owned();
    let outgoing = futures::sink::unfold((), move |(), frame: String| {
        log.lock().unwrap().push(format!("sent {who} {frame}"));
        async { Ok::<(), std::convert::Infallible>(()) }
    });
    tokio::spawn(conn.run(incoming, outgoing));
    to_central
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Chargers A and B connected, a Heartbeat sent on each (A's first), the tasks settled;
/// their handlers find `permits` permits. The senders keep the connections open.
async fn two_heartbeats(permits: usize) -> (Log, Arc<App>, Vec<mpsc::Sender<String>>) {
    let log: Log = Arc::default();
    let app = Arc::new(App {
        log: log.clone(),
        gate: Arc::new(Semaphore::new(permits)),
    });
    let mut senders = Vec::new();
    for id in ["A", "B"] {
        let mut to_central = connect(id, &app, &log);
        to_central
            .send(r#"[2,"1","Heartbeat",{}]"#.to_owned())
            .await
            .unwrap();
        senders.push(to_central);
    }
    settle().await;
    (log, app, senders)
}

/// The log as `sent <charger>` and `after <charger>`.
fn kinds(log: &[String]) -> Vec<String> {
    log.iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test]
async fn answers_released_together_are_all_sent_before_any_of_their_hooks_run() {
    let (log, app, _open) = two_heartbeats(0).await;
    assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());

    // One event releases both handlers.
    app.gate.add_permits(2);
    settle().await;
    let log = log.lock().unwrap().clone();
    let kinds = kinds(&log);
    // Both answers first (A's handler was released first), then both hooks (in either order:
    // each connection runs its own).
    assert_eq!(kinds[..2], ["sent A", "sent B"], "{log:#?}");
    let mut hooks = kinds[2..].to_vec();
    hooks.sort();
    assert_eq!(hooks, ["after A", "after B"], "{log:#?}");
    assert!(
        log[0].starts_with(r#"sent A [3,"1",{"currentTime":""#),
        "{log:#?}"
    );
}

#[tokio::test]
async fn an_answer_that_did_not_wait_has_its_hooks_run_at_once() {
    // Permits are there: each handler finishes at its first poll, and its hook follows its
    // answer before the other connection runs.
    let (log, _app, _open) = two_heartbeats(10).await;
    let log = log.lock().unwrap().clone();
    assert_eq!(
        kinds(&log),
        ["sent A", "after A", "sent B", "after B"],
        "{log:#?}"
    );
}
