//! The charger's CALL a handler method is answering, as it came over the wire.
//!
//! A handler method gets the typed request. An application that stores what the charger sent
//! (an audit log, a journal of transaction messages written before they are answered) reads
//! the payload's own text with [`with_incoming_call`] instead of encoding the typed request
//! again: the bytes the charger sent, in its field order and number spelling, at the cost of
//! one copy.
//!
//! The `Connection` driver (and so the server) and the test harness set
//! it around each handler method they run; an application that drives a
//! [`Session`](crate::Session) itself wraps its handler future in [`answering`].
//!
//! ```
//! use ocpp_central::incoming::{answering, with_incoming_call};
//!
//! # futures::executor::block_on(async {
//! // Outside a handler method there is none.
//! assert!(with_incoming_call(|call| call.is_none()));
//! # });
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::value::RawValue;

/// A charger's CALL as it came over the wire, beside the typed request
/// ([`SessionEvent::Request`](crate::SessionEvent::Request)).
#[derive(Debug, Clone)]
pub struct IncomingCall {
    action: &'static str,
    payload: Box<RawValue>,
    repaired: bool,
}

impl IncomingCall {
    /// The call of `action` whose payload was `payload`; `repaired`: the codec repaired the
    /// payload before decoding it (see [`IncomingCall::repaired`]).
    pub fn new(action: &'static str, payload: Box<RawValue>, repaired: bool) -> IncomingCall {
        IncomingCall {
            action,
            payload,
            repaired,
        }
    }

    /// The action, as the typed request names it.
    pub fn action(&self) -> &'static str {
        self.action
    }

    /// The payload's JSON text exactly as the charger sent it (its whitespace included).
    pub fn payload(&self) -> &str {
        self.payload.get()
    }

    /// Whether the codec repaired the payload before it decoded (a known charger quirk,
    /// reported as [`Event::Repaired`](crate::Event::Repaired)): then the typed request is not
    /// what [`IncomingCall::payload`] decodes to on its own, and an application that decodes
    /// its stored text again stores the typed request's encoding instead.
    pub fn repaired(&self) -> bool {
        self.repaired
    }
}

impl PartialEq for IncomingCall {
    fn eq(&self, other: &IncomingCall) -> bool {
        self.action == other.action
            && self.repaired == other.repaired
            && self.payload.get() == other.payload.get()
    }
}

thread_local! {
    /// The call of the handler future being polled on this thread, if any.
    static CURRENT: RefCell<Option<IncomingCall>> = const { RefCell::new(None) };
}

/// Runs `f` with the CALL the handler method being run is answering (`None` outside one).
/// Valid in the synchronous part of a handler method: read what is needed before (or
/// between) awaits, as a value (`payload().to_owned()`).
pub fn with_incoming_call<R>(f: impl FnOnce(Option<&IncomingCall>) -> R) -> R {
    CURRENT.with(|current| match current.try_borrow() {
        Ok(call) => f(call.as_ref()),
        Err(_) => f(None),
    })
}

/// `future` (a handler method answering `call`) with `call` visible to
/// [`with_incoming_call`] while it is polled.
pub fn answering<F: Future>(call: IncomingCall, future: F) -> Answering<F> {
    Answering {
        call: Some(call),
        future,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`answering`] (it holds `future` in place: no allocation per call).
    pub struct Answering<F> {
        call: Option<IncomingCall>,
        #[pin]
        future: F,
    }
}

impl<F> std::fmt::Debug for Answering<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answering")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

/// Puts the call back where it was when the poll ends, also when the poll panics.
struct Restore<'a> {
    slot: &'a mut Option<IncomingCall>,
    previous: Option<IncomingCall>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let ours = CURRENT.with(|current| match current.try_borrow_mut() {
            Ok(mut c) => std::mem::replace(&mut *c, previous),
            Err(_) => None,
        });
        *self.slot = ours;
    }
}

impl<F: Future> Future for Answering<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let ours = this.call.take();
        let previous = CURRENT.with(|current| match current.try_borrow_mut() {
            Ok(mut c) => std::mem::replace(&mut *c, ours),
            Err(_) => None,
        });
        let _restore = Restore {
            slot: this.call,
            previous,
        };
        this.future.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(text: &str) -> IncomingCall {
        IncomingCall::new(
            "Heartbeat",
            RawValue::from_string(text.to_owned()).expect("json"),
            false,
        )
    }

    /// The call is seen in every poll of its future (across awaits), not outside it, and a
    /// nested one is seen only inside its own future.
    #[test]
    fn each_future_sees_its_own_call_across_polls() {
        futures::executor::block_on(async {
            let seen = |want: Option<&str>| {
                with_incoming_call(|c| assert_eq!(c.map(IncomingCall::payload), want))
            };
            seen(None);
            answering(call("{ }"), async {
                seen(Some("{ }"));
                // One poll returns Pending (woken at once): the next poll sees the call too.
                let mut yielded = false;
                futures::future::poll_fn(|cx| {
                    if yielded {
                        return Poll::Ready(());
                    }
                    yielded = true;
                    seen(Some("{ }"));
                    cx.waker().wake_by_ref();
                    Poll::Pending
                })
                .await;
                seen(Some("{ }"));
                answering(call("{\"a\":1}"), async { seen(Some("{\"a\":1}")) }).await;
                seen(Some("{ }"));
            })
            .await;
            seen(None);
        });
    }

    /// A panicking poll does not leave its call behind for the next future on the thread.
    #[test]
    fn a_panic_leaves_no_call_behind() {
        let caught = std::panic::catch_unwind(|| {
            futures::executor::block_on(answering(call("{}"), async {
                panic!("in the handler");
            }))
        });
        assert!(caught.is_err());
        assert!(with_incoming_call(|c| c.is_none()));
    }
}
