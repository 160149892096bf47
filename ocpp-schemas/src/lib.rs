//! The official OCPP-J JSON schemas, embedded verbatim, and a compiled, cached validator.
//!
//! Every schema file published by the Open Charge Alliance for OCPP 1.6 (with the security
//! whitepaper messages), 2.0.1 and 2.1 is compiled into this crate with `include_str!`, exactly
//! as shipped (their SHA-256 sums are checked by this crate's tests). Look a schema up by
//! version, action and [`MessageKind`]; validate a payload against it and get every violation
//! with its JSON pointer and the RPC error code that version's peer expects.
//!
//! ```
//! use ocpp_schemas::{MessageKind, Version};
//! use serde_json::json;
//!
//! let schema = ocpp_schemas::schema(Version::V16, "Heartbeat", MessageKind::Response).unwrap();
//! let err = schema.validate(&json!({"currentTime": 12})).unwrap_err();
//! assert_eq!(err[0].pointer, "/currentTime");
//! assert_eq!(err[0].code().as_str(Version::V16), "TypeConstraintViolation");
//! ```
//!
//! # Violation to RPC error code
//!
//! | JSON Schema keyword | meaning | 2.0.1 / 2.1 code | 1.6 code |
//! |---|---|---|---|
//! | `type` | a value of the wrong JSON type | `TypeConstraintViolation` | `TypeConstraintViolation` |
//! | `required` | a required property is missing | `OccurrenceConstraintViolation` | `OccurenceConstraintViolation` |
//! | `minItems`, `maxItems` | an array with too few or too many items | `OccurrenceConstraintViolation` | `OccurenceConstraintViolation` |
//! | `additionalProperties` | a property the message does not define | `FormatViolation` | `FormationViolation` |
//! | `enum` | a value outside the enumeration | `PropertyConstraintViolation` | `PropertyConstraintViolation` |
//! | `maxLength` | a string longer than its data type allows (in characters; `string[20]`, `CiString20Type`) | `TypeConstraintViolation` | `TypeConstraintViolation` |
//! | `minimum`, `maximum`, `multipleOf` | a number out of range or off its step | `PropertyConstraintViolation` | `PropertyConstraintViolation` |
//! | `format` (`date-time`, `uri`) | a string not in the required format | `PropertyConstraintViolation` | `PropertyConstraintViolation` |
//! | any other keyword | (not used by the official schemas) | `FormatViolation` | `FormationViolation` |
//!
//! The length of a string is part of its OCPP data type (`string[20]`, `CiString20Type`), so an
//! over-long string is a type violation, as the Python `ocpp` library also answers it.
//!
//! The 1.6 spellings (`FormationViolation`, `OccurenceConstraintViolation`) are the ones the
//! OCPP 1.6 specification publishes, typos included; 2.x peers get the corrected words.
//! When a payload has several violations, [`ViolationCode::for_violations`] picks one code for the
//! reply, preferring the most structural problem (format, then occurrence, then type, then property).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

include!(concat!(env!("OUT_DIR"), "/files.rs"));

/// The version and payload kind types are ocpp-types' own, re-exported here so a schema is
/// looked up with the same values the generated types carry.
pub use ocpp_types::{MessageKind, UnknownVersion, Version};

/// One embedded schema file.
pub struct Schema {
    version: Version,
    action: &'static str,
    kind: MessageKind,
    file_name: &'static str,
    text: &'static str,
    json: OnceLock<Value>,
    validator: OnceLock<Result<jsonschema::Validator, String>>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("version", &self.version)
            .field("action", &self.action)
            .field("kind", &self.kind)
            .field("file_name", &self.file_name)
            .finish_non_exhaustive()
    }
}

/// Why a schema could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// No schema for this version, action and kind (or its version's feature is off).
    #[error("OCPP {version} has no {kind} schema for action {action:?}")]
    NotFound {
        /// The version asked for.
        version: Version,
        /// The action asked for.
        action: String,
        /// The kind asked for.
        kind: MessageKind,
    },
    /// The embedded schema did not compile (never happens with the official files; tested).
    #[error("schema {file} does not compile: {reason}")]
    Compile {
        /// The schema's file name.
        file: &'static str,
        /// What the compiler said.
        reason: String,
    },
}

impl Schema {
    /// The OCPP version of this schema.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The action, e.g. `"BootNotification"`.
    pub fn action(&self) -> &'static str {
        self.action
    }

    /// Request, response or SEND payload.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The file name inside the version's folder, e.g. `"BootNotificationResponse.json"`.
    pub fn file_name(&self) -> &'static str {
        self.file_name
    }

    /// The file's text, byte for byte as published.
    pub fn text(&self) -> &'static str {
        self.text
    }

    /// The schema parsed as JSON (parsed once, on first use).
    pub fn json(&self) -> &Value {
        self.json.get_or_init(|| {
            // The official files are valid JSON; a test parses every one of them.
            serde_json::from_str(self.text).unwrap_or(Value::Null)
        })
    }

    /// The compiled validator (compiled once, on first use, thread-safe).
    pub fn validator(&self) -> Result<&jsonschema::Validator, SchemaError> {
        self.validator
            .get_or_init(|| {
                jsonschema::options()
                    .should_validate_formats(true)
                    .build(self.json())
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|reason| SchemaError::Compile {
                file: self.file_name,
                reason: reason.clone(),
            })
    }

    /// Whether `instance` satisfies the schema.
    pub fn is_valid(&self, instance: &Value) -> bool {
        self.validator().is_ok_and(|v| v.is_valid(instance))
    }

    /// Validates `instance`, reporting every violation (an empty list never comes back as `Err`).
    pub fn validate(&self, instance: &Value) -> Result<(), Vec<Violation>> {
        let validator = match self.validator() {
            Ok(v) => v,
            Err(e) => {
                return Err(vec![Violation {
                    pointer: String::new(),
                    keyword: Keyword::Other("schema".into()),
                    message: e.to_string(),
                }])
            }
        };
        let violations: Vec<Violation> = validator
            .iter_errors(instance)
            .map(|e| Violation {
                pointer: e.instance_path().to_string(),
                keyword: Keyword::from_schema_path(&e.schema_path().to_string()),
                message: e.to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

/// The JSON Schema keyword a payload violated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Keyword {
    /// `type`.
    Type,
    /// `required`.
    Required,
    /// `additionalProperties`.
    AdditionalProperties,
    /// `enum`.
    Enum,
    /// `maxLength`.
    MaxLength,
    /// `minimum`.
    Minimum,
    /// `maximum`.
    Maximum,
    /// `multipleOf`.
    MultipleOf,
    /// `minItems`.
    MinItems,
    /// `maxItems`.
    MaxItems,
    /// `format`.
    Format,
    /// Any other keyword, by name.
    Other(String),
}

impl Keyword {
    fn from_schema_path(path: &str) -> Keyword {
        let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
        // `required` errors point at the keyword itself; others may end in an index.
        let last = if last.bytes().all(|b| b.is_ascii_digit()) {
            path.rsplit('/').nth(1).unwrap_or(last)
        } else {
            last
        };
        match last {
            "type" => Keyword::Type,
            "required" => Keyword::Required,
            "additionalProperties" => Keyword::AdditionalProperties,
            "enum" => Keyword::Enum,
            "maxLength" => Keyword::MaxLength,
            "minimum" => Keyword::Minimum,
            "maximum" => Keyword::Maximum,
            "multipleOf" => Keyword::MultipleOf,
            "minItems" => Keyword::MinItems,
            "maxItems" => Keyword::MaxItems,
            "format" => Keyword::Format,
            other => Keyword::Other(other.to_owned()),
        }
    }

    /// The RPC error code this violation calls for (see the crate docs' table).
    pub fn code(&self) -> ViolationCode {
        match self {
            Keyword::Type | Keyword::MaxLength => ViolationCode::TypeConstraint,
            Keyword::Required | Keyword::MinItems | Keyword::MaxItems => {
                ViolationCode::OccurrenceConstraint
            }
            Keyword::AdditionalProperties | Keyword::Other(_) => ViolationCode::Format,
            Keyword::Enum
            | Keyword::Minimum
            | Keyword::Maximum
            | Keyword::MultipleOf
            | Keyword::Format => ViolationCode::PropertyConstraint,
        }
    }
}

/// One way a payload breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) to the offending value in the payload; `""` is the payload itself.
    pub pointer: String,
    /// The keyword that failed.
    pub keyword: Keyword,
    /// A human-readable description from the validator.
    pub message: String,
}

impl Violation {
    /// The RPC error code this violation calls for.
    pub fn code(&self) -> ViolationCode {
        self.keyword.code()
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// The four CALLERROR codes a payload that breaks its schema can earn.
///
/// Spelled per version by [`ViolationCode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationCode {
    /// Not conform to the message's structure (unknown property): 2.x `FormatViolation`,
    /// 1.6 `FormationViolation`.
    Format,
    /// A required field missing, or an array of the wrong size: 2.x `OccurrenceConstraintViolation`,
    /// 1.6 `OccurenceConstraintViolation`.
    OccurrenceConstraint,
    /// A value of the wrong data type: `TypeConstraintViolation`.
    TypeConstraint,
    /// A value of the right type but not allowed: `PropertyConstraintViolation`.
    PropertyConstraint,
}

impl ViolationCode {
    /// The error code as the given version spells it on the wire.
    pub const fn as_str(self, version: Version) -> &'static str {
        match (self, version) {
            (ViolationCode::Format, Version::V16) => "FormationViolation",
            (ViolationCode::Format, _) => "FormatViolation",
            (ViolationCode::OccurrenceConstraint, Version::V16) => "OccurenceConstraintViolation",
            (ViolationCode::OccurrenceConstraint, _) => "OccurrenceConstraintViolation",
            (ViolationCode::TypeConstraint, _) => "TypeConstraintViolation",
            (ViolationCode::PropertyConstraint, _) => "PropertyConstraintViolation",
        }
    }

    /// The one code to answer a payload with these violations: the most structural one
    /// (format, then occurrence, then type, then property). `None` for an empty list.
    pub fn for_violations(violations: &[Violation]) -> Option<ViolationCode> {
        violations.iter().map(Violation::code).min()
    }
}

#[cfg_attr(
    not(any(feature = "v16", feature = "v201", feature = "v21")),
    allow(dead_code)
)]
fn build_table(version: Version, files: &'static [(&'static str, &'static str)]) -> Vec<Schema> {
    let mut table: Vec<Schema> = files
        .iter()
        .map(|&(file_name, text)| {
            let stem = file_name.strip_suffix(".json").unwrap_or(file_name);
            let (action, kind) = if let Some(a) = stem.strip_suffix("Response") {
                (a, MessageKind::Response)
            } else if let Some(a) = stem.strip_suffix("Request") {
                (a, MessageKind::Request)
            } else if version == Version::V16 {
                // 1.6 request files carry no `Request` suffix.
                (stem, MessageKind::Request)
            } else {
                // 2.1's SEND message (NotifyPeriodicEventStream) has neither suffix.
                (stem, MessageKind::Send)
            };
            Schema {
                version,
                action,
                kind,
                file_name,
                text,
                json: OnceLock::new(),
                validator: OnceLock::new(),
            }
        })
        .collect();
    table.sort_by(|a, b| (a.action, a.kind).cmp(&(b.action, b.kind)));
    table
}

/// Every embedded schema of a version, sorted by action then kind. Empty when the version's
/// cargo feature is off.
pub fn schemas(version: Version) -> &'static [Schema] {
    match version {
        Version::V16 => {
            #[cfg(feature = "v16")]
            {
                static T: OnceLock<Vec<Schema>> = OnceLock::new();
                T.get_or_init(|| build_table(Version::V16, FILES_V16))
            }
            #[cfg(not(feature = "v16"))]
            {
                &[]
            }
        }
        Version::V201 => {
            #[cfg(feature = "v201")]
            {
                static T: OnceLock<Vec<Schema>> = OnceLock::new();
                T.get_or_init(|| build_table(Version::V201, FILES_V201))
            }
            #[cfg(not(feature = "v201"))]
            {
                &[]
            }
        }
        Version::V21 => {
            #[cfg(feature = "v21")]
            {
                static T: OnceLock<Vec<Schema>> = OnceLock::new();
                T.get_or_init(|| build_table(Version::V21, FILES_V21))
            }
            #[cfg(not(feature = "v21"))]
            {
                &[]
            }
        }
        #[allow(unreachable_patterns)]
        _ => &[],
    }
}

/// The schema for a version, action and kind, if there is one.
pub fn schema(version: Version, action: &str, kind: MessageKind) -> Option<&'static Schema> {
    let table = schemas(version);
    table
        .binary_search_by(|s| (s.action, s.kind).cmp(&(action, kind)))
        .ok()
        .map(|i| &table[i])
}

/// The actions of a version, each once, sorted.
pub fn actions(version: Version) -> impl Iterator<Item = &'static str> {
    let table = schemas(version);
    table
        .iter()
        .enumerate()
        .filter(move |(i, s)| *i == 0 || table[i - 1].action != s.action)
        .map(|(_, s)| s.action)
}

/// Validates `instance` as the `kind` payload of `action` in `version`.
///
/// `Ok(())` when it conforms; the list of violations otherwise. An unknown action or kind is a
/// [`SchemaError::NotFound`].
pub fn validate(
    version: Version,
    action: &str,
    kind: MessageKind,
    instance: &Value,
) -> Result<Result<(), Vec<Violation>>, SchemaError> {
    let schema = schema(version, action, kind).ok_or_else(|| SchemaError::NotFound {
        version,
        action: action.to_owned(),
        kind,
    })?;
    schema.validator()?;
    Ok(schema.validate(instance))
}
