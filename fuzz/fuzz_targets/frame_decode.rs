//! Any text, decoded as an OCPP-J frame of each version: never panics; a frame that decodes
//! re-encodes to text that decodes to the same frame; every error has a well-formed reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocpp_codec::frame::Decoder;
use ocpp_codec::Version;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for version in Version::ALL {
        let decoder = Decoder::new(version).with_max_message_size(64 * 1024);
        match decoder.decode(text) {
            Ok(frame) => {
                let encoded = frame.encode(version);
                let again = decoder.decode(&encoded).expect("our own encoding decodes");
                assert_eq!(again.message_type(), frame.message_type());
                assert_eq!(again.id(), frame.id());
                assert_eq!(again.encode(version), encoded, "encoding is stable");
            }
            Err(error) => {
                if let Some(reply) = error.reply(version) {
                    let text = reply.encode();
                    let frame = decoder.decode(&text).expect("our replies are valid frames");
                    assert!(frame.id().chars().count() <= 36);
                }
            }
        }
    }
});
