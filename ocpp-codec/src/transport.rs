//! The transport rules both sides share, in one place (no I/O): the charger identity in the
//! URL and what it may contain, the subprotocol choice, HTTP Basic auth (security profile 1)
//! and the longest password each version allows, how far past the message size limit a
//! WebSocket layer reads, and the close code for each kind of read failure.
//!
//! ```
//! use ocpp_codec::transport::{basic_auth_header, check_identity, choose_subprotocol, identity_from_path, parse_basic_auth};
//! use ocpp_codec::Version;
//!
//! assert_eq!(identity_from_path("/ocpp/CP%2001").as_deref(), Some("CP 01"));
//! assert!(check_identity("CP 01").is_err()); // a space is not an identifierString character
//! assert!(check_identity("CP-01").is_ok());
//! let header = basic_auth_header("CP1", "s3cret");
//! assert_eq!(parse_basic_auth(&header), Some(("CP1".to_owned(), b"s3cret".to_vec())));
//! let offered = ["ocpp1.6", "ocpp2.0.1"];
//! assert_eq!(choose_subprotocol(offered, &[Version::V21, Version::V201, Version::V16]), Some(Version::V201));
//! ```

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;

use crate::Version;

/// How many times the configured maximum message size a WebSocket layer reads before it gives
/// up on a message: a message between the limit and this many times it is read, so the codec
/// can answer it with a CALLERROR naming its id (and the connection goes on); a larger one is
/// not read at all and the connection is closed with 1009 ([`ReadFailure::TooBig`]).
pub const OVERSIZE_FACTOR: usize = 4;

/// The size a WebSocket layer reads up to, for a maximum message size of `max_message_size`.
pub fn read_limit(max_message_size: usize) -> usize {
    max_message_size.saturating_mul(OVERSIZE_FACTOR)
}

/// Why reading from the peer failed, for the close frame to send it (RFC 6455 §7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadFailure {
    /// A message beyond [`read_limit`]: 1009 (Message Too Big).
    TooBig,
    /// A text message that is not UTF-8: 1007 (Invalid frame payload data).
    NotUtf8,
    /// A WebSocket protocol violation: 1002 (Protocol error).
    Protocol,
    /// A compressed message (RFC 7692) whose data does not inflate: 1007 (Invalid frame
    /// payload data).
    BadCompression,
}

impl ReadFailure {
    /// The WebSocket close code.
    pub const fn close_code(self) -> u16 {
        match self {
            ReadFailure::TooBig => 1009,
            ReadFailure::NotUtf8 => 1007,
            ReadFailure::Protocol => 1002,
            ReadFailure::BadCompression => 1007,
        }
    }

    /// The close frame's reason.
    pub const fn reason(self) -> &'static str {
        match self {
            ReadFailure::TooBig => "message too big",
            ReadFailure::NotUtf8 => "text message is not UTF-8",
            ReadFailure::Protocol => "WebSocket protocol error",
            ReadFailure::BadCompression => "invalid compressed data",
        }
    }
}

#[cfg(feature = "tungstenite")]
impl ReadFailure {
    /// The failure a tungstenite read error stands for; `None` for errors that end the
    /// connection without a close frame of ours (I/O errors, a close already under way).
    /// With feature `deflate`, the I/O errors of `deflate::DeflateIo` count too: a compressed
    /// message beyond the limit is [`ReadFailure::TooBig`], one that does not inflate
    /// [`ReadFailure::BadCompression`].
    pub fn from_tungstenite(error: &tungstenite::Error) -> Option<ReadFailure> {
        match error {
            tungstenite::Error::Capacity(_) => Some(ReadFailure::TooBig),
            tungstenite::Error::Utf8(_) => Some(ReadFailure::NotUtf8),
            tungstenite::Error::Protocol(_) => Some(ReadFailure::Protocol),
            #[cfg(feature = "deflate")]
            tungstenite::Error::Io(e) => match crate::deflate::InflateError::from_io(e)? {
                crate::deflate::InflateError::TooBig => Some(ReadFailure::TooBig),
                crate::deflate::InflateError::Corrupt => Some(ReadFailure::BadCompression),
            },
            _ => None,
        }
    }

    /// The close frame to send the peer.
    pub fn close_frame(self) -> tungstenite::protocol::CloseFrame {
        tungstenite::protocol::CloseFrame {
            code: self.close_code().into(),
            reason: self.reason().into(),
        }
    }
}

/// The charger identity from a request path: the last non-empty segment, percent-decoded
/// (`None` when there is none, or it does not decode to UTF-8).
pub fn identity_from_path(path: &str) -> Option<String> {
    let seg = path
        .split('?')
        .next()?
        .rsplit('/')
        .find(|s| !s.is_empty())?;
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let id = String::from_utf8(out).ok()?;
    (!id.is_empty()).then_some(id)
}

/// The longest charger identity, in characters. OCPP 2.0.1 and 2.1 (part 2, security
/// section "Charging Station identity" and part 4, OCPP-J "connection URL") give the identity
/// the `identifierString` rules with at most 48 characters; the 1.6 security whitepaper holds
/// 1.6 charge points to the same (its `chargeBoxIdentity` is the Basic-auth username). One
/// rule for every version: a central system serves all three on one port.
pub const MAX_IDENTITY_LEN: usize = 48;

/// Why a charger identity (after percent-decoding) breaks the specifications' rules
/// ([`check_identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// No identity at all.
    #[error("the charger identity is empty")]
    Empty,
    /// Longer than [`MAX_IDENTITY_LEN`] characters.
    #[error("the charger identity has {0} characters; at most 48 are allowed")]
    TooLong(usize),
    /// A character outside the `identifierString` set (or `:`).
    #[error("the charger identity contains {0:?}; allowed are a-z, A-Z, 0-9 and * - _ = + | @ .")]
    BadCharacter(char),
}

/// Whether `identity` (the last path segment, already percent-decoded by
/// [`identity_from_path`]) is a valid charger identity: 1 to [`MAX_IDENTITY_LEN`]
/// characters of the `identifierString` set (OCPP 2.0.1 part 2, "Primitive datatypes":
/// `a-z`, `A-Z`, `0-9`, `*`, `-`, `_`, `=`, `:`, `+`, `|`, `@`, `.`) without `:`, which
/// cannot appear in an HTTP Basic-auth username (RFC 7617 §2: the user-id ends at the first
/// colon, and the specifications make the identity the username). Characters that are not
/// allowed unencoded in a URL path segment (`|`) arrive percent-encoded and are checked
/// after decoding.
pub fn check_identity(identity: &str) -> Result<(), IdentityError> {
    if identity.is_empty() {
        return Err(IdentityError::Empty);
    }
    let mut n = 0usize;
    for c in identity.chars() {
        n += 1;
        let ok =
            c.is_ascii_alphanumeric() || matches!(c, '*' | '-' | '_' | '=' | '+' | '|' | '@' | '.');
        if !ok {
            return Err(IdentityError::BadCharacter(c));
        }
    }
    if n > MAX_IDENTITY_LEN {
        return Err(IdentityError::TooLong(n));
    }
    Ok(())
}

/// The shortest Basic-auth password a charger accepts from the central system, in bytes
/// (1.6 security whitepaper `AuthorizationKey`: 16 to 20 bytes; 2.0.1 / 2.1
/// `SecurityCtrlr.BasicAuthPassword`: a `passwordString` of 16 to 40 characters).
pub const MIN_PASSWORD_LEN: usize = 16;

/// The longest Basic-auth password of `version`, in bytes: 20 for 1.6 (the whitepaper's
/// `AuthorizationKey`, sent hex-encoded as at most 40 hex digits, is 16 to 20 bytes), 40 for
/// 2.0.1 and 2.1 (`BasicAuthPassword`, a `passwordString` of at most 40 ASCII characters).
/// A central system refuses a longer one at the handshake without checking it.
pub const fn max_password_len(version: Version) -> usize {
    match version {
        Version::V16 => 20,
        _ => 40,
    }
}

/// Whether `password` is a valid 2.0.1 / 2.1 `BasicAuthPassword`: 16 to 40 characters of the
/// `passwordString` set (the `identifierString` characters: `a-z`, `A-Z`, `0-9`, `*`, `-`,
/// `_`, `=`, `:`, `+`, `|`, `@`, `.`).
pub fn is_valid_v2_password(password: &str) -> bool {
    (MIN_PASSWORD_LEN..=40).contains(&password.len())
        && password.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '*' | '-' | '_' | '=' | ':' | '+' | '|' | '@' | '.')
        })
}

/// The password bytes of a 1.6 `AuthorizationKey` value: hex digits (either case), an even
/// number of them, decoding to 16 to 20 bytes; `None` otherwise.
pub fn decode_authorization_key(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim();
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    (MIN_PASSWORD_LEN..=max_password_len(Version::V16))
        .contains(&bytes.len())
        .then_some(bytes)
}

/// The 1.6 `AuthorizationKey` value for `password`: its bytes as upper-case hex digits.
pub fn encode_authorization_key(password: &[u8]) -> String {
    password.iter().map(|b| format!("{b:02X}")).collect()
}

/// The version to speak: the first of `preferred` whose subprotocol (`ocpp1.6`, `ocpp2.0.1`,
/// `ocpp2.1`) the client offered (the values of its `Sec-WebSocket-Protocol` headers, split
/// at commas or not). `None`: refuse the handshake.
pub fn choose_subprotocol<'a>(
    offered: impl IntoIterator<Item = &'a str>,
    preferred: &[Version],
) -> Option<Version> {
    let offered: Vec<&str> = offered
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    preferred
        .iter()
        .copied()
        .find(|v| offered.contains(&v.subprotocol()))
}

/// Whether the server's `Sec-WebSocket-Protocol` answer selects `version` (a client must
/// refuse a handshake that selects another or none).
pub fn selects(selected: Option<&str>, version: Version) -> bool {
    selected.map(str::trim) == Some(version.subprotocol())
}

/// The `Authorization` header value of HTTP Basic auth (RFC 7617):
/// `Basic base64(user ":" password)`.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// [`basic_auth_header`] for a password that is bytes rather than text (a 1.6
/// `AuthorizationKey` decodes to any 16 to 20 bytes).
pub fn basic_auth_header_bytes(user: &str, password: &[u8]) -> String {
    let mut raw = Vec::with_capacity(user.len() + 1 + password.len());
    raw.extend_from_slice(user.as_bytes());
    raw.push(b':');
    raw.extend_from_slice(password);
    format!("Basic {}", STANDARD.encode(raw))
}

/// Whether `a` equals `b`, in time that depends on their lengths only, not on where they
/// differ (password comparison: an early exit tells an attacker how much of a guess is right).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The (username, password) of a `Basic` `Authorization` header value (base64 with or
/// without padding); `None` for another scheme or an undecodable value.
pub fn parse_basic_auth(header: &str) -> Option<(String, Vec<u8>)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let rest = rest.trim();
    let raw = STANDARD
        .decode(rest)
        .or_else(|_| STANDARD_NO_PAD.decode(rest.trim_end_matches('=')))
        .ok()?;
    let colon = raw.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(raw[..colon].to_vec()).ok()?;
    Some((user, raw[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_the_last_path_segment() {
        assert_eq!(identity_from_path("/ocpp/CP-1").as_deref(), Some("CP-1"));
        assert_eq!(identity_from_path("/ocpp/CP%201/").as_deref(), Some("CP 1"));
        assert_eq!(identity_from_path("/CP1?x=1").as_deref(), Some("CP1"));
        assert_eq!(identity_from_path("/ocpp/CP%2"), Some("CP%2".to_owned()));
        assert_eq!(identity_from_path("/ocpp/%ff"), None);
        assert_eq!(identity_from_path("/"), None);
    }

    #[test]
    fn identities_follow_identifier_string() {
        assert_eq!(check_identity("CP-01_a.b*c=d+e|f@g"), Ok(()));
        assert_eq!(check_identity(&"A".repeat(48)), Ok(()));
        assert_eq!(
            check_identity(&"A".repeat(49)),
            Err(IdentityError::TooLong(49))
        );
        assert_eq!(check_identity(""), Err(IdentityError::Empty));
        assert_eq!(
            check_identity("CP 1"),
            Err(IdentityError::BadCharacter(' '))
        );
        assert_eq!(
            check_identity("CP:1"),
            Err(IdentityError::BadCharacter(':'))
        );
        assert_eq!(
            check_identity("CP%2"),
            Err(IdentityError::BadCharacter('%'))
        );
        assert_eq!(
            check_identity("Zürich"),
            Err(IdentityError::BadCharacter('ü'))
        );
        // Decoded first: %7C is '|'.
        assert_eq!(identity_from_path("/ocpp/CP%7C1").as_deref(), Some("CP|1"));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn password_rules_per_version() {
        assert_eq!(max_password_len(Version::V16), 20);
        assert_eq!(max_password_len(Version::V201), 40);
        assert!(is_valid_v2_password("0123456789abcdef"));
        assert!(is_valid_v2_password(&"x".repeat(40)));
        assert!(!is_valid_v2_password(&"x".repeat(41)));
        assert!(!is_valid_v2_password("short"));
        assert!(!is_valid_v2_password("0123456789abcdef gap"));
        let key = encode_authorization_key(b"0123456789abcdefghij");
        assert_eq!(key.len(), 40);
        assert_eq!(
            decode_authorization_key(&key).as_deref(),
            Some(&b"0123456789abcdefghij"[..])
        );
        assert_eq!(
            decode_authorization_key(&key.to_lowercase()).as_deref(),
            Some(&b"0123456789abcdefghij"[..])
        );
        assert_eq!(decode_authorization_key("00"), None); // 1 byte
        assert_eq!(decode_authorization_key(&"00".repeat(21)), None); // 21 bytes
        assert_eq!(decode_authorization_key(&"0g".repeat(16)), None);
        assert_eq!(decode_authorization_key(&"0".repeat(33)), None);
        assert_eq!(decode_authorization_key(&"é".repeat(16)), None);
        assert_eq!(
            parse_basic_auth(&basic_auth_header_bytes("CP", &[0xff, 0x00, b':'])),
            Some(("CP".to_owned(), vec![0xff, 0x00, b':']))
        );
    }

    #[test]
    fn basic_auth_round_trips_like_rfc7617() {
        // RFC 7617 §2: "Aladdin" / "open sesame".
        assert_eq!(
            basic_auth_header("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(
            parse_basic_auth("Basic Q1AxOnNlY3JldA=="),
            Some(("CP1".to_owned(), b"secret".to_vec()))
        );
        assert_eq!(
            parse_basic_auth("basic Q1AxOnNlY3JldA"),
            Some(("CP1".to_owned(), b"secret".to_vec()))
        );
        assert_eq!(parse_basic_auth("Bearer x"), None);
        assert_eq!(parse_basic_auth("Basic !!!"), None);
        assert_eq!(parse_basic_auth("Basic bm9jb2xvbg=="), None); // "nocolon"
    }

    #[test]
    fn the_preferred_offered_subprotocol_wins() {
        let all = [Version::V21, Version::V201, Version::V16];
        assert_eq!(
            choose_subprotocol(["ocpp1.6, ocpp2.1"], &all),
            Some(Version::V21)
        );
        assert_eq!(choose_subprotocol(["ocpp1.5", "wamp"], &all), None);
        assert_eq!(choose_subprotocol([], &all), None);
        assert!(selects(Some("ocpp2.0.1"), Version::V201));
        assert!(!selects(None, Version::V201));
        assert!(!selects(Some("ocpp1.6"), Version::V201));
    }

    #[test]
    fn read_failures_close_with_rfc6455_codes() {
        assert_eq!(ReadFailure::TooBig.close_code(), 1009);
        assert_eq!(ReadFailure::NotUtf8.close_code(), 1007);
        assert_eq!(ReadFailure::Protocol.close_code(), 1002);
        assert_eq!(read_limit(1 << 20), 4 << 20);
        assert_eq!(read_limit(usize::MAX), usize::MAX);
    }
}
