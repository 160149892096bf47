//! Serde plumbing used by the generated code: how each field is checked on the way in and
//! written on the way out, so that a payload decodes if and only if its schema accepts it.
//!
//! A field's wire rules are a small type built from the combinators below, for example
//! `Opt<Seq<Int<true, 0>, 1>>` is "optional; if present an array of at least one integer,
//! each at least 0, integral floats allowed (draft-06)". The generated code names it in
//! `#[serde(deserialize_with = "crate::rt::de::<_, SPEC, _>")]` and, where the default would
//! be wrong (exact decimals), `serialize_with = "crate::rt::ser::<SPEC, _, _>"`.
//!
//! Users never need this module; it is public only because generated code in other crates
//! might one day use it. Its API is not covered by semver.

use std::fmt;
use std::marker::PhantomData;

use rust_decimal::Decimal;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::number::{deserialize_decimal, serialize_decimal};

/// The wire rules of one field type `T`.
pub trait Spec<T> {
    /// Reads `T`, refusing anything the schema refuses.
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<T, D::Error>;
    /// Writes `T`.
    fn ser<S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error>;
}

/// Deserializes a field by its spec (`deserialize_with` target).
pub fn de<'de, D, S, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    S: Spec<T>,
{
    S::de(d)
}

/// Serializes a field by its spec (`serialize_with` target).
pub fn ser<S, T, Z>(v: &T, z: Z) -> Result<Z::Ok, Z::Error>
where
    S: Spec<T>,
    Z: Serializer,
{
    S::ser(v, z)
}

/// An optional field that is present: its value, never `null` (the schemas do not allow
/// `null` for absent fields). The `deserialize_with` target for `Option<T>` of a plain `T`.
pub fn opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The type's own serde implementation (strings, booleans, enums, structs).
pub struct Plain;

impl<T: Serialize + DeserializeOwned> Spec<T> for Plain {
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        T::deserialize(d)
    }
    fn ser<S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }
}

/// A present optional value: `E`'s rules, `null` refused.
pub struct Opt<E>(PhantomData<E>);

impl<T, E: Spec<T>> Spec<Option<T>> for Opt<E> {
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        E::de(d).map(Some)
    }
    fn ser<S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => E::ser(v, s),
            None => s.serialize_none(),
        }
    }
}

/// An array of `MIN..=MAX` items, each by `E`'s rules.
pub struct Seq<E, const MIN: usize = 0, const MAX: usize = { usize::MAX }>(PhantomData<E>);

struct ElementSeed<E, T>(PhantomData<(E, T)>);

impl<'de, T, E: Spec<T>> DeserializeSeed<'de> for ElementSeed<E, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        E::de(d)
    }
}

struct Element<'a, E, T>(&'a T, PhantomData<E>);

impl<T, E: Spec<T>> Serialize for Element<'_, E, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        E::ser(self.0, s)
    }
}

impl<T, E: Spec<T>, const MIN: usize, const MAX: usize> Spec<Vec<T>> for Seq<E, MIN, MAX> {
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        struct V<E, T, const MIN: usize, const MAX: usize>(PhantomData<(E, T)>);
        impl<'de, T, E: Spec<T>, const MIN: usize, const MAX: usize> Visitor<'de> for V<E, T, MIN, MAX> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match (MIN, MAX) {
                    (0, usize::MAX) => f.write_str("an array"),
                    (min, usize::MAX) => write!(f, "an array of at least {min} items"),
                    (min, max) => write!(f, "an array of {min} to {max} items"),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element_seed(ElementSeed::<E, T>(PhantomData))? {
                    if out.len() == MAX {
                        return Err(de::Error::invalid_length(out.len() + 1, &self));
                    }
                    out.push(item);
                }
                if out.len() < MIN {
                    return Err(de::Error::invalid_length(out.len(), &self));
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V::<E, T, MIN, MAX>(PhantomData))
    }
    fn ser<S: Serializer>(v: &Vec<T>, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for item in v {
            seq.serialize_element(&Element::<E, T>(item, PhantomData))?;
        }
        seq.end()
    }
}

/// An OCPP `integer` (32-bit signed, as the specifications define it) within `MIN..=MAX`.
///
/// `LAX` is the JSON Schema draft-06 reading, where `1.0` and `1e2` are integers; draft-04
/// schemas (most of OCPP 1.6) only accept integers written without a fraction or exponent.
pub struct Int<
    const LAX: bool = false,
    const MIN: i64 = { i64::MIN },
    const MAX: i64 = { i64::MAX },
>;

impl<const LAX: bool, const MIN: i64, const MAX: i64> Spec<i32> for Int<LAX, MIN, MAX> {
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
        struct V<const LAX: bool, const MIN: i64, const MAX: i64>;
        impl<const LAX: bool, const MIN: i64, const MAX: i64> V<LAX, MIN, MAX> {
            fn check<E: de::Error>(&self, v: i64) -> Result<i32, E> {
                if v < MIN || v > MAX {
                    return Err(E::invalid_value(de::Unexpected::Signed(v), self));
                }
                i32::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), self))
            }
        }
        impl<const LAX: bool, const MIN: i64, const MAX: i64> Visitor<'_> for V<LAX, MIN, MAX> {
            type Value = i32;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let lo = MIN.max(i64::from(i32::MIN));
                let hi = MAX.min(i64::from(i32::MAX));
                write!(f, "an integer from {lo} to {hi}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
                self.check(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
                match i64::try_from(v) {
                    Ok(v) => self.check(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<i32, E> {
                if LAX && v.fract() == 0.0 && v.abs() < 9.0e15 {
                    self.check(v as i64)
                } else {
                    Err(E::invalid_type(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_i64(V::<LAX, MIN, MAX>)
    }
    fn ser<S: Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(*v)
    }
}

/// An OCPP `number` as an exact [`Decimal`] within `MIN..=MAX`, a multiple of 0.1 when `TENTHS`.
///
/// The official schemas only use integral bounds, which is what lets them be const generics.
pub struct Dec<
    const MIN: i64 = { i64::MIN },
    const MAX: i64 = { i64::MAX },
    const TENTHS: bool = false,
>;

impl<const MIN: i64, const MAX: i64, const TENTHS: bool> Spec<Decimal> for Dec<MIN, MAX, TENTHS> {
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let v = deserialize_decimal(d)?;
        if MIN != i64::MIN && v < Decimal::from(MIN) {
            return Err(de::Error::custom(format_args!(
                "{v} is less than the minimum of {MIN}"
            )));
        }
        if MAX != i64::MAX && v > Decimal::from(MAX) {
            return Err(de::Error::custom(format_args!(
                "{v} is greater than the maximum of {MAX}"
            )));
        }
        if TENTHS && v.normalize().scale() > 1 {
            return Err(de::Error::custom(format_args!(
                "{v} is not a multiple of 0.1"
            )));
        }
        Ok(v)
    }
    fn ser<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        serialize_decimal(v, s)
    }
}

/// A string in the `uri` format (RFC 3986 absolute URI), as 1.6's firmware and diagnostics
/// `location` fields require.
pub struct Uri;

impl Spec<String> for Uri {
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        if crate::uri::is_absolute_uri(&s) {
            Ok(s)
        } else {
            Err(de::Error::custom(format_args!(
                "{s:?} is not an absolute URI"
            )))
        }
    }
    fn ser<S: Serializer>(v: &String, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }
}
