//! The server's side of one WebSocket (feature `ws`): everything a connection needs beside
//! its session, in the connection's own task, holding as little as it can while the charger
//! is idle.
//!
//! - [`LeanIo`] sits under tungstenite: it reads the socket through a buffer on the stack
//!   and keeps only what tungstenite has not taken yet, so no read buffer is held between
//!   messages (tungstenite's own buffer is kept small, see [`READ_BUFFER`]).
//! - [`WsTransport`] is the driver's [`Transport`]: text messages in and out over the
//!   WebSocket, pings every ping interval, the dead-peer timeout while waiting for a message,
//!   the write timeout on every write and the session's next deadline, on one timer, without
//!   a writer task.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use ocpp_codec::transport::ReadFailure;

use crate::driver::{DriveError, Incoming, Transport};

/// What one read from the socket takes at most, through a buffer on the stack.
const CHUNK: usize = 4096;

/// The read buffer tungstenite keeps per connection (its default is 128 KiB). It grows to the
/// largest frame the charger sent and stays there: a few hundred bytes for a charger that
/// boots and sends heartbeats. A larger frame is taken from [`LeanIo`] in several reads of
/// this size, copies from memory, not system calls.
pub(crate) const READ_BUFFER: usize = 256;

/// The socket under the WebSocket. A read of less than [`CHUNK`] bytes reads up to [`CHUNK`]
/// into a buffer on the stack, hands over what fits and keeps the rest (exactly its size)
/// until it is taken: one system call per message, as with a large read buffer, but nothing
/// held while the connection is idle. Writes go straight through.
#[derive(Debug)]
pub(crate) struct LeanIo<S> {
    io: S,
    /// Read from the socket, not yet taken; `rest[taken..]` is what is left.
    rest: Box<[u8]>,
    taken: usize,
}

impl<S> LeanIo<S> {
    pub(crate) fn new(io: S) -> LeanIo<S> {
        LeanIo {
            io,
            rest: Box::default(),
            taken: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LeanIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.taken < this.rest.len() {
            let left = &this.rest[this.taken..];
            let n = left.len().min(buf.remaining());
            buf.put_slice(&left[..n]);
            this.taken += n;
            if this.taken == this.rest.len() {
                this.rest = Box::default();
                this.taken = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= CHUNK {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); CHUNK];
        let mut read = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
        let got = read.filled();
        let n = got.len().min(buf.remaining());
        buf.put_slice(&got[..n]);
        if n < got.len() {
            this.rest = got[n..].into();
            this.taken = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LeanIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The timed bounds of a connection's WebSocket ([`crate::ServerConfig`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How often to ping.
    pub(crate) ping_every: Option<Duration>,
    /// How long the peer may stay silent while a message is awaited.
    pub(crate) dead_after: Option<Duration>,
    /// How long one write may take.
    pub(crate) write_timeout: Duration,
}

pin_project_lite::pin_project! {
    /// The driver's transport over one server-side WebSocket (see the module docs).
    pub(crate) struct WsTransport<S> {
        ws: WebSocketStream<S>,
        // One timer for every deadline below, reset to the earliest one watched.
        #[pin]
        timer: Sleep,
        timing: Timing,
        // When the next ping is due.
        next_ping: Option<Instant>,
        // A ping is written to the WebSocket and not yet flushed.
        ping_unflushed: bool,
        // Since when a message has been awaited (the last frame of any kind restarts it).
        waiting_since: Option<Instant>,
        // Since when a write has been pending.
        writing_since: Option<Instant>,
        // The driver's alarm.
        alarm: Option<Instant>,
        // What the close frame says (a reading error's status), if anything.
        close_frame: Option<Box<CloseFrame>>,
        // The close frame was sent.
        close_sent: bool,
        // Writing failed or timed out: the connection cannot send any more.
        failed: bool,
    }
}

impl<S> WsTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    pub(crate) fn new(ws: WebSocketStream<S>, timing: Timing) -> WsTransport<S> {
        let now = Instant::now();
        let next_ping = timing.ping_every.and_then(|d| now.checked_add(d));
        WsTransport {
            ws,
            timer: tokio::time::sleep_until(next_ping.unwrap_or(now)),
            timing,
            next_ping,
            ping_unflushed: false,
            waiting_since: None,
            writing_since: None,
            alarm: None,
            close_frame: None,
            close_sent: false,
            failed: false,
        }
    }

    /// The earliest deadline: of a pending write only while `writing` (the driver waits for
    /// it), else of everything.
    fn due(&self, writing: bool) -> Option<Instant> {
        let write = self
            .writing_since
            .and_then(|t| t.checked_add(self.timing.write_timeout));
        let ping = if self.ping_unflushed {
            None
        } else {
            self.next_ping
        };
        let dead = self
            .waiting_since
            .zip(self.timing.dead_after)
            .and_then(|(t, d)| t.checked_add(d));
        if writing {
            return write;
        }
        [write, ping, dead, self.alarm].into_iter().flatten().min()
    }

    /// Waits for the earliest deadline ([`WsTransport::due`]); `Ready(now)` once it passed.
    fn poll_deadline(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        writing: bool,
    ) -> Poll<Instant> {
        let Some(due) = self.due(writing) else {
            return Poll::Pending;
        };
        let mut timer = self.as_mut().project().timer;
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        ready!(timer.poll(cx));
        // Never before `due` (so the caller's checks see it passed and make progress).
        Poll::Ready(Instant::now().max(due))
    }

    /// Whether the write pending since `writing_since` ran out of time at `now` (then the
    /// transport has failed).
    fn write_timed_out(self: Pin<&mut Self>, now: Instant) -> bool {
        let this = self.project();
        let late = this
            .writing_since
            .and_then(|t| t.checked_add(this.timing.write_timeout))
            .is_some_and(|deadline| deadline <= now);
        if late {
            tracing::info!("peer stopped reading (write timed out); dropping");
            *this.failed = true;
        }
        late
    }

    /// A write step of the WebSocket: on `Pending` the write timeout runs (from the first
    /// pending step); a timed-out or failed write fails the transport.
    fn poll_write_step(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        step: impl FnOnce(Pin<&mut WebSocketStream<S>>, &mut Context<'_>) -> Poll<Result<(), WsError>>,
    ) -> Poll<Result<(), WsError>> {
        if self.failed {
            return Poll::Ready(Err(WsError::AlreadyClosed));
        }
        let this = self.as_mut().project();
        match step(Pin::new(this.ws), cx) {
            Poll::Ready(Ok(())) => {
                *this.writing_since = None;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                *this.failed = true;
                Poll::Ready(Err(e))
            }
            Poll::Pending => {
                this.writing_since.get_or_insert_with(Instant::now);
                loop {
                    let now = ready!(self.as_mut().poll_deadline(cx, true));
                    if self.as_mut().write_timed_out(now) {
                        return Poll::Ready(Err(WsError::Io(io::ErrorKind::TimedOut.into())));
                    }
                }
            }
        }
    }

    /// Reads the WebSocket until a message comes (`Ready`) or nothing is left to read
    /// (`Pending`, the dead-peer timeout running).
    fn poll_message(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Incoming<Utf8Bytes>> {
        let this = self.as_mut().project();
        loop {
            match Pin::new(&mut *this.ws).poll_next(cx) {
                Poll::Ready(Some(Ok(Message::Text(text)))) => {
                    *this.waiting_since = None;
                    return Poll::Ready(Incoming::Text(text));
                }
                // A binary message is read as text, as the reference implementations do
                // (`ocpp_codec::frame::binary_message_text`).
                Poll::Ready(Some(Ok(Message::Binary(b)))) => {
                    *this.waiting_since = None;
                    let text = ocpp_codec::frame::binary_message_text(&b).into_owned();
                    return Poll::Ready(Incoming::Text(text.into()));
                }
                Poll::Ready(Some(Ok(Message::Close(_)))) | Poll::Ready(None) => {
                    return Poll::Ready(Incoming::Gone)
                }
                // Ping / pong: alive, nothing to hand on.
                Poll::Ready(Some(Ok(_))) => *this.waiting_since = None,
                Poll::Ready(Some(Err(e))) => {
                    // The reading side failed: tell the peer why (RFC 6455 §7.4.1) before the
                    // connection ends.
                    if let Some(frame) =
                        ReadFailure::from_tungstenite(&e).map(ReadFailure::close_frame)
                    {
                        tracing::info!("closing the connection: {e}");
                        *this.close_frame = Some(Box::new(frame));
                    }
                    return Poll::Ready(Incoming::Gone);
                }
                Poll::Pending => {
                    if this.timing.dead_after.is_some() && this.waiting_since.is_none() {
                        *this.waiting_since = Some(Instant::now());
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Pings when one is due, and flushes it; `Err` once the transport failed.
    fn poll_ping(mut self: Pin<&mut Self>, cx: &mut Context<'_>, now: Instant) -> Result<(), ()> {
        let this = self.as_mut().project();
        if !*this.ping_unflushed && this.next_ping.is_some_and(|at| at <= now) {
            *this.next_ping = this.timing.ping_every.and_then(|d| now.checked_add(d));
            // The WebSocket takes a message whenever its last write was flushed, which the
            // driver and the pings always wait for.
            let ws = Pin::new(this.ws);
            if ws.start_send(Message::Ping(Default::default())).is_err() {
                *this.failed = true;
                return Err(());
            }
            *this.ping_unflushed = true;
        }
        self.poll_unflushed_ping(cx)
    }

    /// Flushes a ping written before; `Err` once the transport failed.
    fn poll_unflushed_ping(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Result<(), ()> {
        if !self.ping_unflushed {
            return Ok(());
        }
        match self
            .as_mut()
            .poll_write_step(cx, |ws, cx| ws.poll_flush(cx))
        {
            Poll::Ready(Ok(())) => {
                *self.project().ping_unflushed = false;
                Ok(())
            }
            Poll::Ready(Err(_)) => Err(()),
            Poll::Pending => Ok(()),
        }
    }
}

impl<S> Transport for WsTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    type Text = Utf8Bytes;
    type Error = WsError;

    fn poll_event(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        reading: bool,
        alarm: Option<Instant>,
    ) -> Poll<Incoming<Utf8Bytes>> {
        *self.as_mut().project().alarm = alarm;
        if self.failed || self.as_mut().poll_unflushed_ping(cx).is_err() {
            return Poll::Ready(Incoming::Gone);
        }
        if reading {
            if let Poll::Ready(incoming) = self.as_mut().poll_message(cx) {
                return Poll::Ready(incoming);
            }
        } else {
            // Not reading: silence is not the peer's fault (the dead-peer timeout starts
            // again when reading does).
            *self.as_mut().project().waiting_since = None;
        }
        loop {
            let now = ready!(self.as_mut().poll_deadline(cx, false));
            if self.as_mut().write_timed_out(now) {
                return Poll::Ready(Incoming::Gone);
            }
            let silent_too_long = self
                .waiting_since
                .zip(self.timing.dead_after)
                .and_then(|(t, d)| t.checked_add(d))
                .is_some_and(|deadline| deadline <= now);
            if silent_too_long {
                tracing::info!("peer silent too long; dropping");
                return Poll::Ready(Incoming::Gone);
            }
            if alarm.is_some_and(|at| at <= now) {
                return Poll::Ready(Incoming::Alarm);
            }
            if self.as_mut().poll_ping(cx, now).is_err() {
                return Poll::Ready(Incoming::Gone);
            }
        }
    }

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        // A ping written before goes out first.
        if self.ping_unflushed {
            ready!(self
                .as_mut()
                .poll_write_step(cx, |ws, cx| ws.poll_flush(cx)))?;
            *self.as_mut().project().ping_unflushed = false;
        }
        self.poll_write_step(cx, |ws, cx| ws.poll_ready(cx))
    }

    fn start_send(self: Pin<&mut Self>, text: String) -> Result<(), WsError> {
        let this = self.project();
        if *this.failed {
            return Err(WsError::AlreadyClosed);
        }
        Pin::new(this.ws)
            .start_send(Message::Text(text.into()))
            .inspect_err(|_| *this.failed = true)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.poll_write_step(cx, |ws, cx| ws.poll_flush(cx))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.failed {
            return Poll::Ready(Ok(()));
        }
        if !self.close_sent {
            ready!(self.as_mut().poll_ready(cx))?;
            let this = self.as_mut().project();
            *this.close_sent = true;
            let frame = this.close_frame.take().map(|frame| *frame);
            // Refused when the peer closed first (tungstenite has answered its close).
            let _ = Pin::new(this.ws).start_send(Message::Close(frame));
        }
        self.poll_write_step(cx, |ws, cx| ws.poll_close(cx))
    }

    fn ending(self: Pin<&mut Self>, result: &Result<(), DriveError>) {
        if let Err(DriveError::Panicked(_)) = result {
            use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
            *self.project().close_frame = Some(Box::new(CloseFrame {
                code: CloseCode::Error,
                reason: "internal error".into(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn lean_io_reads_in_small_steps_from_one_read_of_the_socket() {
        let (mut peer, io) = tokio::io::duplex(64 * 1024);
        let mut io = LeanIo::new(io);
        let message: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        peer.write_all(&message).await.unwrap();
        let mut got = Vec::new();
        let mut small = [0u8; 100];
        // The first read takes one chunk from the socket and keeps the rest...
        let n = io.read(&mut small).await.unwrap();
        got.extend_from_slice(&small[..n]);
        assert_eq!(n, 100);
        assert_eq!(io.rest.len(), 2900);
        // ... which the next reads take, until nothing is held.
        while got.len() < message.len() {
            let n = io.read(&mut small).await.unwrap();
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, message);
        assert!(io.rest.is_empty());
        // A large read goes straight to the socket; end of stream reads as 0.
        peer.write_all(b"hello").await.unwrap();
        drop(peer);
        let mut large = vec![0u8; CHUNK];
        assert_eq!(io.read(&mut large).await.unwrap(), 5);
        assert_eq!(&large[..5], b"hello");
        assert_eq!(io.read(&mut small).await.unwrap(), 0);
    }
}
