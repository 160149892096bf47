//! Typed decoding of arbitrary payloads for every action of every version: never panics; a
//! payload that decodes re-encodes to JSON that decodes to an equal value (round trip).
//!
//! Input layout: byte 0 picks the version, byte 1 the action, byte 2 request or response,
//! the rest is the payload text.
#![no_main]

use libfuzzer_sys::fuzz_target;

macro_rules! check_version {
    ($module:ident, $action_byte:expr, $kind_byte:expr, $payload:expr) => {{
        use ocpp_types::$module::{Action, AnyRequest, AnyResponse};
        let action = Action::ALL[usize::from($action_byte) % Action::ALL.len()];
        if $kind_byte % 2 == 0 {
            if let Ok(request) = AnyRequest::from_json(action, $payload) {
                let json = request.to_json();
                let again = AnyRequest::from_json(action, &json).expect("our encoding decodes");
                assert_eq!(again, request, "round trip of {json}");
            }
        } else if let Ok(response) = AnyResponse::from_json(action, $payload) {
            let json = response.to_json();
            let again = AnyResponse::from_json(action, &json).expect("our encoding decodes");
            assert_eq!(again, response, "round trip of {json}");
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let [version, action, kind, rest @ ..] = data else {
        return;
    };
    let Ok(payload) = std::str::from_utf8(rest) else {
        return;
    };
    match version % 3 {
        0 => check_version!(v16, *action, *kind, payload),
        1 => check_version!(v201, *action, *kind, payload),
        _ => check_version!(v21, *action, *kind, payload),
    }
});
