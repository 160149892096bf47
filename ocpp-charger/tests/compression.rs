//! The charger client's WebSocket compression (RFC 7692 `permessage-deflate`) on the wire,
//! against a central system written out byte by byte (`ocpp-central/tests/support/raw_ws.rs`):
//! the offer, compressed messages both ways (fragmented too), the threshold, a server that
//! declines, a bomb from the server (1009) and a bad answer in the handshake.

#[path = "../../ocpp-central/tests/support/raw_ws.rs"]
mod raw_ws;

use std::time::Duration;

use ocpp_charger::ws::{self, ClientConfig, ClientEvent, Compression};
use ocpp_charger::{MemoryStore, Saved, SimulatedHardware, Station, StationConfig, Version};
use raw_ws::{header, read_head, Deflate, RawWs};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

fn station() -> Station {
    Station::new(
        StationConfig::new("CP", Version::V201),
        Box::new(SimulatedHardware::new(1, 7400.into())),
        Saved::default(),
        std::time::Instant::now(),
    )
}

/// Accepts the station's connection, answering `extensions` (if any); returns the socket
/// and the request head.
async fn accept(listener: &TcpListener, extensions: Option<&str>) -> (RawWs, String) {
    let (mut stream, _) = listener.accept().await.unwrap();
    let (head, rest) = read_head(&mut stream).await;
    let key = header(&head, "Sec-WebSocket-Key").unwrap();
    let mut resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: ocpp2.0.1\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(ext) = extensions {
        resp.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    resp.push_str("\r\n");
    stream.write_all(resp.as_bytes()).await.unwrap();
    (RawWs::new(stream, false, rest), head)
}

async fn next(ws: &mut RawWs, deflate: &mut Deflate) -> (serde_json::Value, bool) {
    let f = tokio::time::timeout(Duration::from_secs(10), ws.read_data())
        .await
        .expect("a message in time")
        .expect("open");
    assert_eq!(f.opcode, 1, "{f:?}");
    let text = if f.rsv1 {
        deflate.inflate(&f.payload)
    } else {
        f.payload
    };
    (serde_json::from_slice(&text).unwrap(), f.rsv1)
}

fn config(listener: &TcpListener, compression: Compression) -> ClientConfig {
    ClientConfig::new(format!("ws://{}/ocpp", listener.local_addr().unwrap()))
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .compression(compression)
}

const BOOT_ANSWER: &str =
    r#"{"currentTime":"2025-01-01T00:00:00Z","interval":300,"status":"Accepted"}"#;

#[tokio::test]
async fn the_client_offers_compresses_and_inflates() {
    for takeover in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let compression = Compression {
            context_takeover: takeover,
            min_size: 0,
            ..Compression::default()
        };
        let client = ws::spawn(
            station(),
            Box::new(MemoryStore::new()),
            config(&listener, compression),
        );
        let answer = if takeover {
            "permessage-deflate"
        } else {
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        };
        let (mut ws, head) = accept(&listener, Some(answer)).await;
        let offer = if takeover {
            "permessage-deflate; client_max_window_bits"
        } else {
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
        };
        assert_eq!(header(&head, "Sec-WebSocket-Extensions"), Some(offer));
        let mut deflate = Deflate::new(takeover, takeover);
        // Everything is compressed (threshold 0): the boot...
        let (boot, compressed) = next(&mut ws, &mut deflate).await;
        assert!(compressed);
        assert_eq!(boot[2], "BootNotification");
        let packed = deflate.compress(format!(r#"[3,{},{BOOT_ANSWER}]"#, boot[1]).as_bytes());
        ws.send_frame(true, true, 1, &packed).await;
        // ... and a compressed CALL from us in three fragments is read and answered.
        for round in 0..2 {
            let call = format!(
                r#"[2,"dt{round}","DataTransfer",{{"vendorId":"V","data":"{}"}}]"#,
                "abc".repeat(200)
            );
            let packed = deflate.compress(call.as_bytes());
            let third = packed.len() / 3;
            ws.send_frame(false, true, 1, &packed[..third]).await;
            ws.send_frame(false, false, 0, &packed[third..2 * third])
                .await;
            ws.send_frame(true, false, 0, &packed[2 * third..]).await;
            loop {
                let (msg, compressed) = next(&mut ws, &mut deflate).await;
                assert!(compressed);
                if msg[0] == 3 {
                    assert_eq!(msg[1], format!("dt{round}"));
                    break;
                }
                // One of the station's own calls (StatusNotification): answer it.
                let packed = deflate.compress(format!(r#"[3,{},{{}}]"#, msg[1]).as_bytes());
                ws.send_frame(true, true, 1, &packed).await;
            }
        }
        client.shutdown().await;
    }
}

#[tokio::test]
async fn below_the_threshold_or_declined_nothing_is_compressed() {
    // The default threshold (256 bytes) leaves the boot uncompressed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = ws::spawn(
        station(),
        Box::new(MemoryStore::new()),
        config(&listener, Compression::default()),
    );
    let (mut ws, _) = accept(&listener, Some("permessage-deflate")).await;
    let mut deflate = Deflate::new(false, false);
    let (boot, compressed) = next(&mut ws, &mut deflate).await;
    assert_eq!(
        (boot[2].as_str(), compressed),
        (Some("BootNotification"), false)
    );
    client.shutdown().await;

    // A server that does not answer the offer: plain frames, and RSV1 from it is refused.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = ws::spawn(
        station(),
        Box::new(MemoryStore::new()),
        config(
            &listener,
            Compression {
                min_size: 0,
                ..Compression::default()
            },
        ),
    );
    let (mut ws, _) = accept(&listener, None).await;
    let (boot, compressed) = next(&mut ws, &mut deflate).await;
    assert_eq!(
        (boot[2].as_str(), compressed),
        (Some("BootNotification"), false)
    );
    ws.send_frame(true, true, 1, &deflate.compress(b"[3,\"x\",{}]"))
        .await;
    let close = ws.read_data().await.unwrap();
    assert_eq!(close.close_code(), Some(1002));
    client.shutdown().await;

    // Compression off: no offer at all.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = ws::spawn(
        station(),
        Box::new(MemoryStore::new()),
        config(&listener, Compression::off()),
    );
    let (_ws, head) = accept(&listener, None).await;
    assert_eq!(header(&head, "Sec-WebSocket-Extensions"), None);
    client.shutdown().await;
}

#[tokio::test]
async fn a_bomb_from_the_server_closes_1009_and_a_bad_answer_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = config(&listener, Compression::default());
    config.max_message_size = 1024;
    let mut client = ws::spawn(station(), Box::new(MemoryStore::new()), config);
    let (mut ws, _) = accept(&listener, Some("permessage-deflate")).await;
    let mut deflate = Deflate::new(false, false);
    let _boot = next(&mut ws, &mut deflate).await;
    let bomb = format!(
        r#"[2,"b","DataTransfer",{{"vendorId":"{}"}}]"#,
        " ".repeat(8 << 20)
    );
    ws.send_frame(true, true, 1, &deflate.compress(bomb.as_bytes()))
        .await;
    let close = tokio::time::timeout(Duration::from_secs(10), ws.read_data())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(close.close_code(), Some(1009));

    // It reconnects; this time the server answers an extension parameter nobody offered:
    // the client fails the connection (RFC 7692 §5) and reports why.
    let (_ws, _) = accept(&listener, Some("permessage-deflate; mystery=1")).await;
    let reason = loop {
        match tokio::time::timeout(Duration::from_secs(10), client.events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            ClientEvent::ConnectFailed(e) => break e.to_string(),
            _ => continue,
        }
    };
    assert!(reason.contains("mystery"), "{reason}");
    client.shutdown().await;
}
