//! The 2.x device model (OCPP 2.0.1 / 2.1 part 1 §4 "Device model", part 2 block B
//! "Provisioning"): components, variables, their attributes and characteristics, over the
//! station's [`Settings`](crate::Settings) and its live state.
//!
//! - A **component** is a name, an optional instance, and for `EVSE` / `Connector` the EVSE
//!   (and connector) it is ([`ComponentKey`]). A **variable** is a name and an optional
//!   instance ([`VariableKey`]).
//! - Each variable has one to four **attributes** ([`Attribute`]: `Actual`, `Target`,
//!   `MinSet`, `MaxSet`), each with its value, its [`Mutability`] and the `persistent` and
//!   `constant` flags, and one set of **characteristics** ([`Characteristics`]: unit, data
//!   type, limits, the list of allowed values, whether it can be monitored).
//! - The controllers' variables are the settings table (`V2X_VARIABLES` in
//!   [`crate::settings`]); `ChargingStation`, `EVSE` and `Connector` variables are computed
//!   from the station: `AvailabilityState`, `Available`, `Problem` and (EVSE, station)
//!   `Power`, whose `Actual` is the meter's power, `Target` the charging limit the smart
//!   charging gave the hardware, `MaxSet` the hardware's limit.
//!
//! The built-in answers (GetVariables, SetVariables, GetBaseReport, GetReport, for 2.0.1 and
//! 2.1 alike) are here; a value is checked against its characteristics before it is set
//! ([`Settings::set_at`](crate::Settings::set_at)): an integer within `minLimit..=maxLimit`,
//! a boolean, an `OptionList` value from its `valuesList`, a `MemberList` / `SequenceList` of
//! members from it without repeats.
//!
//! Bounds (each a read-only variable of `DeviceDataCtrlr`):
//!
//! | what | bound | beyond it |
//! |---|---|---|
//! | items of a GetVariables | `ItemsPerMessage[GetVariables]` (50) | CALLERROR `OccurrenceConstraintViolation`, nothing read (B06.FR.16) |
//! | items of a SetVariables | `ItemsPerMessage[SetVariables]` (50) | CALLERROR `OccurrenceConstraintViolation`, nothing set |
//! | `componentVariable` entries of a GetReport | `ItemsPerMessage[GetReport]` (20) | CALLERROR `OccurrenceConstraintViolation` |
//! | report items per NotifyReport | `ItemsPerMessage[GetReport]` (20) | the report is split: `seqNo` 0, 1, ..., `tbc` on all but the last |
//! | NotifyReports waiting | [`MAX_QUEUED_CALLS`](crate::station::MAX_QUEUED_CALLS) | GetBaseReport / GetReport `Rejected` |

use std::time::Instant;

use ocpp_codec::ErrorCode;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{CallError, Context};
use crate::central::After;
use crate::settings::{Access, Definition, Kind, SetError, Setting, SUPPORTED_MEASURANDS};
use crate::station::{Pending, Station};

/// An attribute's type (`AttributeEnumType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeType {
    /// The value in use.
    Actual,
    /// The value aimed for.
    Target,
    /// The lowest value set.
    MinSet,
    /// The highest value set.
    MaxSet,
}

impl AttributeType {
    /// The wire word.
    pub const fn as_str(self) -> &'static str {
        match self {
            AttributeType::Actual => "Actual",
            AttributeType::Target => "Target",
            AttributeType::MinSet => "MinSet",
            AttributeType::MaxSet => "MaxSet",
        }
    }

    /// From the wire word (`None` for anything else).
    pub fn parse(s: &str) -> Option<AttributeType> {
        Some(match s {
            "Actual" => AttributeType::Actual,
            "Target" => AttributeType::Target,
            "MinSet" => AttributeType::MinSet,
            "MaxSet" => AttributeType::MaxSet,
            _ => return None,
        })
    }
}

/// Who may change an attribute (`MutabilityEnumType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutability {
    /// Read only.
    ReadOnly,
    /// Write only: never read back (a password).
    WriteOnly,
    /// Read and write.
    ReadWrite,
}

impl Mutability {
    /// The wire word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "ReadOnly",
            Mutability::WriteOnly => "WriteOnly",
            Mutability::ReadWrite => "ReadWrite",
        }
    }
}

impl From<Access> for Mutability {
    fn from(a: Access) -> Mutability {
        match a {
            Access::ReadOnly => Mutability::ReadOnly,
            Access::WriteOnly => Mutability::WriteOnly,
            Access::ReadWrite => Mutability::ReadWrite,
        }
    }
}

/// A variable's data type (`DataEnumType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Text.
    String,
    /// A decimal number.
    Decimal,
    /// An integer.
    Integer,
    /// An RFC 3339 date and time.
    DateTime,
    /// `true` / `false`.
    Boolean,
    /// One value of `valuesList`.
    OptionList,
    /// An ordered, comma-separated list of values of `valuesList`.
    SequenceList,
    /// A comma-separated set of values of `valuesList`.
    MemberList,
    /// A password (never read back).
    PasswordString,
}

impl DataType {
    /// The wire word.
    pub const fn as_str(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Decimal => "decimal",
            DataType::Integer => "integer",
            DataType::DateTime => "dateTime",
            DataType::Boolean => "boolean",
            DataType::OptionList => "OptionList",
            DataType::SequenceList => "SequenceList",
            DataType::MemberList => "MemberList",
            DataType::PasswordString => "passwordString",
        }
    }

    /// Whether values are numbers (threshold and delta monitors compare them as numbers).
    pub const fn is_numeric(self) -> bool {
        matches!(self, DataType::Decimal | DataType::Integer)
    }
}

/// A variable's fixed characteristics (`VariableCharacteristicsType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Characteristics {
    /// The unit (`s`, `W`, ...).
    pub unit: Option<&'static str>,
    /// The data type.
    pub data_type: DataType,
    /// The lowest value (numbers) or shortest length.
    pub min_limit: Option<Decimal>,
    /// The highest value (numbers) or longest length.
    pub max_limit: Option<Decimal>,
    /// The allowed values of a list type, comma-separated.
    pub values_list: Option<String>,
    /// Whether monitors can be set on it.
    pub supports_monitoring: bool,
}

/// One attribute of a variable (`VariableAttributeType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Its type.
    pub kind: AttributeType,
    /// Its value; `None` for a write-only attribute.
    pub value: Option<String>,
    /// Who may change it.
    pub mutability: Mutability,
    /// Whether it survives a reboot.
    pub persistent: bool,
    /// Whether it never changes.
    pub constant: bool,
}

/// A component (`ComponentType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ComponentKey {
    /// Its name (`OCPPCommCtrlr`, `EVSE`, ...).
    pub name: String,
    /// Its instance.
    pub instance: Option<String>,
    /// The EVSE it is (or is part of).
    pub evse: Option<u32>,
    /// The connector it is, within the EVSE.
    pub connector: Option<u32>,
}

/// A variable of a component (`VariableType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VariableKey {
    /// Its name.
    pub name: String,
    /// Its instance.
    pub instance: Option<String>,
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Row `i` of the settings table.
    Table(usize),
    /// Computed from the station's state.
    Computed,
}

/// One variable with its attributes and characteristics: one `reportData` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVariable {
    /// The component.
    pub component: ComponentKey,
    /// The variable.
    pub variable: VariableKey,
    /// Its attributes (`Actual` first).
    pub attributes: Vec<Attribute>,
    /// Its characteristics.
    pub characteristics: Characteristics,
    pub(crate) source: Source,
}

impl ModelVariable {
    /// The attribute of type `kind`.
    pub fn attribute(&self, kind: AttributeType) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.kind == kind)
    }

    /// The `Actual` value (`None` when write-only).
    pub fn actual(&self) -> Option<&str> {
        self.attribute(AttributeType::Actual)
            .and_then(|a| a.value.as_deref())
    }

    /// The `reportData` item of a NotifyReport.
    pub fn report_json(&self) -> Value {
        let attributes: Vec<Value> = self
            .attributes
            .iter()
            .map(|a| {
                let mut v = json!({
                    "type": a.kind.as_str(),
                    "mutability": a.mutability.as_str(),
                    "persistent": a.persistent,
                    "constant": a.constant,
                });
                if let Some(value) = &a.value {
                    v["value"] = json!(value);
                }
                v
            })
            .collect();
        let c = &self.characteristics;
        let mut characteristics = json!({
            "dataType": c.data_type.as_str(),
            "supportsMonitoring": c.supports_monitoring,
        });
        if let Some(u) = c.unit {
            characteristics["unit"] = json!(u);
        }
        if let Some(m) = c.min_limit {
            characteristics["minLimit"] = decimal(m);
        }
        if let Some(m) = c.max_limit {
            characteristics["maxLimit"] = decimal(m);
        }
        if let Some(l) = &c.values_list {
            characteristics["valuesList"] = json!(l);
        }
        json!({
            "component": component_json(&self.component),
            "variable": variable_json(&self.variable),
            "variableAttribute": attributes,
            "variableCharacteristics": characteristics,
        })
    }
}

fn decimal(d: Decimal) -> Value {
    serde_json::from_str(&d.normalize().to_string()).unwrap_or(Value::Null)
}

/// A component as its JSON `ComponentType`.
pub fn component_json(c: &ComponentKey) -> Value {
    let mut v = json!({ "name": c.name });
    if let Some(i) = &c.instance {
        v["instance"] = json!(i);
    }
    if let Some(e) = c.evse {
        v["evse"] = json!({ "id": e });
        if let Some(k) = c.connector {
            v["evse"]["connectorId"] = json!(k);
        }
    }
    v
}

/// A variable as its JSON `VariableType`.
pub fn variable_json(v: &VariableKey) -> Value {
    let mut out = json!({ "name": v.name });
    if let Some(i) = &v.instance {
        out["instance"] = json!(i);
    }
    out
}

/// The list a text definition's value must come from: its data type and `valuesList`.
pub fn list_of(def: &Definition) -> Option<(DataType, &'static str)> {
    const TX_POINTS: &str =
        "ParkingBayOccupancy,EVConnected,Authorized,DataSigned,PowerPathClosed,EnergyTransfer";
    Some(match (def.component, def.name) {
        ("TxCtrlr", "TxStartPoint" | "TxStopPoint") => (DataType::MemberList, TX_POINTS),
        ("ClockCtrlr", "TimeSource") => (
            DataType::SequenceList,
            "Heartbeat,NTP,GPS,RealTimeClock,MobileNetwork,RadioTimeTransmitter",
        ),
        ("SmartChargingCtrlr", "RateUnit") => (DataType::MemberList, "A,W"),
        ("OCPPCommCtrlr", "PublicKeyWithSignedMeterValue") => (
            DataType::OptionList,
            "Never,OncePerTransaction,EveryMeterValue",
        ),
        ("MonitoringCtrlr", "ActiveMonitoringBase") => {
            (DataType::OptionList, "All,FactoryDefault,HardWiredOnly")
        }
        _ => return None,
    })
}

/// Checks a value against a list type: `OptionList` one member, `MemberList` /
/// `SequenceList` members without repeats. Returns the value normalized (spaces trimmed).
pub(crate) fn check_list(data_type: DataType, list: &str, value: &str) -> Result<String, SetError> {
    let allowed: Vec<&str> = list.split(',').collect();
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.iter().any(|i| !allowed.contains(i)) {
        return Err(SetError::Invalid);
    }
    match data_type {
        DataType::OptionList if items.len() != 1 => Err(SetError::Invalid),
        _ => {
            for (n, i) in items.iter().enumerate() {
                if items[..n].contains(i) {
                    return Err(SetError::Invalid);
                }
            }
            Ok(items.join(","))
        }
    }
}

/// The characteristics of a table definition.
pub fn characteristics_of(def: &Definition) -> Characteristics {
    let mut c = Characteristics {
        unit: None,
        data_type: DataType::String,
        min_limit: None,
        max_limit: None,
        values_list: None,
        supports_monitoring: def.access != Access::WriteOnly,
    };
    match def.kind {
        Kind::Integer => {
            let r = def.range();
            c.data_type = DataType::Integer;
            c.min_limit = Some(Decimal::from(*r.start()));
            c.max_limit = Some(Decimal::from(*r.end()));
            if matches!(
                def.setting,
                Some(
                    Setting::HeartbeatInterval
                        | Setting::SampleInterval
                        | Setting::AlignedInterval
                        | Setting::MessageAttemptInterval
                        | Setting::ConnectionTimeout
                        | Setting::WebSocketPingInterval
                )
            ) {
                c.unit = Some("s");
            }
        }
        Kind::Boolean => c.data_type = DataType::Boolean,
        Kind::Measurands => {
            c.data_type = DataType::MemberList;
            c.values_list = Some(SUPPORTED_MEASURANDS.join(","));
        }
        Kind::Password => {
            // The schemas' DataEnumType has no password type: a `string`, write-only.
            c.supports_monitoring = false;
        }
        Kind::Text => {
            if let Some((t, list)) = list_of(def) {
                c.data_type = t;
                c.values_list = Some(list.to_owned());
            }
        }
    }
    c
}

fn key(
    name: &str,
    instance: Option<&str>,
    evse: Option<u32>,
    connector: Option<u32>,
) -> ComponentKey {
    ComponentKey {
        name: name.to_owned(),
        instance: instance.map(str::to_owned),
        evse,
        connector,
    }
}

fn var(name: &str) -> VariableKey {
    VariableKey {
        name: name.to_owned(),
        instance: None,
    }
}

fn read_only(kind: AttributeType, value: String, persistent: bool) -> Attribute {
    Attribute {
        kind,
        value: Some(value),
        mutability: Mutability::ReadOnly,
        persistent,
        constant: false,
    }
}

fn plain(data_type: DataType, values_list: Option<&str>) -> Characteristics {
    Characteristics {
        unit: None,
        data_type,
        min_limit: None,
        max_limit: None,
        values_list: values_list.map(str::to_owned),
        supports_monitoring: true,
    }
}

const AVAILABILITY: &str = "Available,Occupied,Reserved,Unavailable,Faulted";

/// A component / variable pair asked for on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Component name.
    pub component: String,
    /// Component instance.
    pub component_instance: Option<String>,
    /// EVSE id as sent (possibly negative or beyond the station).
    pub evse: Option<i64>,
    /// Connector id as sent.
    pub connector: Option<i64>,
    /// Variable name (`None`: any, for GetReport's `componentVariable`).
    pub variable: Option<String>,
    /// Variable instance.
    pub variable_instance: Option<String>,
}

impl Query {
    /// From a JSON `component` and (optional) `variable`.
    pub fn from_json(component: &Value, variable: Option<&Value>) -> Query {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let evse = component.get("evse");
        Query {
            component: s(component, "name").unwrap_or_default(),
            component_instance: s(component, "instance"),
            evse: evse.and_then(|e| e.get("id")).and_then(Value::as_i64),
            connector: evse
                .and_then(|e| e.get("connectorId"))
                .and_then(Value::as_i64),
            variable: variable.and_then(|v| s(v, "name")),
            variable_instance: variable.and_then(|v| s(v, "instance")),
        }
    }

    /// Whether `c` is the component asked for (an `EVSE` / `Connector` asked without its
    /// connector matches connector 1, the station's only connector per EVSE).
    pub fn matches_component(&self, c: &ComponentKey) -> bool {
        c.name == self.component
            && c.instance == self.component_instance
            && c.evse.map(i64::from) == self.evse
            && match (c.connector, self.connector) {
                (None, None) => true,
                (Some(k), Some(q)) => i64::from(k) == q,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            }
    }

    /// Whether `m` is the variable asked for (any variable of the component when none is).
    pub fn matches(&self, m: &ModelVariable) -> bool {
        self.matches_component(&m.component)
            && self.variable.as_ref().is_none_or(|name| {
                *name == m.variable.name && self.variable_instance == m.variable.instance
            })
    }
}

/// Why a variable was not found (the per-item statuses of GetVariables / SetVariables /
/// SetVariableMonitoring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// No such component.
    Component,
    /// The component has no such variable.
    Variable,
}

impl Unknown {
    /// The wire status.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unknown::Component => "UnknownComponent",
            Unknown::Variable => "UnknownVariable",
        }
    }
}

impl Station {
    /// The whole device model as it is at `now` (2.x; empty for 1.6): the controllers'
    /// variables, then the `ChargingStation`, every `EVSE` and its `Connector`. Reads the
    /// meter of every EVSE (for `Power`).
    pub fn device_model(&mut self, now: Instant) -> Vec<ModelVariable> {
        if self.v16() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let defs = self.settings.definitions();
        for (i, d) in defs.iter().enumerate() {
            let access = d.access;
            out.push(ModelVariable {
                component: key(d.component, None, None, None),
                variable: VariableKey {
                    name: d.name.to_owned(),
                    instance: d.instance.map(str::to_owned),
                },
                attributes: vec![Attribute {
                    kind: AttributeType::Actual,
                    value: (access != Access::WriteOnly)
                        .then(|| self.settings.value_at(i).to_owned()),
                    mutability: access.into(),
                    persistent: true,
                    constant: access == Access::ReadOnly,
                }],
                characteristics: characteristics_of(d),
                source: Source::Table(i),
            });
        }
        let voltage = self.cfg.smart.nominal_voltage;
        let hardware_w = self.cfg.smart.hardware_limit.watts(voltage);
        let evses = self.evses.len() as u32;
        let mut total = Decimal::ZERO;
        let mut problem = false;
        let mut per_evse = Vec::new();
        for id in 1..=evses {
            let reading = self.hw.meter(now, id);
            total = total.checked_add(reading.power_w).unwrap_or(total);
            let status = self.status(id).unwrap_or("Unavailable");
            problem |= status == "Faulted";
            per_evse.push((id, reading.power_w, status));
        }
        let station_max = hardware_w
            .checked_mul(Decimal::from(evses.max(1)))
            .unwrap_or(hardware_w);
        let power = |actual: Decimal, target: Option<Decimal>, max: Decimal| {
            let mut attributes = vec![read_only(
                AttributeType::Actual,
                actual.normalize().to_string(),
                false,
            )];
            if let Some(t) = target {
                attributes.push(read_only(
                    AttributeType::Target,
                    t.normalize().to_string(),
                    false,
                ));
            }
            attributes.push(read_only(
                AttributeType::MaxSet,
                max.normalize().to_string(),
                true,
            ));
            (
                attributes,
                Characteristics {
                    unit: Some("W"),
                    data_type: DataType::Decimal,
                    min_limit: Some(Decimal::ZERO),
                    max_limit: Some(max),
                    values_list: None,
                    supports_monitoring: true,
                },
            )
        };
        let station = key("ChargingStation", None, None, None);
        let computed = |component: &ComponentKey, name: &str, value: String, c: Characteristics| {
            ModelVariable {
                component: component.clone(),
                variable: var(name),
                attributes: vec![read_only(AttributeType::Actual, value, false)],
                characteristics: c,
                source: Source::Computed,
            }
        };
        out.push(computed(
            &station,
            "AvailabilityState",
            self.station_status().to_owned(),
            plain(DataType::OptionList, Some(AVAILABILITY)),
        ));
        out.push(computed(
            &station,
            "Problem",
            problem.to_string(),
            plain(DataType::Boolean, None),
        ));
        let (attributes, c) = power(total, None, station_max);
        out.push(ModelVariable {
            component: station,
            variable: var("Power"),
            attributes,
            characteristics: c,
            source: Source::Computed,
        });
        for (id, actual, status) in per_evse {
            let evse = key("EVSE", None, Some(id), None);
            let connector = key("Connector", None, Some(id), Some(1));
            let available = (status != "Unavailable" && status != "Faulted").to_string();
            for c in [&evse, &connector] {
                out.push(computed(
                    c,
                    "AvailabilityState",
                    status.to_owned(),
                    plain(DataType::OptionList, Some(AVAILABILITY)),
                ));
                out.push(computed(
                    c,
                    "Available",
                    available.clone(),
                    plain(DataType::Boolean, None),
                ));
            }
            out.push(computed(
                &evse,
                "Problem",
                (status == "Faulted").to_string(),
                plain(DataType::Boolean, None),
            ));
            out.push(computed(
                &evse,
                "SupplyPhases",
                self.cfg.smart.hardware_limit.phases.to_string(),
                plain(DataType::Integer, None),
            ));
            out.push(computed(
                &connector,
                "ConnectorType",
                self.cfg.connector_type.clone(),
                plain(DataType::String, None),
            ));
            let target = self.charging_limit(id).map(|l| l.power_w);
            let (attributes, c) = power(actual, target, hardware_w);
            out.push(ModelVariable {
                component: evse,
                variable: var("Power"),
                attributes,
                characteristics: c,
                source: Source::Computed,
            });
        }
        out
    }

    /// The variable `q` names in `model`, or why there is none.
    pub(crate) fn find_in(model: &[ModelVariable], q: &Query) -> Result<usize, Unknown> {
        if !model.iter().any(|m| q.matches_component(&m.component)) {
            return Err(Unknown::Component);
        }
        model
            .iter()
            .position(|m| q.variable.is_some() && q.matches(m))
            .ok_or(Unknown::Variable)
    }

    /// The value of a limit variable of `DeviceDataCtrlr`, or `fallback`.
    pub(crate) fn items_per_message(&self, instance: &str, fallback: usize) -> usize {
        self.settings
            .index("DeviceDataCtrlr", "ItemsPerMessage", Some(instance))
            .and_then(|i| self.settings.value_at(i).trim().parse::<usize>().ok())
            .unwrap_or(fallback)
    }

    /// Queues a report as NotifyReports of `ItemsPerMessage[GetReport]` items each, `seqNo`
    /// from 0, `tbc` on all but the last (2.x B07 / B08).
    pub(crate) fn notify_report(&mut self, now: Instant, request_id: i64, data: Vec<Value>) {
        let per = self.report_items_per_message();
        let n = data.len().div_ceil(per);
        let mut data = data.into_iter();
        for seq in 0..n {
            let chunk: Vec<Value> = data.by_ref().take(per).collect();
            let p = json!({
                "requestId": request_id,
                "generatedAt": self.wall(now),
                "tbc": seq + 1 < n,
                "seqNo": seq,
                "reportData": chunk,
            });
            self.call(now, "NotifyReport", &p, Pending::Plain);
        }
    }

    fn report_items_per_message(&self) -> usize {
        self.items_per_message("GetReport", 20).max(1)
    }

    /// Whether a report of `items` items fits in the call queue.
    fn report_fits(&self, items: usize) -> bool {
        self.room_for(items.div_ceil(self.report_items_per_message()))
    }
}

/// The wire JSON of a typed value, or an empty object.
pub(crate) fn to_json<Q: Serialize>(q: &Q) -> Value {
    serde_json::to_value(q).unwrap_or(Value::Null)
}

/// The typed response from its JSON form (an InternalError if the station built a bad one).
pub(crate) fn from_json<R: serde::de::DeserializeOwned>(
    action: &str,
    v: Value,
) -> Result<R, CallError> {
    serde_json::from_value(v)
        .map_err(|e| CallError::new(ErrorCode::InternalError, format!("{action} response: {e}")))
}

fn too_many(what: &str, n: usize, limit: &str, max: usize) -> CallError {
    CallError::new(
        ErrorCode::OccurrenceConstraintViolation,
        format!("{n} {what}; {limit} is {max}"),
    )
}

/// The built-in GetVariables (2.0.1 / 2.1, use case B06): per item `Accepted` with the
/// value, `UnknownComponent`, `UnknownVariable`, `NotSupportedAttributeType` (the variable
/// has no attribute of that type) or `Rejected` (a write-only attribute). More items than
/// `ItemsPerMessage[GetVariables]`: CALLERROR `OccurrenceConstraintViolation` (B06.FR.16).
pub(crate) fn get_variables<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: Q,
) -> Result<R, CallError> {
    let q = to_json(&request);
    let items = q["getVariableData"].as_array().cloned().unwrap_or_default();
    let st = &mut *ctx.station;
    let max = st.items_per_message("GetVariables", 50);
    if items.len() > max {
        return Err(too_many(
            "items requested",
            items.len(),
            "ItemsPerMessageGetVariables",
            max,
        ));
    }
    let model = st.device_model(ctx.now);
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let query = Query::from_json(&item["component"], Some(&item["variable"]));
        let kind_word = item["attributeType"].as_str().unwrap_or("Actual");
        let kind = AttributeType::parse(kind_word).unwrap_or(AttributeType::Actual);
        let mut value = None;
        let status = match Station::find_in(&model, &query) {
            Err(u) => u.as_str(),
            Ok(i) => match model[i].attribute(kind) {
                None => "NotSupportedAttributeType",
                Some(a) if a.mutability == Mutability::WriteOnly => "Rejected",
                Some(a) => {
                    value = a.value.clone();
                    "Accepted"
                }
            },
        };
        let mut r = json!({
            "attributeStatus": status,
            "attributeType": kind.as_str(),
            "component": item["component"],
            "variable": item["variable"],
        });
        if let Some(v) = value {
            r["attributeValue"] = json!(v);
        }
        results.push(r);
    }
    from_json("GetVariables", json!({ "getVariableResult": results }))
}

/// The built-in SetVariables (2.0.1 / 2.1, use case B05): per item `Accepted`,
/// `RebootRequired`, `Rejected` (read-only, or a value its characteristics refuse),
/// `UnknownComponent`, `UnknownVariable` or `NotSupportedAttributeType`. More items than
/// `ItemsPerMessage[SetVariables]`: CALLERROR `OccurrenceConstraintViolation`, nothing set.
pub(crate) fn set_variables<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: Q,
) -> Result<R, CallError> {
    let q = to_json(&request);
    let items = q["setVariableData"].as_array().cloned().unwrap_or_default();
    let now = ctx.now;
    let max = ctx.station.items_per_message("SetVariables", 50);
    if items.len() > max {
        return Err(too_many(
            "items sent",
            items.len(),
            "ItemsPerMessageSetVariables",
            max,
        ));
    }
    let model = ctx.station.device_model(now);
    let mut changed = Vec::new();
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let query = Query::from_json(&item["component"], Some(&item["variable"]));
        let kind_word = item["attributeType"].as_str().unwrap_or("Actual");
        let kind = AttributeType::parse(kind_word).unwrap_or(AttributeType::Actual);
        let value = item["attributeValue"].as_str().unwrap_or_default();
        let status = match Station::find_in(&model, &query) {
            Err(u) => u.as_str(),
            Ok(i) => match (model[i].attribute(kind), model[i].source) {
                (None, _) => "NotSupportedAttributeType",
                (Some(a), _) if a.mutability == Mutability::ReadOnly => "Rejected",
                (Some(_), Source::Computed) => "Rejected",
                (Some(_), Source::Table(t)) => match ctx.station.settings.set_at(t, value) {
                    Ok(reboot) => {
                        let d = ctx.station.settings.definitions()[t];
                        if d.kind == Kind::Password
                            && !ctx.after.iter().any(|a| matches!(a, After::NewPassword))
                        {
                            ctx.after.push(After::NewPassword);
                        }
                        changed.push(match d.instance {
                            Some(inst) => format!("{}.{}[{}]", d.component, d.name, inst),
                            None => format!("{}.{}", d.component, d.name),
                        });
                        if reboot {
                            "RebootRequired"
                        } else {
                            "Accepted"
                        }
                    }
                    Err(_) => "Rejected",
                },
            },
        };
        results.push(json!({
            "attributeStatus": status,
            "attributeType": kind.as_str(),
            "component": item["component"],
            "variable": item["variable"],
        }));
    }
    for key in changed {
        ctx.station.changed(now, key);
    }
    from_json("SetVariables", json!({ "setVariableResult": results }))
}

/// Which variables a base report holds (2.x B07): `ConfigurationInventory` the ones the
/// central system can set (ReadWrite and WriteOnly), `FullInventory` all of them,
/// `SummaryInventory` the availability of the station, its EVSEs and connectors
/// (`AvailabilityState`, `Available`) and every `Problem` that is `true`.
pub fn in_base_report(base: &str, m: &ModelVariable) -> Option<bool> {
    Some(match base {
        "FullInventory" => true,
        "ConfigurationInventory" => m
            .attributes
            .iter()
            .any(|a| a.mutability != Mutability::ReadOnly),
        "SummaryInventory" => {
            (matches!(
                m.component.name.as_str(),
                "ChargingStation" | "EVSE" | "Connector"
            ) && matches!(m.variable.name.as_str(), "AvailabilityState" | "Available"))
                || (m.variable.name == "Problem" && m.actual() == Some("true"))
        }
        _ => return None,
    })
}

/// The built-in GetBaseReport (2.x B07): `Accepted` and the NotifyReports after the
/// answer, `Rejected` when they would not fit in the queue, `NotSupported` for a base this
/// station does not know.
pub(crate) fn get_base_report<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: Q,
) -> Result<R, CallError> {
    let q = to_json(&request);
    let base = q["reportBase"].as_str().unwrap_or_default();
    let request_id = q["requestId"].as_i64().unwrap_or_default();
    let model = ctx.station.device_model(ctx.now);
    let mut data = Vec::new();
    for m in &model {
        match in_base_report(base, m) {
            None => return from_json("GetBaseReport", json!({ "status": "NotSupported" })),
            Some(true) => data.push(m.report_json()),
            Some(false) => {}
        }
    }
    if !ctx.station.report_fits(data.len()) {
        return from_json("GetBaseReport", json!({ "status": "Rejected" }));
    }
    ctx.after.push(After::Report { request_id, data });
    from_json("GetBaseReport", json!({ "status": "Accepted" }))
}

/// Whether `component` meets a `componentCriteria` word: it has a variable of that name
/// (`Active`, `Available`, `Enabled`, `Problem`) whose `Actual` value is `true`.
fn meets(model: &[ModelVariable], component: &ComponentKey, criterion: &str) -> bool {
    model.iter().any(|m| {
        m.component == *component
            && m.variable.name == criterion
            && m.variable.instance.is_none()
            && m.actual() == Some("true")
    })
}

/// The built-in GetReport (2.x B08): the variables named by `componentVariable` (a
/// component without a variable: all its variables; none given: every variable) of the
/// components meeting every `componentCriteria`. `EmptyResultSet` when nothing matches,
/// `Rejected` when the reports would not fit in the queue, otherwise `Accepted` and the
/// NotifyReports after the answer. More `componentVariable` entries than
/// `ItemsPerMessage[GetReport]`: CALLERROR `OccurrenceConstraintViolation`.
pub(crate) fn get_report<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: Q,
) -> Result<R, CallError> {
    let q = to_json(&request);
    let request_id = q["requestId"].as_i64().unwrap_or_default();
    let wanted: Vec<Query> = q["componentVariable"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|cv| Query::from_json(&cv["component"], cv.get("variable")))
                .collect()
        })
        .unwrap_or_default();
    let max = ctx.station.report_items_per_message();
    if wanted.len() > max {
        return Err(too_many(
            "componentVariable entries",
            wanted.len(),
            "ItemsPerMessageGetReport",
            max,
        ));
    }
    let criteria: Vec<String> = q["componentCriteria"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let model = ctx.station.device_model(ctx.now);
    let data: Vec<Value> = model
        .iter()
        .filter(|m| wanted.is_empty() || wanted.iter().any(|w| w.matches(m)))
        .filter(|m| criteria.iter().all(|c| meets(&model, &m.component, c)))
        .map(ModelVariable::report_json)
        .collect();
    let status = if data.is_empty() {
        "EmptyResultSet"
    } else if !ctx.station.report_fits(data.len()) {
        "Rejected"
    } else {
        ctx.after.push(After::Report { request_id, data });
        "Accepted"
    };
    from_json("GetReport", json!({ "status": status }))
}
