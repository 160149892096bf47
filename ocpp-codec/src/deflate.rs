//! WebSocket compression, RFC 7692 `permessage-deflate` (feature `deflate`), for the server
//! of `ocpp-central` and the client of `ocpp-charger`.
//!
//! tungstenite refuses frames with the RSV1 bit, so the extension lives below it:
//! [`DeflateIo`] wraps the byte stream under the WebSocket. It passes the opening handshake
//! through (stopping at the end of the HTTP head, so no frame is read before the extension is
//! decided), then, once told what was agreed ([`DeflateIo::set_agreed`]):
//!
//! - **reading**: a compressed message's frames are unmasked and inflated in pieces of at
//!   most [`PIECE`] bytes and handed to tungstenite as an uncompressed fragmented message
//!   (masked with a zero key when the peer masked), so tungstenite's own checks (UTF-8, control
//!   frames, the message limit) apply unchanged. The inflated size of a message is capped by
//!   [`Limits::max_message_size`]: past it the read fails with [`InflateError::TooBig`]
//!   (close 1009) without inflating further, so a small frame that would inflate to gigabytes
//!   costs at most the limit. Corrupt compressed data fails with [`InflateError::Corrupt`]
//!   (close 1007). Uncompressed messages and control frames go through unchanged.
//! - **writing**: an unfragmented data message of at least [`Compression::min_size`] bytes is
//!   compressed (RSV1 set, the `00 00 ff ff` tail removed, RFC 7692 §7.2.1); smaller ones,
//!   fragmented ones and control frames go through unchanged.
//!
//! Without an agreement the wrapper is a plain pass-through. Negotiation is pure text:
//! [`server_accept`] (the server's answer to the offers), [`client_offer`] and
//! [`client_accept`] (the client's offer and its check of the answer).
//!
//! ```
//! use ocpp_codec::deflate::{server_accept, Compression};
//!
//! // Python `websockets` offers this by default.
//! let offer = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12";
//! let (agreed, answer) = server_accept([offer], &Compression::default()).unwrap();
//! assert_eq!(
//!     answer,
//!     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12"
//! );
//! assert_eq!(agreed.send_window_bits, 12);
//! assert!(agreed.send_reset && agreed.receive_reset);
//! // An offer we cannot honour is declined: the connection goes on uncompressed.
//! assert!(server_accept(["permessage-deflate; server_max_window_bits=8"], &Compression::default()).is_none());
//! ```

mod io;

pub use io::{DeflateIo, Limits, PIECE};

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const EXTENSION: &str = "permessage-deflate";

/// How a side uses `permessage-deflate`; the same settings serve the server and the client.
///
/// The default: enabled, no context takeover either way, 15 window bits, messages below 256
/// bytes sent uncompressed. Without context takeover each message is compressed on its own,
/// so an idle connection holds no compression state at all (with it, a connection keeps a
/// compressor of about 300 KiB and an inflater of about 40 KiB for its whole life: see
/// BENCHMARKS.md); OCPP messages are JSON of a few hundred bytes that compress well on their
/// own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Offer (client) or accept (server) the extension at all.
    pub enabled: bool,
    /// Keep the compression context from one message to the next, both ways. `false` asks for
    /// `server_no_context_takeover` and `client_no_context_takeover` (the server answers them
    /// even when the client did not offer them, which RFC 7692 §7.1.1 allows).
    pub context_takeover: bool,
    /// The largest LZ77 window, 9 to 15 bits (RFC 7692 §7.1.2; 8 is not offered because zlib
    /// cannot compress with it): ours when we compress, and the one asked of the peer when
    /// the peer lets us choose (`client_max_window_bits` without a value, or an offer).
    pub max_window_bits: u8,
    /// Messages shorter than this many bytes are sent uncompressed (compressing a heartbeat
    /// costs more than it saves).
    pub min_size: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            enabled: true,
            context_takeover: false,
            max_window_bits: 15,
            min_size: 256,
        }
    }
}

impl Compression {
    /// The extension switched off: never offered, never accepted.
    pub fn off() -> Compression {
        Compression {
            enabled: false,
            ..Compression::default()
        }
    }

    /// The window bits actually used: [`Compression::max_window_bits`] within 9..=15.
    fn window_bits(&self) -> u8 {
        self.max_window_bits.clamp(9, 15)
    }
}

/// What both sides agreed, from this side's point of view: how to compress what it sends and
/// how to inflate what it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The LZ77 window (bits) this side compresses with.
    pub send_window_bits: u8,
    /// Start every sent message with a fresh compressor (no context takeover for our side).
    pub send_reset: bool,
    /// The peer starts every message with a fresh compressor, so our inflater need not keep
    /// its window between messages.
    pub receive_reset: bool,
    /// Messages shorter than this are sent uncompressed.
    pub min_size: usize,
}

/// Why a server's answer to the client's offer cannot be accepted (RFC 7692 §5 / §7.1: the
/// client must then fail the connection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The server answered an extension that was not offered, or answered twice.
    #[error("the server answered an extension that was not offered: {0}")]
    NotOffered(String),
    /// A parameter is unknown, repeated, or has a value it may not have.
    #[error("invalid permessage-deflate parameter in the server's answer: {0}")]
    BadParameter(String),
}

/// One extension of a `Sec-WebSocket-Extensions` list: its name and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Extension {
    name: String,
    params: Vec<(String, Option<String>)>,
}

/// Splits header values into extensions (`name; p; p=v, name2`), values unquoted.
/// `None` when the syntax is broken.
fn parse_extensions<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Vec<Extension>> {
    let mut out = Vec::new();
    for value in values {
        for item in split_outside_quotes(value, ',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let mut parts = split_outside_quotes(item, ';').into_iter();
            let name = parts.next()?.trim();
            if !is_token(name) {
                return None;
            }
            let mut params = Vec::new();
            for part in parts {
                let part = part.trim();
                let (key, value) = match part.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(unquote(v.trim())?)),
                    None => (part, None),
                };
                if !is_token(key) {
                    return None;
                }
                params.push((key.to_ascii_lowercase(), value));
            }
            out.push(Extension {
                name: name.to_ascii_lowercase(),
                params,
            });
            if out.len() > 16 {
                // More offers than any client makes: not worth reading.
                return None;
            }
        }
    }
    Some(out)
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn unquote(v: &str) -> Option<String> {
    let inner = match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => v,
    };
    is_token(inner).then(|| inner.to_owned())
}

/// A window-bits value: 8 to 15, digits only (RFC 7692 §7.1.2.1: no leading zeros).
fn window_value(v: &str) -> Option<u8> {
    if v.starts_with('0') || v.len() > 2 {
        return None;
    }
    v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

/// The parameters of one `permessage-deflate` offer or answer, checked for repeats and
/// values.
#[derive(Debug, Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed in an offer only).
    client_max_window_bits: Option<Option<u8>>,
}

fn read_params(params: &[(String, Option<String>)]) -> Result<Params, String> {
    let mut p = Params::default();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in params {
        if seen.contains(&key.as_str()) {
            return Err(format!("{key} repeated"));
        }
        seen.push(key);
        match (key.as_str(), value.as_deref()) {
            ("server_no_context_takeover", None) => p.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => p.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => {
                p.server_max_window_bits =
                    Some(window_value(v).ok_or_else(|| format!("{key}={v}"))?)
            }
            ("client_max_window_bits", None) => p.client_max_window_bits = Some(None),
            ("client_max_window_bits", Some(v)) => {
                p.client_max_window_bits =
                    Some(Some(window_value(v).ok_or_else(|| format!("{key}={v}"))?))
            }
            (key, _) => return Err(key.to_owned()),
        }
    }
    Ok(p)
}

/// The server's choice among the client's `Sec-WebSocket-Extensions` values: the first
/// `permessage-deflate` offer it can honour, as what it agreed and the answer header's value;
/// `None` (no extension, the connection goes on uncompressed, RFC 7692 §5) when compression
/// is off, nothing was offered, the header is malformed, or no offer can be honoured (an
/// unknown parameter, a repeated one, a bad value, or `server_max_window_bits=8`, which zlib
/// cannot produce).
pub fn server_accept<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    config: &Compression,
) -> Option<(Agreed, String)> {
    if !config.enabled {
        return None;
    }
    let ours = config.window_bits();
    for offer in parse_extensions(offers)? {
        if offer.name != EXTENSION {
            continue;
        }
        let Ok(p) = read_params(&offer.params) else {
            continue;
        };
        let send_window_bits = match p.server_max_window_bits {
            Some(bits) if bits < 9 => continue,
            Some(bits) => bits.min(ours),
            None => ours,
        };
        let send_reset = p.server_no_context_takeover || !config.context_takeover;
        let receive_reset = p.client_no_context_takeover || !config.context_takeover;
        let mut answer = EXTENSION.to_owned();
        if send_reset {
            answer.push_str("; server_no_context_takeover");
        }
        if receive_reset {
            answer.push_str("; client_no_context_takeover");
        }
        if p.server_max_window_bits.is_some() {
            answer.push_str(&format!("; server_max_window_bits={send_window_bits}"));
        }
        // The client's window: ours to limit only when it offered the parameter.
        if let Some(offered) = p.client_max_window_bits {
            let bits = offered.unwrap_or(15).min(ours);
            if offered.is_some() || bits < 15 {
                answer.push_str(&format!("; client_max_window_bits={bits}"));
            }
        }
        return Some((
            Agreed {
                send_window_bits,
                send_reset,
                receive_reset,
                min_size: config.min_size,
            },
            answer,
        ));
    }
    None
}

/// The client's `Sec-WebSocket-Extensions` offer, `None` when compression is off. It always
/// offers `client_max_window_bits` (so the server may limit our window), asks for no context
/// takeover both ways when [`Compression::context_takeover`] is off, and for a smaller server
/// window when [`Compression::max_window_bits`] is below 15.
pub fn client_offer(config: &Compression) -> Option<String> {
    if !config.enabled {
        return None;
    }
    let bits = config.window_bits();
    let mut offer = EXTENSION.to_owned();
    if !config.context_takeover {
        offer.push_str("; server_no_context_takeover; client_no_context_takeover");
    }
    if bits < 15 {
        offer.push_str(&format!(
            "; server_max_window_bits={bits}; client_max_window_bits={bits}"
        ));
    } else {
        offer.push_str("; client_max_window_bits");
    }
    Some(offer)
}

/// The client's check of the server's `Sec-WebSocket-Extensions` answer to
/// [`client_offer`]: `Ok(None)` when the server did not take the extension (the connection
/// goes on uncompressed), `Ok(Some(_))` with what was agreed, `Err` when the answer is not a
/// valid acceptance of our offer (the client must fail the connection).
pub fn client_accept<'a>(
    answers: impl IntoIterator<Item = &'a str>,
    config: &Compression,
) -> Result<Option<Agreed>, NegotiationError> {
    let answers: Vec<&str> = answers.into_iter().collect();
    let joined = answers.join(", ");
    let Some(extensions) = parse_extensions(answers) else {
        return Err(NegotiationError::BadParameter(joined));
    };
    let mut agreed = None;
    for ext in extensions {
        if ext.name != EXTENSION || !config.enabled || agreed.is_some() {
            return Err(NegotiationError::NotOffered(joined));
        }
        let p = read_params(&ext.params).map_err(NegotiationError::BadParameter)?;
        let ours = config.window_bits();
        let send_window_bits = match p.client_max_window_bits {
            None => ours,
            Some(None) => {
                return Err(NegotiationError::BadParameter(
                    "client_max_window_bits without a value".to_owned(),
                ))
            }
            // zlib cannot compress with an 8-bit window.
            Some(Some(bits)) if bits < 9 => {
                return Err(NegotiationError::BadParameter(format!(
                    "client_max_window_bits={bits}"
                )))
            }
            Some(Some(bits)) => bits.min(ours),
        };
        if let Some(bits) = p.server_max_window_bits {
            if ours < 15 && bits > ours {
                return Err(NegotiationError::BadParameter(format!(
                    "server_max_window_bits={bits}, above the {ours} offered"
                )));
            }
        }
        agreed = Some(Agreed {
            send_window_bits,
            send_reset: p.client_no_context_takeover || !config.context_takeover,
            receive_reset: p.server_no_context_takeover,
            min_size: config.min_size,
        });
    }
    Ok(agreed)
}

/// Why inflating a message failed; the error inside the [`std::io::Error`] a
/// [`DeflateIo`] read returns, which `transport::ReadFailure` maps to a close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The message inflates (or its compressed data runs) beyond the limit: 1009.
    #[error("compressed message beyond the size limit")]
    TooBig,
    /// The compressed data is not valid deflate data: 1007.
    #[error("invalid compressed data")]
    Corrupt,
}

impl InflateError {
    /// The `InflateError` inside an I/O error, if that is what it carries.
    pub fn from_io(error: &std::io::Error) -> Option<InflateError> {
        error
            .get_ref()
            .and_then(|e| e.downcast_ref::<InflateError>())
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(send_window_bits: u8, send_reset: bool, receive_reset: bool) -> Agreed {
        Agreed {
            send_window_bits,
            send_reset,
            receive_reset,
            min_size: 256,
        }
    }

    #[test]
    fn server_answers_only_what_it_agreed() {
        let takeover = Compression {
            context_takeover: true,
            ..Compression::default()
        };
        // A bare offer: nothing to answer but the name.
        assert_eq!(
            server_accept(["permessage-deflate"], &takeover),
            Some((agreed(15, false, false), "permessage-deflate".to_owned()))
        );
        // The client's own requests are honoured and echoed.
        assert_eq!(
            server_accept(
                ["permessage-deflate; client_no_context_takeover; server_no_context_takeover"],
                &takeover
            ),
            Some((
                agreed(15, true, true),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
                    .to_owned()
            ))
        );
        // client_max_window_bits without a value: the server may pick; 15 needs no answer.
        assert_eq!(
            server_accept(["permessage-deflate; client_max_window_bits"], &takeover).map(|a| a.1),
            Some("permessage-deflate".to_owned())
        );
        let small = Compression {
            max_window_bits: 10,
            ..takeover
        };
        assert_eq!(
            server_accept(["permessage-deflate; client_max_window_bits"], &small),
            Some((
                agreed(10, false, false),
                "permessage-deflate; client_max_window_bits=10".to_owned()
            ))
        );
        // A quoted value (RFC 7692 §7.1.2.1 allows the quoted-string form).
        assert_eq!(
            server_accept(
                ["permessage-deflate; server_max_window_bits=\"11\""],
                &takeover
            ),
            Some((
                agreed(11, false, false),
                "permessage-deflate; server_max_window_bits=11".to_owned()
            ))
        );
    }

    #[test]
    fn server_takes_the_first_offer_it_can_honour() {
        let config = Compression::default();
        let (a, answer) = server_accept(
            [
                "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; unknown_param, permessage-deflate; server_max_window_bits=9",
            ],
            &config,
        )
        .unwrap();
        assert_eq!(a.send_window_bits, 9);
        assert!(answer.ends_with("server_max_window_bits=9"));
    }

    #[test]
    fn server_declines_what_it_cannot_honour() {
        let config = Compression::default();
        for offer in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; mystery",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; \"broken",
            "x-other",
            "",
        ] {
            assert_eq!(server_accept([offer], &config), None, "{offer}");
        }
        assert_eq!(
            server_accept(["permessage-deflate"], &Compression::off()),
            None
        );
    }

    #[test]
    fn client_offer_and_answers() {
        let config = Compression::default();
        assert_eq!(
            client_offer(&config).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits")
        );
        assert_eq!(client_offer(&Compression::off()), None);
        let small = Compression {
            max_window_bits: 10,
            context_takeover: true,
            ..config
        };
        assert_eq!(
            client_offer(&small).as_deref(),
            Some("permessage-deflate; server_max_window_bits=10; client_max_window_bits=10")
        );
        // Our own server's answer to our own offer round-trips.
        let (server_side, answer) =
            server_accept([client_offer(&config).unwrap().as_str()], &config).unwrap();
        let client_side = client_accept([answer.as_str()], &config).unwrap().unwrap();
        assert!(server_side.send_reset && server_side.receive_reset);
        assert!(client_side.send_reset && client_side.receive_reset);
        // No answer: uncompressed.
        assert_eq!(client_accept([], &config), Ok(None));
        // The server limits our window.
        assert_eq!(
            client_accept(["permessage-deflate; client_max_window_bits=12"], &config)
                .unwrap()
                .unwrap()
                .send_window_bits,
            12
        );
    }

    #[test]
    fn client_refuses_answers_it_did_not_ask_for() {
        let config = Compression::default();
        let small = Compression {
            max_window_bits: 10,
            ..config
        };
        assert!(client_accept(["x-other"], &config).is_err());
        assert!(client_accept(["permessage-deflate"], &Compression::off()).is_err());
        assert!(client_accept(["permessage-deflate, permessage-deflate"], &config).is_err());
        assert!(client_accept(["permessage-deflate; client_max_window_bits"], &config).is_err());
        assert!(client_accept(["permessage-deflate; client_max_window_bits=8"], &config).is_err());
        assert!(client_accept(["permessage-deflate; nope"], &config).is_err());
        assert!(client_accept(["permessage-deflate; server_max_window_bits=12"], &small).is_err());
        assert!(client_accept(["permessage-deflate; server_max_window_bits=9"], &small).is_ok());
    }
}
