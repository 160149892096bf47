//! [`DeflateIo`]: the byte stream under tungstenite, rewriting compressed frames.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Agreed, InflateError};

/// The most inflated bytes handed on per frame, and the most processed bytes held for
/// tungstenite before the wrapper stops reading the socket.
pub const PIECE: usize = 4096;

/// What one read from the socket takes at most.
const CHUNK: usize = 4096;

/// The tail a sender removes from each compressed message (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// How many idle compressors and inflaters a thread keeps for connections without context
/// takeover (see [`pool`]).
const POOLED: usize = 4;

/// The compressors and inflaters of connections without context takeover, kept per thread
/// between messages. Such a connection needs one only while it compresses or inflates a
/// message, so it borrows one here and gives it back (reset) instead of holding one for its
/// whole life; reusing them also spares allocating ~300 KiB per message, which malloc
/// (glibc's, raising its mmap threshold after the first free) would otherwise scatter among
/// the connections' long-lived allocations and never give back: measured in BENCHMARKS.md,
/// section 12.
mod pool {
    use std::cell::RefCell;

    use flate2::{Compress, Decompress};

    // Boxed as the connections hold them: they move in and out without re-boxing.
    #[allow(clippy::vec_box)]
    #[derive(Default)]
    struct Pool {
        inflaters: Vec<Box<Decompress>>,
        compressors: Vec<(u8, Box<Compress>)>,
    }

    thread_local! {
        static POOL: RefCell<Pool> = RefCell::new(Pool::default());
    }

    /// An inflater for a raw deflate stream with any window (15 bits reads all).
    pub(super) fn inflater() -> Box<Decompress> {
        POOL.try_with(|p| p.try_borrow_mut().ok()?.inflaters.pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| Box::new(Decompress::new_with_window_bits(false, 15)))
    }

    /// Gives an inflater back, reset.
    pub(super) fn give_inflater(mut inflater: Box<Decompress>) {
        inflater.reset(false);
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                if p.inflaters.len() < super::POOLED {
                    p.inflaters.push(inflater);
                }
            }
        });
    }

    /// A compressor with a `bits` window.
    pub(super) fn compressor(bits: u8) -> Box<Compress> {
        POOL.try_with(|p| {
            let mut p = p.try_borrow_mut().ok()?;
            let i = p.compressors.iter().position(|(b, _)| *b == bits)?;
            Some(p.compressors.swap_remove(i).1)
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| Box::new(super::new_compressor(bits)))
    }

    /// Gives a compressor back, reset.
    pub(super) fn give_compressor(bits: u8, mut compressor: Box<Compress>) {
        compressor.reset();
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                if p.compressors.len() < super::POOLED {
                    p.compressors.push((bits, compressor));
                }
            }
        });
    }
}

fn new_compressor(bits: u8) -> Compress {
    Compress::new_with_window_bits(flate2::Compression::default(), false, bits)
}

/// The bounds of a [`DeflateIo`]'s reading side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest inflated message; give it the size the WebSocket layer reads up to
    /// (tungstenite's `max_message_size`). The compressed data of one message may run to
    /// this plus an eighth and 1 KiB (incompressible data grows a little).
    pub max_message_size: usize,
}

impl Limits {
    fn max_compressed(&self) -> usize {
        self.max_message_size
            .saturating_add(self.max_message_size / 8)
            .saturating_add(1024)
    }
}

#[derive(Debug)]
enum Mode {
    /// The HTTP head is going through; `matched` bytes of `\r\n\r\n` seen.
    Handshake { matched: u8 },
    /// The head is over and nothing was decided yet: reads stop.
    Decide,
    /// No extension: everything goes through.
    Plain,
    /// The extension is in use.
    Deflate(Box<Codec>),
}

/// A frame header as read from bytes.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    rsv1: bool,
    /// RSV2 or RSV3.
    rsv23: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    /// The header's length in bytes.
    size: usize,
}

impl Header {
    /// Parses a header at the start of `b`; `None` when more bytes are needed.
    fn parse(b: &[u8]) -> Option<Header> {
        let (&b0, rest) = b.split_first()?;
        let (&b1, rest) = rest.split_first()?;
        let (len, ext) = match b1 & 0x7f {
            126 => (
                u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
                2,
            ),
            127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 8),
            n => (u64::from(n), 0),
        };
        let masked = b1 & 0x80 != 0;
        let mask = if masked {
            Some(rest.get(ext..ext + 4)?.try_into().ok()?)
        } else {
            None
        };
        Some(Header {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv23: b0 & 0x30 != 0,
            opcode: b0 & 0x0f,
            mask,
            len,
            size: 2 + ext + if masked { 4 } else { 0 },
        })
    }

    fn is_control(&self) -> bool {
        self.opcode & 0x08 != 0
    }
}

/// Appends a frame header.
fn put_header(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: usize,
) {
    out.push((u8::from(fin) << 7) | (u8::from(rsv1) << 6) | (opcode & 0x0f));
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(m | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
}

fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[(offset + i) & 3];
    }
}

/// The reading side's position in the frame stream.
#[derive(Debug)]
enum ReadState {
    Header,
    /// Payload bytes that go through unchanged.
    Through {
        left: u64,
    },
    /// Payload bytes of a compressed message.
    Inflate {
        left: u64,
        mask: Option<[u8; 4]>,
        offset: usize,
        fin: bool,
    },
    /// The read failed; it fails again.
    Failed(InflateError),
}

/// The message being read, when it is compressed.
#[derive(Debug)]
struct Incoming {
    opcode: u8,
    /// Whether the peer masked (our frames mirror it, with a zero key).
    masked: bool,
    /// Whether a frame of it was handed on already (the next one is a continuation).
    started: bool,
    inflated: usize,
    compressed: usize,
}

/// The extension's state on one connection.
struct Codec {
    /// `None`: the extension is not in use (only early bytes going through).
    agreed: Option<Agreed>,
    limits: Limits,
    // Reading.
    state: ReadState,
    /// Read from the socket, not processed; `raw[raw_at..]` is left.
    raw: Vec<u8>,
    raw_at: usize,
    /// Processed, for tungstenite; `out[out_at..]` is left.
    out: Vec<u8>,
    out_at: usize,
    /// A compressed message being read (`None` between messages and in uncompressed ones).
    incoming: Option<Incoming>,
    /// Whether the current data message is compressed (`incoming` is `Some` then).
    in_message: bool,
    inflater: Option<Box<Decompress>>,
    /// The inflater saw the end of a deflate stream (a final block) in this message.
    ended: bool,
    // Writing.
    /// Accepted from tungstenite, not yet a whole frame.
    wbuf: Vec<u8>,
    /// Ready for the socket; `wout[wout_at..]` is left.
    wout: Vec<u8>,
    wout_at: usize,
    /// Inside a fragmented message we send (sent as is).
    sending_fragments: bool,
    compressor: Option<Box<Compress>>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("agreed", &self.agreed)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The byte stream under a WebSocket, carrying `permessage-deflate` (see the module docs).
///
/// Create it around the socket before the WebSocket handshake, run the handshake over it,
/// then call [`DeflateIo::set_agreed`] with what the handshake agreed (`None`: the extension
/// is not in use, and the wrapper only passes bytes on). Until then, reads stop at the end of
/// the HTTP head, so a frame sent right behind it waits for the decision.
#[derive(Debug)]
pub struct DeflateIo<S> {
    io: S,
    mode: Mode,
    /// Bytes read during the handshake past the HTTP head, waiting for the decision.
    early: Vec<u8>,
}

impl<S> DeflateIo<S> {
    /// Wraps `io`, before the WebSocket handshake.
    pub fn new(io: S) -> DeflateIo<S> {
        DeflateIo {
            io,
            mode: Mode::Handshake { matched: 0 },
            early: Vec::new(),
        }
    }

    /// Wraps `io` after a handshake that agreed on nothing: a plain pass-through.
    pub fn plain(io: S) -> DeflateIo<S> {
        DeflateIo {
            io,
            mode: Mode::Plain,
            early: Vec::new(),
        }
    }

    /// What the handshake agreed; `None` when the extension is not in use. Call it once the
    /// handshake is complete, before the first message is read or written.
    pub fn set_agreed(&mut self, agreed: Option<Agreed>, limits: Limits) {
        let early = std::mem::take(&mut self.early);
        self.mode = match agreed {
            None => {
                if early.is_empty() {
                    Mode::Plain
                } else {
                    // Let the early bytes through first: a codec that only passes on.
                    Mode::Deflate(Box::new(Codec::new(None, limits, early)))
                }
            }
            Some(agreed) => Mode::Deflate(Box::new(Codec::new(Some(agreed), limits, early))),
        };
    }

    /// What was agreed, once [`DeflateIo::set_agreed`] was called with an agreement.
    pub fn agreed(&self) -> Option<Agreed> {
        match &self.mode {
            Mode::Deflate(codec) => codec.agreed,
            _ => None,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The wrapped stream, mutably (reading or writing it directly breaks the framing).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }
}

impl Codec {
    /// `agreed` is `None` only to let early bytes through a connection without the extension.
    fn new(agreed: Option<Agreed>, limits: Limits, early: Vec<u8>) -> Codec {
        Codec {
            agreed,
            limits,
            state: ReadState::Header,
            raw: early,
            raw_at: 0,
            out: Vec::new(),
            out_at: 0,
            incoming: None,
            in_message: false,
            inflater: None,
            ended: false,
            wbuf: Vec::new(),
            wout: Vec::new(),
            wout_at: 0,
            sending_fragments: false,
            compressor: None,
        }
    }

    fn active(&self) -> bool {
        self.agreed.is_some()
    }

    fn raw(&self) -> &[u8] {
        &self.raw[self.raw_at..]
    }

    fn take_raw(&mut self, n: usize) {
        self.raw_at += n;
        if self.raw_at >= self.raw.len() {
            self.raw = Vec::new();
            self.raw_at = 0;
        }
    }

    fn out_full(&self) -> bool {
        self.out.len() - self.out_at >= PIECE
    }

    /// Turns raw bytes into bytes for tungstenite while there is room; `Err` once the read
    /// failed.
    fn process(&mut self) -> Result<(), InflateError> {
        loop {
            if self.out_full() {
                return Ok(());
            }
            match self.state {
                ReadState::Failed(e) => return Err(e),
                ReadState::Header => {
                    let Some(h) = Header::parse(self.raw()) else {
                        return Ok(());
                    };
                    self.start_frame(h)?;
                }
                ReadState::Through { left } => {
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(self.raw().len())
                        .min(PIECE);
                    if n == 0 && left > 0 {
                        return Ok(());
                    }
                    self.out
                        .extend_from_slice(&self.raw[self.raw_at..self.raw_at + n]);
                    self.take_raw(n);
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ReadState::Header
                    } else {
                        ReadState::Through { left }
                    };
                }
                ReadState::Inflate {
                    left,
                    mask,
                    offset,
                    fin,
                } => {
                    if left == 0 {
                        if fin {
                            self.finish_message()?;
                        }
                        self.state = ReadState::Header;
                        continue;
                    }
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(self.raw().len())
                        .min(CHUNK);
                    if n == 0 {
                        return Ok(());
                    }
                    let mut input = [0u8; CHUNK];
                    let input = &mut input[..n];
                    input.copy_from_slice(&self.raw[self.raw_at..self.raw_at + n]);
                    if let Some(mask) = mask {
                        apply_mask(input, mask, offset);
                    }
                    let used = self.inflate(input, false)?;
                    self.take_raw(used);
                    self.state = ReadState::Inflate {
                        left: left - used as u64,
                        mask,
                        offset: offset + used,
                        fin,
                    };
                    if used == 0 && !self.out_full() {
                        // The inflater took nothing and gave nothing: cannot happen with
                        // room for output; stop rather than spin.
                        return self.fail(InflateError::Corrupt);
                    }
                }
            }
        }
    }

    fn fail(&mut self, e: InflateError) -> Result<(), InflateError> {
        self.state = ReadState::Failed(e);
        self.raw = Vec::new();
        self.raw_at = 0;
        self.inflater = None;
        Err(e)
    }

    fn start_frame(&mut self, h: Header) -> Result<(), InflateError> {
        let data_start = !h.is_control() && h.opcode != 0;
        let continuation = h.opcode == 0;
        let compressed = self.active()
            && !h.rsv23
            && ((data_start && h.rsv1) || (continuation && !h.rsv1 && self.in_message));
        if data_start {
            // A new data message (tungstenite refuses one inside another).
            self.in_message = compressed && !h.fin;
        }
        if !compressed {
            if continuation && h.fin {
                self.in_message = false;
            }
            // Unchanged, header and all: tungstenite judges it.
            let header = self.raw[self.raw_at..self.raw_at + h.size].to_vec();
            self.out.extend_from_slice(&header);
            self.take_raw(h.size);
            self.state = if h.len == 0 {
                ReadState::Header
            } else {
                ReadState::Through { left: h.len }
            };
            return Ok(());
        }
        if data_start {
            self.incoming = Some(Incoming {
                opcode: h.opcode,
                masked: h.mask.is_some(),
                started: false,
                inflated: 0,
                compressed: 0,
            });
        }
        if h.fin {
            self.in_message = false;
        }
        let max_compressed = self.limits.max_compressed();
        let Some(incoming) = self.incoming.as_mut() else {
            return self.fail(InflateError::Corrupt);
        };
        let len = usize::try_from(h.len).unwrap_or(usize::MAX);
        incoming.compressed = incoming.compressed.saturating_add(len);
        if incoming.compressed > max_compressed {
            return self.fail(InflateError::TooBig);
        }
        self.take_raw(h.size);
        self.state = ReadState::Inflate {
            left: h.len,
            mask: h.mask,
            offset: 0,
            fin: h.fin,
        };
        Ok(())
    }

    /// Feeds `input` to the inflater, handing on what comes out; returns how much of `input`
    /// it took (all of it unless the output buffer filled up).
    fn inflate(&mut self, input: &[u8], last: bool) -> Result<usize, InflateError> {
        let mut used = 0;
        loop {
            let mut piece = [0u8; PIECE];
            let flush = if last {
                FlushDecompress::Sync
            } else {
                FlushDecompress::None
            };
            let inflater = self.inflater.get_or_insert_with(pool::inflater);
            let before_in = inflater.total_in();
            let before_out = inflater.total_out();
            let status = inflater.decompress(&input[used..], &mut piece, flush);
            let took = usize::try_from(inflater.total_in() - before_in).unwrap_or(usize::MAX);
            let made = usize::try_from(inflater.total_out() - before_out).unwrap_or(PIECE);
            used = used.saturating_add(took).min(input.len());
            let Ok(status) = status else {
                return self.fail(InflateError::Corrupt).map(|()| used);
            };
            if let Status::StreamEnd = status {
                // A final block (BFINAL): whatever follows starts a new stream.
                inflater.reset(false);
                self.ended = true;
            } else if took > 0 {
                self.ended = false;
            }
            if made > 0 {
                self.hand_on(&piece[..made.min(PIECE)], false)?;
            }
            if made < PIECE && (used == input.len() || took == 0) {
                return Ok(used);
            }
            if self.out_full() {
                return Ok(used);
            }
        }
    }

    /// Hands on inflated bytes as one frame of the uncompressed message.
    fn hand_on(&mut self, data: &[u8], fin: bool) -> Result<(), InflateError> {
        let max = self.limits.max_message_size;
        let Some(incoming) = self.incoming.as_mut() else {
            return self.fail(InflateError::Corrupt);
        };
        incoming.inflated = incoming.inflated.saturating_add(data.len());
        if incoming.inflated > max {
            return self.fail(InflateError::TooBig);
        }
        let opcode = if incoming.started { 0 } else { incoming.opcode };
        incoming.started = true;
        let mask = incoming.masked.then_some([0u8; 4]);
        put_header(&mut self.out, fin, false, opcode, mask, data.len());
        self.out.extend_from_slice(data);
        Ok(())
    }

    /// The end of a compressed message: the tail, the last frame (with FIN).
    fn finish_message(&mut self) -> Result<(), InflateError> {
        // A message that ended its deflate stream has no tail to add.
        let mut tail = if self.ended { &[][..] } else { &TAIL[..] };
        // The tail may inflate to more than fits: feed it until it is taken. It yields
        // nothing but what the peer's data still held back, which counts against the limit.
        while !tail.is_empty() {
            let used = self.inflate(tail, true)?;
            tail = &tail[used..];
            if used == 0 {
                return self.fail(InflateError::Corrupt);
            }
        }
        self.hand_on(&[], true)?;
        self.incoming = None;
        self.ended = false;
        if self.agreed.is_none_or(|a| a.receive_reset) {
            if let Some(inflater) = self.inflater.take() {
                pool::give_inflater(inflater);
            }
        }
        Ok(())
    }

    /// Takes bytes tungstenite wrote and turns whole frames into bytes for the socket.
    fn accept_write(&mut self, buf: &[u8]) {
        self.wbuf.extend_from_slice(buf);
        let mut at = 0;
        while let Some(h) = Header::parse(&self.wbuf[at..]) {
            let Ok(len) = usize::try_from(h.len) else {
                break;
            };
            let end = at + h.size + len;
            if self.wbuf.len() < end {
                break;
            }
            let data_start = !h.is_control() && h.opcode != 0;
            let whole = data_start && h.fin && !self.sending_fragments;
            if data_start && !h.fin {
                self.sending_fragments = true;
            } else if h.opcode == 0 && h.fin {
                self.sending_fragments = false;
            }
            let big = self.agreed.is_some_and(|a| len >= a.min_size);
            if whole && !h.rsv1 && !h.rsv23 && big {
                let mut payload = self.wbuf[at + h.size..end].to_vec();
                if let Some(mask) = h.mask {
                    apply_mask(&mut payload, mask, 0);
                }
                let mut packed = self.compress(&payload);
                if let Some(mask) = h.mask {
                    apply_mask(&mut packed, mask, 0);
                }
                put_header(&mut self.wout, true, true, h.opcode, h.mask, packed.len());
                self.wout.extend_from_slice(&packed);
            } else {
                let frame = &self.wbuf[at..end];
                self.wout.extend_from_slice(frame);
            }
            at = end;
        }
        if at >= self.wbuf.len() {
            self.wbuf = Vec::new();
        } else {
            self.wbuf.drain(..at);
        }
    }

    /// One message, compressed (RFC 7692 §7.2.1: sync flush, the tail removed).
    fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let Some(agreed) = self.agreed else {
            return data.to_vec();
        };
        let bits = agreed.send_window_bits;
        let mut compressor = match self.compressor.take() {
            Some(c) => c,
            None if agreed.send_reset => pool::compressor(bits),
            None => Box::new(new_compressor(bits)),
        };
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut used = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = compressor.total_in();
            let result = compressor.compress_vec(&data[used..], &mut out, FlushCompress::Sync);
            used += (compressor.total_in() - before) as usize;
            // Done when all input is in and the flush left room to spare.
            if result.is_err() || (used == data.len() && out.capacity() - out.len() >= 64) {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if agreed.send_reset {
            pool::give_compressor(bits, compressor);
        } else {
            self.compressor = Some(compressor);
        }
        out
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeflateIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match &mut this.mode {
            Mode::Plain => Pin::new(&mut this.io).poll_read(cx, buf),
            Mode::Decide => Poll::Ready(Err(io::Error::other("DeflateIo read before set_agreed"))),
            Mode::Handshake { matched } => {
                let mut chunk = [0u8; CHUNK];
                let want = buf.remaining().min(CHUNK);
                let mut read = ReadBuf::new(&mut chunk[..want]);
                ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
                let got = read.filled();
                let mut end = got.len();
                for (i, &b) in got.iter().enumerate() {
                    let expected = if *matched % 2 == 0 { b'\r' } else { b'\n' };
                    *matched = if b == expected {
                        *matched + 1
                    } else if b == b'\r' {
                        1
                    } else {
                        0
                    };
                    if *matched == 4 {
                        end = i + 1;
                        break;
                    }
                }
                buf.put_slice(&got[..end]);
                if *matched == 4 {
                    this.early = got[end..].to_vec();
                    this.mode = Mode::Decide;
                }
                Poll::Ready(Ok(()))
            }
            Mode::Deflate(codec) => loop {
                if codec.out_at < codec.out.len() {
                    let left = &codec.out[codec.out_at..];
                    let n = left.len().min(buf.remaining());
                    buf.put_slice(&left[..n]);
                    codec.out_at += n;
                    if codec.out_at == codec.out.len() {
                        codec.out = Vec::new();
                        codec.out_at = 0;
                    }
                    return Poll::Ready(Ok(()));
                }
                if let Err(e) = codec.process() {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                }
                if codec.out_at < codec.out.len() {
                    continue;
                }
                let mut chunk = [0u8; CHUNK];
                let mut read = ReadBuf::new(&mut chunk);
                ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
                let got = read.filled();
                if got.is_empty() {
                    // The end of the stream (tungstenite sees what it makes of it).
                    return Poll::Ready(Ok(()));
                }
                codec.raw.extend_from_slice(got);
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> DeflateIo<S> {
    /// Writes what is waiting for the socket; `Ready(Ok)` once nothing is.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Mode::Deflate(codec) = &mut self.mode else {
            return Poll::Ready(Ok(()));
        };
        while codec.wout_at < codec.wout.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &codec.wout[codec.wout_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            codec.wout_at += n;
        }
        codec.wout = Vec::new();
        codec.wout_at = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeflateIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !matches!(this.mode, Mode::Deflate(_)) {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        }
        ready!(this.poll_drain(cx))?;
        if let Mode::Deflate(codec) = &mut this.mode {
            codec.accept_write(buf);
        }
        // Start sending; what does not go now goes on the flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn agreed() -> Agreed {
        Agreed {
            send_window_bits: 15,
            send_reset: true,
            receive_reset: true,
            min_size: 16,
        }
    }

    fn frame(fin: bool, rsv1: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, fin, rsv1, opcode, mask, payload.len());
        let mut data = payload.to_vec();
        if let Some(mask) = mask {
            apply_mask(&mut data, mask, 0);
        }
        out.extend_from_slice(&data);
        out
    }

    fn compress(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(flate2::Compression::default(), false);
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        out.truncate(out.len() - 4);
        out
    }

    #[tokio::test]
    async fn a_bomb_stops_inflating_at_the_limit() {
        let (mut peer, io) = tokio::io::duplex(1 << 20);
        let mut io = DeflateIo::plain(io);
        io.set_agreed(
            Some(agreed()),
            Limits {
                max_message_size: 10_000,
            },
        );
        let bomb = compress(&vec![b'a'; 8 << 20]);
        assert!(bomb.len() < 16 << 10);
        peer.write_all(&frame(true, true, 1, Some([1, 2, 3, 4]), &bomb))
            .await
            .unwrap();
        let mut handed = Vec::new();
        let error = loop {
            let mut buf = [0u8; 1000];
            match io.read(&mut buf).await {
                Ok(0) => panic!("end of stream before the limit"),
                Ok(n) => handed.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(InflateError::from_io(&error), Some(InflateError::TooBig));
        // At most the limit and one piece, with their frame headers, were ever inflated.
        assert!(handed.len() <= 10_000 + PIECE + 16 * 10, "{}", handed.len());
        let Mode::Deflate(codec) = &io.mode else {
            panic!()
        };
        assert!(codec.inflater.is_none() && codec.raw.is_empty());
        // The read fails again, it does not go on.
        let mut buf = [0u8; 10];
        assert!(io.read(&mut buf).await.is_err());
    }

    #[tokio::test]
    async fn frames_are_rewritten_both_ways() {
        let (mut peer, io) = tokio::io::duplex(1 << 20);
        let mut io = DeflateIo::plain(io);
        io.set_agreed(
            Some(agreed()),
            Limits {
                max_message_size: 1 << 20,
            },
        );
        // In: a compressed masked message, split over two frames, with a ping between.
        let text = b"[2,\"1\",\"Heartbeat\",{}] and some more text to compress".repeat(5);
        let packed = compress(&text);
        let mask = Some([9, 8, 7, 6]);
        let mut wire = frame(false, true, 1, mask, &packed[..10]);
        wire.extend(frame(true, false, 9, mask, b"hi"));
        wire.extend(frame(true, false, 0, mask, &packed[10..]));
        peer.write_all(&wire).await.unwrap();
        let mut got = Vec::new();
        while Header::parse(&got).is_none() || got.len() < 2 * text.len() {
            let mut buf = [0u8; 512];
            let n = io.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            // Done once the FIN continuation frame is in.
            let mut at = 0;
            let mut message = Vec::new();
            let mut done = false;
            while let Some(h) = Header::parse(&got[at..]) {
                let end = at + h.size + h.len as usize;
                if got.len() < end {
                    break;
                }
                // Inflated frames masked with a zero key; the ping as it came.
                let key = if h.is_control() { mask } else { Some([0; 4]) };
                assert!(!h.rsv1 && h.mask == key);
                if !h.is_control() {
                    message.extend_from_slice(&got[at + h.size..end]);
                    done = h.fin;
                }
                at = end;
            }
            if done {
                assert_eq!(message, text);
                break;
            }
        }
        // Out: a large message is compressed, a small one and a control frame are not.
        io.write_all(&frame(true, false, 1, None, &text))
            .await
            .unwrap();
        io.write_all(&frame(true, false, 1, None, b"[3,\"1\",{}]"))
            .await
            .unwrap();
        io.write_all(&frame(true, false, 10, None, b"pong"))
            .await
            .unwrap();
        io.flush().await.unwrap();
        let mut out = vec![0u8; 4096];
        let n = peer.read(&mut out).await.unwrap();
        let h = Header::parse(&out[..n]).unwrap();
        assert!(h.rsv1 && h.fin && (h.len as usize) < text.len());
        let mut inflater = Decompress::new(false);
        let mut input = out[h.size..h.size + h.len as usize].to_vec();
        input.extend_from_slice(&TAIL);
        let mut plain = Vec::with_capacity(4096);
        inflater
            .decompress_vec(&input, &mut plain, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(plain, text);
        let rest = &out[h.size + h.len as usize..n];
        assert_eq!(
            rest,
            [
                frame(true, false, 1, None, b"[3,\"1\",{}]"),
                frame(true, false, 10, None, b"pong")
            ]
            .concat()
        );
    }

    #[tokio::test]
    async fn a_frame_right_behind_the_handshake_waits_for_the_decision() {
        let (mut peer, io) = tokio::io::duplex(1 << 16);
        let mut io = DeflateIo::new(io);
        let packed = compress(&b"x".repeat(300));
        let mut wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        wire.extend(frame(true, true, 1, None, &packed));
        peer.write_all(&wire).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut buf = [0u8; 7];
            let n = io.read(&mut buf).await.unwrap();
            head.extend_from_slice(&buf[..n]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"));
        let mut buf = [0u8; 1024];
        assert!(
            io.read(&mut buf).await.is_err(),
            "no frame before set_agreed"
        );
        io.set_agreed(
            Some(agreed()),
            Limits {
                max_message_size: 1000,
            },
        );
        let mut got = Vec::new();
        loop {
            let n = io.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            if got.ends_with(&[0x80, 0]) {
                break;
            }
        }
        let h = Header::parse(&got).unwrap();
        assert_eq!((h.opcode, h.fin, h.len), (1, false, 300));
    }
}
