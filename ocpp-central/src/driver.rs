//! Drives a [`Session`] over any transport (feature `tokio`): the embedding path for central
//! systems that already own their sockets (an axum WebSocket, a message bus, ...).
//!
//! [`Connection`] owns the session in one task (the h2/quinn "driver" pattern): it selects over
//! the incoming messages, the [`ChargerHandle`] commands, the handler futures and the
//! session's next deadline; after each step it sends what the session transmits and hands the
//! events on. Handler methods run concurrently with the connection (a handler that calls the
//! charger cannot deadlock), replies go out as soon as each handler returns, and
//! [`Handler::on_event`](crate::Handler::on_event) / [`Handler::after`](crate::Handler::after)
//! run in order in a companion task.
//!
//! ```
//! use std::sync::Arc;
//! use futures::{SinkExt, StreamExt};
//! use ocpp_central::{Connection, Handler, HandleV16, HandleV201, HandleV21, Session, SessionConfig};
//! use ocpp_types::Version;
//!
//! struct App;
//! impl Handler for App {}
//! impl HandleV16 for App {}
//! impl HandleV201 for App {}
//! impl HandleV21 for App {}
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Any transport: here two channels stand in for the socket.
//! let (mut to_central, incoming) = futures::channel::mpsc::channel::<String>(16);
//! let (outgoing, mut from_central) = futures::channel::mpsc::channel::<String>(16);
//! let conn = Connection::new(Session::new(SessionConfig::new("CP1", Version::V16)), Arc::new(App));
//! let task = tokio::spawn(conn.run(incoming, outgoing));
//! to_central.send(r#"[2,"1","Heartbeat",{}]"#.into()).await.unwrap();
//! let reply = from_central.next().await.unwrap();
//! assert!(reply.starts_with(r#"[3,"1",{"currentTime":"#));
//! drop(to_central); // the transport closed
//! task.await.unwrap().unwrap();
//! # }
//! ```

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::channel::{mpsc, oneshot};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};

use crate::defaults::CallFailure;
use crate::handler::{dispatch, CentralSystem, ChargerHandle, Chargers, Command};
use crate::message::{AnyRequest, AnyResponse};
use crate::model::Event;
use crate::session::{CallError, Session, SessionEvent};

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError {
    /// The outgoing sink failed.
    #[error("sending failed: {0}")]
    Send(String),
}

/// Boxed payloads: typed messages are large, and each queued item is a node of that size.
enum AppWork {
    Event(Box<Event>),
    After(Box<(AnyRequest, AnyResponse)>),
    Send(String, String),
}

type HandlerFuture = BoxFuture<'static, (String, Result<AnyResponse, CallFailure>)>;

/// How many charger CALLs may be in the application's hands at once. With this many
/// unanswered, the connection stops reading until one is answered, so a charger that sends
/// CALLs without waiting for the answers (a conforming one has one in flight, OCPP-J §4.1.1)
/// is slowed down by TCP instead of being refused, and every CALL is answered, in order. The
/// codec endpoint refuses more than its `max_unanswered_calls` (16) with `GenericError`; that
/// only happens while a central call awaits its answer (then reading goes on, so the answer
/// is not stuck behind the charger's CALLs).
const MAX_HANDLING: usize = 16;

/// One charger connection being driven: a session, the application's handler and the
/// handle the application uses to reach the charger.
pub struct Connection<H: CentralSystem> {
    session: Session,
    handler: Arc<H>,
    handle: ChargerHandle,
    commands: mpsc::UnboundedReceiver<Command>,
    registry: Option<Chargers>,
}

impl<H: CentralSystem> std::fmt::Debug for Connection<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<H: CentralSystem> Connection<H> {
    /// A connection driving `session` for `handler`.
    pub fn new(session: Session, handler: Arc<H>) -> Connection<H> {
        let (handle, commands) =
            ChargerHandle::new(session.state().clone(), session.defaults().clone());
        Connection {
            session,
            handler,
            handle,
            commands,
            registry: None,
        }
    }

    /// Registers the charger in `chargers` while the connection runs (a connection already
    /// registered under the same identity is closed and replaced).
    pub fn register(mut self, chargers: &Chargers) -> Self {
        self.registry = Some(chargers.clone());
        self
    }

    /// The handle to this charger.
    pub fn handle(&self) -> ChargerHandle {
        self.handle.clone()
    }

    /// Runs the connection until `incoming` ends, the handle asks to close, or sending fails.
    /// Every text message of `incoming` goes to the session; everything the session
    /// transmits goes to `outgoing`. Returns once the application saw
    /// [`Event::Disconnected`].
    pub async fn run<I, O>(self, incoming: I, outgoing: O) -> Result<(), DriveError>
    where
        I: Stream<Item = String> + Send,
        O: Sink<String> + Send,
        O::Error: std::fmt::Display,
    {
        let Connection {
            mut session,
            handler,
            handle,
            mut commands,
            registry,
        } = self;
        for tx in handler
            .restore_transactions(session.identity(), session.version())
            .await
        {
            session.restore_transaction(tx);
        }
        if let Some(reg) = &registry {
            if let Some(old) = reg.insert(handle.clone()) {
                old.close(Some("replaced by a new connection".into()));
            }
        }
        let (work_tx, mut work_rx) = mpsc::unbounded::<AppWork>();
        let app = {
            let handler = handler.clone();
            let handle = handle.clone();
            tokio::spawn(async move {
                while let Some(work) = work_rx.next().await {
                    let run = match &work {
                        AppWork::Event(e) => handler.on_event(&handle, e),
                        AppWork::After(qr) => handler.after(&handle, &qr.0, &qr.1),
                        AppWork::Send(a, p) => handler.on_send(&handle, a, p),
                    };
                    // A panicking hook must not take the connection's event order down.
                    let _ = std::panic::AssertUnwindSafe(run).catch_unwind().await;
                }
            })
        };
        let mut incoming = std::pin::pin!(incoming);
        let mut outgoing: Pin<Box<O>> = Box::pin(outgoing);
        let mut handlers: FuturesUnordered<HandlerFuture> = FuturesUnordered::new();
        let mut calls: HashMap<String, oneshot::Sender<Result<AnyResponse, CallError>>> =
            HashMap::new();
        let mut result = Ok(());
        let mut deferred: Vec<AppWork> = Vec::new();
        let now = || tokio::time::Instant::now().into_std();
        loop {
            // Hand events on, then send what the session wants sent.
            while let Some(ev) = session.poll_event() {
                match ev {
                    SessionEvent::Request { id, request } => {
                        let handler = handler.clone();
                        let handle = handle.clone();
                        handlers.push(
                            async move {
                                let out = std::panic::AssertUnwindSafe(dispatch(
                                    &*handler, &handle, request,
                                ))
                                .catch_unwind()
                                .await
                                .unwrap_or_else(|_| {
                                    Err(CallFailure::internal("the handler panicked"))
                                });
                                (id, out)
                            }
                            .boxed(),
                        );
                    }
                    SessionEvent::Model(e) => {
                        let _ = work_tx.unbounded_send(AppWork::Event(Box::new(e)));
                    }
                    SessionEvent::Answer { id, result, .. } => {
                        if let Some(tx) = calls.remove(&id) {
                            let _ = tx.send(result);
                        }
                    }
                    SessionEvent::Send { action, payload } => {
                        let _ = work_tx.unbounded_send(AppWork::Send(action, payload));
                    }
                    SessionEvent::Protocol(p) => {
                        tracing::debug!(charger = session.identity(), "protocol: {p}");
                    }
                }
            }
            while let Some(text) = session.poll_transmit() {
                if let Err(e) = outgoing.send(text).await {
                    result = Err(DriveError::Send(e.to_string()));
                    session.handle_close(Some(format!("send failed: {e}")));
                    break;
                }
            }
            // After hooks run once the reply is out and its model events are queued.
            for work in deferred.drain(..) {
                let _ = work_tx.unbounded_send(work);
            }
            handle.set_state(session.state());
            if session.is_closed() {
                // Deliver the final events (pending calls fail, Disconnected).
                while let Some(ev) = session.poll_event() {
                    match ev {
                        SessionEvent::Model(e) => {
                            let _ = work_tx.unbounded_send(AppWork::Event(Box::new(e)));
                        }
                        SessionEvent::Answer { id, result, .. } => {
                            if let Some(tx) = calls.remove(&id) {
                                let _ = tx.send(result);
                            }
                        }
                        _ => {}
                    }
                }
                break;
            }
            let deadline = session.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => futures::future::pending::<()>().await,
                }
            };
            // Backpressure: see `MAX_HANDLING`.
            let reading = !calls.is_empty() || session.unanswered().count() < MAX_HANDLING;
            tokio::select! {
                msg = incoming.next(), if reading => match msg {
                    Some(text) => session.handle_text(now(), &text),
                    None => session.handle_close(None),
                },
                Some(cmd) = commands.next() => match cmd {
                    Command::Call { request, reply } => match session.call(now(), &request) {
                        Ok(id) => { calls.insert(id, reply); }
                        Err(e) => { let _ = reply.send(Err(e)); }
                    },
                    Command::Close { reason } => session.handle_close(reason),
                },
                Some((id, answer)) = handlers.next(), if !handlers.is_empty() => {
                    let request = session
                        .unanswered()
                        .find(|(k, _)| *k == id)
                        .map(|(_, q)| q.clone());
                    match answer {
                        Ok(response) => match session.respond(now(), &id, response.clone()) {
                            Ok(()) => {
                                if let Some(q) = request {
                                    deferred.push(AppWork::After(Box::new((q, response))));
                                }
                            }
                            Err(_) if session.is_closed() => {}
                            Err(e) => {
                                tracing::warn!(charger = session.identity(), "handler answer refused: {e}");
                                let _ = session.respond_error(&id, &CallFailure::internal(e.to_string()));
                            }
                        },
                        Err(failure) => { let _ = session.respond_error(&id, &failure); }
                    }
                },
                _ = sleep => session.handle_timeout(now()),
            }
        }
        handle.set_state(session.state());
        if let Some(reg) = &registry {
            reg.remove(&handle);
        }
        for (_, tx) in calls.drain() {
            let _ = tx.send(Err(CallError::Disconnected));
        }
        commands.close();
        while let Ok(cmd) = commands.try_recv() {
            if let Command::Call { reply, .. } = cmd {
                let _ = reply.send(Err(CallError::Disconnected));
            }
        }
        let _ = outgoing.close().await;
        drop(work_tx);
        let _ = app.await;
        result
    }
}
