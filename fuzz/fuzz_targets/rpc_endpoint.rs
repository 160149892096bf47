//! The RPC endpoint driven by arbitrary input and time: peer messages, our calls, answers,
//! timeouts. Never panics, never grows without bound, and its bookkeeping stays consistent.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ocpp_codec::rpc::{CounterIds, Endpoint, EndpointConfig, Event};
use ocpp_codec::{ErrorCode, Version};
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let version = Version::ALL[usize::from(selector) % 3];
    let mut ep = Endpoint::new(
        EndpointConfig::new(version)
            .call_timeout(Duration::from_secs(30))
            .id_generator(CounterIds::new("f")),
    );
    let start = Instant::now();
    let mut now = start;
    let mut peer_calls: Vec<String> = Vec::new();
    while let Some((&op, tail)) = rest.split_first() {
        let len = usize::from(tail.first().copied().unwrap_or(0)).min(tail.len().saturating_sub(1));
        let chunk = tail.get(1..1 + len).unwrap_or(&[]);
        rest = tail.get(1 + len..).unwrap_or(&[]);
        match op % 6 {
            0 => {
                if let Ok(text) = std::str::from_utf8(chunk) {
                    ep.handle_text(now, text);
                }
            }
            1 => {
                now += Duration::from_millis(u64::from(op) * 997);
                ep.handle_timeout(now);
            }
            2 => {
                let payload = RawValue::from_string("{}".to_owned()).expect("valid JSON");
                let _ = ep.call(now, "Heartbeat", payload);
            }
            3 => {
                if let Some(id) = peer_calls.pop() {
                    let payload = RawValue::from_string("{}".to_owned()).expect("valid JSON");
                    let _ = ep.respond(&id, &payload);
                }
            }
            4 => {
                if let Some(id) = peer_calls.pop() {
                    let _ = ep.respond_error(&id, &ErrorCode::NotImplemented, "fuzz", None);
                }
            }
            _ => {
                if let Some(deadline) = ep.poll_timeout() {
                    assert!(ep.in_flight().is_some(), "a deadline exists only for a call in flight");
                    now = now.max(deadline);
                    ep.handle_timeout(now);
                }
            }
        }
        while let Some(event) = ep.poll_event() {
            if let Event::Call { id, .. } = event {
                peer_calls.push(id);
            }
        }
        while ep.poll_transmit().is_some() {}
        assert_eq!(ep.poll_timeout().is_some(), ep.in_flight().is_some());
        assert!(peer_calls.len() < 10_000);
    }
});
