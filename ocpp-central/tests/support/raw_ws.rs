//! A WebSocket peer written out byte by byte for the compression tests (RFC 6455 framing,
//! RFC 7692 `permessage-deflate` with flate2), so that every frame on the wire can be made
//! and checked exactly: RSV1, fragments, masks, bombs. Shared by `ocpp-central` and
//! `ocpp-charger` tests (`#[path]`).

#![allow(dead_code)]

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A raw WebSocket over TCP.
pub struct RawWs {
    pub stream: TcpStream,
    /// Whether we mask (a client) or not (a server).
    pub client: bool,
    /// Read but not yet parsed.
    buf: Vec<u8>,
}

impl RawWs {
    pub fn new(stream: TcpStream, client: bool, rest: Vec<u8>) -> RawWs {
        RawWs {
            stream,
            client,
            buf: rest,
        }
    }

    /// Opens a client connection: the upgrade request with `extensions` (if any) and
    /// `subprotocol`; returns the socket and the response head.
    pub async fn connect(
        addr: std::net::SocketAddr,
        path: &str,
        subprotocol: &str,
        extensions: Option<&str>,
    ) -> (RawWs, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {subprotocol}\r\n"
        );
        if let Some(ext) = extensions {
            req.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let (head, rest) = read_head(&mut stream).await;
        (RawWs::new(stream, true, rest), head)
    }

    /// Sends one frame (masked with a fixed key when a client).
    pub async fn send_frame(&mut self, fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) {
        let mut out = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
        let m = if self.client { 0x80 } else { 0 };
        let len = payload.len();
        if len < 126 {
            out.push(m | len as u8);
        } else if len <= 0xffff {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(m | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mut data = payload.to_vec();
        if self.client {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&key);
            for (i, b) in data.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        out.extend_from_slice(&data);
        self.stream.write_all(&out).await.unwrap();
    }

    /// Reads one frame; `None` at the end of the stream.
    pub async fn read_frame(&mut self) -> Option<RawFrame> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads frames up to the next data frame or close (answering nothing).
    pub async fn read_data(&mut self) -> Option<RawFrame> {
        loop {
            let f = self.read_frame().await?;
            if f.opcode != 9 && f.opcode != 10 {
                return Some(f);
            }
        }
    }
}

/// Reads an HTTP head; returns it and the bytes read past it.
pub async fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf[i + 4..].to_vec();
            buf.truncate(i + 4);
            return (String::from_utf8(buf).unwrap(), rest);
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A header's value in an HTTP head (case-insensitive name).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn parse(b: &[u8]) -> Option<(RawFrame, usize)> {
    if b.len() < 2 {
        return None;
    }
    let (len, mut at) = match b[1] & 0x7f {
        126 => (
            u16::from_be_bytes(b.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask: Option<[u8; 4]> = if b[1] & 0x80 != 0 {
        let m = b.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let mut payload = b.get(at..at + len)?.to_vec();
    if let Some(m) = mask {
        for (i, x) in payload.iter_mut().enumerate() {
            *x ^= m[i % 4];
        }
    }
    Some((
        RawFrame {
            fin: b[0] & 0x80 != 0,
            rsv1: b[0] & 0x40 != 0,
            opcode: b[0] & 0x0f,
            payload,
        },
        at + len,
    ))
}

/// One side's deflate state: a compressor and an inflater, each kept between messages
/// (context takeover) or not.
pub struct Deflate {
    compress: Compress,
    decompress: Decompress,
    pub keep_compressor: bool,
    pub keep_inflater: bool,
}

impl Deflate {
    pub fn new(keep_compressor: bool, keep_inflater: bool) -> Deflate {
        Deflate {
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
            keep_compressor,
            keep_inflater,
        }
    }

    /// A message compressed as RFC 7692 §7.2.1 says (sync flush, tail removed).
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        if !self.keep_compressor {
            self.compress.reset();
        }
        let mut out = Vec::with_capacity(data.len() + 1024);
        self.compress
            .compress_vec(data, &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }

    /// A compressed message's payload inflated.
    pub fn inflate(&mut self, data: &[u8]) -> Vec<u8> {
        if !self.keep_inflater {
            self.decompress.reset(false);
        }
        let mut input = data.to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = Vec::with_capacity(64 * 1024);
        let mut used = 0;
        loop {
            let before = self.decompress.total_in();
            self.decompress
                .decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
                .expect("valid deflate data");
            used += (self.decompress.total_in() - before) as usize;
            if used == input.len() {
                return out;
            }
            out.reserve(64 * 1024);
        }
    }
}
