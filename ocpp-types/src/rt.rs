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

/// A deserializer that reads a struct only from a JSON object.
///
/// serde's derived `Deserialize` for a struct also accepts the struct's *positional* form, a JSON
/// array of its field values in declaration order (`["ACME", "Volt 22"]` for a
/// BootNotification request, `[]` for any struct whose fields are all optional). The schemas
/// never allow an array where an object is expected, so a schema-exact struct must refuse it.
/// Wrapping the deserializer routes `deserialize_struct` to `deserialize_map`, which accepts
/// only an object; everything else is passed through.
///
/// The pattern for a generated struct (derive with `remote = "Self"`, which turns the derived
/// code into inherent functions, then implement the traits through them):
///
/// ```
/// use serde::{Deserialize, Deserializer, Serialize, Serializer};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// #[serde(remote = "Self", deny_unknown_fields)]
/// struct Boot {
///     #[serde(rename = "vendor")]
///     vendor: String,
///     #[serde(rename = "model", default, deserialize_with = "ocpp_types::rt::opt")]
///     model: Option<String>,
/// }
///
/// impl<'de> Deserialize<'de> for Boot {
///     fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
///         Boot::deserialize(ocpp_types::rt::MapOnly(d))
///     }
/// }
///
/// impl Serialize for Boot {
///     fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
///         Boot::serialize(self, s)
///     }
/// }
///
/// assert!(serde_json::from_str::<Boot>(r#"{"vendor":"ACME"}"#).is_ok());
/// assert!(serde_json::from_str::<Boot>(r#"["ACME","Volt"]"#).is_err());
/// assert!(serde_json::from_str::<Vec<Boot>>(r#"[["ACME"]]"#).is_err());
/// assert_eq!(
///     serde_json::to_string(&Boot { vendor: "A".into(), model: None }).unwrap(),
///     r#"{"vendor":"A","model":null}"#
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MapOnly<D>(pub D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier
        ignored_any
    }
}

/// Reads a generated enumeration from a JSON string only (serde's derived enums would also
/// accept `{"Value": null}`), parsing it with `parse`.
pub fn enum_str<'de, D, T>(
    d: D,
    type_name: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        type_name: &'static str,
        parse: fn(&str) -> Option<T>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a {} value", self.type_name)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            (self.parse)(s)
                .ok_or_else(|| E::custom(format_args!("{s:?} is not a {} value", self.type_name)))
        }
    }
    d.deserialize_str(V { type_name, parse })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields)]
    struct Pair {
        #[serde(rename = "a")]
        a: i32,
        #[serde(rename = "b", default, deserialize_with = "opt")]
        b: Option<String>,
    }

    impl<'de> Deserialize<'de> for Pair {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Pair::deserialize(MapOnly(d))
        }
    }

    #[test]
    fn structs_refuse_the_positional_array_form() {
        let ok: Pair = serde_json::from_str(r#"{"a":1,"b":"x"}"#).unwrap();
        assert_eq!(ok.b.as_deref(), Some("x"));
        for bad in [
            r#"[1,"x"]"#,
            "[1]",
            "[]",
            r#"{"a":1,"c":2}"#,
            r#"{"a":1,"b":null}"#,
        ] {
            assert!(serde_json::from_str::<Pair>(bad).is_err(), "{bad}");
        }
        // Nested: each struct's own impl applies the rule.
        assert!(serde_json::from_str::<Vec<Pair>>(r#"[{"a":1}]"#).is_ok());
        assert!(serde_json::from_str::<Vec<Pair>>("[[1]]").is_err());
        // From a `Value` too.
        assert!(serde_json::from_value::<Pair>(serde_json::json!([1])).is_err());
        assert!(serde_json::from_value::<Pair>(serde_json::json!({"a": 1})).is_ok());
    }
}
