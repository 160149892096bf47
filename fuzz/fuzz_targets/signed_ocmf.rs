//! Signed meter values: `ocpp_central::signed::verify` and `parse_ocmf` on arbitrary data and
//! keys never panic, and agree: data that parses is never `Unsupported` for want of OCMF, and
//! data that does not parse is never `Verified`.
//!
//! Input layout: byte 0 picks the encoding (none, `OCMF`, `EDL`), byte 1 the key's share of
//! the rest (the key comes last), the rest is data then key (lossy UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocpp_central::signed::{parse_ocmf, verify, VerificationStatus};

fuzz_target!(|data: &[u8]| {
    let [encoding, split, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let cut = text.len() * usize::from(*split) / 256;
    let cut = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    let (signed, key) = text.split_at(cut);
    let encoding = match encoding % 3 {
        0 => None,
        1 => Some("OCMF"),
        _ => Some("EDL"),
    };
    let key = (!key.is_empty()).then_some(key);
    let v = verify(signed, encoding, None, key);
    let parsed = parse_ocmf(signed);
    if parsed.is_err() {
        assert_ne!(v.status, VerificationStatus::Verified, "{signed:?}");
    }
    if encoding == Some("EDL") {
        assert_eq!(v.status, VerificationStatus::Unsupported);
    }
});
