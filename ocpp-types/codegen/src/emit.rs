//! Rust source emission.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use heck::ToSnakeCase;

use crate::{tables, Field, Kind, Message, Model, MsgKind, Ty, TypeDef, Ver, HEADER};

/// Formats Rust source with the `rustfmt` binary (edition 2021), as `cargo fmt` would.
pub fn format(src: &str) -> Result<String, String> {
    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let src_owned = src.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(src_owned.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("rustfmt: {e}"))?;
    writer
        .join()
        .expect("writer thread")
        .map_err(|e| format!("rustfmt stdin: {e}"))?;
    if !out.status.success() {
        let numbered: String = src
            .lines()
            .enumerate()
            .map(|(i, l)| format!("{:5} {l}\n", i + 1))
            .collect();
        return Err(format!(
            "rustfmt failed: {}\n{numbered}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// Turns a schema description into doc-comment lines rustdoc accepts verbatim.
fn doc_lines(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<String> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with("urn:x-") {
            continue;
        }
        if line.is_empty() {
            if lines.last().is_some_and(|l| !l.is_empty()) {
                lines.push(String::new());
            }
            continue;
        }
        lines.push(escape_markdown(line));
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

fn escape_markdown(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars() {
        match c {
            '[' | ']' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    // Bare URLs become autolinks.
    let mut result = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("http://").or_else(|| rest.find("https://")) {
        let i = [rest.find("http://"), rest.find("https://")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(i);
        result.push_str(&rest[..i]);
        let url_len = rest[i..]
            .find(|c: char| c.is_whitespace() || c == ')' || c == '"' || c == '\\')
            .unwrap_or(rest.len() - i);
        let mut url = &rest[i..i + url_len];
        while url.ends_with(['.', ',', ';', ':']) {
            url = &url[..url.len() - 1];
        }
        let _ = write!(result, "<{url}>");
        rest = &rest[i + url.len()..];
    }
    result.push_str(rest);
    result
}

fn push_doc(out: &mut String, indent: &str, doc: Option<&str>, fallback: &str) {
    let mut lines = doc.map(doc_lines).unwrap_or_default();
    if lines.is_empty() {
        lines = vec![fallback.to_owned()];
    }
    for l in lines {
        if l.is_empty() {
            let _ = writeln!(out, "{indent}///");
        } else {
            let _ = writeln!(out, "{indent}/// {l}");
        }
    }
}

/// Per-file context: the version and the names the file must import.
struct FileOut<'a> {
    model: &'a Model,
    /// Types defined in this file.
    local: BTreeSet<String>,
    crate_imports: BTreeSet<&'static str>,
    version_imports: BTreeSet<String>,
    body: String,
}

impl<'a> FileOut<'a> {
    fn new(model: &'a Model, local: BTreeSet<String>) -> Self {
        FileOut {
            model,
            local,
            crate_imports: BTreeSet::new(),
            version_imports: BTreeSet::new(),
            body: String::new(),
        }
    }

    fn rust_ty(&mut self, ty: &Ty) -> String {
        match ty {
            Ty::Str(Some(n)) => {
                self.crate_imports.insert("BoundedString");
                format!("BoundedString<{n}>")
            }
            Ty::Str(None) | Ty::Uri => "String".into(),
            Ty::DateTime => {
                self.crate_imports.insert("DateTime");
                "DateTime".into()
            }
            Ty::Int { .. } => "i32".into(),
            Ty::Num { .. } => {
                self.crate_imports.insert("Decimal");
                "Decimal".into()
            }
            Ty::Bool => "bool".into(),
            Ty::Any => "serde_json::Value".into(),
            Ty::Array { item, .. } => format!("Vec<{}>", self.rust_ty(item)),
            Ty::Named(n) => {
                if !self.local.contains(n) {
                    self.version_imports.insert(n.clone());
                }
                n.clone()
            }
        }
    }

    fn finish(self, inner_doc: &str) -> String {
        let mut s = String::from(HEADER);
        s.push('\n');
        for l in inner_doc.lines() {
            if l.is_empty() {
                s.push_str("//!\n");
            } else {
                let _ = writeln!(s, "//! {l}");
            }
        }
        s.push('\n');
        s.push_str("use serde::{Deserialize, Serialize};\n");
        if !self.crate_imports.is_empty() {
            let list: Vec<&str> = self.crate_imports.iter().copied().collect();
            let _ = writeln!(s, "use crate::{{{}}};", list.join(", "));
        }
        if !self.version_imports.is_empty() {
            let list: Vec<&str> = self.version_imports.iter().map(String::as_str).collect();
            let _ = writeln!(
                s,
                "use crate::{}::{{{}}};",
                self.model.ver.dir(),
                list.join(", ")
            );
        }
        s.push('\n');
        s.push_str(&self.body);
        s
    }
}

fn int_spec(lax: bool, min: Option<i64>, max: Option<i64>) -> String {
    let c = |v: i64| {
        if v < 0 {
            format!("{{ {v} }}")
        } else {
            v.to_string()
        }
    };
    match (min, max) {
        (None, None) => format!("crate::rt::Int<{lax}>"),
        (Some(a), None) => format!("crate::rt::Int<{lax}, {}>", c(a)),
        (a, Some(b)) => format!(
            "crate::rt::Int<{lax}, {}, {}>",
            a.map_or("{ i64::MIN }".into(), c),
            c(b)
        ),
    }
}

fn dec_spec(min: Option<i64>, max: Option<i64>, tenths: bool) -> String {
    let c = |v: i64| {
        if v < 0 {
            format!("{{ {v} }}")
        } else {
            v.to_string()
        }
    };
    let lo = min.map_or("{ i64::MIN }".to_owned(), c);
    let hi = max.map_or("{ i64::MAX }".to_owned(), c);
    match (min, max, tenths) {
        (None, None, false) => "crate::rt::Dec".into(),
        (_, None, false) => format!("crate::rt::Dec<{lo}>"),
        (_, _, false) => format!("crate::rt::Dec<{lo}, {hi}>"),
        (_, _, true) => format!("crate::rt::Dec<{lo}, {hi}, true>"),
    }
}

/// The field's wire rules, or `None` when the type's own serde implementation is exact.
fn spec(ty: &Ty) -> Option<String> {
    match ty {
        Ty::Int { lax, min, max } => {
            if !lax && min.is_none() && max.is_none() {
                None
            } else {
                Some(int_spec(*lax, *min, *max))
            }
        }
        Ty::Num { min, max, tenths } => Some(dec_spec(*min, *max, *tenths)),
        Ty::Uri => Some("crate::rt::Uri".into()),
        Ty::Array { item, min, max } => {
            let inner = spec(item);
            if inner.is_none() && *min == 0 && max.is_none() {
                return None;
            }
            let inner = inner.unwrap_or_else(|| "crate::rt::Plain".into());
            Some(match (min, max) {
                (0, None) => format!("crate::rt::Seq<{inner}>"),
                (m, None) => format!("crate::rt::Seq<{inner}, {m}>"),
                (m, Some(x)) => format!("crate::rt::Seq<{inner}, {m}, {x}>"),
            })
        }
        _ => None,
    }
}

fn needs_ser(ty: &Ty) -> bool {
    match ty {
        Ty::Num { .. } => true,
        Ty::Array { item, .. } => needs_ser(item),
        _ => false,
    }
}

fn strategy(f: &mut FileOut, ty: &Ty) -> String {
    match ty {
        Ty::Str(Some(n)) => format!("any::<BoundedString<{n}>>()"),
        Ty::Str(None) => "any::<String>()".into(),
        Ty::DateTime => "any::<DateTime>()".into(),
        Ty::Uri => "crate::arb::uri()".into(),
        Ty::Int { min, max, .. } => {
            if min.is_none() && max.is_none() {
                "any::<i32>()".into()
            } else {
                let lo = min.unwrap_or(i64::from(i32::MIN)).max(i64::from(i32::MIN));
                let hi = max.unwrap_or(i64::from(i32::MAX)).min(i64::from(i32::MAX));
                format!("{lo}i32..={hi}")
            }
        }
        Ty::Num { min, max, tenths } => {
            let o = |v: &Option<i64>| v.map_or("None".to_owned(), |v| format!("Some({v})"));
            format!("crate::arb::decimal({}, {}, {tenths})", o(min), o(max))
        }
        Ty::Bool => "any::<bool>()".into(),
        Ty::Any => "crate::arb::json()".into(),
        Ty::Named(n) => {
            let _ = f.rust_ty(ty);
            format!("any::<{n}>()")
        }
        Ty::Array { item, min, max } => {
            let inner = strategy(f, item);
            let hi = max.unwrap_or(u64::MAX).min((*min).max(3));
            format!("proptest::collection::vec({inner}, {min}..={hi})")
        }
    }
}

fn emit_struct(f: &mut FileOut, def: &TypeDef, doc_head: Option<String>) {
    let Kind::Struct { fields, open } = &def.kind else {
        unreachable!()
    };
    let mut body = String::new();
    match doc_head {
        Some(head) => {
            let _ = writeln!(body, "/// {head}");
            let lines = def.doc.as_deref().map(doc_lines).unwrap_or_default();
            if !lines.is_empty() {
                body.push_str("///\n");
                push_doc(&mut body, "", def.doc.as_deref(), "");
            }
        }
        None => push_doc(
            &mut body,
            "",
            def.doc.as_deref(),
            &no_description(f.model.ver, &def.name),
        ),
    }
    let all_optional = fields.iter().all(|x| !x.required);
    let default = if all_optional { ", Default" } else { "" };
    let _ = writeln!(
        body,
        "#[derive(Debug, Clone, PartialEq{default}, Serialize, Deserialize)]"
    );
    if !open {
        // `remote = "Self"`: the derives become inherent functions, wrapped below so that only
        // a JSON object is accepted (serde would also take an array of field values).
        body.push_str("#[serde(remote = \"Self\", deny_unknown_fields)]\n");
    }
    let _ = writeln!(body, "pub struct {} {{", def.name);
    for field in fields {
        emit_field(f, &mut body, field);
    }
    if *open {
        body.push_str(
            "    /// Vendor-specific properties besides the ones above: this object is open to \
             extension (the schema does not set `additionalProperties: false`).\n    #[serde(flatten)]\n    \
             pub extra: serde_json::Map<String, serde_json::Value>,\n",
        );
    }
    body.push_str("}\n\n");
    if !open {
        let n = &def.name;
        let _ = write!(
            body,
            "impl Serialize for {n} {{\n    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {{\n        {n}::serialize(self, s)\n    }}\n}}\n\n\
             impl<'de> Deserialize<'de> for {n} {{\n    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {{\n        {n}::deserialize(crate::rt::MapOnly(d))\n    }}\n}}\n\n"
        );
    }

    // Constructor.
    let required: Vec<&Field> = fields.iter().filter(|x| x.required).collect();
    let _ = writeln!(body, "impl {} {{", def.name);
    if required.is_empty() {
        let _ = writeln!(
            body,
            "    /// Creates the value with every optional field `None` (`{}`).",
            def.name
        );
    } else {
        let _ = writeln!(
            body,
            "    /// Creates the value from its required fields; optional fields are `None` (`{}`).",
            def.name
        );
    }
    if required.len() > 7 {
        body.push_str("    #[allow(clippy::too_many_arguments)]\n");
    }
    let params: Vec<String> = required
        .iter()
        .map(|x| format!("{}: {}", x.name, f.rust_ty(&x.ty)))
        .collect();
    let _ = writeln!(body, "    pub fn new({}) -> Self {{", params.join(", "));
    let inits: Vec<String> = fields
        .iter()
        .map(|x| {
            if x.required {
                x.name.clone()
            } else {
                format!("{}: None", x.name)
            }
        })
        .chain(open.then(|| "extra: serde_json::Map::new()".to_owned()))
        .collect();
    let _ = writeln!(body, "        Self {{ {} }}", inits.join(", "));
    body.push_str("    }\n}\n\n");

    // Arbitrary.
    let mut strats: Vec<(String, String)> = fields
        .iter()
        .map(|x| {
            let s = strategy(f, &x.ty);
            let s = if x.required {
                s
            } else {
                format!("proptest::option::of({s})")
            };
            (x.name.clone(), s)
        })
        .collect();
    if *open {
        strats.push(("extra".into(), "crate::arb::extra()".into()));
    }
    let expr = if strats.is_empty() {
        "Just(Self {}).boxed()".to_owned()
    } else if strats.len() == 1 {
        format!(
            "{}.prop_map(|{}| Self {{ {} }}).boxed()",
            strats[0].1, strats[0].0, strats[0].0
        )
    } else {
        let chunks: Vec<&[(String, String)]> = strats.chunks(10).collect();
        let tup = |part: &[(String, String)], which: fn(&(String, String)) -> &String| {
            let items: Vec<&str> = part.iter().map(|p| which(p).as_str()).collect();
            if items.len() == 1 {
                format!("({},)", items[0])
            } else {
                format!("({})", items.join(", "))
            }
        };
        let (s, p) = if chunks.len() == 1 {
            (tup(chunks[0], |p| &p.1), tup(chunks[0], |p| &p.0))
        } else {
            let s: Vec<String> = chunks.iter().map(|c| tup(c, |p| &p.1)).collect();
            let p: Vec<String> = chunks.iter().map(|c| tup(c, |p| &p.0)).collect();
            (format!("({})", s.join(", ")), format!("({})", p.join(", ")))
        };
        let names: Vec<&str> = strats.iter().map(|p| p.0.as_str()).collect();
        format!(
            "{s}.prop_map(|{p}| Self {{ {} }}).boxed()",
            names.join(", ")
        )
    };
    let _ = write!(
        body,
        "#[cfg(feature = \"proptest\")]\nimpl proptest::arbitrary::Arbitrary for {} {{\n    \
         type Parameters = ();\n    type Strategy = proptest::strategy::BoxedStrategy<Self>;\n    \
         fn arbitrary_with(_: ()) -> Self::Strategy {{\n        use proptest::prelude::*;\n        \
         {expr}\n    }}\n}}\n\n",
        def.name
    );
    f.body.push_str(&body);
}

fn emit_field(f: &mut FileOut, out: &mut String, field: &Field) {
    let mut target = &field.ty;
    while let Ty::Array { item, .. } = target {
        target = item;
    }
    match (&field.doc, target) {
        (None, Ty::Named(n)) if n == "CustomDataType" => {
            out.push_str(
                "    /// Vendor-specific data, open to extension; see [`CustomDataType`].\n",
            );
        }
        (None, Ty::Named(n)) => {
            // No description of its own: the referenced type's first paragraph, and a link.
            let summary: Vec<String> = f.model.types[n]
                .doc
                .as_deref()
                .map(doc_lines)
                .unwrap_or_default()
                .into_iter()
                .take_while(|l| !l.is_empty())
                .collect();
            for l in &summary {
                let _ = writeln!(out, "    /// {l}");
            }
            if !summary.is_empty() {
                out.push_str("    ///\n");
            }
            let _ = writeln!(out, "    /// `{}`: see [`{n}`].", field.wire);
        }
        _ => push_doc(
            out,
            "    ",
            field.doc.as_deref(),
            &format!("The `{}` property.", field.wire),
        ),
    }
    let ty = f.rust_ty(&field.ty);
    let spec = spec(&field.ty);
    let mut attrs = vec![format!("rename = \"{}\"", field.wire)];
    if field.required {
        if let Some(s) = &spec {
            attrs.push(format!("deserialize_with = \"crate::rt::de::<_, {s}, _>\""));
            if needs_ser(&field.ty) {
                attrs.push(format!("serialize_with = \"crate::rt::ser::<{s}, _, _>\""));
            }
        }
        let _ = writeln!(out, "    #[serde({})]", attrs.join(", "));
        let _ = writeln!(out, "    pub {}: {ty},", field.name);
    } else {
        attrs.push("default".into());
        attrs.push("skip_serializing_if = \"Option::is_none\"".into());
        match &spec {
            None => attrs.push("deserialize_with = \"crate::rt::opt\"".into()),
            Some(s) => {
                attrs.push(format!(
                    "deserialize_with = \"crate::rt::de::<_, crate::rt::Opt<{s}>, _>\""
                ));
                if needs_ser(&field.ty) {
                    attrs.push(format!(
                        "serialize_with = \"crate::rt::ser::<crate::rt::Opt<{s}>, _, _>\""
                    ));
                }
            }
        }
        let _ = writeln!(out, "    #[serde({})]", attrs.join(", "));
        let _ = writeln!(out, "    pub {}: Option<{ty}>,", field.name);
    }
}

fn emit_enum(f: &mut FileOut, def: &TypeDef) {
    let Kind::Enum { values } = &def.kind else {
        unreachable!()
    };
    let n = &def.name;
    let mut b = String::new();
    push_doc(
        &mut b,
        "",
        def.doc.as_deref(),
        &no_description(f.model.ver, n),
    );
    b.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]\n");
    let _ = writeln!(b, "pub enum {n} {{");
    for (wire, ident) in values {
        let _ = writeln!(
            b,
            "    /// `{}`\n    #[serde(rename = \"{wire}\")]\n    {ident},",
            wire.replace('`', "")
        );
    }
    b.push_str("}\n\n");
    let _ = writeln!(b, "impl {n} {{");
    let _ = writeln!(b, "    /// Every value, in schema order.");
    let list: Vec<String> = values.iter().map(|(_, i)| format!("{n}::{i}")).collect();
    let _ = writeln!(
        b,
        "    pub const ALL: [{n}; {}] = [{}];",
        values.len(),
        list.join(", ")
    );
    b.push_str("\n    /// The value as written on the wire.\n    pub const fn as_str(self) -> &'static str {\n        match self {\n");
    for (wire, ident) in values {
        let _ = writeln!(b, "            {n}::{ident} => {wire:?},");
    }
    b.push_str("        }\n    }\n}\n\n");
    let _ = write!(
        b,
        "/// Reads the value from a JSON string only (a derived implementation would also accept\n/// `{{\"Value\": null}}`).\nimpl<'de> Deserialize<'de> for {n} {{\n    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {{\n        crate::rt::enum_str(d, {n:?}, |s| s.parse().ok())\n    }}\n}}\n\n"
    );
    let _ = write!(
        b,
        "impl std::fmt::Display for {n} {{\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n        f.write_str(self.as_str())\n    }}\n}}\n\n"
    );
    let _ = writeln!(
        b,
        "impl std::str::FromStr for {n} {{\n    type Err = crate::UnknownEnumValue;\n\n    /// Parses the exact wire value (case-sensitive).\n    fn from_str(s: &str) -> Result<Self, Self::Err> {{\n        match s {{"
    );
    for (wire, ident) in values {
        let _ = writeln!(b, "            {wire:?} => Ok({n}::{ident}),");
    }
    let _ = write!(
        b,
        "            _ => Err(crate::UnknownEnumValue {{ type_name: {n:?}, value: s.to_owned() }}),\n        }}\n    }}\n}}\n\n"
    );
    let _ = write!(
        b,
        "#[cfg(feature = \"proptest\")]\nimpl proptest::arbitrary::Arbitrary for {n} {{\n    type Parameters = ();\n    type Strategy = proptest::sample::Select<Self>;\n    fn arbitrary_with(_: ()) -> Self::Strategy {{\n        let all: &'static [Self] = &Self::ALL;\n        proptest::sample::select(all)\n    }}\n}}\n\n"
    );
    f.body.push_str(&b);
}

fn no_description(ver: Ver, name: &str) -> String {
    if ver == Ver::V16 {
        format!(
            "The OCPP 1.6 `{name}` type, named as in the specification (the 1.6 schemas carry no \
             descriptions)."
        )
    } else {
        format!("`{name}` (the schema gives no description).")
    }
}

fn emit_type(f: &mut FileOut, def: &TypeDef) {
    match def.kind {
        Kind::Struct { .. } => emit_struct(f, def, None),
        Kind::Enum { .. } => emit_enum(f, def),
    }
}

fn initiator_path(ver: Ver, action: &str) -> String {
    format!(
        "crate::Initiator::{}",
        tables::initiator(ver, action).expect("checked in build_model")
    )
}

fn kind_word(k: MsgKind) -> &'static str {
    match k {
        MsgKind::Request => "request (CALL payload)",
        MsgKind::Response => "response (CALLRESULT payload)",
        MsgKind::Send => "SEND payload (no response)",
    }
}

fn message_file(model: &Model, action: &str) -> Result<String, String> {
    let ver = model.ver;
    let msgs: Vec<&Message> = model
        .messages
        .iter()
        .filter(|m| m.action == action)
        .collect();
    let helpers: Vec<&TypeDef> = model
        .types
        .values()
        .filter(|t| model.home[&t.name].as_deref() == Some(action))
        .collect();
    let mut local: BTreeSet<String> = msgs.iter().map(|m| m.def.name.clone()).collect();
    local.extend(helpers.iter().map(|t| t.name.clone()));
    let mut f = FileOut::new(model, local);
    for m in &msgs {
        emit_struct(
            &mut f,
            &m.def,
            Some(format!(
                "The OCPP {} `{action}` {}.",
                ver.human(),
                kind_word(m.kind)
            )),
        );
    }
    for m in &msgs {
        let name = &m.def.name;
        let kind = match m.kind {
            MsgKind::Request => "Request",
            MsgKind::Response => "Response",
            MsgKind::Send => "Send",
        };
        let _ = write!(
            f.body,
            "impl crate::Message for {name} {{\n    const VERSION: crate::Version = crate::Version::{};\n    const ACTION: &'static str = {action:?};\n    const KIND: crate::MessageKind = crate::MessageKind::{kind};\n}}\n\n",
            ver.variant()
        );
        match m.kind {
            MsgKind::Request => {
                let _ = write!(
                    f.body,
                    "impl crate::Request for {name} {{\n    type Response = {action}Response;\n    type Any = crate::{v}::AnyRequest;\n    const INITIATOR: crate::Initiator = {};\n}}\n\n",
                    initiator_path(ver, action),
                    v = ver.dir()
                );
            }
            MsgKind::Response => {
                let _ = write!(
                    f.body,
                    "impl crate::Response for {name} {{\n    type Request = {action}Request;\n    type Any = crate::{v}::AnyResponse;\n}}\n\n",
                    v = ver.dir()
                );
            }
            MsgKind::Send => {
                let _ = write!(
                    f.body,
                    "impl crate::SendMessage for {name} {{\n    type Any = crate::{v}::AnySend;\n    const INITIATOR: crate::Initiator = {};\n}}\n\n",
                    initiator_path(ver, action),
                    v = ver.dir()
                );
            }
        }
    }
    for t in helpers {
        emit_type(&mut f, t);
    }
    let names: Vec<String> = msgs.iter().map(|m| format!("[`{}`]", m.def.name)).collect();
    let doc = format!(
        "The OCPP {} `{action}` action: {}.",
        ver.human(),
        names.join(" and ")
    );
    format(&f.finish(&doc))
}

fn type_file(model: &Model, def: &TypeDef) -> Result<String, String> {
    let mut f = FileOut::new(model, BTreeSet::from([def.name.clone()]));
    emit_type(&mut f, def);
    let what = match def.kind {
        Kind::Struct { .. } => "data type",
        Kind::Enum { .. } => "enumeration",
    };
    let doc = format!(
        "The OCPP {} {what} [`{}`], shared by several actions.",
        model.ver.human(),
        def.name
    );
    format(&f.finish(&doc))
}

fn mod_name(name: &str) -> String {
    name.to_snake_case()
}

/// Every file of one version.
pub fn version_files(model: &Model) -> Result<Vec<(PathBuf, String)>, String> {
    let dir = PathBuf::from("src").join(model.ver.dir());
    let mut out = Vec::new();
    let mut mods = BTreeSet::new();
    for a in &model.actions {
        let m = mod_name(a);
        if !mods.insert(format!("messages::{m}")) {
            return Err(format!("module name {m} collides"));
        }
        out.push((
            dir.join("messages").join(format!("{m}.rs")),
            message_file(model, a)?,
        ));
    }
    let shared: Vec<&TypeDef> = model
        .types
        .values()
        .filter(|t| model.home[&t.name].is_none())
        .collect();
    for t in &shared {
        let m = mod_name(&t.name);
        if !mods.insert(format!("types::{m}")) {
            return Err(format!("module name {m} collides"));
        }
        out.push((
            dir.join("types").join(format!("{m}.rs")),
            type_file(model, t)?,
        ));
    }
    out.push((dir.join("mod.rs"), format(&mod_rs(model, &shared))?));
    Ok(out)
}

fn mod_rs(model: &Model, shared: &[&TypeDef]) -> String {
    let ver = model.ver;
    let h = ver.human();
    let mut s = String::from(HEADER);
    s.push('\n');
    let title = match ver {
        Ver::V16 => {
            "OCPP 1.6 J, with the messages of the OCPP 1.6 security whitepaper (edition 3)."
        }
        Ver::V201 => "OCPP 2.0.1.",
        Ver::V21 => "OCPP 2.1.",
    };
    let _ = writeln!(
        s,
        "//! {title}\n//!\n//! Every action has one module in [`messages`] with its request and response (and the types\n//! only that action uses); data types and enumerations used by several actions have one\n//! module each in [`types`]. Everything is re-exported here, so `ocpp_types::{}::X` names\n//! any type. [`Action`] lists the actions; [`AnyRequest`] and [`AnyResponse`] hold any payload.",
        ver.dir()
    );
    if ver == Ver::V16 {
        s.push_str("//!\n//! OCPP 1.6's schemas have no named definitions: the inline objects and enumerations are named\n//! as in the OCPP 1.6 specification (`IdTagInfo`, `ChargePointStatus`, `MeterValue`, ...).\n");
    } else {
        s.push_str("//!\n//! Data types keep the schema definition names (`IdTokenType`, `ChargingStateEnumType`, ...).\n");
    }
    s.push_str("\n#![allow(clippy::large_enum_variant, clippy::enum_variant_names)]\n\n");
    s.push_str(
        "/// One module per action: its request and response payloads.\npub mod messages {\n",
    );
    for a in &model.actions {
        let _ = writeln!(s, "    pub mod {};", mod_name(a));
    }
    s.push_str("}\n\n/// Data types and enumerations used by several actions, one module each.\npub mod types {\n");
    for t in shared {
        let _ = writeln!(s, "    pub mod {};", mod_name(&t.name));
    }
    s.push_str("}\n\n");
    for a in &model.actions {
        let _ = writeln!(s, "pub use messages::{}::*;", mod_name(a));
    }
    for t in shared {
        let _ = writeln!(s, "pub use types::{}::*;", mod_name(&t.name));
    }
    s.push('\n');

    // Action.
    let sends: Vec<&String> = model
        .actions
        .iter()
        .filter(|a| {
            model
                .messages
                .iter()
                .any(|m| &m.action == *a && m.kind == MsgKind::Send)
        })
        .collect();
    let calls: Vec<&String> = model
        .actions
        .iter()
        .filter(|a| !sends.contains(a))
        .collect();
    let _ = writeln!(
        s,
        "/// Every OCPP {h} action.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum Action {{"
    );
    for a in &model.actions {
        let who = match tables::initiator(ver, a) {
            Some("ChargingStation") => "sent by the charging station",
            Some("CentralSystem") => "sent by the central system",
            _ => "sent by either side",
        };
        let what = if sends.contains(&a) {
            "a SEND message without response"
        } else {
            "a request"
        };
        let _ = writeln!(s, "    /// `{a}`: {what}, {who}.\n    {a},");
    }
    s.push_str("}\n\n");
    let all: Vec<String> = model
        .actions
        .iter()
        .map(|a| format!("Action::{a}"))
        .collect();
    let _ = writeln!(
        s,
        "impl Action {{\n    /// Every action, in alphabetical order.\n    pub const ALL: [Action; {}] = [{}];\n",
        all.len(),
        all.join(", ")
    );
    s.push_str("    /// The action name on the wire.\n    pub const fn as_str(self) -> &'static str {\n        match self {\n");
    for a in &model.actions {
        let _ = writeln!(s, "            Action::{a} => {a:?},");
    }
    s.push_str("        }\n    }\n\n    /// Which side sends the request (or SEND message), from the specification.\n    pub const fn initiator(self) -> crate::Initiator {\n        match self {\n");
    for a in &model.actions {
        let _ = writeln!(s, "            Action::{a} => {},", initiator_path(ver, a));
    }
    s.push_str("        }\n    }\n\n    /// Whether the action is a CALL answered by a CALLRESULT (`false` for 2.1's SEND messages).\n    pub const fn has_response(self) -> bool {\n");
    if sends.is_empty() {
        s.push_str("        true\n");
    } else {
        let pats: Vec<String> = sends.iter().map(|a| format!("Action::{a}")).collect();
        let _ = writeln!(s, "        !matches!(self, {})", pats.join(" | "));
    }
    s.push_str("    }\n}\n\n");
    s.push_str("impl std::fmt::Display for Action {\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n        f.write_str(self.as_str())\n    }\n}\n\n");
    action_from_name(&mut s, &model.actions);
    let _ = write!(
        s,
        "impl std::str::FromStr for Action {{\n    type Err = crate::UnknownAction;\n\n    /// Parses the exact action name (case-sensitive).\n    fn from_str(s: &str) -> Result<Self, Self::Err> {{\n        Action::from_name(s).ok_or_else(|| crate::UnknownAction {{ version: crate::Version::{}, action: s.to_owned() }})\n    }}\n}}\n\n",
        ver.variant()
    );

    any_enum(
        &mut s,
        model,
        "AnyRequest",
        "request",
        "Request",
        &calls,
        &sends,
    );
    any_enum(
        &mut s,
        model,
        "AnyResponse",
        "response",
        "Response",
        &calls,
        &sends,
    );
    s.push_str("/// Decodes a boxed payload straight into its box, in a stack frame of its own, so the\n/// dispatch that calls it keeps a small frame: decoding a Heartbeat does not reserve the\n/// stack of the largest message.\n#[inline(never)]\nfn from_str_boxed<T: serde::de::DeserializeOwned>(json: &str) -> Result<Box<T>, serde_json::Error> {\n    serde_json::from_str(json).map(Box::new)\n}\n\n");
    if !sends.is_empty() {
        any_enum(&mut s, model, "AnySend", "SEND message", "", &sends, &calls);
        s.push_str("fn no_payload(action: Action, kind: &str) -> serde_json::Error {\n    <serde_json::Error as serde::de::Error>::custom(format_args!(\"OCPP action {action} has no {kind} payload\"))\n}\n\n");
    }

    // decode_payload
    let _ = writeln!(
        s,
        "/// Decodes `json` as the `kind` payload of `action` (OCPP {h}), discarding the result: the\n/// typed check behind [`crate::decode_payload`].\npub fn decode_payload(action: &str, kind: crate::MessageKind, json: &str) -> Result<(), crate::PayloadError> {{\n    let unknown = || crate::PayloadError::UnknownAction(action.to_owned());\n    let action: Action = action.parse().map_err(|_| unknown())?;\n    match (kind, action.has_response()) {{\n        (crate::MessageKind::Request, true) => {{\n            AnyRequest::from_json(action, json)?;\n        }}\n        (crate::MessageKind::Response, true) => {{\n            AnyResponse::from_json(action, json)?;\n        }}"
    );
    if !sends.is_empty() {
        s.push_str("        (crate::MessageKind::Send, false) => {\n            AnySend::from_json(action, json)?;\n        }\n");
    }
    s.push_str("        _ => return Err(unknown()),\n    }\n    Ok(())\n}\n");
    s
}

/// `Action::from_name`: the name's length picks a few candidates, one byte of the name (at
/// the position where those candidates differ most) picks one, and one comparison of the whole
/// name confirms it. An unknown name costs a length switch and at most a byte test and a
/// comparison; a known one never walks a list of names.
fn action_from_name(s: &mut String, actions: &[String]) {
    let mut by_len: BTreeMap<usize, Vec<&String>> = BTreeMap::new();
    for a in actions {
        by_len.entry(a.len()).or_default().push(a);
    }
    s.push_str("impl Action {\n    /// The action named `name` (exact, case-sensitive), if there is one: a switch on the\n    /// length, then on one byte of the name, then one comparison of the whole name.\n    pub fn from_name(name: &str) -> Option<Action> {\n        let b = name.as_bytes();\n        match b.len() {\n");
    for (len, names) in &by_len {
        // The position whose byte tells the most names of this length apart (the first such).
        let at = (0..*len)
            .max_by_key(|&i| {
                let distinct: BTreeSet<u8> = names.iter().map(|n| n.as_bytes()[i]).collect();
                (distinct.len(), std::cmp::Reverse(i))
            })
            .unwrap_or(0);
        let _ = writeln!(s, "            {len} => match b[{at}] {{");
        for n in names {
            let c = n.as_bytes()[at] as char;
            let _ = writeln!(
                s,
                "                b'{c}' if name == {n:?} => Some(Action::{n}),"
            );
        }
        s.push_str("                _ => None,\n            },\n");
    }
    s.push_str("            _ => None,\n        }\n    }\n}\n\n");
}

/// Variants whose payload is estimated larger than this many bytes are boxed in the `Any*`
/// enums, so the enums stay small (a test in ocpp-types measures them with `size_of`).
const BOX_ABOVE: usize = 64;

/// A rough, conservative `size_of` of a field's Rust type (64-bit target; `serde_json`'s map
/// counted as the `BTreeMap` it is without `preserve_order`).
fn ty_size(model: &Model, ty: &Ty, required: bool) -> usize {
    let (size, niche) = match ty {
        Ty::Str(_) | Ty::Uri | Ty::Array { .. } => (24, true),
        Ty::DateTime => (16, false),
        Ty::Int { .. } => (4, false),
        Ty::Num { .. } => (16, false),
        Ty::Bool => (1, true),
        Ty::Any => (32, true),
        Ty::Named(n) => match model.types.get(n) {
            Some(def) => def_size(model, def),
            None => (8, false),
        },
    };
    match (required, niche) {
        (true, _) | (false, true) => size,
        (false, false) => size + size.min(8),
    }
}

/// The estimated size of a generated type, and whether `Option` of it needs no extra space.
fn def_size(model: &Model, def: &TypeDef) -> (usize, bool) {
    match &def.kind {
        Kind::Enum { .. } => (1, true),
        Kind::Struct { fields, open } => {
            let mut size: usize = fields
                .iter()
                .map(|f| ty_size(model, &f.ty, f.required))
                .sum();
            if *open {
                size += 24;
            }
            let niche = *open
                || fields
                    .iter()
                    .any(|f| matches!(f.ty, Ty::Str(_) | Ty::Uri | Ty::Array { .. }) && f.required);
            (size.div_ceil(8) * 8, niche)
        }
    }
}

fn any_enum(
    s: &mut String,
    model: &Model,
    name: &str,
    what: &str,
    suffix: &str,
    with: &[&String],
    without: &[&String],
) {
    let h = model.ver.human();
    let kind = match suffix {
        "Request" => MsgKind::Request,
        "Response" => MsgKind::Response,
        _ => MsgKind::Send,
    };
    let boxed = |a: &str| {
        model
            .messages
            .iter()
            .find(|m| m.action == a && m.kind == kind)
            .is_some_and(|m| def_size(model, &m.def).0 > BOX_ABOVE)
    };
    let _ = writeln!(
        s,
        "/// Any OCPP {h} {what} payload, typed.\n///\n/// Payloads larger than {BOX_ABOVE} bytes are boxed, so the enum stays small and a small\n/// message does not move the largest one's size. Build one with `From` (or\n/// [`crate::{}::into_any`]) and take the payload back with `TryFrom`; `From<Box<T>> for T`\n/// unboxes a matched payload whatever its variant.\n#[derive(Debug, Clone, PartialEq)]\npub enum {name} {{",
        match kind {
            MsgKind::Request => "Request",
            MsgKind::Response => "Response",
            MsgKind::Send => "SendMessage",
        }
    );
    for a in with {
        if boxed(a) {
            let _ = writeln!(
                s,
                "    /// The `{a}` {what} (boxed).\n    {a}(Box<{a}{suffix}>),"
            );
        } else {
            let _ = writeln!(s, "    /// The `{a}` {what}.\n    {a}({a}{suffix}),");
        }
    }
    s.push_str("}\n\n");
    let _ = writeln!(s, "impl {name} {{\n    /// The action this payload belongs to.\n    pub fn action(&self) -> Action {{\n        match self {{");
    for a in with {
        let _ = writeln!(s, "            {name}::{a}(_) => Action::{a},");
    }
    s.push_str("        }\n    }\n\n");
    let _ = writeln!(
        s,
        "    /// Decodes the {what} payload of `action` from JSON text.\n    pub fn from_json(action: Action, json: &str) -> Result<Self, serde_json::Error> {{\n        Self::from_json_into(action, json, |p| p)\n    }}\n"
    );
    for (func, arg, call) in [
        ("from_json_into", "json: &str", "serde_json::from_str(json)"),
        (
            "from_value",
            "value: serde_json::Value",
            "serde_json::from_value(value)",
        ),
    ] {
        let (open, close) = if func == "from_json_into" {
            ("wrap(", ")")
        } else {
            ("", "")
        };
        if func == "from_json_into" {
            let _ = writeln!(
                s,
                "    /// [`{name}::from_json`], handing the payload to `wrap` in the arm that decoded it:\n    /// a caller that puts it in another enum (`TypedRequest`, `TypedResponse`) builds\n    /// that value in place, with one dispatch on the action.\n    #[inline(always)]\n    pub(crate) fn from_json_into<T>(action: Action, {arg}, wrap: impl FnOnce(Self) -> T) -> Result<T, serde_json::Error> {{\n        Ok(match action {{"
            );
        } else {
            let _ = writeln!(
                s,
                "    /// Decodes the {what} payload of `action` from a JSON value.\n    pub fn {func}(action: Action, {arg}) -> Result<Self, serde_json::Error> {{\n        Ok(match action {{"
            );
        }
        for a in with {
            if boxed(a) && func == "from_json_into" {
                let _ = writeln!(
                    s,
                    "            Action::{a} => {open}{name}::{a}(from_str_boxed(json)?){close},"
                );
            } else if boxed(a) {
                let _ = writeln!(
                    s,
                    "            Action::{a} => {open}{name}::{a}(Box::new({call}?)){close},"
                );
            } else {
                let _ = writeln!(
                    s,
                    "            Action::{a} => {open}{name}::{a}({call}?){close},"
                );
            }
        }
        if !without.is_empty() {
            let pats: Vec<String> = without.iter().map(|a| format!("Action::{a}")).collect();
            let _ = writeln!(
                s,
                "            {} => return Err(no_payload(action, {what:?})),",
                pats.join(" | ")
            );
        }
        s.push_str("        })\n    }\n\n");
    }
    for (func, ret, call) in [
        ("to_json", "String", "serde_json::to_string(p)"),
        ("to_value", "serde_json::Value", "serde_json::to_value(p)"),
    ] {
        let dst = if func == "to_json" {
            "JSON text"
        } else {
            "a JSON value"
        };
        let _ = writeln!(
            s,
            "    /// Encodes the payload as {dst}.\n    pub fn {func}(&self) -> {ret} {{\n        match self {{"
        );
        for a in with {
            let _ = writeln!(s, "            {name}::{a}(p) => {call},");
        }
        s.push_str("        }\n        .expect(\"OCPP payloads always serialize\")\n    }\n\n");
    }
    s.push_str("}\n\n");
    for a in with {
        let t = format!("{a}{suffix}");
        let (wrap, unwrap) = if boxed(a) {
            ("Box::new(p)", "*p")
        } else {
            ("p", "p")
        };
        let _ = writeln!(
            s,
            "impl From<{t}> for {name} {{\n    fn from(p: {t}) -> Self {{\n        {name}::{a}({wrap})\n    }}\n}}\n"
        );
        let fallback = if with.len() > 1 {
            format!(
                "            other => Err(crate::UnexpectedMessage {{ expected: (crate::Version::{v}, Some({a:?})), found: (crate::Version::{v}, other.action().as_str()) }}),\n",
                v = model.ver.variant()
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "impl TryFrom<{name}> for {t} {{\n    type Error = crate::UnexpectedMessage;\n\n    fn try_from(any: {name}) -> Result<Self, Self::Error> {{\n        match any {{\n            {name}::{a}(p) => Ok({unwrap}),\n{fallback}        }}\n    }}\n}}\n"
        );
        if boxed(a) {
            let _ = writeln!(
                s,
                "impl From<Box<{t}>> for {t} {{\n    fn from(p: Box<{t}>) -> Self {{\n        *p\n    }}\n}}\n"
            );
        }
    }
}

/// The round-trip property test over every message type.
pub fn roundtrip_test(models: &[Model]) -> String {
    let mut s = String::from(HEADER);
    s.push_str(
        r#"
//! For every generated message type of every version: values drawn from its `Arbitrary`
//! strategy serialize to JSON the official schema accepts, and deserialize back to an equal
//! value. It lives in ocpp-schemas (whose dev-dependency turns on ocpp-types' `proptest`
//! feature) because it needs both the types and the schemas.

use ocpp_types::Message;
use proptest::arbitrary::{any, Arbitrary};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn roundtrip<T: Message + Arbitrary>() {
    let schema = ocpp_schemas::schema(T::VERSION, T::ACTION, T::KIND).expect("schema exists");
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&any::<T>(), |value| {
        let json = serde_json::to_string(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Err(violations) = schema.validate(&parsed) {
            return Err(TestCaseError::fail(format!(
                "{json} violates {}: {violations:?}",
                schema.file_name()
            )));
        }
        let back: T = serde_json::from_str(&json)
            .map_err(|e| TestCaseError::fail(format!("{json} does not decode: {e}")))?;
        if back != value {
            return Err(TestCaseError::fail(format!("{json} decodes to {back:?}")));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{} {} {}: {e}", T::VERSION, T::ACTION, T::KIND);
    }
}

"#,
    );
    for m in models {
        for msg in &m.messages {
            let _ = writeln!(
                s,
                "#[cfg(feature = \"{v}\")]\n#[test]\nfn {v}_{t}() {{\n    roundtrip::<ocpp_types::{v}::{n}>();\n}}\n",
                v = m.ver.dir(),
                t = msg.def.name.to_snake_case(),
                n = msg.def.name
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_are_rustdoc_safe() {
        assert_eq!(
            doc_lines(
                "See [RFC5646] <b>.\r\nurn:x-oca:ocpp:uid:1:569\r\n\r\n  Indented https://x.org/a."
            ),
            vec![
                "See \\[RFC5646\\] \\<b\\>.".to_owned(),
                String::new(),
                "Indented <https://x.org/a>.".to_owned()
            ]
        );
    }
}
