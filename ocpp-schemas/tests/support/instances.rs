//! JSON instances generated from the official OCPP schemas themselves, valid and invalid.
//!
//! [`Gen`] walks one schema file (`properties`, `required`, `$ref` to `#/definitions`, `enum`,
//! `maxLength`, `minimum`/`maximum`, `multipleOf`, `minItems`/`maxItems`, `format`, `type`,
//! `additionalProperties`) and produces [`Case`]s: a minimal and a maximal instance, boundary
//! values, and one-mutation invalid instances. Each case carries what the schema should say
//! about it ([`Expect`]); the differential test first checks those expectations against the
//! schema validator (which validates this generator), then compares typed decoding.
//!
//! Instances are a small JSON AST ([`J`]) that prints numbers verbatim, so `12.50`, `1e2` and
//! `3.0` reach the decoder exactly as written (a `serde_json::Value` would lose the literal).
//! Variety comes from a seeded xorshift generator ([`Rng`]): every run produces the same cases.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde_json::Value;

/// A tiny deterministic PRNG (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// A generator seeded from a string (FNV-1a of its bytes).
    pub fn from_str_seed(s: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in s.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng::new(h)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// How a string is written in JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Esc {
    /// Non-ASCII characters as themselves (UTF-8).
    Plain,
    /// Every non-ASCII character as a `\uXXXX` escape (surrogate pairs beyond the BMP),
    /// and `/` as `\/`.
    Unicode,
    /// Every character as a `\uXXXX` escape.
    All,
}

/// A JSON value whose numbers keep their literal text.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, printed verbatim.
    Num(String),
    /// A string and how to escape it.
    Str(String, Esc),
    /// An array.
    Arr(Vec<J>),
    /// An object, in this key order (duplicates allowed on purpose).
    Obj(Vec<(String, J)>),
}

impl J {
    /// A plain string value.
    pub fn s(s: impl Into<String>) -> J {
        J::Str(s.into(), Esc::Plain)
    }

    /// A number literal.
    pub fn n(s: impl Into<String>) -> J {
        J::Num(s.into())
    }

    /// The JSON text; `spaced` puts whitespace (spaces, newlines, tabs) between tokens.
    pub fn to_text(&self, spaced: bool) -> String {
        let mut out = String::new();
        self.write(&mut out, spaced);
        out
    }

    fn write(&self, out: &mut String, spaced: bool) {
        let sep = if spaced { "\n\t " } else { "" };
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s, esc) => write_str(out, s, *esc),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(sep);
                    item.write(out, spaced);
                }
                out.push_str(sep);
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(sep);
                    write_str(out, k, Esc::Plain);
                    out.push(':');
                    if spaced {
                        out.push(' ');
                    }
                    v.write(out, spaced);
                }
                out.push_str(sep);
                out.push('}');
            }
        }
    }
}

fn write_str(out: &mut String, s: &str, esc: Esc) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if esc == Esc::All => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            '/' if esc == Esc::Unicode => out.push_str("\\/"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if esc == Esc::Unicode && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What the official schema says about an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The schema accepts it; so must the types.
    Valid,
    /// The schema refuses it; so must the types.
    Invalid,
    /// The schema accepts it but the types refuse it by design (documented deviation).
    Deviation(&'static str),
}

/// Deviation: OCPP `integer` is 32-bit.
pub const DEV_INT32: &str = "OCPP integers are 32-bit (the schema has no bound)";
/// Deviation: numbers are exact decimals of at most 28 significant digits.
pub const DEV_DECIMAL: &str =
    "numbers are exact decimals (28 significant digits); the validator rounds to f64";
/// Deviation: a JSON object with the same key twice.
pub const DEV_DUPLICATE: &str =
    "duplicate keys: the validator sees only the last (serde_json::Value), the types refuse them";

/// One generated instance (or, below the root, one value for a sub-schema).
#[derive(Debug, Clone)]
pub struct Case {
    /// The value.
    pub value: J,
    /// What the schema should say.
    pub expect: Expect,
    /// Where and what: a JSON pointer into the instance and the mutation.
    pub label: String,
}

impl Case {
    fn new(value: J, expect: Expect, label: impl Into<String>) -> Case {
        Case {
            value,
            expect,
            label: label.into(),
        }
    }
}

/// Characters for generated strings: ASCII, 2-, 3- and 4-byte UTF-8, and JSON escapes.
const CHARS: &[char] = &[
    'a', 'B', 'z', '0', '9', '-', ' ', '_', 'é', 'ß', '€', '中', '😀', '🚗', '"', '\\', '\n', '/',
    '\u{1}', 'ü',
];
const MULTIBYTE: &[char] = &['é', '€', '😀', '中', '🚗', 'ß'];

/// Valid `date-time` strings (RFC 3339, as the `date-time` format reads it).
pub const VALID_DATETIMES: &[&str] = &[
    "2026-11-25T08:30:00Z",
    "2026-11-25T08:30:00+05:30",
    "2026-11-25T08:30:00-11:30",
    "2026-11-25T08:30:00.5Z",
    "2026-11-25T08:30:00.123456789123+01:00",
    "2026-11-25t08:30:00z",
    "2026-11-25T08:30:00.000z",
    "1998-12-31T23:59:60Z",
    "1998-12-31T15:59:60-08:00",
    "1999-01-01T00:59:60.25+01:00",
    "2024-02-29T00:00:00Z",
    "2000-02-29T12:00:00+00:00",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999-23:59",
    "2026-01-01T00:00:00+23:59",
    "2026-06-30T23:59:60.999999999Z",
];

/// Invalid `date-time` strings.
pub const INVALID_DATETIMES: &[&str] = &[
    "",
    "2026-11-25",
    "2026-11-25T08:30:00",
    "2026-11-25T08:30:00.250",
    "2026-11-25 08:30:00Z",
    "2026-11-25T08:30Z",
    "2026-02-30T08:30:00Z",
    "2023-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-00-10T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-11-00T00:00:00Z",
    "2026-11-25T24:00:00Z",
    "2026-11-25T08:60:00Z",
    "2026-11-25T08:30:60Z",
    "1998-12-31T23:59:60+01:00",
    "2026-11-25T08:30:00.Z",
    "2026-11-25T08:30:00+0100",
    "2026-11-25T08:30:00+01",
    "2026-11-25T08:30:00+24:00",
    "2026-11-25T08:30:00+01:60",
    "2026-11-25T08:30:00Zjunk",
    "2026-11-25T08:30:00Z ",
    " 2026-11-25T08:30:00Z",
    "2026-1-25T08:30:00Z",
    "20261125T083000Z",
    "+2026-11-25T08:30:00Z",
    "2026-11-25T8:30:00Z",
    "2026-11-25TT08:30:00Z",
    "2026-11-25T08:30:00,5Z",
    "2026-11-25T08:30:00UTC",
    "2026-11-25T08:30:00GMT+01:00",
    "２026-11-25T08:30:00Z",
    "2026-11-25T08:30:00+01:00:00",
    "2026-11-25T08:30:00-00:0a",
];

/// Valid `uri` strings (RFC 3986 absolute URIs).
pub const VALID_URIS: &[&str] = &[
    "ftp://user:pass@example.com/firmware/v2.bin",
    "https://example.com:8443/a?b=c#d",
    "https://example.com/firmware.bin",
    "http://[::1]:80/",
    "http://[2001:db8::7]/c=GB?objectClass?one",
    "http://[::ffff:192.0.2.1]/x",
    "http://[v7.fe80::1-en0]/",
    "http://user@[::1]/",
    "urn:isbn:0451450523",
    "urn:oasis:names:specification:docbook:dtd:xml:4.1.2",
    "mailto:ops@example.com",
    "https://example.com/%20x",
    "file:///var/log/diag.zip",
    "x:",
    "a+b-c.d:path",
    "https://example.com?",
    "https://example.com#",
    "https://EXAMPLE.com:/",
    "ldap://[2001:db8::7]/c=GB?objectClass?one",
    "tel:+1-816-555-1212",
    "https://example.com/a/../b/./c",
    "https://a.b/!$&'()*+,;=:@/?/?#/?:@",
    "http://1.2.3.4/",
    "http://%41%42/",
];

/// Invalid `uri` strings.
pub const INVALID_URIS: &[&str] = &[
    "",
    "example.com/firmware",
    "/relative/path",
    "//example.com/x",
    "1http://x",
    "http://exa mple.com",
    "http://x/%zz",
    "http://x/%4",
    "http://[::1/",
    "http://[::1]x/",
    "http://[::1]:8o/",
    "http://x:8o/",
    "http://a@b@c/",
    "http://[vx]/",
    "http://[v]/",
    "http://[v1.]/",
    "http://[v1x]/",
    "http://[1.2.3.4]/",
    "http://[fe80::1%25eth0]/",
    "http://[::1:2:3:4:5:6:7:8]/",
    "http://[1::2:3:4:5:6:7:8]/",
    "http://[:::1]/",
    "http://[12345::]/",
    "http://[::ffff:1.2.3.04]/",
    "http://[::ffff:1.2.3.256]/",
    "https://exämple.com/",
    "https://example.com/a b",
    "https://example.com/<x>",
    "https://example.com/#a#b",
    "https://example.com/\\",
    "http://x[::1]/",
    "http://[::1]@x/",
    ":no-scheme",
    "ht tp://x",
    "http://x/{y}",
    "http://x/|",
    "http://x/^",
    "http://x/`",
];

/// The generator for one schema file.
pub struct Gen<'a> {
    root: &'a Value,
    draft4: bool,
    rng: Rng,
    /// How many open objects (`additionalProperties` not false) the walk met.
    pub open_objects: usize,
}

const MAX_DEPTH: usize = 16;

fn ty(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or("")
}

/// A schema with no constraint at all (only a description).
fn is_any(node: &Value) -> bool {
    node.as_object()
        .is_some_and(|m| m.keys().all(|k| k == "description" || k == "javaType"))
}

fn num_kw(node: &Value, kw: &str) -> Option<f64> {
    node.get(kw).and_then(Value::as_f64)
}

/// The decimal a literal stands for (exponents applied); `None` beyond `Decimal`.
fn dec(text: &str) -> Option<Decimal> {
    let (mant, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let mut d = Decimal::from_str_exact(mant).ok()?;
    if exp >= 0 {
        for _ in 0..exp {
            d = d.checked_mul(Decimal::TEN)?;
        }
    } else {
        for _ in 0..(-exp) {
            d = d.checked_div(Decimal::TEN)?;
        }
    }
    Some(d)
}

impl<'a> Gen<'a> {
    /// A generator for the schema file `root`, seeded with `seed`.
    pub fn new(root: &'a Value, seed: &str) -> Self {
        let draft4 = root
            .get("$schema")
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("draft-04"));
        Gen {
            root,
            draft4,
            rng: Rng::from_str_seed(seed),
            open_objects: 0,
        }
    }

    fn resolve(&self, node: &'a Value) -> &'a Value {
        let mut node = node;
        for _ in 0..8 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let name = r
                        .strip_prefix("#/definitions/")
                        .unwrap_or_else(|| panic!("unsupported $ref {r}"));
                    node = &self.root["definitions"][name];
                    assert!(!node.is_null(), "dangling $ref {r}");
                }
                None => return node,
            }
        }
        panic!("$ref chain too long")
    }

    fn props(&self, node: &'a Value) -> Vec<(&'a str, &'a Value)> {
        node.get("properties")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default()
    }

    fn required(node: &'a Value) -> Vec<&'a str> {
        node.get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    fn is_open(node: &Value) -> bool {
        node.get("additionalProperties") != Some(&Value::Bool(false))
    }

    /// The instances for the whole file: every case of the root object.
    pub fn root_cases(&mut self) -> Vec<Case> {
        let root = self.root;
        let mut cases = self.cases(root, 0);
        // The same key twice at the top level (first required or first property).
        let props = self.props(root);
        let req = Self::required(root);
        if let Some(key) = req.first().copied().or(props.first().map(|p| p.0)) {
            let node = props.iter().find(|p| p.0 == key).map(|p| p.1);
            if let (Some(node), J::Obj(mut fields)) = (node, self.minimal(root)) {
                let v = self.minimal(node);
                fields.retain(|(k, _)| k != key);
                fields.push((key.to_owned(), v.clone()));
                fields.push((key.to_owned(), v));
                cases.push(Case::new(
                    J::Obj(fields),
                    Expect::Deviation(DEV_DUPLICATE),
                    format!("/{key}: the same key twice"),
                ));
            }
        }
        cases
    }

    /// A minimal valid value: only required properties, minimal arrays.
    pub fn minimal(&mut self, node: &'a Value) -> J {
        let node = self.resolve(node);
        if let Some(e) = node.get("enum").and_then(Value::as_array) {
            let e: Vec<&str> = e.iter().filter_map(Value::as_str).collect();
            return J::s(*self.rng.pick(&e));
        }
        match ty(node) {
            "object" => {
                let req = Self::required(node);
                let fields = self
                    .props(node)
                    .into_iter()
                    .filter(|(k, _)| req.contains(k))
                    .map(|(k, v)| (k.to_owned(), self.minimal(v)))
                    .collect();
                J::Obj(fields)
            }
            "array" => {
                let min = num_kw(node, "minItems").unwrap_or(0.0) as usize;
                let item = &node["items"];
                J::Arr((0..min).map(|_| self.minimal(item)).collect())
            }
            "string" => match node.get("format").and_then(Value::as_str) {
                Some("date-time") => J::s(*self.rng.pick(&VALID_DATETIMES[..7])),
                Some("uri") => J::s(*self.rng.pick(&VALID_URIS[..3])),
                Some(f) => panic!("unknown format {f}"),
                None => {
                    let max = num_kw(node, "maxLength").map_or(12, |m| m as usize);
                    let len = 1 + self.rng.below(max.min(12));
                    J::s(self.ascii(len))
                }
            },
            "integer" => J::n(self.valid_ints(node).remove(0)),
            "number" => {
                let vals = self.valid_numbers(node);
                J::n(self.rng.pick(&vals).clone())
            }
            "boolean" => J::Bool(self.rng.one_in(2)),
            "" if is_any(node) => J::s("any"),
            t => panic!("unknown type {t:?}"),
        }
    }

    /// A maximal valid value: every property, strings at their maximum length, two array items.
    pub fn maximal(&mut self, node: &'a Value, depth: usize) -> J {
        let node = self.resolve(node);
        if depth > MAX_DEPTH {
            return self.minimal(node);
        }
        if node.get("enum").is_some() {
            return self.minimal(node);
        }
        match ty(node) {
            "object" => {
                let mut fields: Vec<(String, J)> = self
                    .props(node)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), self.maximal(v, depth + 1)))
                    .collect();
                if Self::is_open(node) {
                    fields.push(("vendorSpecific".into(), J::Arr(vec![J::Null, J::n("1.50")])));
                }
                J::Obj(fields)
            }
            "array" => {
                let max = num_kw(node, "maxItems").map_or(2, |m| (m as usize).min(2));
                let item = &node["items"];
                J::Arr((0..max).map(|_| self.maximal(item, depth + 1)).collect())
            }
            "string" if node.get("format").is_none() => match num_kw(node, "maxLength") {
                Some(max) => J::s(self.mixed(max as usize)),
                None => J::s(self.mixed(40)),
            },
            _ => self.minimal(node),
        }
    }

    fn ascii(&mut self, len: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";
        (0..len).map(|_| *self.rng.pick(A) as char).collect()
    }

    /// `len` characters, at least one of them multi-byte when `len > 0`.
    fn mixed(&mut self, len: usize) -> String {
        let mut s: Vec<char> = (0..len).map(|_| *self.rng.pick(CHARS)).collect();
        if let Some(c) = s.last_mut() {
            *c = *self.rng.pick(MULTIBYTE);
        }
        s.into_iter().collect()
    }

    fn wrong_types(&mut self, label: &str, skip: &str) -> Vec<Case> {
        let all = [
            ("string", J::s("x")),
            ("number", J::n("1")),
            ("fraction", J::n("1.5")),
            ("boolean", J::Bool(true)),
            ("null", J::Null),
            ("object", J::Obj(vec![])),
            ("array", J::Arr(vec![])),
        ];
        all.into_iter()
            .filter(|(t, _)| *t != skip && !(skip == "number" && *t == "fraction"))
            .filter(|(t, _)| !(skip == "integer" && *t == "number"))
            .map(|(t, v)| Case::new(v, Expect::Invalid, format!("{label}: wrong type {t}")))
            .collect()
    }

    /// Every case for the value of `node`.
    pub fn cases(&mut self, node: &'a Value, depth: usize) -> Vec<Case> {
        let node = self.resolve(node);
        if let Some(e) = node.get("enum").and_then(Value::as_array) {
            return self.enum_cases(e);
        }
        match ty(node) {
            "object" => self.object_cases(node, depth),
            "array" => self.array_cases(node, depth),
            "string" => match node.get("format").and_then(Value::as_str) {
                Some("date-time") => self.format_cases(VALID_DATETIMES, INVALID_DATETIMES),
                Some("uri") => self.format_cases(VALID_URIS, INVALID_URIS),
                Some(f) => panic!("unknown format {f}"),
                None => self.string_cases(node),
            },
            "integer" => self.integer_cases(node),
            "number" => self.number_cases(node),
            "boolean" => {
                let mut c = vec![
                    Case::new(J::Bool(true), Expect::Valid, ": true"),
                    Case::new(J::Bool(false), Expect::Valid, ": false"),
                    Case::new(J::s("true"), Expect::Invalid, ": string \"true\""),
                    Case::new(J::n("0"), Expect::Invalid, ": number 0"),
                ];
                c.extend(self.wrong_types("", "boolean"));
                c
            }
            "" if is_any(node) => Self::any_cases(),
            t => panic!("unknown type {t:?}"),
        }
    }

    /// A schema without `type` (DataTransfer's `data`): any JSON value is valid, even `null`.
    fn any_cases() -> Vec<Case> {
        let values = [
            J::Null,
            J::Bool(false),
            J::n("0"),
            J::n("-1.50e-3"),
            J::n("123456789012345678901234567890"),
            J::n("1e300"),
            J::s(""),
            J::Str("vendor 😀 data".into(), Esc::Unicode),
            J::Arr(vec![J::Null, J::Obj(vec![])]),
            J::Obj(vec![
                ("a".into(), J::Obj(vec![("b".into(), J::Arr(vec![]))])),
                ("a".into(), J::n("2")),
            ]),
        ];
        values
            .into_iter()
            .map(|v| {
                let label = format!(": any value {}", v.to_text(false));
                Case::new(v, Expect::Valid, label)
            })
            .collect()
    }

    fn enum_cases(&mut self, values: &'a [Value]) -> Vec<Case> {
        let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        let mut c: Vec<Case> = values
            .iter()
            .map(|v| Case::new(J::s(*v), Expect::Valid, format!(": enum {v:?}")))
            .collect();
        let first = values[0];
        let mut bad = vec![
            "NotAnEnumValue".to_owned(),
            format!("{first} "),
            first.to_lowercase(),
            first.to_uppercase(),
            String::new(),
        ];
        // The `\u` escaped spelling of a valid value is the same value.
        c.push(Case::new(
            J::Str(first.to_owned(), Esc::All),
            Expect::Valid,
            ": enum, escaped",
        ));
        bad.retain(|b| !values.contains(&b.as_str()));
        bad.dedup();
        for b in bad {
            c.push(Case::new(
                J::s(b.clone()),
                Expect::Invalid,
                format!(": not in enum {b:?}"),
            ));
        }
        c.extend(self.wrong_types("", "string"));
        c
    }

    fn format_cases(&mut self, valid: &[&str], invalid: &[&str]) -> Vec<Case> {
        let mut c: Vec<Case> = valid
            .iter()
            .map(|s| Case::new(J::s(*s), Expect::Valid, format!(": {s:?}")))
            .collect();
        let s = valid[self.rng.below(valid.len())];
        c.push(Case::new(
            J::Str(s.to_owned(), Esc::Unicode),
            Expect::Valid,
            format!(": {s:?} escaped"),
        ));
        c.extend(
            invalid
                .iter()
                .map(|s| Case::new(J::s(*s), Expect::Invalid, format!(": {s:?}"))),
        );
        c.extend(self.wrong_types("", "string"));
        c
    }

    fn string_cases(&mut self, node: &Value) -> Vec<Case> {
        let max = num_kw(node, "maxLength").map(|m| m as usize);
        let mut c = vec![Case::new(J::s(""), Expect::Valid, ": empty string")];
        let n = max.unwrap_or(64);
        let len = 1 + self.rng.below(n);
        c.push(Case::new(J::s(self.ascii(len)), Expect::Valid, ": ascii"));
        let exact = self.mixed(n);
        c.push(Case::new(
            J::s(exact.clone()),
            Expect::Valid,
            format!(": {n} mixed characters"),
        ));
        c.push(Case::new(
            J::Str(exact, Esc::Unicode),
            Expect::Valid,
            format!(": {n} mixed characters, \\u escaped"),
        ));
        c.push(Case::new(
            J::s("😀".repeat(n)),
            Expect::Valid,
            format!(": {n} emoji (4 bytes each)"),
        ));
        c.push(Case::new(
            J::s("é".repeat(n)),
            Expect::Valid,
            format!(": {n} x é (2 bytes each)"),
        ));
        c.push(Case::new(
            J::Str("€".repeat(n), Esc::Unicode),
            Expect::Valid,
            format!(": {n} x € escaped"),
        ));
        if let Some(max) = max {
            c.push(Case::new(
                J::s(self.ascii(max + 1)),
                Expect::Invalid,
                format!(": {} ascii characters, maxLength {max}", max + 1),
            ));
            c.push(Case::new(
                J::s(self.mixed(max + 1)),
                Expect::Invalid,
                format!(": {} mixed characters, maxLength {max}", max + 1),
            ));
            c.push(Case::new(
                J::Str(format!("{}\u{1F697}", "é".repeat(max)), Esc::Unicode),
                Expect::Invalid,
                format!(": {} characters escaped, maxLength {max}", max + 1),
            ));
        }
        c.extend(self.wrong_types("", "string"));
        c
    }

    /// Valid plain integers for `node` (bounds first).
    fn valid_ints(&mut self, node: &Value) -> Vec<String> {
        let min = num_kw(node, "minimum").map(|m| m as i64);
        let max = num_kw(node, "maximum").map(|m| m as i64);
        let lo = min.unwrap_or(i64::from(i32::MIN));
        let hi = max.unwrap_or(i64::from(i32::MAX));
        let mut v = vec![
            lo.max(0).min(hi).to_string(),
            lo.to_string(),
            hi.to_string(),
        ];
        let span = (hi - lo) as u64 + 1;
        v.push((lo + (self.rng.next_u64() % span) as i64).to_string());
        v.push((lo + (self.rng.next_u64() % span.min(1000)) as i64).to_string());
        v.dedup();
        v
    }

    fn integer_cases(&mut self, node: &Value) -> Vec<Case> {
        let min = num_kw(node, "minimum").map(|m| m as i64);
        let max = num_kw(node, "maximum").map(|m| m as i64);
        let in_range = |x: i64| min.is_none_or(|m| x >= m) && max.is_none_or(|m| x <= m);
        let mut c: Vec<Case> = self
            .valid_ints(node)
            .into_iter()
            .map(|s| Case::new(J::n(s.clone()), Expect::Valid, format!(": integer {s}")))
            .collect();
        // Integral numbers written with a fraction or exponent: integers in draft-06, not in
        // draft-04.
        for (text, value) in [
            ("3.0", 3),
            ("0.0", 0),
            ("-0", 0),
            ("1e2", 100),
            ("1E+1", 10),
            ("2.50e1", 25),
            ("100.000", 100),
            ("-2.0", -2),
            ("5E0", 5),
        ] {
            if in_range(value) {
                let expect = if self.draft4 {
                    Expect::Invalid
                } else {
                    Expect::Valid
                };
                c.push(Case::new(
                    J::n(text),
                    expect,
                    format!(": integral number {text}"),
                ));
            }
        }
        if let Some(m) = min {
            c.push(Case::new(
                J::n((m - 1).to_string()),
                Expect::Invalid,
                format!(": below minimum {m}"),
            ));
            if !self.draft4 {
                c.push(Case::new(
                    J::n(format!("{}.0", m - 1)),
                    Expect::Invalid,
                    format!(": below minimum {m}, written as a float"),
                ));
            }
        }
        if let Some(m) = max {
            c.push(Case::new(
                J::n((m + 1).to_string()),
                Expect::Invalid,
                format!(": above maximum {m}"),
            ));
        }
        for text in ["1.5", "0.1", "-0.5", "1e-1", "2.0000001"] {
            c.push(Case::new(
                J::n(text),
                Expect::Invalid,
                format!(": fraction {text}"),
            ));
        }
        c.push(Case::new(J::s("1"), Expect::Invalid, ": string \"1\""));
        c.extend(self.wrong_types("", "integer"));
        // Beyond 32 bits: the schema has no bound there, OCPP's integer does.
        let bigs: &[(&str, bool, bool)] = &[
            // text, positive, integral-float form
            ("2147483648", true, false),
            ("9223372036854775807", true, false),
            ("18446744073709551615", true, false),
            ("-2147483649", false, false),
            ("-9223372036854775808", false, false),
            ("1e10", true, true),
            ("4294967296.0", true, true),
            ("-1e15", false, true),
        ];
        for &(text, positive, float_form) in bigs {
            let bounded = if positive {
                max.is_some()
            } else {
                min.is_some()
            };
            if bounded {
                continue;
            }
            let expect = if float_form && self.draft4 {
                Expect::Invalid
            } else {
                Expect::Deviation(DEV_INT32)
            };
            c.push(Case::new(
                J::n(text),
                expect,
                format!(": beyond i32 {text}"),
            ));
        }
        c
    }

    /// Valid number literals for `node`.
    fn valid_numbers(&mut self, node: &Value) -> Vec<String> {
        let candidates = [
            "0",
            "12.50",
            "2935.600",
            "1e2",
            "1.5E-3",
            "-7.25",
            "21.3",
            "0.1",
            "1E+2",
            "-0.0",
            "100.0",
            "0.0",
            "3.0",
            "-12.5",
            "-0.1",
            "2.13e1",
            "213e-1",
            "0.30",
            "-1e3",
            "123456789012.345",
            "7",
            "-40",
            "1e-10",
            "99.9",
            "-99.9",
        ];
        let mut v: Vec<String> = candidates
            .iter()
            .filter(|t| self.number_ok(node, t))
            .map(|t| (*t).to_owned())
            .collect();
        let min = num_kw(node, "minimum");
        let max = num_kw(node, "maximum");
        if let Some(m) = min {
            v.push(format!("{m:.1}"));
        }
        if let Some(m) = max {
            v.push(format!("{m:.1}"));
            v.push(format!("{}", m as i64));
        }
        // A random tenth within the bounds.
        let lo = min.unwrap_or(-1000.0);
        let hi = max.unwrap_or(1000.0);
        let tenths = ((hi - lo) * 10.0) as u64;
        let t = (lo * 10.0) as i64 + (self.rng.next_u64() % (tenths + 1)) as i64;
        v.push(Decimal::new(t, 1).to_string());
        v
    }

    /// Whether the literal `text` satisfies `node`'s bounds and multipleOf (exactly).
    fn number_ok(&self, node: &Value, text: &str) -> bool {
        let Some(d) = dec(text) else { return false };
        let f = |kw| num_kw(node, kw).and_then(|m| Decimal::try_from(m).ok());
        if f("minimum").is_some_and(|m| d < m) || f("maximum").is_some_and(|m| d > m) {
            return false;
        }
        match num_kw(node, "multipleOf") {
            Some(m) => {
                assert!((m - 0.1).abs() < 1e-12, "only multipleOf 0.1 is expected");
                d.normalize().scale() <= 1
            }
            None => true,
        }
    }

    fn number_cases(&mut self, node: &Value) -> Vec<Case> {
        let mut c: Vec<Case> = self
            .valid_numbers(node)
            .into_iter()
            .map(|s| Case::new(J::n(s.clone()), Expect::Valid, format!(": number {s}")))
            .collect();
        let min = num_kw(node, "minimum");
        let max = num_kw(node, "maximum");
        if let Some(m) = min {
            for text in [
                format!("{}", m - 0.1),
                format!("{}", m - 1.0),
                format!("{m}e0"),
            ] {
                let expect = if self.number_ok(node, &text) {
                    Expect::Valid
                } else {
                    Expect::Invalid
                };
                c.push(Case::new(
                    J::n(text.clone()),
                    expect,
                    format!(": {text} (minimum {m})"),
                ));
            }
        }
        if let Some(m) = max {
            for text in [
                format!("{:.1}", m + 0.1),
                format!("{}.0000001", m as i64 + 1),
            ] {
                c.push(Case::new(
                    J::n(text.clone()),
                    Expect::Invalid,
                    format!(": {text} above maximum {m}"),
                ));
            }
        }
        if num_kw(node, "multipleOf").is_some() {
            for text in ["21.35", "0.05", "-0.01", "2.135e1", "0.11", "1e-2"] {
                c.push(Case::new(
                    J::n(text),
                    Expect::Invalid,
                    format!(": {text} not a multiple of 0.1"),
                ));
            }
        }
        c.push(Case::new(
            J::s("12.5"),
            Expect::Invalid,
            ": string \"12.5\"",
        ));
        c.extend(self.wrong_types("", "number"));
        // Exact decimals: beyond what `Decimal` holds. The validator reads the f64 (the flag
        // says whether that f64 is a multiple of 0.1, in the validator's decimal reading).
        let beyond: [(&str, bool); 6] = [
            ("0.12345678901234567890123456789", false),
            ("1e29", true),
            ("123456789012345678901234567890", true),
            ("1e-30", false),
            ("-1e29", true),
            ("1.00000000000000000000000000001", true),
        ];
        let tenths = num_kw(node, "multipleOf").is_some();
        for (text, tenth) in beyond {
            if self.in_bounds_f64(node, text) && (tenth || !tenths) {
                c.push(Case::new(
                    J::n(text),
                    Expect::Deviation(DEV_DECIMAL),
                    format!(": {text} beyond Decimal"),
                ));
            }
        }
        // Digits beyond f64: the validator sees the rounded value (0 is exact in f64).
        let near = |m: f64, sign: &str| {
            if m == 0.0 {
                (format!("{sign}0.00000000000000001"), Expect::Invalid)
            } else {
                let text = if sign.is_empty() {
                    format!("{}.00000000000000001", m as i64)
                } else {
                    format!("{}.99999999999999999", m as i64 - 1)
                };
                (text, Expect::Deviation(DEV_DECIMAL))
            }
        };
        if let Some(m) = max {
            let (text, expect) = near(m, "");
            c.push(Case::new(
                J::n(text.clone()),
                expect,
                format!(": {text} above maximum {m} by less than f64 sees"),
            ));
        }
        if let Some(m) = min {
            let (text, expect) = near(m, "-");
            c.push(Case::new(
                J::n(text.clone()),
                expect,
                format!(": {text} below minimum {m} by less than f64 sees"),
            ));
        }
        if tenths {
            for text in ["21.30000000000000001", "10.0000000000000000001"] {
                if self.in_bounds(node, text) {
                    c.push(Case::new(
                        J::n(text),
                        Expect::Deviation(DEV_DECIMAL),
                        format!(": {text} not a multiple of 0.1 by less than f64 sees"),
                    ));
                }
            }
        }
        c
    }

    fn in_bounds(&self, node: &Value, text: &str) -> bool {
        let Some(d) = dec(text) else { return false };
        let f = |kw| num_kw(node, kw).and_then(|m| Decimal::try_from(m).ok());
        !(f("minimum").is_some_and(|m| d < m) || f("maximum").is_some_and(|m| d > m))
    }

    fn in_bounds_f64(&self, node: &Value, text: &str) -> bool {
        let Ok(x) = text.parse::<f64>() else {
            return false;
        };
        num_kw(node, "minimum").is_none_or(|m| x >= m)
            && num_kw(node, "maximum").is_none_or(|m| x <= m)
    }

    fn object_cases(&mut self, node: &'a Value, depth: usize) -> Vec<Case> {
        let mut c = Vec::new();
        let open = Self::is_open(node);
        if open {
            self.open_objects += 1;
        }
        let props = self.props(node);
        let req = Self::required(node);
        let base = match self.minimal(node) {
            J::Obj(f) => f,
            _ => unreachable!(),
        };
        c.push(Case::new(J::Obj(base.clone()), Expect::Valid, ": minimal"));
        c.push(Case::new(
            self.maximal(node, depth),
            Expect::Valid,
            ": maximal",
        ));
        if depth <= MAX_DEPTH {
            for (i, (key, child)) in props.iter().enumerate() {
                for case in self.cases(child, depth + 1) {
                    let mut fields = base.clone();
                    set_field(&mut fields, &props, i, key, case.value);
                    c.push(Case::new(
                        J::Obj(fields),
                        case.expect,
                        format!("/{key}{}", case.label),
                    ));
                }
            }
        }
        for r in &req {
            let mut fields = base.clone();
            fields.retain(|(k, _)| k != r);
            c.push(Case::new(
                J::Obj(fields),
                Expect::Invalid,
                format!(": missing required {r}"),
            ));
        }
        let extra = if open { Expect::Valid } else { Expect::Invalid };
        for (name, v) in [
            ("unknownProperty", J::s("x")),
            (
                "vendorData",
                J::Obj(vec![("nested".into(), J::Arr(vec![J::Null, J::n("1.0")]))]),
            ),
            ("x", J::Null),
        ] {
            if props.iter().any(|p| p.0 == name) {
                continue;
            }
            let mut fields = base.clone();
            let at = self.rng.below(fields.len() + 1);
            fields.insert(at, (name.to_owned(), v));
            c.push(Case::new(
                J::Obj(fields),
                extra,
                format!(": extra property {name}"),
            ));
        }
        // A known property's name in another case is another property.
        if let Some((key, _)) = props.first() {
            let mut upper = (*key).to_owned();
            upper.replace_range(..1, &key[..1].to_uppercase());
            if !props.iter().any(|p| p.0 == upper) {
                let mut fields = base.clone();
                fields.push((upper.clone(), J::Null));
                c.push(Case::new(
                    J::Obj(fields),
                    extra,
                    format!(": extra property {upper}"),
                ));
            }
        }
        // serde's positional form of a struct: the values as an array, in declaration order.
        if let J::Obj(all) = self.maximal(node, depth) {
            let values: Vec<J> = all
                .into_iter()
                .filter(|(k, _)| props.iter().any(|p| p.0 == k))
                .map(|(_, v)| v)
                .collect();
            if !values.is_empty() {
                c.push(Case::new(
                    J::Arr(values),
                    Expect::Invalid,
                    ": every property value, as an array",
                ));
            }
        }
        let required_values: Vec<J> = base
            .iter()
            .filter(|(k, _)| req.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
            .collect();
        if !required_values.is_empty() {
            c.push(Case::new(
                J::Arr(required_values),
                Expect::Invalid,
                ": the required property values, as an array",
            ));
        }
        c.extend(self.wrong_types("", "object"));
        c.push(Case::new(
            J::Arr(vec![J::Obj(base)]),
            Expect::Invalid,
            ": the object inside an array",
        ));
        c
    }

    fn array_cases(&mut self, node: &'a Value, depth: usize) -> Vec<Case> {
        let item = &node["items"];
        let min = num_kw(node, "minItems").unwrap_or(0.0) as usize;
        let max = num_kw(node, "maxItems").map(|m| m as usize);
        let mut c = Vec::new();
        if depth <= MAX_DEPTH {
            for case in self.cases(item, depth + 1) {
                let mut items = vec![case.value];
                // Pad to the minimum and, sometimes, put the item second.
                while items.len() < min {
                    items.push(self.minimal(item));
                }
                let mut at = 0;
                if max.is_none_or(|m| m >= 2) && self.rng.one_in(4) {
                    items.insert(0, self.minimal(item));
                    at = 1;
                }
                c.push(Case::new(
                    J::Arr(items),
                    case.expect,
                    format!("/{at}{}", case.label),
                ));
            }
        }
        let expect_empty = if min == 0 {
            Expect::Valid
        } else {
            Expect::Invalid
        };
        c.push(Case::new(
            J::Arr(vec![]),
            expect_empty,
            format!(": empty array (minItems {min})"),
        ));
        let full = max.unwrap_or(3);
        let items: Vec<J> = (0..full).map(|_| self.minimal(item)).collect();
        c.push(Case::new(
            J::Arr(items.clone()),
            Expect::Valid,
            format!(": {full} items"),
        ));
        if let Some(m) = max {
            let mut items = items;
            items.push(self.minimal(item));
            c.push(Case::new(
                J::Arr(items),
                Expect::Invalid,
                format!(": {} items, maxItems {m}", m + 1),
            ));
        }
        c.extend(self.wrong_types("", "array"));
        let lone = self.minimal(item);
        c.push(Case::new(
            lone,
            Expect::Invalid,
            ": an item instead of an array",
        ));
        c
    }
}

/// Sets property `props[i]` in `fields` (kept in schema order), replacing any present value.
fn set_field(fields: &mut Vec<(String, J)>, props: &[(&str, &Value)], i: usize, key: &str, v: J) {
    if let Some(f) = fields.iter_mut().find(|(k, _)| k == key) {
        f.1 = v;
        return;
    }
    let at = fields
        .iter()
        .position(|(k, _)| props.iter().position(|p| p.0 == k).is_some_and(|j| j > i))
        .unwrap_or(fields.len());
    fields.insert(at, (key.to_owned(), v));
}
