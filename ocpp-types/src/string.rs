//! Length-bounded strings: an OCPP `string` with `maxLength` is a type that cannot be over-long.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// A string of at most `N` characters (Unicode scalar values, as JSON Schema's `maxLength`
/// counts them, not bytes).
///
/// ```
/// use ocpp_types::BoundedString;
///
/// let id: BoundedString<20> = "04A2B3C4D5E6F7".parse().unwrap();
/// assert_eq!(id.as_str(), "04A2B3C4D5E6F7");
/// assert!(BoundedString::<3>::new("four").is_err());
/// // Twenty two-byte characters are twenty characters.
/// assert!(BoundedString::<20>::new("é".repeat(20)).is_ok());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedString<const N: usize>(String);

/// A string longer than its type allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("string of {length} characters is longer than the maximum of {max}")]
pub struct StringTooLong {
    /// The number of characters given.
    pub length: usize,
    /// The maximum allowed.
    pub max: usize,
}

impl<const N: usize> BoundedString<N> {
    /// The maximum length in characters.
    pub const MAX_CHARS: usize = N;

    /// Checks the length and wraps the string.
    pub fn new(s: impl Into<String>) -> Result<Self, StringTooLong> {
        let s = s.into();
        check_len::<N>(&s)?;
        Ok(BoundedString(s))
    }

    /// The string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The inner `String`.
    pub fn into_inner(self) -> String {
        self.0
    }
}

fn check_len<const N: usize>(s: &str) -> Result<(), StringTooLong> {
    // A string of at most N bytes has at most N characters: skip counting for the common case.
    if s.len() <= N {
        return Ok(());
    }
    let length = s.chars().count();
    if length <= N {
        Ok(())
    } else {
        Err(StringTooLong { length, max: N })
    }
}

impl<const N: usize> fmt::Debug for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const N: usize> fmt::Display for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> Deref for BoundedString<N> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> AsRef<str> for BoundedString<N> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> Borrow<str> for BoundedString<N> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> FromStr for BoundedString<N> {
    type Err = StringTooLong;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_len::<N>(s)?;
        Ok(BoundedString(s.to_owned()))
    }
}

impl<const N: usize> TryFrom<String> for BoundedString<N> {
    type Error = StringTooLong;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        BoundedString::new(s)
    }
}

impl<const N: usize> TryFrom<&str> for BoundedString<N> {
    type Error = StringTooLong;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl<const N: usize> From<BoundedString<N>> for String {
    fn from(s: BoundedString<N>) -> String {
        s.0
    }
}

impl<const N: usize> PartialEq<str> for BoundedString<N> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl<const N: usize> PartialEq<&str> for BoundedString<N> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<const N: usize> Serialize for BoundedString<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedString<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> Visitor<'_> for V<N> {
            type Value = BoundedString<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of at most {N} characters")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                BoundedString::new(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_string(V::<N>)
    }
}

#[cfg(feature = "proptest")]
impl<const N: usize> proptest::arbitrary::Arbitrary for BoundedString<N> {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::prelude::*;
        proptest::collection::vec(any::<char>(), 0..=N.min(64))
            .prop_map(|chars| BoundedString(chars.into_iter().collect()))
            .boxed()
    }
}
