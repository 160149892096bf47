//! `bare-ws`: the floor of the load benchmark (benches/load/bench.py). A WebSocket server
//! that accepts the OCPP-J subprotocols and answers every CALL `[2,"<id>","<action>",...]`
//! with a fixed minimal CALLRESULT, doing no OCPP work: no schema validation, no typed
//! decoding, no session, no storage. What a central system costs above it is its own work.
//!
//! Answers (enough for `charger-sim --load`, every mode): BootNotification
//! `{"currentTime":...,"interval":300,"status":"Accepted"}`, Heartbeat `{"currentTime":...}`,
//! 1.6 StartTransaction `{"idTagInfo":{"status":"Accepted"},"transactionId":N}` (N counts up
//! per server), 1.6 Authorize `{"idTagInfo":{"status":"Accepted"}}`, 2.x Authorize
//! `{"idTokenInfo":{"status":"Accepted"}}`, anything else `{}` (what MeterValues,
//! StatusNotification, StopTransaction and TransactionEvent need). Frames that are not a
//! CALL are ignored.
//!
//! The stack is the one ocpp-central's server uses: tokio (multi-threaded unless `--threads
//! 1`), tokio-tungstenite with a 4 KiB read buffer, one task per connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use clap::Parser;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket server that answers OCPP-J CALLs with minimal fixed answers and does no OCPP
/// work: the floor of the load benchmark.
#[derive(Debug, Parser)]
#[command(name = "bare-ws")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,

    /// Worker threads of the runtime (0: one per CPU; 1: a single-threaded runtime).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

const SUBPROTOCOLS: [&str; 3] = ["ocpp1.6", "ocpp2.0.1", "ocpp2.1"];

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if args.threads > 1 {
            b.worker_threads(args.threads);
        }
        b.enable_all().build()
    };
    let result = runtime.and_then(|rt| rt.block_on(serve(args.listen)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-ws: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("bare-ws listening on {}", listener.local_addr()?);
    let next_tx = Arc::new(AtomicI32::new(1));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, next_tx.clone()));
                }
                // Out of file descriptors and the like: wait, the others go on.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            _ = &mut ctrl_c => return Ok(()),
        }
    }
}

async fn connection(stream: TcpStream, next_tx: Arc<AtomicI32>) {
    let _ = stream.set_nodelay(true);
    let mut v16 = false;
    // The handshake callback's signature is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let offered = req
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let chosen = offered
            .split(',')
            .map(str::trim)
            .find(|p| SUBPROTOCOLS.contains(p));
        match chosen {
            Some(p) => {
                v16 = p == "ocpp1.6";
                resp.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_static(static_of(p)),
                );
                Ok(resp)
            }
            None => {
                let mut refuse = ErrorResponse::new(Some("no OCPP subprotocol".into()));
                *refuse.status_mut() = StatusCode::BAD_REQUEST;
                Err(refuse)
            }
        }
    };
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else {
            continue;
        };
        let Some((id, action)) = call_of(text.as_str()) else {
            continue;
        };
        let answer = format!("[3,\"{id}\",{}]", payload(action, v16, &next_tx));
        if ws.send(Message::text(answer)).await.is_err() {
            break;
        }
    }
}

fn static_of(p: &str) -> &'static str {
    SUBPROTOCOLS
        .into_iter()
        .find(|s| *s == p)
        .unwrap_or("ocpp1.6")
}

/// The minimal answer to `action`.
fn payload(action: &str, v16: bool, next_tx: &AtomicI32) -> String {
    match action {
        "Heartbeat" => format!("{{\"currentTime\":\"{}\"}}", now()),
        "BootNotification" => format!(
            "{{\"currentTime\":\"{}\",\"interval\":300,\"status\":\"Accepted\"}}",
            now()
        ),
        "StartTransaction" => format!(
            "{{\"idTagInfo\":{{\"status\":\"Accepted\"}},\"transactionId\":{}}}",
            next_tx.fetch_add(1, Ordering::Relaxed)
        ),
        "Authorize" if v16 => r#"{"idTagInfo":{"status":"Accepted"}}"#.into(),
        "Authorize" => r#"{"idTokenInfo":{"status":"Accepted"}}"#.into(),
        _ => "{}".into(),
    }
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The message id (as written, without quotes) and action of a CALL `[2,"id","action",...]`,
/// found by scanning, not parsing: ids and action names have no escapes in practice, and one
/// that has is answered as written.
fn call_of(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim_start().strip_prefix('[')?.trim_start();
    let rest = rest.strip_prefix('2')?.trim_start().strip_prefix(',')?;
    let (id, rest) = string_at(rest)?;
    let rest = rest.trim_start().strip_prefix(',')?;
    let (action, _) = string_at(rest)?;
    Some((id, action))
}

/// The JSON string at the start of `s` (after whitespace), raw, and what follows it.
fn string_at(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start().strip_prefix('"')?;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_found() {
        assert_eq!(
            call_of(r#"[2,"19","Heartbeat",{}]"#),
            Some(("19", "Heartbeat"))
        );
        assert_eq!(
            call_of(r#" [ 2 , "a\"b" , "MeterValues" , {"x":1}]"#),
            Some((r#"a\"b"#, "MeterValues"))
        );
        assert_eq!(call_of(r#"[3,"19",{}]"#), None);
        assert_eq!(call_of(r#"[2,"19"#), None);
    }

    #[test]
    fn answers() {
        let n = AtomicI32::new(7);
        assert_eq!(
            payload("StartTransaction", true, &n),
            r#"{"idTagInfo":{"status":"Accepted"},"transactionId":7}"#
        );
        assert_eq!(payload("TransactionEvent", false, &n), "{}");
        assert!(payload("Heartbeat", true, &n).starts_with(r#"{"currentTime":"20"#));
    }
}
