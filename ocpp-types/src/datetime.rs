//! OCPP `dateTime`: an RFC 3339 timestamp, parsed exactly as JSON Schema's `date-time` format.

use std::fmt;
use std::str::FromStr;

use chrono::{FixedOffset, NaiveDate, NaiveTime, SecondsFormat, TimeZone, Utc};
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

fn two(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

fn four(b: &[u8]) -> Option<i32> {
    Some(two(&b[0..2])? as i32 * 100 + two(&b[2..4])? as i32)
}

/// Parses per RFC 3339 `date-time`, with the same acceptance as the `jsonschema` crate's
/// `date-time` format check that the codec's validator uses.
fn parse(s: &str) -> Option<chrono::DateTime<FixedOffset>> {
    let t_pos = s.bytes().position(|b| b == b'T' || b == b't')?;
    let (date, time) = (s.as_bytes().get(..t_pos)?, s.as_bytes().get(t_pos + 1..)?);
    // Date: YYYY-MM-DD, a real calendar day.
    if date.len() != 10 || date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let year = four(&date[0..4])?;
    let month = two(&date[5..7])?;
    let day = two(&date[8..10])?;
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    // Time: HH:MM:SS[.frac](Z|±HH:MM).
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
        // A leap second is only valid where it is 23:59:60 in UTC.
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

    #[test]
    fn writes_rfc3339() {
        let t: DateTime = "2026-11-25T08:30:00+00:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-25T08:30:00Z");
        let leap: DateTime = "1998-12-31T23:59:60.5Z".parse().unwrap();
        assert_eq!(leap.to_string(), "1998-12-31T23:59:60.500Z");
        assert_eq!(leap.to_string().parse::<DateTime>().unwrap(), leap);
    }
}
