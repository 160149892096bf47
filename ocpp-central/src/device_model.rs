//! The device model and configuration (2.x block B "Provisioning", 1.6 configuration keys)
//! and monitoring (2.x block N "Diagnostics") from the central system: typed commands on
//! [`ChargerHandle`], and what the charger's reports and events say.
//!
//! | command | 1.6 | 2.0.1 / 2.1 |
//! |---|---|---|
//! | [`read_variables`](ChargerHandle::read_variables) | GetConfiguration (keys = variable names) | GetVariables (every attribute type, instances, EVSE and connector) |
//! | [`write_variables`](ChargerHandle::write_variables) | ChangeConfiguration, one per item, in order | SetVariables |
//! | [`get_configuration`](ChargerHandle::get_configuration) | GetConfiguration (all keys when none given) | refused |
//! | [`change_configuration`](ChargerHandle::change_configuration) | ChangeConfiguration | refused |
//! | [`get_base_report`](ChargerHandle::get_base_report) | refused | GetBaseReport |
//! | [`get_report`](ChargerHandle::get_report) | refused | GetReport (`componentVariable`, `componentCriteria`) |
//! | [`set_variable_monitoring`](ChargerHandle::set_variable_monitoring) | refused | SetVariableMonitoring |
//! | [`clear_variable_monitoring`](ChargerHandle::clear_variable_monitoring) | refused | ClearVariableMonitoring |
//! | [`set_monitoring_base`](ChargerHandle::set_monitoring_base) | refused | SetMonitoringBase |
//! | [`set_monitoring_level`](ChargerHandle::set_monitoring_level) | refused | SetMonitoringLevel |
//! | [`get_monitoring_report`](ChargerHandle::get_monitoring_report) | refused | GetMonitoringReport |
//!
//! The charger's side, projected by [`ChargerState::apply`](crate::ChargerState::apply) and
//! answered by the default handlers:
//! [`Event::Report`](crate::Event::Report) carries each NotifyReport part ([`ReportPart`]:
//! `requestId`, `seqNo`, `tbc` and its items with every attribute and characteristic) so an
//! application assembles a report across its parts;
//! [`Event::MonitoringReport`](crate::Event::MonitoringReport) each NotifyMonitoringReport
//! part; [`Event::DeviceEvents`](crate::Event::DeviceEvents) each NotifyEvent
//! ([`DeviceEvent`]: `eventId`, trigger, `cleared`, severity-bearing monitor id, ...).
//! The projection is O(message): it keeps nothing.
//!
//! Values a version cannot carry (a string longer than its schema allows, a severity above
//! 9) are refused before anything is sent ([`CallError::Refused`]).

use serde_json::{json, Value};

use crate::commands::Answer;
use crate::handler::ChargerHandle;
use crate::message::{AnyRequest, AnyResponse};
use crate::session::CallError;

/// A component (2.x `ComponentType`); 1.6 keys have an empty name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Component {
    /// Its name (`OCPPCommCtrlr`, `EVSE`, ...).
    pub name: String,
    /// Its instance.
    pub instance: Option<String>,
    /// Its EVSE.
    pub evse: Option<i32>,
    /// Its connector within the EVSE.
    pub connector: Option<i32>,
}

impl Component {
    /// The component `name`, no instance, no EVSE.
    pub fn named(name: impl Into<String>) -> Component {
        Component {
            name: name.into(),
            ..Component::default()
        }
    }
}

/// A variable (2.x `VariableType`; 1.6: the configuration key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Variable {
    /// Its name.
    pub name: String,
    /// Its instance.
    pub instance: Option<String>,
}

impl Variable {
    /// The variable `name`, no instance.
    pub fn named(name: impl Into<String>) -> Variable {
        Variable {
            name: name.into(),
            instance: None,
        }
    }
}

/// A variable to read ([`ChargerHandle::read_variables`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadVariable {
    /// The component (ignored on 1.6).
    pub component: Component,
    /// The variable (1.6: the key).
    pub variable: Variable,
    /// (2.x) The attribute type (`Actual` when `None`).
    pub attribute: Option<String>,
}

/// The result of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// The component (1.6: empty).
    pub component: Component,
    /// The variable (1.6: the key).
    pub variable: Variable,
    /// (2.x) The attribute type answered.
    pub attribute: Option<String>,
    /// 2.x `attributeStatus`; 1.6 `Accepted`, or `UnknownKey`.
    pub status: String,
    /// The value, when given.
    pub value: Option<String>,
    /// (1.6) Whether the key is read-only.
    pub readonly: Option<bool>,
}

/// A value to write ([`ChargerHandle::write_variables`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteVariable {
    /// The component (ignored on 1.6).
    pub component: Component,
    /// The variable (1.6: the key).
    pub variable: Variable,
    /// (2.x) The attribute type (`Actual` when `None`).
    pub attribute: Option<String>,
    /// The value.
    pub value: String,
}

/// The result of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResult {
    /// The component (1.6: empty).
    pub component: Component,
    /// The variable (1.6: the key).
    pub variable: Variable,
    /// 2.x `attributeStatus` (`Accepted`, `Rejected`, `UnknownComponent`, `UnknownVariable`,
    /// `NotSupportedAttributeType`, `RebootRequired`); 1.6 the ChangeConfiguration status
    /// (`Accepted`, `Rejected`, `RebootRequired`, `NotSupported`).
    pub status: String,
}

/// One 1.6 configuration key ([`ChargerHandle::get_configuration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationKey {
    /// The key.
    pub key: String,
    /// Whether it is read-only.
    pub readonly: bool,
    /// Its value (none for a write-only key).
    pub value: Option<String>,
}

/// A 1.6 GetConfiguration answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configuration {
    /// The known keys.
    pub known: Vec<ConfigurationKey>,
    /// The keys asked for that the charger does not know.
    pub unknown: Vec<String>,
}

/// One attribute of a reported variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedAttribute {
    /// `Actual`, `Target`, `MinSet` or `MaxSet`.
    pub kind: String,
    /// Its value (none for a write-only attribute).
    pub value: Option<String>,
    /// `ReadOnly`, `WriteOnly` or `ReadWrite` (`ReadWrite` when absent).
    pub mutability: String,
    /// Whether it survives a reboot.
    pub persistent: bool,
    /// Whether it never changes.
    pub constant: bool,
}

/// The characteristics of a reported variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedCharacteristics {
    /// The unit.
    pub unit: Option<String>,
    /// The data type (`string`, `decimal`, `integer`, `dateTime`, `boolean`, `OptionList`,
    /// `SequenceList`, `MemberList`, `passwordString`).
    pub data_type: String,
    /// The lowest value, as the charger wrote it.
    pub min_limit: Option<String>,
    /// The highest value, as the charger wrote it.
    pub max_limit: Option<String>,
    /// The allowed values of a list type.
    pub values_list: Option<String>,
    /// Whether monitors can be set on it.
    pub supports_monitoring: bool,
}

/// One `reportData` item of a NotifyReport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportItem {
    /// The component.
    pub component: Component,
    /// The variable.
    pub variable: Variable,
    /// Its attributes.
    pub attributes: Vec<ReportedAttribute>,
    /// Its characteristics, when given.
    pub characteristics: Option<ReportedCharacteristics>,
}

/// One NotifyReport (a part of the report of `request_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPart {
    /// The `requestId` of the GetBaseReport / GetReport.
    pub request_id: i32,
    /// The part's number, from 0.
    pub seq_no: i32,
    /// More parts follow.
    pub tbc: bool,
    /// When the charger generated it, as it wrote it.
    pub generated_at: String,
    /// Its items.
    pub items: Vec<ReportItem>,
}

/// One monitor of a NotifyMonitoringReport (`VariableMonitoringType`) or to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    /// Its id (`None` when asking the charger to create one).
    pub id: Option<i32>,
    /// The component.
    pub component: Component,
    /// The variable.
    pub variable: Variable,
    /// `UpperThreshold`, `LowerThreshold`, `Delta`, `Periodic` or `PeriodicClockAligned`.
    pub kind: String,
    /// The threshold, delta or interval in seconds, as a decimal's text.
    pub value: String,
    /// 0 (danger) to 9 (debug).
    pub severity: i32,
    /// Only during a transaction.
    pub transaction: bool,
}

/// The result of one SetVariableMonitoring item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorResult {
    /// The monitor's id, when the charger gave one.
    pub id: Option<i32>,
    /// `Accepted`, `UnknownComponent`, `UnknownVariable`, `UnsupportedMonitorType`,
    /// `Rejected` or `Duplicate`.
    pub status: String,
    /// The component.
    pub component: Component,
    /// The variable.
    pub variable: Variable,
    /// The type asked for.
    pub kind: String,
    /// The severity asked for.
    pub severity: i32,
}

/// One NotifyMonitoringReport (a part of the monitoring report of `request_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringReportPart {
    /// The `requestId` of the GetMonitoringReport.
    pub request_id: i32,
    /// The part's number, from 0.
    pub seq_no: i32,
    /// More parts follow.
    pub tbc: bool,
    /// The monitors it lists.
    pub monitors: Vec<Monitor>,
}

/// One event of a NotifyEvent (`EventDataType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    /// The event's id.
    pub event_id: i32,
    /// When it happened, as the charger wrote it.
    pub timestamp: String,
    /// `Alerting`, `Delta` or `Periodic`.
    pub trigger: String,
    /// The event that caused it.
    pub cause: Option<i32>,
    /// The variable's value.
    pub actual_value: String,
    /// The charger's own code.
    pub tech_code: Option<String>,
    /// The charger's own information.
    pub tech_info: Option<String>,
    /// The condition is over (a threshold crossed back).
    pub cleared: bool,
    /// The transaction it belongs to.
    pub transaction_id: Option<String>,
    /// The monitor that raised it.
    pub monitor_id: Option<i32>,
    /// `HardWiredNotification`, `HardWiredMonitor`, `PreconfiguredMonitor` or
    /// `CustomMonitor`.
    pub notification_type: String,
    /// The component.
    pub component: Component,
    /// The variable.
    pub variable: Variable,
}

/// One NotifyEvent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvents {
    /// When the charger generated it, as it wrote it.
    pub generated_at: String,
    /// The part's number, from 0.
    pub seq_no: i32,
    /// More parts follow.
    pub tbc: bool,
    /// Its events.
    pub events: Vec<DeviceEvent>,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn i(v: &Value, k: &str) -> Option<i32> {
    v.get(k)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(t) => Some(t.clone()),
        _ => None,
    }
}

/// A component from its JSON `ComponentType`.
pub fn component_of(v: &Value) -> Component {
    let evse = v.get("evse");
    Component {
        name: s(v, "name").unwrap_or_default(),
        instance: s(v, "instance"),
        evse: evse.and_then(|e| i(e, "id")),
        connector: evse.and_then(|e| i(e, "connectorId")),
    }
}

/// A variable from its JSON `VariableType`.
pub fn variable_of(v: &Value) -> Variable {
    Variable {
        name: s(v, "name").unwrap_or_default(),
        instance: s(v, "instance"),
    }
}

pub(crate) fn component_json(c: &Component) -> Value {
    let mut v = json!({ "name": c.name });
    if let Some(x) = &c.instance {
        v["instance"] = json!(x);
    }
    if let Some(e) = c.evse {
        v["evse"] = json!({ "id": e });
        if let Some(k) = c.connector {
            v["evse"]["connectorId"] = json!(k);
        }
    }
    v
}

pub(crate) fn variable_json(v: &Variable) -> Value {
    let mut out = json!({ "name": v.name });
    if let Some(x) = &v.instance {
        out["instance"] = json!(x);
    }
    out
}

fn item_of(v: &Value) -> ReportItem {
    let attributes = v["variableAttribute"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| ReportedAttribute {
                    kind: s(a, "type").unwrap_or_else(|| "Actual".into()),
                    value: s(a, "value"),
                    mutability: s(a, "mutability").unwrap_or_else(|| "ReadWrite".into()),
                    persistent: a["persistent"].as_bool().unwrap_or(false),
                    constant: a["constant"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    let characteristics = v
        .get("variableCharacteristics")
        .filter(|c| c.is_object())
        .map(|c| ReportedCharacteristics {
            unit: s(c, "unit"),
            data_type: s(c, "dataType").unwrap_or_default(),
            min_limit: c.get("minLimit").and_then(number_text),
            max_limit: c.get("maxLimit").and_then(number_text),
            values_list: s(c, "valuesList"),
            supports_monitoring: c["supportsMonitoring"].as_bool().unwrap_or(false),
        });
    ReportItem {
        component: component_of(&v["component"]),
        variable: variable_of(&v["variable"]),
        attributes,
        characteristics,
    }
}

/// The 2.x request as JSON, if it is `action`.
fn v2_json(request: &AnyRequest, action: &str) -> Option<Value> {
    if request.action() != action || request.version() == ocpp_types::Version::V16 {
        return None;
    }
    serde_json::from_str(&request.to_json()).ok()
}

/// What a 2.x NotifyReport says (`None` for any other message).
pub fn report_part(request: &AnyRequest) -> Option<ReportPart> {
    let q = v2_json(request, "NotifyReport")?;
    Some(ReportPart {
        request_id: i(&q, "requestId").unwrap_or_default(),
        seq_no: i(&q, "seqNo").unwrap_or_default(),
        tbc: q["tbc"].as_bool().unwrap_or(false),
        generated_at: s(&q, "generatedAt").unwrap_or_default(),
        items: q["reportData"]
            .as_array()
            .map(|a| a.iter().map(item_of).collect())
            .unwrap_or_default(),
    })
}

/// What a 2.x NotifyMonitoringReport says (`None` for any other message).
pub fn monitoring_report_part(request: &AnyRequest) -> Option<MonitoringReportPart> {
    let q = v2_json(request, "NotifyMonitoringReport")?;
    let mut monitors = Vec::new();
    for m in q["monitor"].as_array().into_iter().flatten() {
        let component = component_of(&m["component"]);
        let variable = variable_of(&m["variable"]);
        for vm in m["variableMonitoring"].as_array().into_iter().flatten() {
            monitors.push(Monitor {
                id: i(vm, "id"),
                component: component.clone(),
                variable: variable.clone(),
                kind: s(vm, "type").unwrap_or_default(),
                value: vm.get("value").and_then(number_text).unwrap_or_default(),
                severity: i(vm, "severity").unwrap_or_default(),
                transaction: vm["transaction"].as_bool().unwrap_or(false),
            });
        }
    }
    Some(MonitoringReportPart {
        request_id: i(&q, "requestId").unwrap_or_default(),
        seq_no: i(&q, "seqNo").unwrap_or_default(),
        tbc: q["tbc"].as_bool().unwrap_or(false),
        monitors,
    })
}

/// What a 2.x NotifyEvent says (`None` for any other message).
pub fn device_events(request: &AnyRequest) -> Option<DeviceEvents> {
    let q = v2_json(request, "NotifyEvent")?;
    Some(DeviceEvents {
        generated_at: s(&q, "generatedAt").unwrap_or_default(),
        seq_no: i(&q, "seqNo").unwrap_or_default(),
        tbc: q["tbc"].as_bool().unwrap_or(false),
        events: q["eventData"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| DeviceEvent {
                        event_id: i(e, "eventId").unwrap_or_default(),
                        timestamp: s(e, "timestamp").unwrap_or_default(),
                        trigger: s(e, "trigger").unwrap_or_default(),
                        cause: i(e, "cause"),
                        actual_value: s(e, "actualValue").unwrap_or_default(),
                        tech_code: s(e, "techCode"),
                        tech_info: s(e, "techInfo"),
                        cleared: e["cleared"].as_bool().unwrap_or(false),
                        transaction_id: s(e, "transactionId"),
                        monitor_id: i(e, "variableMonitoringId"),
                        notification_type: s(e, "eventNotificationType").unwrap_or_default(),
                        component: component_of(&e["component"]),
                        variable: variable_of(&e["variable"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn v2_only(h: &ChargerHandle, action: &str) -> Result<(), CallError> {
    if h.version() == ocpp_types::Version::V16 {
        return Err(CallError::Refused(format!("OCPP 1.6 has no {action}")));
    }
    Ok(())
}

fn v16_only(h: &ChargerHandle, action: &str) -> Result<(), CallError> {
    if h.version() != ocpp_types::Version::V16 {
        return Err(CallError::Refused(format!(
            "OCPP {} has no {action}",
            h.version()
        )));
    }
    Ok(())
}

/// Sends `action` with payload `q` in the charger's version: the payload is decoded into
/// the version's typed request first (what its types refuse is refused before sending).
/// Gives the answer as JSON and typed.
async fn call_json(
    h: &ChargerHandle,
    action: &str,
    q: &Value,
) -> Result<(Value, AnyResponse), CallError> {
    let request = AnyRequest::from_json(h.version(), action, &q.to_string())
        .map_err(|e| CallError::Refused(format!("{action}: {e}")))?;
    let r = h.call_any(request).await?;
    let v = serde_json::from_str(&r.to_json())
        .map_err(|e| CallError::InvalidResponse(e.to_string()))?;
    Ok((v, r))
}

async fn status_json(h: &ChargerHandle, action: &str, q: &Value) -> Result<Answer, CallError> {
    let (v, response) = call_json(h, action, q).await?;
    Ok(Answer {
        status: s(&v, "status").unwrap_or_default(),
        response,
    })
}

/// A base report (2.x GetBaseReport).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportBase {
    /// The variables the central system can set.
    ConfigurationInventory,
    /// Every variable.
    FullInventory,
    /// Availability and problems.
    SummaryInventory,
}

impl ReportBase {
    /// The wire word.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReportBase::ConfigurationInventory => "ConfigurationInventory",
            ReportBase::FullInventory => "FullInventory",
            ReportBase::SummaryInventory => "SummaryInventory",
        }
    }
}

/// A filter of GetReport / GetMonitoringReport: a component and, optionally, one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentVariable {
    /// The component.
    pub component: Component,
    /// The variable; `None`: all of the component's.
    pub variable: Option<Variable>,
}

fn component_variables(list: &[ComponentVariable]) -> Value {
    Value::Array(
        list.iter()
            .map(|cv| {
                let mut v = json!({ "component": component_json(&cv.component) });
                if let Some(var) = &cv.variable {
                    v["variable"] = variable_json(var);
                }
                v
            })
            .collect(),
    )
}

impl ChargerHandle {
    /// Reads variables: 2.x GetVariables (every item's status, attribute type and value),
    /// 1.6 GetConfiguration with the variable names as keys (`Accepted` per known key,
    /// `UnknownKey` per unknown one). An empty list reads nothing (no call).
    pub async fn read_variables(
        &self,
        vars: &[ReadVariable],
    ) -> Result<Vec<ReadResult>, CallError> {
        if vars.is_empty() {
            return Ok(Vec::new());
        }
        if self.version() == ocpp_types::Version::V16 {
            let keys: Vec<String> = vars.iter().map(|v| v.variable.name.clone()).collect();
            let c = self.get_configuration(&keys).await?;
            let known = c.known.into_iter().map(|k| ReadResult {
                component: Component::default(),
                variable: Variable::named(k.key),
                attribute: None,
                status: "Accepted".into(),
                value: k.value,
                readonly: Some(k.readonly),
            });
            let unknown = c.unknown.into_iter().map(|k| ReadResult {
                component: Component::default(),
                variable: Variable::named(k),
                attribute: None,
                status: "UnknownKey".into(),
                value: None,
                readonly: None,
            });
            return Ok(known.chain(unknown).collect());
        }
        let data: Vec<Value> = vars
            .iter()
            .map(|v| {
                let mut d = json!({
                    "component": component_json(&v.component),
                    "variable": variable_json(&v.variable),
                });
                if let Some(a) = &v.attribute {
                    d["attributeType"] = json!(a);
                }
                d
            })
            .collect();
        let (r, _) = call_json(self, "GetVariables", &json!({ "getVariableData": data })).await?;
        Ok(r["getVariableResult"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| ReadResult {
                component: component_of(&x["component"]),
                variable: variable_of(&x["variable"]),
                attribute: s(x, "attributeType"),
                status: s(x, "attributeStatus").unwrap_or_default(),
                value: s(x, "attributeValue"),
                readonly: None,
            })
            .collect())
    }

    /// Writes variables: 2.x one SetVariables with every item, 1.6 one ChangeConfiguration
    /// per item, in order (a failed call ends the list with its error).
    pub async fn write_variables(
        &self,
        vars: &[WriteVariable],
    ) -> Result<Vec<WriteResult>, CallError> {
        if vars.is_empty() {
            return Ok(Vec::new());
        }
        if self.version() == ocpp_types::Version::V16 {
            let mut out = Vec::with_capacity(vars.len());
            for v in vars {
                let a = self
                    .change_configuration(&v.variable.name, &v.value)
                    .await?;
                out.push(WriteResult {
                    component: Component::default(),
                    variable: v.variable.clone(),
                    status: a.status,
                });
            }
            return Ok(out);
        }
        let data: Vec<Value> = vars
            .iter()
            .map(|v| {
                let mut d = json!({
                    "component": component_json(&v.component),
                    "variable": variable_json(&v.variable),
                    "attributeValue": v.value,
                });
                if let Some(a) = &v.attribute {
                    d["attributeType"] = json!(a);
                }
                d
            })
            .collect();
        let (r, _) = call_json(self, "SetVariables", &json!({ "setVariableData": data })).await?;
        Ok(r["setVariableResult"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| WriteResult {
                component: component_of(&x["component"]),
                variable: variable_of(&x["variable"]),
                status: s(x, "attributeStatus").unwrap_or_default(),
            })
            .collect())
    }

    /// (1.6) GetConfiguration: `keys`, or every key when empty.
    pub async fn get_configuration(&self, keys: &[String]) -> Result<Configuration, CallError> {
        v16_only(self, "GetConfiguration")?;
        let mut q = json!({});
        if !keys.is_empty() {
            q["key"] = json!(keys);
        }
        let (r, _) = call_json(self, "GetConfiguration", &q).await?;
        Ok(Configuration {
            known: r["configurationKey"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| ConfigurationKey {
                    key: s(k, "key").unwrap_or_default(),
                    readonly: k["readonly"].as_bool().unwrap_or(false),
                    value: s(k, "value"),
                })
                .collect(),
            unknown: r["unknownKey"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
        })
    }

    /// (1.6) ChangeConfiguration: `Accepted`, `Rejected`, `RebootRequired` or
    /// `NotSupported`.
    pub async fn change_configuration(&self, key: &str, value: &str) -> Result<Answer, CallError> {
        v16_only(self, "ChangeConfiguration")?;
        status_json(
            self,
            "ChangeConfiguration",
            &json!({ "key": key, "value": value }),
        )
        .await
    }

    /// (2.x) GetBaseReport: `Accepted` (the NotifyReports follow: [`Event::Report`](crate::Event::Report)),
    /// `Rejected`, `NotSupported` or `EmptyResultSet`.
    pub async fn get_base_report(
        &self,
        request_id: i32,
        base: ReportBase,
    ) -> Result<Answer, CallError> {
        v2_only(self, "GetBaseReport")?;
        status_json(
            self,
            "GetBaseReport",
            &json!({ "requestId": request_id, "reportBase": base.as_str() }),
        )
        .await
    }

    /// (2.x) GetReport of the given components / variables (all when empty) of the
    /// components meeting every criterion (`Active`, `Available`, `Enabled`, `Problem`).
    pub async fn get_report(
        &self,
        request_id: i32,
        filter: &[ComponentVariable],
        criteria: &[String],
    ) -> Result<Answer, CallError> {
        v2_only(self, "GetReport")?;
        let mut q = json!({ "requestId": request_id });
        if !filter.is_empty() {
            q["componentVariable"] = component_variables(filter);
        }
        if !criteria.is_empty() {
            q["componentCriteria"] = json!(criteria);
        }
        status_json(self, "GetReport", &q).await
    }

    /// (2.x) SetVariableMonitoring: one result per monitor, in order.
    pub async fn set_variable_monitoring(
        &self,
        monitors: &[Monitor],
    ) -> Result<Vec<MonitorResult>, CallError> {
        v2_only(self, "SetVariableMonitoring")?;
        let data: Vec<Value> = monitors
            .iter()
            .map(|m| {
                let value: Value =
                    serde_json::from_str(&m.value).unwrap_or(Value::String(m.value.clone()));
                let mut d = json!({
                    "value": value,
                    "type": m.kind,
                    "severity": m.severity,
                    "transaction": m.transaction,
                    "component": component_json(&m.component),
                    "variable": variable_json(&m.variable),
                });
                if let Some(id) = m.id {
                    d["id"] = json!(id);
                }
                d
            })
            .collect();
        let (r, _) = call_json(
            self,
            "SetVariableMonitoring",
            &json!({ "setMonitoringData": data }),
        )
        .await?;
        Ok(r["setMonitoringResult"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| MonitorResult {
                id: i(x, "id"),
                status: s(x, "status").unwrap_or_default(),
                component: component_of(&x["component"]),
                variable: variable_of(&x["variable"]),
                kind: s(x, "type").unwrap_or_default(),
                severity: i(x, "severity").unwrap_or_default(),
            })
            .collect())
    }

    /// (2.x) ClearVariableMonitoring: per id `Accepted`, `Rejected` or `NotFound`.
    pub async fn clear_variable_monitoring(
        &self,
        ids: &[i32],
    ) -> Result<Vec<(i32, String)>, CallError> {
        v2_only(self, "ClearVariableMonitoring")?;
        let (r, _) = call_json(self, "ClearVariableMonitoring", &json!({ "id": ids })).await?;
        Ok(r["clearMonitoringResult"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                (
                    i(x, "id").unwrap_or_default(),
                    s(x, "status").unwrap_or_default(),
                )
            })
            .collect())
    }

    /// (2.x) SetMonitoringBase (`All`, `FactoryDefault`, `HardWiredOnly`).
    pub async fn set_monitoring_base(&self, base: &str) -> Result<Answer, CallError> {
        v2_only(self, "SetMonitoringBase")?;
        status_json(
            self,
            "SetMonitoringBase",
            &json!({ "monitoringBase": base }),
        )
        .await
    }

    /// (2.x) SetMonitoringLevel: events of a severity above `severity` (0 to 9) are no
    /// longer reported.
    pub async fn set_monitoring_level(&self, severity: i32) -> Result<Answer, CallError> {
        v2_only(self, "SetMonitoringLevel")?;
        if !(0..=9).contains(&severity) {
            return Err(CallError::Refused(format!(
                "severity {severity} is not 0 to 9"
            )));
        }
        status_json(self, "SetMonitoringLevel", &json!({ "severity": severity })).await
    }

    /// (2.x) GetMonitoringReport: `Accepted` (the NotifyMonitoringReports follow:
    /// [`Event::MonitoringReport`](crate::Event::MonitoringReport)), `Rejected`,
    /// `NotSupported` or `EmptyResultSet`. `criteria`: `ThresholdMonitoring`,
    /// `DeltaMonitoring`, `PeriodicMonitoring`.
    pub async fn get_monitoring_report(
        &self,
        request_id: i32,
        filter: &[ComponentVariable],
        criteria: &[String],
    ) -> Result<Answer, CallError> {
        v2_only(self, "GetMonitoringReport")?;
        let mut q = json!({ "requestId": request_id });
        if !filter.is_empty() {
            q["componentVariable"] = component_variables(filter);
        }
        if !criteria.is_empty() {
            q["monitoringCriteria"] = json!(criteria);
        }
        status_json(self, "GetMonitoringReport", &q).await
    }
}
