//! Drives a [`Session`] over any transport (feature `tokio`): the embedding path for central
//! systems that already own their sockets (an axum WebSocket, a message bus, ...).
//!
//! [`Connection`] owns the session in one task (the h2/quinn "driver" pattern): it selects over
//! the incoming messages, the [`ChargerHandle`] commands, the handler futures and the
//! session's next deadline; after each step it sends what the session transmits and hands the
//! events on. Handler methods run concurrently with the connection (a handler that calls the
//! charger cannot deadlock), replies go out as soon as each handler returns, and
//! [`Handler::on_event`](crate::Handler::on_event) / [`Handler::after`](crate::Handler::after)
//! run one at a time, in order, inside the connection's task beside its other work (a slow hook
//! delays only later hooks of that charger).
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

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::{FutureExt, Sink, Stream, StreamExt};
use tokio::time::Instant;

use crate::defaults::CallFailure;
use crate::handler::{dispatch, CentralSystem, ChargerHandle, Chargers, Command, CommandReceiver};
use crate::incoming::answering;
use crate::message::{AnyRequest, AnyResponse};
use crate::model::{ChargerState, Event};
use crate::session::{CallError, Session, SessionEvent};

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError {
    /// The outgoing sink failed.
    #[error("sending failed: {0}")]
    Send(String),
    /// Processing the connection panicked; the connection was closed and every other
    /// connection carries on.
    #[error("processing the connection panicked: {0}")]
    Panicked(String),
}

/// Boxed payloads: typed messages are large, and each queued item is a node of that size.
enum AppWork {
    Event(Box<Event>),
    After(Box<(Arc<AnyRequest>, AnyResponse)>),
    Send(String, String),
}

type HandlerFuture = BoxFuture<'static, Answered>;

/// A charger request's id and what its handler answered.
type Answered = (String, Result<AnyResponse, CallFailure>);

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
    commands: CommandReceiver,
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
            ChargerHandle::with_shared_state(session.shared_state(), session.defaults().clone());
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

    /// The charger identity.
    pub(crate) fn identity(&self) -> &str {
        self.handle.identity()
    }

    /// Runs the connection until `incoming` ends, the handle asks to close, or sending fails.
    /// Every text message of `incoming` goes to the session; everything the session
    /// transmits goes to `outgoing`. Returns once the application saw
    /// [`Event::Disconnected`].
    ///
    /// A panic while processing this connection (in the session, or in application code
    /// the driver calls inline) ends only this connection: it is removed from the registry,
    /// its pending calls fail with [`CallError::Disconnected`], the application sees
    /// [`Event::Disconnected`], and `run` returns [`DriveError::Panicked`] (the server then
    /// closes the WebSocket with status 1011). Panics in handler methods and hooks are caught
    /// where they run (the charger gets `InternalError`; a hook's panic skips that hook).
    pub async fn run<I, O>(mut self, incoming: I, outgoing: O) -> Result<(), DriveError>
    where
        I: Stream<Item = String> + Send,
        O: Sink<String> + Send,
        O::Error: std::fmt::Display,
    {
        let transport = std::pin::pin!(Pair {
            incoming,
            outgoing,
            timer: None,
        });
        self.run_on(transport).await
    }

    /// [`Connection::run`] over any [`Transport`]. Borrows the connection, so that the
    /// caller's future holds it once (the server's task is the whole connection).
    pub(crate) async fn run_on<T: Transport>(
        &mut self,
        mut transport: Pin<&mut T>,
    ) -> Result<(), DriveError> {
        let Connection {
            session,
            handler,
            handle,
            commands,
            registry,
        } = self;
        for tx in handler
            .restore_transactions(session.identity(), session.version())
            .await
        {
            session.restore_transaction(tx);
        }
        if let Some(reg) = registry.as_ref() {
            if let Some(old) = reg.insert(handle.clone()) {
                old.close(Some("replaced by a new connection".into()));
            }
        }
        let mut calls: HashMap<String, oneshot::Sender<Result<AnyResponse, CallError>>> =
            HashMap::new();
        let mut backlog: VecDeque<AppWork> = VecDeque::new();
        let mut hook: Option<HookFuture> = None;
        let mut result = Ok(());
        let steps = std::panic::AssertUnwindSafe(drive(
            session,
            handler,
            handle,
            commands,
            transport.as_mut(),
            &mut calls,
            &mut backlog,
            &mut hook,
        ))
        .catch_unwind()
        .await;
        match steps {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(panic) => {
                let what = panic_message(&panic);
                tracing::error!(
                    charger = handle.identity(),
                    "processing panicked ({what}); closing this connection"
                );
                backlog.push_back(AppWork::Event(Box::new(Event::Disconnected {
                    reason: Some(format!("internal error: {what}")),
                })));
                result = Err(DriveError::Panicked(what));
            }
        }
        if matches!(result, Err(DriveError::Panicked(_))) {
            // The session may be half-way through a step: publish the last good state (the
            // session's own if the step was changing it in place, where there is no other).
            let last = handle.published().unwrap_or_else(|| session.shared_state());
            let mut last = ChargerState::clone(&last);
            last.connected = false;
            handle.set_state(&last);
        } else {
            handle.publish(session.shared_state());
        }
        if let Some(reg) = registry.as_ref() {
            reg.remove(handle);
        }
        for (_, tx) in calls.drain() {
            let _ = tx.send(Err(CallError::Disconnected));
        }
        commands.close();
        while let Some(cmd) = commands.try_next() {
            if let Command::Call { reply, .. } = cmd {
                let _ = reply.send(Err(CallError::Disconnected));
            }
        }
        transport.as_mut().ending(&result);
        let _ = futures::future::poll_fn(|cx| transport.as_mut().poll_close(cx)).await;
        // The application sees every event to the end, in order (Disconnected last).
        if let Some(running) = hook.take() {
            running.await;
        }
        for work in backlog.drain(..) {
            run_hook(handler, handle, work).await;
        }
        result
    }
}

/// What a [`Connection`] runs over: text messages in and out, and the one timer of the
/// connection. [`Connection::run`] takes any `Stream` / `Sink` of strings; the server's
/// WebSocket adds timed work of its own (pings, the dead-peer and write timeouts) on the
/// same timer, without a task of its own.
pub(crate) trait Transport: Send {
    /// A received text message.
    type Text: AsRef<str> + Send;
    /// Why sending failed.
    type Error: std::fmt::Display;

    /// What comes next: a text message from the charger (only while `reading`: otherwise
    /// the driver applies back pressure, and the transport does only its own timed work),
    /// the charger gone (it closed, or the transport failed), or the driver's `alarm` (the
    /// session's next deadline) passed.
    fn poll_event(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        reading: bool,
        alarm: Option<Instant>,
    ) -> Poll<Incoming<Self::Text>>;

    /// As [`Sink::poll_ready`].
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;

    /// As [`Sink::start_send`].
    fn start_send(self: Pin<&mut Self>, text: String) -> Result<(), Self::Error>;

    /// As [`Sink::poll_flush`].
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;

    /// As [`Sink::poll_close`].
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;

    /// The connection ends with `result`; closing comes next.
    fn ending(self: Pin<&mut Self>, result: &Result<(), DriveError>) {
        let _ = result;
    }
}

/// What [`Transport::poll_event`] gives.
pub(crate) enum Incoming<T> {
    /// A text message from the charger.
    Text(T),
    /// The charger closed the connection, or the transport failed.
    Gone,
    /// The driver's alarm passed.
    Alarm,
}

pin_project_lite::pin_project! {
    /// [`Connection::run`]'s transport: a stream and a sink of text messages, and a timer
    /// made when the session first has a deadline.
    struct Pair<I, O> {
        #[pin]
        incoming: I,
        #[pin]
        outgoing: O,
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<I, O> Transport for Pair<I, O>
where
    I: Stream<Item = String> + Send,
    O: Sink<String> + Send,
    O::Error: std::fmt::Display,
{
    type Text = String;
    type Error = O::Error;

    fn poll_event(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        reading: bool,
        alarm: Option<Instant>,
    ) -> Poll<Incoming<String>> {
        let this = self.project();
        if reading {
            if let Poll::Ready(text) = this.incoming.poll_next(cx) {
                return Poll::Ready(text.map_or(Incoming::Gone, Incoming::Text));
            }
        }
        if let Some(at) = alarm {
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Incoming::Alarm);
            }
        }
        Poll::Pending
    }

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), O::Error>> {
        self.project().outgoing.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, text: String) -> Result<(), O::Error> {
        self.project().outgoing.start_send(text)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), O::Error>> {
        self.project().outgoing.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), O::Error>> {
        self.project().outgoing.poll_close(cx)
    }
}

/// How many items (model events, after hooks, SEND messages) may wait for the application's
/// hooks before the connection stops reading from the charger until the application catches
/// up (backpressure by TCP instead of unbounded memory). One message adds a handful of items
/// at most (a transaction message: its event and its `after` hook, a few kilobytes with the
/// samples): a small bound keeps a slow application's memory per connection small, since the
/// charger waits for its answers anyway.
const MAX_BACKLOG: usize = 16;

/// The application hook running for this connection (one at a time, in order).
type HookFuture = BoxFuture<'static, ()>;

/// Runs one hook of the application; a panic in it skips that hook only.
fn run_hook<H: CentralSystem>(
    handler: &Arc<H>,
    handle: &ChargerHandle,
    work: AppWork,
) -> HookFuture {
    let handler = handler.clone();
    let handle = handle.clone();
    async move {
        let run = match &work {
            AppWork::Event(e) => handler.on_event(&handle, e),
            AppWork::After(qr) => handler.after(&handle, &qr.0, &qr.1),
            AppWork::Send(a, p) => handler.on_send(&handle, a, p),
        };
        let _ = std::panic::AssertUnwindSafe(run).catch_unwind().await;
    }
    .boxed()
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// The handler methods answering the charger's CALLs, at most [`MAX_HANDLING`] at once. A
/// plain list polled in order (a conforming charger has one CALL in flight): it holds no
/// memory while the connection is idle.
#[derive(Default)]
struct Handling {
    /// The handlers running, in the order they started, each with whether it has waited
    /// (returned `Pending`) at least once.
    running: Vec<(HandlerFuture, bool)>,
}

impl Handling {
    fn push(&mut self, future: HandlerFuture) {
        self.running.push((future, false));
    }

    fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// The answer of the first handler that finished, in the order they started, and whether
    /// that handler waited for something (storage, a charger, a lock) before it finished.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<(Answered, bool)> {
        for i in 0..self.running.len() {
            let (future, waited) = &mut self.running[i];
            match future.poll_unpin(cx) {
                Poll::Ready(answer) => {
                    let waited = *waited;
                    drop(self.running.remove(i));
                    if self.running.is_empty() {
                        self.running = Vec::new();
                    }
                    return Poll::Ready((answer, waited));
                }
                Poll::Pending => *waited = true,
            }
        }
        Poll::Pending
    }
}

/// Sends every message the session has to transmit, then flushes once.
async fn transmit<T: Transport>(
    session: &mut Session,
    transport: &mut Pin<&mut T>,
) -> Result<(), T::Error> {
    let mut sent = false;
    while let Some(text) = session.poll_transmit() {
        futures::future::poll_fn(|cx| transport.as_mut().poll_ready(cx)).await?;
        transport.as_mut().start_send(text)?;
        sent = true;
    }
    if sent {
        futures::future::poll_fn(|cx| transport.as_mut().poll_flush(cx)).await?;
    }
    Ok(())
}

/// The connection's steps, until it closes (see [`Connection::run`]).
#[allow(clippy::too_many_arguments)]
async fn drive<H, T>(
    session: &mut Session,
    handler: &Arc<H>,
    handle: &ChargerHandle,
    commands: &mut CommandReceiver,
    mut transport: Pin<&mut T>,
    calls: &mut HashMap<String, oneshot::Sender<Result<AnyResponse, CallError>>>,
    backlog: &mut VecDeque<AppWork>,
    hook: &mut Option<HookFuture>,
) -> Result<(), DriveError>
where
    H: CentralSystem,
    T: Transport,
{
    let mut handlers = Handling::default();
    // The answer just sent came from a handler that had waited (see below).
    let mut answered_late = false;
    let mut result = Ok(());
    // The `after` hook of the answer just sent (one per step at most), queued once the
    // answer's model events are.
    let mut deferred: Option<Box<(Arc<AnyRequest>, AnyResponse)>> = None;
    let mut published = session.generation();
    let now = || tokio::time::Instant::now().into_std();
    loop {
        // Hand events on, then send what the session wants sent.
        while let Some(ev) = session.poll_event() {
            match ev {
                SessionEvent::Request { id, request, call } => {
                    let handler = handler.clone();
                    let handle = handle.clone();
                    handlers.push(
                        async move {
                            let answer = answering(call, dispatch(&*handler, &handle, request));
                            let out = std::panic::AssertUnwindSafe(answer)
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
                SessionEvent::Model(e) => backlog.push_back(AppWork::Event(Box::new(e))),
                SessionEvent::Answer { id, result, .. } => {
                    if let Some(tx) = calls.remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                SessionEvent::Send { action, payload } => {
                    backlog.push_back(AppWork::Send(action, payload))
                }
                SessionEvent::Protocol(p) => {
                    tracing::debug!(charger = session.identity(), "protocol: {p}");
                }
            }
        }
        if let Err(e) = transmit(session, &mut transport).await {
            result = Err(DriveError::Send(e.to_string()));
            session.handle_close(Some(format!("send failed: {e}")));
        }
        // After hooks run once the reply is out and its model events are queued.
        backlog.extend(deferred.take().map(AppWork::After));
        // An answer that waited (for storage, say) went out with others released by the
        // same event (a group commit answers many connections at once): the application's
        // hooks of this one run after the other connections have sent theirs, so those
        // answers leave together instead of one per hook's worth of work. A peer that reads
        // them (a charger, a local TLS proxy) is woken once for the group, not once for each.
        if std::mem::take(&mut answered_late) && hook.is_none() && !backlog.is_empty() {
            tokio::task::yield_now().await;
        }
        if session.generation() != published {
            published = session.generation();
            handle.publish(session.shared_state());
        }
        if session.is_closed() {
            // Deliver the final events (pending calls fail, Disconnected).
            while let Some(ev) = session.poll_event() {
                match ev {
                    SessionEvent::Model(e) => backlog.push_back(AppWork::Event(Box::new(e))),
                    SessionEvent::Answer { id, result, .. } => {
                        if let Some(tx) = calls.remove(&id) {
                            let _ = tx.send(result);
                        }
                    }
                    _ => {}
                }
            }
            return result;
        }
        // The application's hooks run one at a time, in order, inside this task but beside
        // its other work: a slow hook delays only later hooks, and may call the charger.
        if hook.is_none() {
            if let Some(work) = backlog.pop_front() {
                *hook = Some(run_hook(handler, handle, work));
            }
            if backlog.is_empty() && backlog.capacity() > 0 {
                // An idle connection holds no queue memory (thousands of them add up).
                *backlog = VecDeque::new();
            }
        }
        // The session's next deadline is the transport's alarm (one timer per connection).
        let alarm = session.poll_timeout().map(Instant::from_std);
        // Backpressure: see `MAX_HANDLING` and `MAX_BACKLOG`. While not reading, the
        // transport still does its own timed work (the server's pings).
        let reading = (!calls.is_empty() || session.unanswered().count() < MAX_HANDLING)
            && backlog.len() < MAX_BACKLOG;
        let taking_commands = session.queued_calls() < MAX_QUEUED_CALLS;
        let incoming =
            futures::future::poll_fn(|cx| transport.as_mut().poll_event(cx, reading, alarm));
        tokio::select! {
            event = incoming => match event {
                Incoming::Text(text) => {
                    session.handle_text(now(), text.as_ref());
                    if let Some(at) = session.last_seen() {
                        handle.touch(at);
                    }
                }
                Incoming::Gone => session.handle_close(None),
                Incoming::Alarm => session.handle_timeout(now()),
            },
            Some(cmd) = commands.next(), if taking_commands => match cmd {
                Command::Call { request, reply } => match session.call(now(), &request) {
                    Ok(id) => { calls.insert(id, reply); }
                    Err(e) => { let _ = reply.send(Err(e)); }
                },
                Command::Close { reason } => session.handle_close(reason),
            },
            _ = async {
                match hook.as_mut() {
                    Some(running) => running.await,
                    None => futures::future::pending().await,
                }
            }, if hook.is_some() => {
                *hook = None;
            },
            ((id, answer), waited) = futures::future::poll_fn(|cx| handlers.poll_next(cx)), if !handlers.is_empty() => {
                answered_late = waited;
                match answer {
                    Ok(response) => {
                        let answered = handle.update_in_place(session, |s| s.respond_taking(now(), &id, response));
                        // Published by the step: the loop does not publish it again.
                        published = session.generation();
                        match answered {
                            Ok((request, response)) => {
                                deferred = Some(Box::new((request, response)));
                            }
                            Err(_) if session.is_closed() => {}
                            Err(e) => {
                                tracing::warn!(charger = session.identity(), "handler answer refused: {e}");
                                let _ = session.respond_error(&id, &CallFailure::internal(e.to_string()));
                            }
                        }
                    }
                    Err(failure) => { let _ = session.respond_error(&id, &failure); }
                }
            },
        }
    }
}

/// How many central calls the driver hands to the session to wait behind the one in flight;
/// more wait in the handle's bounded queue.
const MAX_QUEUED_CALLS: usize = 16;
