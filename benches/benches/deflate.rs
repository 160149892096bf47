//! WebSocket compression (RFC 7692, `ocpp_codec::deflate::DeflateIo`) per message, on a
//! typical 1.6 MeterValues CALL (`benches/payloads/v16_meter_values.json`, 7 sampled values,
//! about 1 KB): what the side that sends it spends (`send`: the frame through `DeflateIo`'s
//! writing side, compressed or passed through) and what the side that receives it spends
//! (`receive`: the frame from the socket through the reading side, inflated or passed
//! through), each for `plain` (no extension: the pass-through every uncompressed connection
//! takes), `deflate` (no context takeover, the default) and `deflate_takeover`, against
//! `none`: the same bytes through the in-memory socket alone, as before the extension.
//!
//! `cargo bench -p ocpp-benches --bench deflate -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use criterion::{Criterion, Throughput};
use ocpp_codec::deflate::{Agreed, DeflateIo, Limits};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const LIMITS: Limits = Limits {
    max_message_size: 4 << 20,
};

/// A socket in memory: what is written is kept, reads take from `input`.
#[derive(Default)]
struct Memory {
    written: Vec<u8>,
    input: Vec<u8>,
    at: usize,
}

impl AsyncWrite for Memory {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Memory {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let n = (this.input.len() - this.at).min(buf.remaining());
        buf.put_slice(&this.input[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

/// Nothing to wake: [`Memory`] never blocks.
struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn ready<T>(p: Poll<T>) -> T {
    match p {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("memory never blocks"),
    }
}

/// A frame of `text` (masked with `mask` when given, as a charger sends it).
fn frame(text: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![0x81];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if text.len() < 126 {
        out.push(m | text.len() as u8);
    } else {
        out.push(m | 126);
        out.extend_from_slice(&(text.len() as u16).to_be_bytes());
    }
    let mut data = text.to_vec();
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    out.extend_from_slice(&data);
    out
}

fn agreed(takeover: bool) -> Agreed {
    Agreed {
        send_window_bits: 15,
        send_reset: !takeover,
        receive_reset: !takeover,
        min_size: 256,
    }
}

fn io(agreed: Option<Agreed>) -> DeflateIo<Memory> {
    let mut io = DeflateIo::plain(Memory::default());
    io.set_agreed(agreed, LIMITS);
    io
}

fn main() {
    let payload = include_str!("../payloads/v16_meter_values.json");
    let payload: serde_json::Value = serde_json::from_str(payload).expect("payload");
    let text = format!(r#"[2,"19223201","MeterValues",{payload}]"#);
    let plain_frame = frame(text.as_bytes(), Some([1, 2, 3, 4]));
    let mut c = Criterion::default().configure_from_args();
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut group = c.benchmark_group("meter_values");
    group.throughput(Throughput::Elements(1));
    // The floor, as before the extension: the socket itself, no `DeflateIo` on top.
    let mut bare = Memory::default();
    group.bench_function("send/none", |b| {
        b.iter(|| {
            let n = ready(Pin::new(&mut bare).poll_write(&mut cx, &plain_frame)).unwrap();
            ready(Pin::new(&mut bare).poll_flush(&mut cx)).unwrap();
            black_box(n);
            bare.written.clear();
        })
    });
    let mut out = vec![0u8; 8192];
    group.bench_function("receive/none", |b| {
        b.iter(|| {
            bare.input.clear();
            bare.input.extend_from_slice(&plain_frame);
            bare.at = 0;
            let mut got = 0;
            loop {
                let mut buf = ReadBuf::new(&mut out);
                ready(Pin::new(&mut bare).poll_read(&mut cx, &mut buf)).unwrap();
                if buf.filled().is_empty() {
                    break;
                }
                got += buf.filled().len();
            }
            black_box(got);
        })
    });
    for (name, agreed) in [
        ("plain", None),
        ("deflate", Some(agreed(false))),
        ("deflate_takeover", Some(agreed(true))),
    ] {
        // Sending: the frame through the writing side.
        let mut sender = io(agreed);
        group.bench_function(format!("send/{name}"), |b| {
            b.iter(|| {
                let n = ready(Pin::new(&mut sender).poll_write(&mut cx, &plain_frame)).unwrap();
                ready(Pin::new(&mut sender).poll_flush(&mut cx)).unwrap();
                black_box(n);
                sender.get_mut().written.clear();
            })
        });
        // What goes on the wire, message after message (with context takeover each refers
        // back to the previous ones: take the steady state, a later message).
        let mut wire = Vec::new();
        let mut writer = io(agreed);
        for _ in 0..300 {
            writer.get_mut().written.clear();
            ready(Pin::new(&mut writer).poll_write(&mut cx, &plain_frame)).unwrap();
            ready(Pin::new(&mut writer).poll_flush(&mut cx)).unwrap();
            wire.push(writer.get_mut().written.clone());
        }
        eprintln!(
            "{name}: {} bytes of text, {} then {} bytes on the wire",
            text.len(),
            wire[0].len(),
            wire[299].len()
        );
        // Receiving: the frames from the socket through the reading side, in the order they
        // were sent (the inflater follows the sender's context).
        let mut receiver = io(agreed);
        let mut k = 0;
        group.bench_function(format!("receive/{name}"), |b| {
            b.iter(|| {
                let i = k % wire.len();
                k += 1;
                if i == 0 && k > 1 && agreed.is_some_and(|a| !a.receive_reset) {
                    // Start the sequence again with a fresh context (once in 300).
                    receiver = io(agreed);
                }
                let bytes = &wire[i];
                let memory = receiver.get_mut();
                memory.input.clear();
                memory.input.extend_from_slice(bytes);
                memory.at = 0;
                let mut got = 0;
                loop {
                    let mut buf = ReadBuf::new(&mut out);
                    ready(Pin::new(&mut receiver).poll_read(&mut cx, &mut buf)).unwrap();
                    if buf.filled().is_empty() {
                        break;
                    }
                    got += buf.filled().len();
                }
                black_box(got);
            })
        });
    }
    group.finish();
    c.final_summary();
}
