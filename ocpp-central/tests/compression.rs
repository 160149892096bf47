//! WebSocket compression (RFC 7692 `permessage-deflate`) on the server, over real sockets on
//! 127.0.0.1, with a peer that writes every frame by hand (`support/raw_ws.rs`): negotiation,
//! compressed messages both ways with and without context takeover, fragmented compressed
//! messages, small messages uncompressed, clients without the extension on the same server,
//! and the bounds (decompression bombs close with 1009, corrupt data with 1007, other
//! connections carry on).

#[path = "support/raw_ws.rs"]
mod raw_ws;

use std::sync::Arc;
use std::time::Duration;

use ocpp_central::server::RunningServer;
use ocpp_central::testing::MockCharger;
use ocpp_central::{
    Auth, Compression, HandleV16, HandleV201, HandleV21, Handler, Server, ServerConfig,
};
use ocpp_types::{v16, Version};
use raw_ws::{header, Deflate, RawWs};
use tokio::net::TcpListener;

struct App;
impl Handler for App {}
impl HandleV16 for App {}
impl HandleV201 for App {}
impl HandleV21 for App {}

async fn start(config: ServerConfig) -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::new(config, Arc::new(App)).start(listener).unwrap()
}

fn call(id: &str, action: &str, payload: &str) -> String {
    format!(r#"[2,"{id}","{action}",{payload}]"#)
}

const BOOT: &str = r#"{"chargePointVendor":"VendorX","chargePointModel":"ModelY"}"#;

/// Reads the next data message, inflating it when RSV1 is set; also returns whether it was
/// compressed.
async fn next_message(ws: &mut RawWs, deflate: &mut Deflate) -> (serde_json::Value, bool) {
    let f = ws.read_data().await.expect("a message");
    assert!(f.fin, "the server sends whole messages");
    assert_eq!(f.opcode, 1, "a text message, not {f:?}");
    let text = if f.rsv1 {
        deflate.inflate(&f.payload)
    } else {
        f.payload
    };
    (serde_json::from_slice(&text).unwrap(), f.rsv1)
}

/// Sends one compressed text message as a single frame.
async fn send_compressed(ws: &mut RawWs, deflate: &mut Deflate, text: &str) -> usize {
    let packed = deflate.compress(text.as_bytes());
    ws.send_frame(true, true, 1, &packed).await;
    packed.len()
}

#[tokio::test]
async fn compressed_both_ways_with_and_without_context_takeover() {
    for takeover in [false, true] {
        let server = start(
            ServerConfig::new(Auth::AllowAnyone).compression(Compression {
                context_takeover: takeover,
                min_size: 0,
                ..Compression::default()
            }),
        )
        .await;
        let (mut ws, head) = RawWs::connect(
            server.local_addr(),
            "/ocpp/CP1",
            "ocpp1.6",
            Some("permessage-deflate; client_max_window_bits"),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let expected = if takeover {
            "permessage-deflate"
        } else {
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        };
        assert_eq!(header(&head, "Sec-WebSocket-Extensions"), Some(expected));
        let mut deflate = Deflate::new(takeover, takeover);

        send_compressed(&mut ws, &mut deflate, &call("1", "BootNotification", BOOT)).await;
        let (boot, compressed) = next_message(&mut ws, &mut deflate).await;
        assert!(compressed);
        assert_eq!(boot[1], "1");
        assert_eq!(boot[2]["status"], "Accepted");

        // The same message twice: with context takeover the second refers back to the first
        // (far shorter), which only an inflater that kept its window can read; the answers,
        // inflated with our window kept or not as agreed, prove the server's side.
        let hb = call("2", "Heartbeat", "{}");
        let first = send_compressed(&mut ws, &mut deflate, &hb).await;
        let (answer, compressed) = next_message(&mut ws, &mut deflate).await;
        assert!(compressed && answer[2]["currentTime"].is_string());
        let second = send_compressed(&mut ws, &mut deflate, &hb).await;
        let (answer, compressed) = next_message(&mut ws, &mut deflate).await;
        assert!(compressed && answer[1] == "2" && answer[2]["currentTime"].is_string());
        if takeover {
            assert!(second < first, "{second} < {first}");
        } else {
            assert_eq!(second, first);
        }

        // A compressed message in three fragments, a ping between them (RFC 6455 §5.4).
        let data = format!(r#"{{"vendorId":"V","data":"{}"}}"#, "meter ".repeat(300));
        let packed = deflate.compress(call("3", "DataTransfer", &data).as_bytes());
        let third = packed.len() / 3;
        ws.send_frame(false, true, 1, &packed[..third]).await;
        ws.send_frame(true, false, 9, b"ping").await;
        ws.send_frame(false, false, 0, &packed[third..2 * third])
            .await;
        ws.send_frame(true, false, 0, &packed[2 * third..]).await;
        let pong = ws.read_frame().await.unwrap();
        assert_eq!((pong.opcode, pong.payload.as_slice()), (10, &b"ping"[..]));
        let (answer, _) = next_message(&mut ws, &mut deflate).await;
        assert_eq!(answer[1], "3");
        assert_eq!(answer[0], 3, "{answer}");

        // An uncompressed message on a compressed connection is read as it is.
        ws.send_frame(true, false, 1, call("4", "Heartbeat", "{}").as_bytes())
            .await;
        let (answer, _) = next_message(&mut ws, &mut deflate).await;
        assert_eq!(answer[1], "4");
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn small_messages_go_uncompressed_and_clients_without_the_extension_are_served() {
    let server = start(ServerConfig::new(Auth::AllowAnyone).versions([Version::V16])).await;
    let (mut ws, head) = RawWs::connect(
        server.local_addr(),
        "/ocpp/CP1",
        "ocpp1.6",
        Some("permessage-deflate"),
    )
    .await;
    assert_eq!(
        header(&head, "Sec-WebSocket-Extensions"),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let mut deflate = Deflate::new(false, false);
    send_compressed(&mut ws, &mut deflate, &call("1", "BootNotification", BOOT)).await;
    // The answer is below the 256-byte threshold: uncompressed.
    let (boot, compressed) = next_message(&mut ws, &mut deflate).await;
    assert_eq!(boot[2]["status"], "Accepted");
    assert!(!compressed);

    // A client that offers nothing, on the same server: no extension, plain frames.
    let mut plain = MockCharger::connect(server.local_addr(), "CP2", Version::V16)
        .await
        .unwrap();
    let hb = plain.call("Heartbeat", "{}").await.unwrap();
    assert!(hb[2]["currentTime"].is_string());
    let (mut raw_plain, head) =
        RawWs::connect(server.local_addr(), "/ocpp/CP3", "ocpp1.6", None).await;
    assert_eq!(header(&head, "Sec-WebSocket-Extensions"), None);
    let chargers = server.chargers();
    assert!(chargers.get("CP1").unwrap().compressed());
    assert!(!chargers.get("CP2").unwrap().compressed());
    assert!(!chargers.get("CP3").unwrap().compressed());

    // A large call from the central system: compressed to the compressing charger, plain to
    // the others.
    for (identity, compressing) in [("CP1", true), ("CP3", false)] {
        let handle = server.chargers().get(identity).unwrap();
        let mut request = v16::DataTransferRequest::new("Vendor".parse().unwrap());
        request.data = Some("0123456789".repeat(100));
        let pending = tokio::spawn(async move { handle.call(request).await });
        let ws = if compressing { &mut ws } else { &mut raw_plain };
        let (call, compressed) = next_message(ws, &mut deflate).await;
        assert_eq!(compressed, compressing);
        assert_eq!(call[2], "DataTransfer");
        assert_eq!(call[3]["data"].as_str().unwrap().len(), 1000);
        let id = call[1].as_str().unwrap();
        ws.send_frame(
            true,
            false,
            1,
            format!(r#"[3,"{id}",{{"status":"Accepted"}}]"#).as_bytes(),
        )
        .await;
        let answer = pending.await.unwrap().unwrap();
        assert_eq!(answer.status, v16::DataTransferStatus::Accepted);
    }

    // Compression off: the offer is declined and the connection goes on uncompressed.
    let off = start(ServerConfig::new(Auth::AllowAnyone).compression(Compression::off())).await;
    let (mut ws, head) = RawWs::connect(
        off.local_addr(),
        "/ocpp/CP1",
        "ocpp1.6",
        Some("permessage-deflate"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"));
    assert_eq!(header(&head, "Sec-WebSocket-Extensions"), None);
    let big = format!(r#"{{"vendorId":"V","data":"{}"}}"#, "x".repeat(600));
    ws.send_frame(true, false, 1, call("1", "DataTransfer", &big).as_bytes())
        .await;
    let (answer, compressed) = next_message(&mut ws, &mut deflate).await;
    assert!(!compressed && answer[1] == "1");
    // RSV1 without the extension is a protocol error (1002), as before.
    ws.send_frame(
        true,
        true,
        1,
        &deflate.compress(b"[2,\"2\",\"Heartbeat\",{}]"),
    )
    .await;
    let close = ws.read_data().await.unwrap();
    assert_eq!(close.close_code(), Some(1002));
    off.shutdown().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_decompression_bomb_is_closed_with_1009_and_other_connections_carry_on() {
    // Messages of 1 KiB; the WebSocket layer reads up to 4 KiB (OVERSIZE_FACTOR).
    let server = start(ServerConfig::new(Auth::AllowAnyone).max_message_size(1024)).await;
    let mut bystander = MockCharger::connect(server.local_addr(), "OK", Version::V16)
        .await
        .unwrap();

    // 16 MiB of zeros compress to about 16 KiB; one frame, then one spread over fragments.
    let mut deflate = Deflate::new(false, false);
    let bomb = format!(
        r#"[2,"1","DataTransfer",{{"vendorId":"{}"}}]"#,
        "\0".repeat(16 << 20)
    );
    let packed = deflate.compress(bomb.as_bytes());
    assert!(packed.len() < 32 << 10, "{}", packed.len());
    for fragments in [1, 4] {
        let (mut ws, head) = RawWs::connect(
            server.local_addr(),
            "/ocpp/BOMB",
            "ocpp1.6",
            Some("permessage-deflate"),
        )
        .await;
        assert!(header(&head, "Sec-WebSocket-Extensions").is_some());
        // A legitimate message within the read limit but above the OCPP limit is still
        // answered with a CALLERROR (the connection goes on), as without compression.
        let over = format!(r#"{{"vendorId":"V","data":"{}"}}"#, "y".repeat(2000));
        send_compressed(&mut ws, &mut deflate, &call("0", "DataTransfer", &over)).await;
        let (answer, _) = next_message(&mut ws, &mut deflate).await;
        assert_eq!(
            (answer[0].as_u64(), answer[2].as_str()),
            (Some(4), Some("FormationViolation"))
        );

        let step = packed.len().div_ceil(fragments);
        let pieces: Vec<&[u8]> = packed.chunks(step).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let (first, last) = (i == 0, i + 1 == pieces.len());
            ws.send_frame(last, first, if first { 1 } else { 0 }, piece)
                .await;
        }
        let close = tokio::time::timeout(Duration::from_secs(10), ws.read_data())
            .await
            .expect("closed promptly")
            .expect("a close frame");
        assert_eq!(close.close_code(), Some(1009), "{close:?}");
        // The bystander is served all along.
        let hb = bystander.call("Heartbeat", "{}").await.unwrap();
        assert!(hb[2]["currentTime"].is_string());
    }

    // Corrupt compressed data: 1007.
    let (mut ws, _) = RawWs::connect(
        server.local_addr(),
        "/ocpp/BAD",
        "ocpp1.6",
        Some("permessage-deflate"),
    )
    .await;
    ws.send_frame(true, true, 1, &[0xff, 0xff, 0xff, 0xff, 0x00])
        .await;
    let close = ws.read_data().await.unwrap();
    assert_eq!(close.close_code(), Some(1007), "{close:?}");
    let hb = bystander.call("Heartbeat", "{}").await.unwrap();
    assert!(hb[2]["currentTime"].is_string());
    server.shutdown().await.unwrap();
}
