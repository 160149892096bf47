//! Every row of the README's error table: input -> exact reply, per version.

use ocpp_codec::error::{ErrorCode, FrameError, Reply, ReplyKind};
use ocpp_codec::frame::{Decoder, Frame};
use ocpp_codec::rpc::{Endpoint, EndpointConfig, Event};
use ocpp_codec::Version;

const V: [Version; 3] = [Version::V16, Version::V201, Version::V21];

/// (row name, input, [1.6 reply, 2.0.1 reply, 2.1 reply]); `None` = no reply.
/// `OK` = decodes as a frame (no reply from the frame layer).
struct Row {
    name: &'static str,
    input: String,
    replies: [Option<&'static str>; 3],
}

const OK: Option<&str> = Some("OK");

fn rows() -> Vec<Row> {
    let r = |name, input: &str, replies| Row {
        name,
        input: input.to_owned(),
        replies,
    };
    vec![
        r(
            "not JSON",
            "not json",
            [
                Some(
                    r#"[4,"-1","FormationViolation","message is not valid JSON: expected ident at line 1 column 2",{}]"#,
                ),
                Some(
                    r#"[4,"-1","RpcFrameworkError","message is not valid JSON: expected ident at line 1 column 2",{}]"#,
                ),
                Some(
                    r#"[4,"-1","RpcFrameworkError","message is not valid JSON: expected ident at line 1 column 2",{}]"#,
                ),
            ],
        ),
        r(
            "not JSON, CALL id readable from the prefix",
            r#"[2,"abc","Heartbeat",{]"#,
            [
                Some(
                    r#"[4,"abc","FormationViolation","message is not valid JSON: key must be a string at line 1 column 23",{}]"#,
                ),
                Some(
                    r#"[4,"abc","RpcFrameworkError","message is not valid JSON: key must be a string at line 1 column 23",{}]"#,
                ),
                Some(
                    r#"[4,"abc","RpcFrameworkError","message is not valid JSON: key must be a string at line 1 column 23",{}]"#,
                ),
            ],
        ),
        r(
            "trailing characters after the array",
            r#"[2,"a","Heartbeat",{}] x"#,
            [
                Some(
                    r#"[4,"a","FormationViolation","message is not valid JSON: trailing characters at line 1 column 24",{}]"#,
                ),
                Some(
                    r#"[4,"a","RpcFrameworkError","message is not valid JSON: trailing characters at line 1 column 24",{}]"#,
                ),
                Some(
                    r#"[4,"a","RpcFrameworkError","message is not valid JSON: trailing characters at line 1 column 24",{}]"#,
                ),
            ],
        ),
        r(
            "not an array (object)",
            r#"{"a":1}"#,
            [
                Some(r#"[4,"-1","FormationViolation","message is not a JSON array",{}]"#),
                Some(r#"[4,"-1","RpcFrameworkError","message is not a JSON array",{}]"#),
                Some(r#"[4,"-1","RpcFrameworkError","message is not a JSON array",{}]"#),
            ],
        ),
        r(
            "not an array (string)",
            r#""x""#,
            [
                Some(r#"[4,"-1","FormationViolation","message is not a JSON array",{}]"#),
                Some(r#"[4,"-1","RpcFrameworkError","message is not a JSON array",{}]"#),
                Some(r#"[4,"-1","RpcFrameworkError","message is not a JSON array",{}]"#),
            ],
        ),
        r(
            "empty array",
            "[]",
            [
                Some(r#"[4,"-1","FormationViolation","message is an empty array",{}]"#),
                Some(r#"[4,"-1","RpcFrameworkError","message is an empty array",{}]"#),
                Some(r#"[4,"-1","RpcFrameworkError","message is an empty array",{}]"#),
            ],
        ),
        r(
            "message type not a number",
            r#"["2","abc","Heartbeat",{}]"#,
            [
                Some(r#"[4,"abc","FormationViolation","the message type is not a number",{}]"#),
                Some(r#"[4,"abc","RpcFrameworkError","the message type is not a number",{}]"#),
                Some(r#"[4,"abc","RpcFrameworkError","the message type is not a number",{}]"#),
            ],
        ),
        r(
            "unknown message type number",
            r#"[7,"abc","X",{}]"#,
            [
                None,
                Some(r#"[4,"abc","MessageTypeNotSupported","message type 7 is not supported",{}]"#),
                None,
            ],
        ),
        r(
            "message type not an integer",
            r#"[2.0,"abc","Heartbeat",{}]"#,
            [
                None,
                Some(
                    r#"[4,"abc","MessageTypeNotSupported","message type 2.0 is not supported",{}]"#,
                ),
                None,
            ],
        ),
        r(
            "CALLRESULTERROR before 2.1",
            r#"[5,"abc","GenericError","",{}]"#,
            [
                None,
                Some(r#"[4,"abc","MessageTypeNotSupported","message type 5 is not supported",{}]"#),
                OK,
            ],
        ),
        r(
            "SEND before 2.1",
            r#"[6,"abc","NotifyPeriodicEventStream",{}]"#,
            [
                None,
                Some(r#"[4,"abc","MessageTypeNotSupported","message type 6 is not supported",{}]"#),
                OK,
            ],
        ),
        r(
            "CALL id not a string",
            r#"[2,5,"Heartbeat",{}]"#,
            [
                Some(
                    r#"[4,"-1","FormationViolation","invalid message id in CALL: the message id is not a string",{}]"#,
                ),
                Some(
                    r#"[4,"-1","RpcFrameworkError","invalid message id in CALL: the message id is not a string",{}]"#,
                ),
                Some(
                    r#"[4,"-1","RpcFrameworkError","invalid message id in CALL: the message id is not a string",{}]"#,
                ),
            ],
        ),
        r(
            "CALL id missing",
            "[2]",
            [
                Some(
                    r#"[4,"-1","FormationViolation","invalid message id in CALL: the message id is missing",{}]"#,
                ),
                Some(
                    r#"[4,"-1","RpcFrameworkError","invalid message id in CALL: the message id is missing",{}]"#,
                ),
                Some(
                    r#"[4,"-1","RpcFrameworkError","invalid message id in CALL: the message id is missing",{}]"#,
                ),
            ],
        ),
        Row {
            name: "CALL id longer than 36 characters",
            input: format!(r#"[2,"{}","Heartbeat",{{}}]"#, "a".repeat(37)),
            replies: [
                Some(
                    r#"[4,"-1","FormationViolation","invalid message id in CALL: the message id has 37 characters (at most 36 allowed)",{}]"#,
                ),
                Some(
                    r#"[4,"-1","RpcFrameworkError","invalid message id in CALL: the message id has 37 characters (at most 36 allowed)",{}]"#,
                ),
                Some(
                    r#"[4,"-1","RpcFrameworkError","invalid message id in CALL: the message id has 37 characters (at most 36 allowed)",{}]"#,
                ),
            ],
        },
        Row {
            name: "CALL id of exactly 36 characters",
            input: format!(r#"[2,"{}","Heartbeat",{{}}]"#, "é".repeat(36)),
            replies: [OK, OK, OK],
        },
        r(
            "CALL with too few elements",
            r#"[2,"abc","Heartbeat"]"#,
            [
                Some(r#"[4,"abc","FormationViolation","CALL must have 4 elements, found 3",{}]"#),
                Some(r#"[4,"abc","RpcFrameworkError","CALL must have 4 elements, found 3",{}]"#),
                Some(r#"[4,"abc","RpcFrameworkError","CALL must have 4 elements, found 3",{}]"#),
            ],
        ),
        r(
            "CALL with too many elements",
            r#"[2,"abc","Heartbeat",{},1]"#,
            [
                Some(r#"[4,"abc","FormationViolation","CALL must have 4 elements, found 5",{}]"#),
                Some(r#"[4,"abc","RpcFrameworkError","CALL must have 4 elements, found 5",{}]"#),
                Some(r#"[4,"abc","RpcFrameworkError","CALL must have 4 elements, found 5",{}]"#),
            ],
        ),
        r(
            "CALL action not a string",
            r#"[2,"abc",5,{}]"#,
            [
                Some(r#"[4,"abc","FormationViolation","CALL field action is not a string",{}]"#),
                Some(r#"[4,"abc","RpcFrameworkError","CALL field action is not a string",{}]"#),
                Some(r#"[4,"abc","RpcFrameworkError","CALL field action is not a string",{}]"#),
            ],
        ),
        Row {
            name: "message larger than the maximum size (128 bytes here)",
            input: format!(
                r#"[2,"abc","DataTransfer",{{"vendorId":"{}"}}]"#,
                "x".repeat(200)
            ),
            replies: [
                Some(
                    r#"[4,"abc","FormationViolation","message of 240 bytes exceeds the maximum of 128 bytes",{}]"#,
                ),
                Some(
                    r#"[4,"abc","FormatViolation","message of 240 bytes exceeds the maximum of 128 bytes",{}]"#,
                ),
                Some(
                    r#"[4,"abc","FormatViolation","message of 240 bytes exceeds the maximum of 128 bytes",{}]"#,
                ),
            ],
        },
        r(
            "malformed CALLRESULT",
            r#"[3,"abc"]"#,
            [
                None,
                None,
                Some(
                    r#"[5,"abc","FormatViolation","CALLRESULT must have 3 elements, found 2",{}]"#,
                ),
            ],
        ),
        r(
            "CALLRESULT id not a string",
            r#"[3,5,{}]"#,
            [None, None, None],
        ),
        r(
            "malformed CALLERROR (wrong arity)",
            r#"[4,"abc","GenericError","x"]"#,
            [None, None, None],
        ),
        r(
            "malformed CALLERROR (code not a string)",
            r#"[4,"abc",5,"x",{}]"#,
            [None, None, None],
        ),
        r(
            "malformed CALLRESULTERROR (2.1)",
            r#"[5,"abc",5,"",{}]"#,
            [
                None,
                Some(r#"[4,"abc","MessageTypeNotSupported","message type 5 is not supported",{}]"#),
                None,
            ],
        ),
        r(
            "malformed SEND (2.1)",
            r#"[6,"abc",5,{}]"#,
            [
                None,
                Some(r#"[4,"abc","MessageTypeNotSupported","message type 6 is not supported",{}]"#),
                None,
            ],
        ),
    ]
}

#[test]
fn every_row_gives_its_reply_per_version() {
    for row in rows() {
        for (i, version) in V.into_iter().enumerate() {
            let decoder = Decoder::new(version).with_max_message_size(128);
            let got = match decoder.decode(&row.input) {
                Ok(_) => Some("OK".to_owned()),
                Err(e) => e.reply(version).map(|r| r.encode()),
            };
            assert_eq!(
                got.as_deref(),
                row.replies[i],
                "row {:?} on {version}",
                row.name
            );
        }
    }
}

#[test]
fn every_row_goes_through_the_endpoint_too() {
    for row in rows() {
        for (i, version) in V.into_iter().enumerate() {
            let mut ep = Endpoint::new(EndpointConfig::new(version).max_message_size(128));
            ep.handle_text(std::time::Instant::now(), &row.input);
            let sent = ep.poll_transmit();
            match row.replies[i] {
                Some("OK") => assert_eq!(sent, None, "row {:?} on {version}", row.name),
                expected => {
                    assert_eq!(sent.as_deref(), expected, "row {:?} on {version}", row.name);
                    match ep.poll_event() {
                        Some(Event::ProtocolError { reply, .. }) => {
                            assert_eq!(reply.map(|r| r.encode()).as_deref(), expected)
                        }
                        other => panic!("row {:?}: {other:?}", row.name),
                    }
                }
            }
            assert_eq!(ep.poll_transmit(), None);
        }
    }
}

#[test]
fn unknown_message_types_can_be_ignored_per_the_errata() {
    for version in V {
        let mut ep = Endpoint::new(EndpointConfig::new(version).ignore_unknown_message_types(true));
        ep.handle_text(std::time::Instant::now(), r#"[7,"abc","X",{}]"#);
        assert_eq!(ep.poll_transmit(), None);
        assert!(matches!(
            ep.poll_event(),
            Some(Event::ProtocolError {
                error: FrameError::UnknownMessageType { .. },
                reply: None
            })
        ));
    }
}

#[test]
fn error_codes_are_spelled_per_version() {
    use ErrorCode::*;
    let table: [(ErrorCode, &str, &str); 12] = [
        (FormatViolation, "FormationViolation", "FormatViolation"),
        (
            OccurrenceConstraintViolation,
            "OccurenceConstraintViolation",
            "OccurrenceConstraintViolation",
        ),
        (
            MessageTypeNotSupported,
            "NotSupported",
            "MessageTypeNotSupported",
        ),
        (RpcFrameworkError, "FormationViolation", "RpcFrameworkError"),
        (NotImplemented, "NotImplemented", "NotImplemented"),
        (NotSupported, "NotSupported", "NotSupported"),
        (InternalError, "InternalError", "InternalError"),
        (ProtocolError, "ProtocolError", "ProtocolError"),
        (SecurityError, "SecurityError", "SecurityError"),
        (
            PropertyConstraintViolation,
            "PropertyConstraintViolation",
            "PropertyConstraintViolation",
        ),
        (
            TypeConstraintViolation,
            "TypeConstraintViolation",
            "TypeConstraintViolation",
        ),
        (GenericError, "GenericError", "GenericError"),
    ];
    for (code, v16, v2x) in table {
        assert_eq!(code.as_str(Version::V16), v16);
        assert_eq!(code.as_str(Version::V201), v2x);
        assert_eq!(code.as_str(Version::V21), v2x);
        // Both spellings read back as the same code.
        assert_eq!(ErrorCode::from_wire(v2x), code);
        assert!(ErrorCode::KNOWN.contains(&code));
    }
    assert_eq!(ErrorCode::from_wire("FormationViolation"), FormatViolation);
    assert_eq!(
        ErrorCode::from_wire("OccurenceConstraintViolation"),
        OccurrenceConstraintViolation
    );
    assert!(!RpcFrameworkError.is_defined_in(Version::V16));
    assert!(RpcFrameworkError.is_defined_in(Version::V201));
    // Unknown codes round-trip unchanged.
    let other = ErrorCode::from_wire("VendorSpecificError");
    assert_eq!(other, Other("VendorSpecificError".into()));
    assert_eq!(other.as_str(Version::V16), "VendorSpecificError");
    let frame = Decoder::new(Version::V201)
        .decode(r#"[4,"1","VendorSpecificError","d",{}]"#)
        .unwrap();
    assert_eq!(
        frame.encode(Version::V201),
        r#"[4,"1","VendorSpecificError","d",{}]"#
    );
}

#[test]
fn payload_violations_use_the_version_spelling_with_the_pointer() {
    let cases = [
        (
            Version::V16,
            r#"{"chargePointVendor":"ACME"}"#,
            "OccurenceConstraintViolation",
            "",
        ),
        (
            Version::V201,
            r#"{"reason":"PowerUp"}"#,
            "OccurrenceConstraintViolation",
            "",
        ),
        (
            Version::V16,
            r#"{"chargePointVendor":"ACME","chargePointModel":"X","extra":1}"#,
            "FormationViolation",
            "",
        ),
        (
            Version::V201,
            r#"{"reason":"Nope","chargingStation":{"model":"m","vendorName":"v"}}"#,
            "PropertyConstraintViolation",
            "/reason",
        ),
        (
            Version::V21,
            r#"{"reason":5,"chargingStation":{"model":"m","vendorName":"v"}}"#,
            "TypeConstraintViolation",
            "/reason",
        ),
    ];
    for (version, payload, code, pointer) in cases {
        let value: serde_json::Value = serde_json::from_str(payload).unwrap();
        let violations = ocpp_schemas::validate(
            version,
            "BootNotification",
            ocpp_schemas::MessageKind::Request,
            &value,
        )
        .unwrap()
        .unwrap_err();
        let reply = Reply::for_violations("m1", &violations, version).unwrap();
        assert_eq!(reply.kind, ReplyKind::CallError);
        let text = reply.encode();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[0], 4);
        assert_eq!(parsed[1], "m1");
        assert_eq!(parsed[2], code, "{version} {payload}");
        assert!(!parsed[3].as_str().unwrap().is_empty());
        assert_eq!(
            parsed[4],
            serde_json::json!({ "pointer": pointer }),
            "{version} {payload}"
        );
    }
    assert!(Reply::for_violations("m1", &[], Version::V16).is_none());
}

#[test]
fn descriptions_are_cut_to_255_characters() {
    let mut ep = Endpoint::new(EndpointConfig::new(Version::V201));
    ep.handle_text(std::time::Instant::now(), r#"[2,"a","Heartbeat",{}]"#);
    let long = "ü".repeat(300);
    ep.respond_error("a", &ErrorCode::InternalError, &long, None)
        .unwrap();
    let sent = ep.poll_transmit().unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(parsed[3].as_str().unwrap().chars().count(), 255);
}

#[test]
fn valid_frames_round_trip() {
    let inputs = [
        (
            Version::V16,
            r#"[2,"1","BootNotification",{"chargePointVendor":"A","chargePointModel":"B"}]"#,
        ),
        (
            Version::V16,
            r#"[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]"#,
        ),
        (
            Version::V16,
            r#"[4,"1","FormationViolation","bad \"quote\"\n",{"a":[1,2]}]"#,
        ),
        (Version::V201, r#"[4,"1","FormatViolation","x",{}]"#),
        (Version::V21, r#"[5,"1","InternalError","x",{}]"#),
        (
            Version::V21,
            r#"[6,"1","NotifyPeriodicEventStream",{"id":1}]"#,
        ),
    ];
    for (version, text) in inputs {
        let frame = Decoder::new(version).decode(text).unwrap();
        assert_eq!(frame.encode(version), text);
    }
    // Whitespace between elements is accepted; escaped ids are decoded.
    let frame = Decoder::new(Version::V201)
        .decode(" [ 2 , \"a\\u0062c\" , \"Heartbeat\" , { } ] ")
        .unwrap();
    assert!(
        matches!(&frame, Frame::Call { id, action, .. } if id == "abc" && action == "Heartbeat")
    );
    assert_eq!(frame.encode(Version::V201), r#"[2,"abc","Heartbeat",{ }]"#);
}

#[test]
fn binary_messages_are_read_as_text_and_non_utf8_is_answered_as_malformed() {
    use ocpp_codec::frame::binary_message_text;
    let now = std::time::Instant::now();
    for version in V {
        let rpc = ErrorCode::RpcFrameworkError.as_str(version).to_owned();
        let mut ep = Endpoint::new(EndpointConfig::new(version));
        // A CALL in a binary frame is a CALL.
        ep.handle_text(now, &binary_message_text(br#"[2,"b","Heartbeat",{}]"#));
        assert!(matches!(ep.poll_event(), Some(Event::Call { id, .. }) if id == "b"));
        assert_eq!(ep.poll_transmit(), None);
        // Bytes that are not UTF-8 never parse: the id is kept when the prefix shows one.
        ep.handle_text(
            now,
            &binary_message_text(b"[2,\"c\",\"Heartbeat\",{\"x\":\"\xff\"}]"),
        );
        let reply = ep.poll_transmit().expect("a CALLERROR");
        assert!(reply.starts_with(&format!(r#"[4,"c","{rpc}","#)), "{reply}");
        ep.handle_text(now, &binary_message_text(&[0x00, 0xff, 0xfe, 0x80]));
        let reply = ep.poll_transmit().expect("a CALLERROR");
        assert!(
            reply.starts_with(&format!(r#"[4,"-1","{rpc}","#)),
            "{reply}"
        );
        // A complete message followed by a stray byte is not accepted either.
        ep.handle_text(now, &binary_message_text(b"[2,\"d\",\"Heartbeat\",{}]\x80"));
        let reply = ep.poll_transmit().expect("a CALLERROR");
        assert!(reply.starts_with(&format!(r#"[4,"d","{rpc}","#)), "{reply}");
    }
}
