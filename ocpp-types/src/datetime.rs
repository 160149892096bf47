//! OCPP `dateTime`: an RFC 3339 timestamp, parsed exactly as JSON Schema's `date-time` format.

use std::fmt;
use std::str::FromStr;

use chrono::{FixedOffset, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// A timestamp with its UTC offset, as OCPP messages carry them.
///
/// Parsing accepts exactly what the `date-time` format of the official schemas accepts
/// (RFC 3339 section 5.6: `T` or `t` separator, `Z`, `z` or a `±hh:mm` offset, any number of
/// fractional digits, a leap second only where it falls on 23:59:60 UTC); everything else is
/// refused. Sub-nanosecond digits are truncated. It is written back in RFC 3339 with `Z` for
/// UTC and only as many fractional digits as needed (0, 3, 6 or 9).
///
/// ```
/// use ocpp_types::DateTime;
///
/// let t: DateTime = "2026-11-25T08:30:00.250+01:00".parse().unwrap();
/// assert_eq!(t.to_string(), "2026-11-25T08:30:00.250+01:00");
/// assert!("2026-11-25 08:30:00Z".parse::<DateTime>().is_err());
/// assert!("2026-11-25T08:30:00".parse::<DateTime>().is_err(), "an offset is required");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(chrono::DateTime<FixedOffset>);

/// A string that is not an RFC 3339 `date-time`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 date-time (like 2026-11-25T08:30:00Z)")]
pub struct InvalidDateTime(pub String);

impl DateTime {
    /// Wraps a chrono timestamp.
    pub fn new(t: chrono::DateTime<FixedOffset>) -> Self {
        DateTime(t)
    }

    /// A UTC timestamp.
    pub fn from_utc(t: chrono::DateTime<Utc>) -> Self {
        DateTime(t.fixed_offset())
    }

    /// The UTC timestamp `secs` seconds after the Unix epoch (`None` out of chrono's range).
    pub fn from_unix_seconds(secs: i64) -> Option<Self> {
        chrono::DateTime::from_timestamp(secs, 0).map(Self::from_utc)
    }

    /// The chrono timestamp, with its offset.
    pub fn as_chrono(&self) -> &chrono::DateTime<FixedOffset> {
        &self.0
    }

    /// The same instant in UTC.
    pub fn to_utc(&self) -> chrono::DateTime<Utc> {
        self.0.with_timezone(&Utc)
    }
}

impl From<chrono::DateTime<FixedOffset>> for DateTime {
    fn from(t: chrono::DateTime<FixedOffset>) -> Self {
        DateTime(t)
    }
}

impl From<chrono::DateTime<Utc>> for DateTime {
    fn from(t: chrono::DateTime<Utc>) -> Self {
        DateTime::from_utc(t)
    }
}

impl From<DateTime> for chrono::DateTime<FixedOffset> {
    fn from(t: DateTime) -> Self {
        t.0
    }
}

impl fmt::Debug for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DateTime({self})")
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// What a fraction of `n` digits (1 to 8) is multiplied by to give nanoseconds.
const FRACTION_SCALE: [u32; 8] = [
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
];

/// The two ASCII digits at `b[i]`, `b[i + 1]` as a number.
#[inline(always)]
fn two(b: &[u8], i: usize) -> Option<u32> {
    let hi = u32::from(b.get(i)?.wrapping_sub(b'0'));
    let lo = u32::from(b.get(i + 1)?.wrapping_sub(b'0'));
    (hi < 10 && lo < 10).then_some(hi * 10 + lo)
}

/// Parses per RFC 3339 `date-time`, with the same acceptance as the `jsonschema` crate's
/// `date-time` format check that the codec's validator uses:
/// `YYYY-MM-DD(T|t)hh:mm:ss[.f+](Z|z|(+|-)hh:mm)`, a real calendar day, hours 00-23, minutes
/// 00-59, seconds 00-59 (60 only where it is 23:59:60 in UTC), offsets up to 23:59.
///
/// One pass over fixed positions; chrono only assembles the checked fields.
fn parse(s: &str) -> Option<chrono::DateTime<FixedOffset>> {
    let b = s.as_bytes();
    // The fixed part, `YYYY-MM-DDThh:mm:ss`: 19 bytes.
    let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
    if head[4] != b'-'
        || head[7] != b'-'
        || !matches!(head[10], b'T' | b't')
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let year = two(head, 0)? * 100 + two(head, 2)?;
    let (month, day) = (two(head, 5)?, two(head, 8)?);
    let (hour, minute, second) = (two(head, 11)?, two(head, 14)?, two(head, 17)?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Fraction: at least one digit after the dot; digits past the ninth are truncated.
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(d);
            }
            i += 1;
        }
        match i - start {
            0 => return None,
            n @ 1..=8 => nanos *= FRACTION_SCALE[n - 1],
            _ => {}
        }
    }
    let offset_secs: i32 = match *b.get(i)? {
        b'Z' | b'z' if b.len() == i + 1 => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (two(b, i + 1)?, two(b, i + 4)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = (oh * 3600 + om * 60) as i32;
            if sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let time = if second == 60 {
        // A leap second is only valid where it is 23:59:60 in UTC.
        let utc_minutes = (hour * 60 + minute) as i32 - offset_secs / 60;
        if utc_minutes.rem_euclid(24 * 60) != 23 * 60 + 59 {
            return None;
        }
        NaiveTime::from_hms_nano_opt(hour, minute, 59, 1_000_000_000 + nanos)?
    } else {
        NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?
    };
    let offset = FixedOffset::east_opt(offset_secs)?;
    let local = date.and_time(time);
    let utc = if offset_secs == 0 {
        local
    } else {
        local.checked_sub_offset(offset)?
    };
    Some(chrono::DateTime::from_naive_utc_and_offset(utc, offset))
}

impl FromStr for DateTime {
    type Err = InvalidDateTime;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
            .map(DateTime)
            .ok_or_else(|| InvalidDateTime(s.to_owned()))
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DateTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 date-time string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DateTime, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(feature = "proptest")]
impl proptest::arbitrary::Arbitrary for DateTime {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::prelude::*;
        // 1970..2100, millisecond precision, offsets from -12:00 to +14:00 in quarter hours.
        (0i64..4_102_444_800_000, -48i32..=56)
            .prop_filter_map("in range", |(ms, q)| {
                let utc = chrono::DateTime::from_timestamp_millis(ms)?;
                let offset = FixedOffset::east_opt(q * 900)?;
                Some(DateTime(utc.with_timezone(&offset)))
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_what_rfc3339_accepts() {
        for ok in [
            "2026-11-25T08:30:00Z",
            "2026-11-25t08:30:00z",
            "2026-11-25T08:30:00.1+01:00",
            "2026-11-25T08:30:00.123456789123-11:30",
            "2024-02-29T00:00:00Z",
            "1998-12-31T23:59:60Z",
            "1998-12-31T15:59:60-08:00",
            "0000-01-01T00:00:00Z",
        ] {
            assert!(ok.parse::<DateTime>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_the_rest() {
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T08:30:00",
            "2026-11-25 08:30:00Z",
            "2026-11-25T08:30Z",
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T08:30:00.Z",
            "2026-11-25T08:30:00+0100",
            "2026-11-25T08:30:00+24:00",
            "2026-11-25T08:30:60Z",
            "2026-11-25T08:30:00Zjunk",
            "2026-1-25T08:30:00Z",
            "２026-11-25T08:30:00Z",
        ] {
            assert!(bad.parse::<DateTime>().is_err(), "{bad}");
        }
    }

    /// The parser as it was before the one-pass version: the reference the property tests
    /// hold the new one to, byte for byte of acceptance and value.
    fn reference(s: &str) -> Option<chrono::DateTime<FixedOffset>> {
        use chrono::TimeZone;
        fn two(b: &[u8]) -> Option<u32> {
            match b {
                [a @ b'0'..=b'9', c @ b'0'..=b'9'] => {
                    Some(u32::from(a - b'0') * 10 + u32::from(c - b'0'))
                }
                _ => None,
            }
        }
        fn four(b: &[u8]) -> Option<i32> {
            Some(two(&b[0..2])? as i32 * 100 + two(&b[2..4])? as i32)
        }
        let t_pos = s.bytes().position(|b| b == b'T' || b == b't')?;
        let (date, time) = (s.as_bytes().get(..t_pos)?, s.as_bytes().get(t_pos + 1..)?);
        if date.len() != 10 || date[4] != b'-' || date[7] != b'-' {
            return None;
        }
        let year = four(&date[0..4])?;
        let month = two(&date[5..7])?;
        let day = two(&date[8..10])?;
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        if time.len() < 9 || time[2] != b':' || time[5] != b':' {
            return None;
        }
        let (hour, minute, second) = (two(&time[0..2])?, two(&time[3..5])?, two(&time[6..8])?);
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let mut i = 8;
        let mut nanos: u32 = 0;
        if time.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < time.len() && time[i].is_ascii_digit() {
                let digit = i - start;
                if digit < 9 {
                    nanos += u32::from(time[i] - b'0') * 10u32.pow(8 - digit as u32);
                }
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        let offset_secs: i32 = match time.get(i)? {
            b'Z' | b'z' if i == time.len() - 1 => 0,
            sign @ (b'+' | b'-') if time.len() - i == 6 && time[i + 3] == b':' => {
                let (oh, om) = (two(&time[i + 1..i + 3])?, two(&time[i + 4..i + 6])?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let secs = (oh * 3600 + om * 60) as i32;
                if *sign == b'+' {
                    secs
                } else {
                    -secs
                }
            }
            _ => return None,
        };
        let offset = FixedOffset::east_opt(offset_secs)?;
        let naive_time = if second == 60 {
            let utc_minutes = (hour * 60 + minute) as i32 - offset_secs / 60;
            if utc_minutes.rem_euclid(24 * 60) != 23 * 60 + 59 {
                return None;
            }
            NaiveTime::from_hms_nano_opt(hour, minute, 59, 1_000_000_000 + nanos)?
        } else {
            NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?
        };
        offset
            .from_local_datetime(&date.and_time(naive_time))
            .single()
    }

    /// Date-times near the rules' edges: every field a little beyond its range, leap days and
    /// leap seconds, years 0000 and 9999, offsets up to ±25:61, 0 to 12 fraction digits,
    /// every separator and offset spelling; then, sometimes, one byte changed, added or cut.
    fn candidate() -> impl Strategy<Value = String> {
        // Mostly in range, sometimes on or just past an edge.
        let field = |lo: u32, hi: u32, past: u32| prop_oneof![8 => lo..=hi, 1 => Just(lo), 1 => Just(hi), 1 => 0..=past];
        let sep = prop_oneof![6 => Just('T'), 1 => Just('t'), 1 => Just(' '), 1 => Just('x')];
        let offset = prop_oneof![
            3 => Just("Z".to_owned()),
            1 => Just("z".to_owned()),
            1 => Just(String::new()),
            1 => Just("+00:00".to_owned()),
            1 => Just("-00:00".to_owned()),
            4 => (any::<bool>(), field(0, 23, 25), field(0, 59, 61)).prop_map(|(plus, h, m)| {
                format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' })
            }),
            1 => (any::<bool>(), 0u32..3000).prop_map(|(plus, hm)| {
                format!("{}{hm:04}", if plus { '+' } else { '-' })
            }),
        ];
        let fields = (
            prop_oneof![
                0u32..=9999,
                Just(0),
                Just(9999),
                Just(2000),
                Just(1900),
                Just(2024)
            ],
            field(1, 12, 13),
            field(1, 31, 32),
            sep,
            field(0, 23, 25),
            field(0, 59, 61),
            field(0, 59, 61),
            prop_oneof![Just(None), "[0-9]{0,12}".prop_map(Some)],
            offset,
        );
        let text = fields.prop_map(|(y, mo, d, sep, h, mi, s, frac, off)| {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}")
        });
        let edit = prop_oneof![6 => Just(0usize), 1 => Just(1), 1 => Just(2), 1 => Just(3)];
        (text, edit, any::<prop::sample::Index>(), any::<char>()).prop_map(
            |(mut text, edit, at, c)| {
                let len = text.chars().count();
                let at = text
                    .char_indices()
                    .nth(at.index(len.max(1)))
                    .map_or(text.len(), |(i, _)| i);
                match edit {
                    1 if at < text.len() => {
                        text.remove(at);
                    }
                    2 => text.insert(at, c),
                    3 if at < text.len() => {
                        text.remove(at);
                        text.insert(at, c);
                    }
                    _ => {}
                }
                text
            },
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// The one-pass parser accepts exactly what the previous one accepted, with the same
        /// value and offset.
        #[test]
        fn same_as_the_reference(text in candidate()) {
            let got = parse(&text);
            let want = reference(&text);
            prop_assert_eq!(got, want);
            if let (Some(g), Some(w)) = (got, want) {
                prop_assert_eq!(g.offset(), w.offset());
            }
        }

        /// Against chrono's own RFC 3339 parser: whatever we accept, chrono accepts with the
        /// same instant and offset; what chrono accepts and we refuse is a space for the `T`
        /// (JSON Schema's `date-time` has none) or a leap second that is not 23:59:60 UTC.
        #[test]
        fn agrees_with_chrono(text in candidate()) {
            let ours = parse(&text);
            let theirs = chrono::DateTime::parse_from_rfc3339(&text).ok();
            match (ours, theirs) {
                (Some(o), Some(t)) => {
                    prop_assert_eq!(o, t);
                    prop_assert_eq!(o.offset(), t.offset());
                }
                (Some(o), None) => prop_assert!(false, "{text:?}: chrono refuses, we give {o}"),
                (None, Some(t)) => {
                    let space = text.as_bytes().get(10) == Some(&b' ');
                    let leap = text.get(17..19) == Some("60");
                    prop_assert!(space || leap, "{text:?}: chrono gives {t}, we refuse");
                }
                (None, None) => {}
            }
        }
    }

    /// The candidates are not vacuous: a good share of them parse.
    #[test]
    fn candidates_often_parse() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = candidate();
        let n = 4000;
        let accepted = (0..n)
            .filter(|_| {
                let text = strategy.new_tree(&mut runner).unwrap().current();
                parse(&text).is_some()
            })
            .count();
        assert!(accepted * 5 > n, "only {accepted} of {n} candidates parse");
    }

    #[test]
    fn edges_same_as_the_reference() {
        for text in [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-23:59",
            "9999-12-31T23:59:60-00:00",
            "0000-01-01T00:00:00+23:59",
            "0000-01-01T00:00:00.000000000001Z",
            "2026-11-25T08:30:00.9999999999+01:00",
            "2026-11-25T08:30:00.+01:00",
            "2026-11-25T08:30:00.1",
            "2026-11-25T08:30:00+01:00 ",
            "2026-11-25T08:30:00+01:0",
            "2026-11-25T08:30:00+1:00",
            "1998-12-31T23:59:60.999999999Z",
            "1998-12-31T23:59:60+00:01",
            "1999-01-01T00:00:60+00:01",
            "1999-01-01T00:00:60+00:00",
            "2026-11-25T08:30:00Z\u{0}",
            "2026-11-25T08:30:00é",
            "2026-11-25Té8:30:00Z",
            "2026-11-25tt8:30:00Z",
        ] {
            assert_eq!(parse(text), reference(text), "{text}");
        }
        assert!(parse("9999-12-31T23:59:59-23:59").is_some());
    }

    #[test]
    fn writes_rfc3339() {
        let t: DateTime = "2026-11-25T08:30:00+00:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-25T08:30:00Z");
        let leap: DateTime = "1998-12-31T23:59:60.5Z".parse().unwrap();
        assert_eq!(leap.to_string(), "1998-12-31T23:59:60.500Z");
        assert_eq!(leap.to_string().parse::<DateTime>().unwrap(), leap);
    }
}
