//! Exact decimal numbers on the wire.
//!
//! Every OCPP `number` (meter registers, limits, prices) is a [`rust_decimal::Decimal`]: a
//! 96-bit integer with a decimal scale, `Copy`, 16 bytes, no heap. `2935.600` is read with its
//! three decimals and written back as `2935.600`; a difference of two registers is exact; the
//! 1.6 `multipleOf: 0.1` is checked without binary floating point error.
//!
//! Why this way: `serde_json` normally hands a deserializer an `f64`, which has already lost
//! the digits. Its `arbitrary_precision` feature would keep them, but it is global to the build
//! (every `serde_json::Value` in the process then stores numbers as strings, and every number
//! costs an allocation). Instead we use serde_json's `raw_value` mechanism: the deserializer
//! gives us the number's own text, borrowed from the input when decoding from a `&str` or
//! `&[u8]` (no allocation), and we parse that text into a `Decimal`. Serializing writes the
//! decimal's text verbatim the same way. Numbers are limited to what `Decimal` holds exactly
//! (28 significant digits, magnitude below 7.9e28); anything beyond is refused, never rounded.

use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Unexpected, Visitor};
use serde::ser::{SerializeStruct, Serializer};

/// serde_json's private marker for raw values (stable since serde_json 1.0.29; our tests pin
/// the behaviour so an upstream change cannot go unnoticed).
const RAW_TOKEN: &str = "$serde_json::private::RawValue";

/// Why a number could not be read as an exact decimal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    /// Not a JSON number at all.
    #[error("{0:?} is not a JSON number")]
    Syntax(String),
    /// More significant digits or a larger magnitude than an exact decimal holds.
    #[error("{0} cannot be held exactly (at most 28 significant digits, magnitude below 7.9e28)")]
    OutOfRange(String),
}

/// Parses the text of a JSON number into an exact decimal, keeping its scale
/// (`"2935.600"` has scale 3). Exponents are applied exactly; nothing is ever rounded.
///
/// ```
/// use ocpp_types::number::parse_decimal;
///
/// let d = parse_decimal("2935.600").unwrap();
/// assert_eq!(d.to_string(), "2935.600");
/// assert_eq!(parse_decimal("-1.5e2").unwrap().to_string(), "-150");
/// assert!(parse_decimal("0.12345678901234567890123456789").is_err());
/// ```
pub fn parse_decimal(text: &str) -> Result<Decimal, NumberError> {
    if !is_json_number(text) {
        return Err(NumberError::Syntax(text.to_owned()));
    }
    let out_of_range = || NumberError::OutOfRange(text.to_owned());
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut value = Decimal::from_str_exact(mantissa).map_err(|_| out_of_range())?;
    if let Some(exp) = exponent {
        let exp: i64 = exp.parse().map_err(|_| out_of_range())?;
        let scale = i64::from(value.scale());
        if exp <= scale {
            let mut new_scale = scale.checked_sub(exp).ok_or_else(out_of_range)?;
            if new_scale > 28 {
                // Dropping trailing zeros keeps the value exact and may make room.
                value = value.normalize();
                new_scale = i64::from(value.scale())
                    .checked_sub(exp)
                    .ok_or_else(out_of_range)?;
            }
            let new_scale = u32::try_from(new_scale).map_err(|_| out_of_range())?;
            if new_scale > 28 {
                return Err(out_of_range());
            }
            value.set_scale(new_scale).map_err(|_| out_of_range())?;
        } else {
            value.set_scale(0).map_err(|_| out_of_range())?;
            let mut factor = Decimal::ONE;
            for _ in 0..(exp - scale) {
                factor = factor.checked_mul(Decimal::TEN).ok_or_else(out_of_range)?;
            }
            value = value.checked_mul(factor).ok_or_else(out_of_range)?;
        }
    }
    Ok(value)
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Deserializes an exact decimal from a JSON number (see the module docs).
pub fn deserialize_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Decimal, D::Error> {
    deserializer.deserialize_newtype_struct(RAW_TOKEN, DecimalVisitor)
}

/// Serializes an exact decimal as a JSON number with exactly its digits.
pub fn serialize_decimal<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = DecimalText::default();
    use std::fmt::Write as _;
    // Writing to the inline buffer cannot fail: a Decimal prints in at most 31 bytes.
    let _ = write!(buf, "{value}");
    let mut s = serializer.serialize_struct(RAW_TOKEN, 1)?;
    s.serialize_field(RAW_TOKEN, buf.as_str())?;
    s.end()
}

/// A stack buffer for a decimal's text (at most 31 bytes: sign, 29 digits, point).
#[derive(Default)]
struct DecimalText {
    bytes: [u8; 32],
    len: usize,
}

impl DecimalText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("0")
    }
}

impl fmt::Write for DecimalText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

struct DecimalVisitor;

impl<'de> Visitor<'de> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decimal, A::Error> {
        // serde_json's raw value: a one-entry map from the marker to the value's JSON text.
        map.next_key_seed(RawKey)?
            .ok_or_else(|| de::Error::invalid_type(Unexpected::Map, &self))?;
        map.next_value_seed(RawNumber)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Decimal, D::Error> {
        // Not serde_json: take whatever number the format has.
        d.deserialize_any(PlainNumberVisitor)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        PlainNumberVisitor.visit_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        PlainNumberVisitor.visit_u64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        PlainNumberVisitor.visit_f64(v)
    }
}

struct PlainNumberVisitor;

impl Visitor<'_> for PlainNumberVisitor {
    type Value = Decimal;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        // Shortest round-trip text of the float, then exact parsing.
        let text = format!("{v}");
        parse_decimal(&text).map_err(E::custom)
    }
}

struct RawKey;

impl<'de> DeserializeSeed<'de> for RawKey {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        struct K;
        impl Visitor<'_> for K {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("serde_json's raw value marker")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
                if v == RAW_TOKEN {
                    Ok(())
                } else {
                    Err(E::invalid_type(Unexpected::Map, &"a number"))
                }
            }
        }
        d.deserialize_identifier(K)
    }
}

struct RawNumber;

impl<'de> DeserializeSeed<'de> for RawNumber {
    type Value = Decimal;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Decimal, D::Error> {
        struct T;
        impl Visitor<'_> for T {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_str<E: de::Error>(self, raw: &str) -> Result<Decimal, E> {
                let raw = raw.trim_matches(|c: char| c.is_ascii_whitespace());
                let unexpected = match raw.as_bytes().first() {
                    Some(b'-' | b'0'..=b'9') => {
                        return parse_decimal(raw).map_err(E::custom);
                    }
                    Some(b'"') => Unexpected::Other("string"),
                    Some(b'{') => Unexpected::Map,
                    Some(b'[') => Unexpected::Seq,
                    Some(b't' | b'f') => Unexpected::Other("boolean"),
                    Some(b'n') => Unexpected::Unit,
                    _ => Unexpected::Other("value"),
                };
                Err(E::invalid_type(unexpected, &"a number"))
            }
        }
        d.deserialize_str(T)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Holder {
        #[serde(
            deserialize_with = "deserialize_decimal",
            serialize_with = "serialize_decimal"
        )]
        v: Decimal,
    }

    fn round_trip(json: &str) -> String {
        let h: Holder = serde_json::from_str(json).unwrap();
        serde_json::to_string(&h).unwrap()
    }

    #[test]
    fn digits_survive_a_round_trip() {
        assert_eq!(round_trip(r#"{"v":2935.600}"#), r#"{"v":2935.600}"#);
        assert_eq!(round_trip(r#"{"v": -0.1 }"#), r#"{"v":-0.1}"#);
        assert_eq!(round_trip(r#"{"v":12}"#), r#"{"v":12}"#);
        assert_eq!(round_trip(r#"{"v":1.25E+2}"#), r#"{"v":125}"#);
        assert_eq!(round_trip(r#"{"v":125e-2}"#), r#"{"v":1.25}"#);
    }

    #[test]
    fn works_from_a_reader_and_a_value() {
        let h: Holder = serde_json::from_reader(&br#"{"v":7.50}"#[..]).unwrap();
        assert_eq!(h.v.to_string(), "7.50");
        let h: Holder = serde_json::from_value(serde_json::json!({"v": 7.5})).unwrap();
        assert_eq!(h.v.to_string(), "7.5");
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v, serde_json::json!({"v": 7.5}));
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in [
            r#"{"v":"12"}"#,
            r#"{"v":null}"#,
            r#"{"v":[1]}"#,
            r#"{"v":{}}"#,
            r#"{"v":true}"#,
        ] {
            let err = serde_json::from_str::<Holder>(bad).unwrap_err();
            assert!(err.to_string().contains("invalid type"), "{bad}: {err}");
        }
    }

    #[test]
    fn exact_or_refused_never_rounded() {
        assert_eq!(
            parse_decimal("0.1").unwrap() * Decimal::from(3),
            parse_decimal("0.3").unwrap()
        );
        assert!(parse_decimal("1e30").is_err());
        assert!(parse_decimal("1e-9223372036854775808").is_err());
        assert!(parse_decimal("1e9223372036854775807").is_err());
        assert!(parse_decimal("12345678901234567890123456789012").is_err());
        assert_eq!(
            parse_decimal("1.0e-28").unwrap().to_string(),
            "0.0000000000000000000000000001"
        );
        for bad in ["", "-", "01", "1.", ".5", "1e", "+1", "0x10", "1_0"] {
            assert!(
                matches!(parse_decimal(bad), Err(NumberError::Syntax(_))),
                "{bad}"
            );
        }
    }
}
