//! Display messages, customer information and cost from the central system: version-neutral
//! commands on [`ChargerHandle`], and what the charger's reports say.
//!
//! | command | 1.6 | 2.0.1 / 2.1 |
//! |---|---|---|
//! | [`set_display_message`](ChargerHandle::set_display_message) | — | SetDisplayMessage |
//! | [`get_display_messages`](ChargerHandle::get_display_messages) | — | GetDisplayMessages, then NotifyDisplayMessages |
//! | [`clear_display_message`](ChargerHandle::clear_display_message) | — | ClearDisplayMessage |
//! | [`customer_information`](ChargerHandle::customer_information) | — | CustomerInformation, then NotifyCustomerInformation |
//! | [`cost_updated`](ChargerHandle::cost_updated) | DataTransfer `org.openchargealliance.costmsg` / `RunningCost` (California Pricing) | CostUpdated |
//! | [`final_cost_v16`](ChargerHandle::final_cost_v16) | DataTransfer `org.openchargealliance.costmsg` / `FinalCost` | — (the TransactionEvent answer's `totalCost`) |
//!
//! The charger's reports are projected into events: [`Event::DisplayMessages`] for each
//! NotifyDisplayMessages and [`Event::CustomerInformation`] for each
//! NotifyCustomerInformation part (both answered by the default handler); a report ends
//! with the part whose `tbc` is false. Values a version cannot carry (content longer than
//! its schema allows, a 2.1-only format on 2.0.1) are refused before anything is sent
//! ([`CallError::Refused`]); costs are exact decimals.
//!
//! [`Event::DisplayMessages`]: crate::Event::DisplayMessages
//! [`Event::CustomerInformation`]: crate::Event::CustomerInformation

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::commands::{by_version, Answer};
use crate::handler::ChargerHandle;
use crate::message::AnyRequest;
use crate::session::CallError;

/// The vendorId of the 1.6 California Pricing DataTransfers.
pub const COST_VENDOR_ID: &str = "org.openchargealliance.costmsg";

/// A display message, version-neutral (2.x `MessageInfoType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayMessage {
    /// Its id (the same id replaces a held message).
    pub id: i32,
    /// `AlwaysFront`, `InFront` or `NormalCycle`.
    pub priority: String,
    /// Shown only in this state: `Charging`, `Faulted`, `Idle`, `Unavailable` (2.1 also
    /// `Suspended`, `Discharging`).
    pub state: Option<String>,
    /// Shown from.
    pub start: Option<DateTime<Utc>>,
    /// Shown until.
    pub end: Option<DateTime<Utc>>,
    /// Shown during this transaction only.
    pub transaction_id: Option<String>,
    /// `ASCII`, `HTML`, `URI`, `UTF8` (2.1 also `QRCODE`).
    pub format: String,
    /// Its language (RFC 5646).
    pub language: Option<String>,
    /// The text (2.0.1: at most 512 characters, 2.1: 1024).
    pub content: String,
    /// The display component's name, when it is for one display.
    pub display: Option<String>,
}

impl DisplayMessage {
    /// A message `content` (format `UTF8`, priority `NormalCycle`) with `id`.
    pub fn new(id: i32, content: impl Into<String>) -> DisplayMessage {
        DisplayMessage {
            id,
            priority: "NormalCycle".into(),
            state: None,
            start: None,
            end: None,
            transaction_id: None,
            format: "UTF8".into(),
            language: None,
            content: content.into(),
            display: None,
        }
    }

    /// As 2.x `MessageInfoType` JSON.
    pub fn to_json(&self) -> Value {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut content = json!({ "format": self.format, "content": self.content });
        if let Some(l) = &self.language {
            content["language"] = json!(l);
        }
        let mut m = json!({ "id": self.id, "priority": self.priority, "message": content });
        if let Some(s) = &self.state {
            m["state"] = json!(s);
        }
        if let Some(t) = &self.start {
            m["startDateTime"] = json!(time(t));
        }
        if let Some(t) = &self.end {
            m["endDateTime"] = json!(time(t));
        }
        if let Some(t) = &self.transaction_id {
            m["transactionId"] = json!(t);
        }
        if let Some(d) = &self.display {
            m["display"] = json!({ "name": d });
        }
        m
    }

    /// From 2.x `MessageInfoType` JSON (`None` when a required field is missing).
    pub fn from_json(m: &Value) -> Option<DisplayMessage> {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let t = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .and_then(|x| x.parse::<DateTime<Utc>>().ok())
        };
        let content = m.get("message")?;
        Some(DisplayMessage {
            id: i32::try_from(m.get("id")?.as_i64()?).ok()?,
            priority: s(m, "priority")?,
            state: s(m, "state"),
            start: t("startDateTime"),
            end: t("endDateTime"),
            transaction_id: s(m, "transactionId"),
            format: s(content, "format")?,
            language: s(content, "language"),
            content: s(content, "content")?,
            display: m.get("display").and_then(|d| s(d, "name")),
        })
    }
}

/// What a GetDisplayMessages selects (every criterion given must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisplayQuery {
    /// These ids only.
    pub ids: Option<Vec<i32>>,
    /// This priority only.
    pub priority: Option<String>,
    /// This state only.
    pub state: Option<String>,
}

/// One NotifyDisplayMessages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayReport {
    /// The GetDisplayMessages' `requestId`.
    pub request_id: i32,
    /// More parts follow.
    pub tbc: bool,
    /// The messages of this part (those that could not be read are left out).
    pub messages: Vec<DisplayMessage>,
}

/// Whom a CustomerInformation is about (exactly one identifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerRef {
    /// A token and its type (e.g. `ISO14443`, `Central`).
    IdToken {
        /// The token.
        id_token: String,
        /// Its type.
        token_type: String,
    },
    /// A certificate's hash data.
    Certificate {
        /// `SHA256`, `SHA384` or `SHA512`.
        hash_algorithm: String,
        /// The issuer name's hash.
        issuer_name_hash: String,
        /// The issuer key's hash.
        issuer_key_hash: String,
        /// The serial number.
        serial_number: String,
    },
    /// A vendor-specific customer identifier (at most 64 characters).
    Identifier(String),
}

/// One NotifyCustomerInformation part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerInformationPart {
    /// The CustomerInformation's `requestId`.
    pub request_id: i32,
    /// Its position, from 0.
    pub seq_no: i32,
    /// More parts follow.
    pub tbc: bool,
    /// When the charger made the report.
    pub generated_at: String,
    /// The data (at most 512 characters).
    pub data: String,
}

/// The typed request from its JSON form; what the schema's types refuse is refused here.
fn typed<Q: serde::de::DeserializeOwned>(action: &str, v: Value) -> Result<Q, CallError> {
    serde_json::from_value(v).map_err(|e| CallError::Refused(format!("{action}: {e}")))
}

fn get_json(request_id: i32, q: &DisplayQuery) -> Value {
    let mut v = json!({ "requestId": request_id });
    if let Some(ids) = &q.ids {
        v["id"] = json!(ids);
    }
    if let Some(p) = &q.priority {
        v["priority"] = json!(p);
    }
    if let Some(s) = &q.state {
        v["state"] = json!(s);
    }
    v
}

fn customer_json(request_id: i32, report: bool, clear: bool, who: &CustomerRef) -> Value {
    let mut v = json!({ "requestId": request_id, "report": report, "clear": clear });
    match who {
        CustomerRef::IdToken {
            id_token,
            token_type,
        } => v["idToken"] = json!({ "idToken": id_token, "type": token_type }),
        CustomerRef::Certificate {
            hash_algorithm,
            issuer_name_hash,
            issuer_key_hash,
            serial_number,
        } => {
            v["customerCertificate"] = json!({
                "hashAlgorithm": hash_algorithm,
                "issuerNameHash": issuer_name_hash,
                "issuerKeyHash": issuer_key_hash,
                "serialNumber": serial_number,
            })
        }
        CustomerRef::Identifier(i) => v["customerIdentifier"] = json!(i),
    }
    v
}

/// The data of a 1.6 California Pricing message: the cost written with its own digits.
fn cost_data(transaction_id: i32, cost: Decimal, extra: Option<(&str, &str)>) -> String {
    let mut text = format!(r#"{{"transactionId":{transaction_id},"cost":{cost}"#);
    if let Some((k, v)) = extra {
        text += &format!(",{}:{}", json!(k), json!(v));
    }
    text.push('}');
    text
}

macro_rules! commands {
    ($m:ident, $feature:literal) => {
        #[cfg(feature = $feature)]
        mod $m {
            use super::*;
            use crate::commands::status_call;
            use ocpp_types::$m as t;

            pub(super) async fn set(
                h: &ChargerHandle,
                m: &DisplayMessage,
            ) -> Result<Answer, CallError> {
                let q: t::SetDisplayMessageRequest =
                    typed("SetDisplayMessage", json!({ "message": m.to_json() }))?;
                status_call!(h, q)
            }

            pub(super) async fn get(
                h: &ChargerHandle,
                request_id: i32,
                query: &DisplayQuery,
            ) -> Result<Answer, CallError> {
                let q: t::GetDisplayMessagesRequest =
                    typed("GetDisplayMessages", get_json(request_id, query))?;
                status_call!(h, q)
            }

            pub(super) async fn clear(h: &ChargerHandle, id: i32) -> Result<Answer, CallError> {
                status_call!(h, t::ClearDisplayMessageRequest::new(id))
            }

            pub(super) async fn customer(
                h: &ChargerHandle,
                request_id: i32,
                report: bool,
                clear: bool,
                who: &CustomerRef,
            ) -> Result<Answer, CallError> {
                let q: t::CustomerInformationRequest = typed(
                    "CustomerInformation",
                    customer_json(request_id, report, clear, who),
                )?;
                status_call!(h, q)
            }

            pub(super) async fn cost(
                h: &ChargerHandle,
                transaction_id: &str,
                total_cost: Decimal,
            ) -> Result<(), CallError> {
                let id = ocpp_types::BoundedString::try_from(transaction_id.to_owned())
                    .map_err(|e| CallError::Refused(format!("CostUpdated: {e}")))?;
                h.call(t::CostUpdatedRequest::new(total_cost, id)).await?;
                Ok(())
            }
        }
    };
}

commands!(v201, "v201");
commands!(v21, "v21");

#[cfg(feature = "v16")]
mod v16 {
    use super::*;
    use crate::commands::status_call;
    use ocpp_types::v16 as t;

    pub(super) async fn cost_message(
        h: &ChargerHandle,
        message_id: &str,
        data: String,
    ) -> Result<Answer, CallError> {
        let q: t::DataTransferRequest = typed(
            "DataTransfer",
            json!({ "vendorId": COST_VENDOR_ID, "messageId": message_id, "data": data }),
        )?;
        status_call!(h, q)
    }
}

fn v16_only() -> CallError {
    CallError::Refused("OCPP 2.x carries the final cost in the TransactionEvent answer".into())
}

fn v2x_only(what: &str) -> CallError {
    CallError::Refused(format!("OCPP 1.6 has no {what}"))
}

fn v16_tx(transaction_id: &str) -> Result<i32, CallError> {
    transaction_id
        .parse()
        .map_err(|_| CallError::Refused(format!("{transaction_id:?} is not a 1.6 transaction id")))
}

/// What a NotifyDisplayMessages says (`None` for any other message).
pub fn display_report(request: &AnyRequest) -> Option<DisplayReport> {
    macro_rules! v2 {
        ($q:expr) => {{
            let v = serde_json::to_value(&$q.message_info).unwrap_or_default();
            DisplayReport {
                request_id: $q.request_id,
                tbc: $q.tbc.unwrap_or(false),
                messages: v
                    .as_array()
                    .map(|a| a.iter().filter_map(DisplayMessage::from_json).collect())
                    .unwrap_or_default(),
            }
        }};
    }
    match request {
        #[cfg(feature = "v201")]
        AnyRequest::V201(ocpp_types::v201::AnyRequest::NotifyDisplayMessages(q)) => Some(v2!(q)),
        #[cfg(feature = "v21")]
        AnyRequest::V21(ocpp_types::v21::AnyRequest::NotifyDisplayMessages(q)) => Some(v2!(q)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// What a NotifyCustomerInformation says (`None` for any other message).
pub fn customer_part(request: &AnyRequest) -> Option<CustomerInformationPart> {
    macro_rules! v2 {
        ($q:expr) => {
            CustomerInformationPart {
                request_id: $q.request_id,
                seq_no: $q.seq_no,
                tbc: $q.tbc.unwrap_or(false),
                generated_at: $q.generated_at.to_string(),
                data: $q.data.as_str().to_owned(),
            }
        };
    }
    match request {
        #[cfg(feature = "v201")]
        AnyRequest::V201(ocpp_types::v201::AnyRequest::NotifyCustomerInformation(q)) => {
            Some(v2!(q))
        }
        #[cfg(feature = "v21")]
        AnyRequest::V21(ocpp_types::v21::AnyRequest::NotifyCustomerInformation(q)) => Some(v2!(q)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

impl ChargerHandle {
    /// Sets a display message (2.x SetDisplayMessage). The status is `Accepted`,
    /// `NotSupportedMessageFormat`, `Rejected`, `NotSupportedPriority`, `NotSupportedState`,
    /// `UnknownTransaction` (2.1 also `LanguageNotSupported`). 1.6 has no display messages:
    /// refused.
    pub async fn set_display_message(&self, message: &DisplayMessage) -> Result<Answer, CallError> {
        by_version!(
            self,
            Err(v2x_only("display messages")),
            v201::set(self, message).await,
            v21::set(self, message).await
        )
    }

    /// Asks for the charger's display messages (2.x GetDisplayMessages): `Accepted` (the
    /// reports follow as [`Event::DisplayMessages`](crate::Event::DisplayMessages) with
    /// `request_id`) or `Unknown` (none matches).
    pub async fn get_display_messages(
        &self,
        request_id: i32,
        query: &DisplayQuery,
    ) -> Result<Answer, CallError> {
        by_version!(
            self,
            Err(v2x_only("display messages")),
            v201::get(self, request_id, query).await,
            v21::get(self, request_id, query).await
        )
    }

    /// Removes display message `id` (2.x ClearDisplayMessage): `Accepted` or `Unknown`
    /// (2.1 also `Rejected`).
    pub async fn clear_display_message(&self, id: i32) -> Result<Answer, CallError> {
        by_version!(
            self,
            Err(v2x_only("display messages")),
            v201::clear(self, id).await,
            v21::clear(self, id).await
        )
    }

    /// Asks the charger to report and/or clear what it holds about a customer (2.x
    /// CustomerInformation): `Accepted` (with `report`, the parts follow as
    /// [`Event::CustomerInformation`](crate::Event::CustomerInformation) with `request_id`),
    /// `Rejected` or `Invalid`.
    pub async fn customer_information(
        &self,
        request_id: i32,
        report: bool,
        clear: bool,
        customer: &CustomerRef,
    ) -> Result<Answer, CallError> {
        by_version!(
            self,
            Err(v2x_only("CustomerInformation")),
            v201::customer(self, request_id, report, clear, customer).await,
            v21::customer(self, request_id, report, clear, customer).await
        )
    }

    /// Tells the charger the running cost of a transaction: 2.x CostUpdated (its answer is
    /// empty: `Ok(())`); 1.6 the California Pricing DataTransfer (`RunningCost`, the
    /// transaction id being the 1.6 integer), whose status other than `Accepted` is
    /// [`CallError::Refused`].
    pub async fn cost_updated(
        &self,
        transaction_id: &str,
        total_cost: Decimal,
    ) -> Result<(), CallError> {
        by_version!(
            self,
            {
                let data = cost_data(v16_tx(transaction_id)?, total_cost, None);
                let a = v16::cost_message(self, "RunningCost", data).await?;
                if a.status == "Accepted" {
                    Ok(())
                } else {
                    Err(CallError::Refused(format!("RunningCost: {}", a.status)))
                }
            },
            v201::cost(self, transaction_id, total_cost).await,
            v21::cost(self, transaction_id, total_cost).await
        )
    }

    /// (1.6) The final cost of a transaction, with an optional text for the driver: the
    /// California Pricing DataTransfer `FinalCost`. 2.x carries it in the TransactionEvent
    /// answer: refused.
    pub async fn final_cost_v16(
        &self,
        transaction_id: i32,
        cost: Decimal,
        price_text: Option<&str>,
    ) -> Result<Answer, CallError> {
        by_version!(
            self,
            {
                let data = cost_data(transaction_id, cost, price_text.map(|t| ("priceText", t)));
                v16::cost_message(self, "FinalCost", data).await
            },
            Err(v16_only()),
            Err(v16_only())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_through_json() {
        let mut m = DisplayMessage::new(7, "Hello");
        m.priority = "InFront".into();
        m.state = Some("Charging".into());
        m.end = "2030-01-01T00:00:00Z".parse().ok();
        m.transaction_id = Some("tx-1".into());
        m.language = Some("en".into());
        m.display = Some("Screen".into());
        assert_eq!(DisplayMessage::from_json(&m.to_json()), Some(m));
        assert_eq!(DisplayMessage::from_json(&json!({ "id": 1 })), None);
    }

    #[test]
    fn cost_data_keeps_the_digits() {
        let cost: Decimal = "1.230".parse().unwrap_or_default();
        assert_eq!(
            cost_data(5, cost, Some(("priceText", "1.23 \"EUR\""))),
            r#"{"transactionId":5,"cost":1.230,"priceText":"1.23 \"EUR\""}"#
        );
    }
}
