//! The running cost of a transaction (2.x functional block I; the 1.6 California Pricing
//! whitepaper): what the central system says a transaction costs, passed to the application
//! as [`StationEvent::Cost`] and shown on the display ([`super::display`]).
//!
//! - 2.x CostUpdated (use case I02): the built-in answer is the empty response; the cost is
//!   reported with `source` `"CostUpdated"`.
//! - 2.x TransactionEvent answers (use cases I02 / I03): a `totalCost` is reported with
//!   `source` `"TransactionEvent"` (`final_cost` for the answer to the `Ended` event), an
//!   `updatedPersonalMessage` as [`StationEvent::PersonalMessage`] and on the display.
//! - 1.6: a DataTransfer with vendorId `org.openchargealliance.costmsg` and messageId
//!   `RunningCost` or `FinalCost` (its data a JSON text with `transactionId` and `cost`,
//!   and `priceText` for FinalCost), taken when [`StationConfig::cost_messages`] is on:
//!   answered `Accepted` and reported with `source` `"RunningCost"` / `"FinalCost"`;
//!   a malformed one is answered `Rejected`. With the flag off such a DataTransfer goes to
//!   the DataTransfer handler like any other.
//!
//! Costs are exact decimals as sent ([`ocpp_types::number`]), never floating point.

use super::*;

/// The vendorId of the 1.6 California Pricing messages.
pub const COST_VENDOR_ID: &str = "org.openchargealliance.costmsg";

#[derive(Deserialize)]
struct PersonalMessage {
    format: String,
    #[serde(default)]
    language: Option<String>,
    content: String,
}

#[derive(Deserialize)]
struct TxEventAnswer {
    #[serde(rename = "totalCost", default, deserialize_with = "opt_decimal")]
    total_cost: Option<Decimal>,
    #[serde(rename = "updatedPersonalMessage", default)]
    updated_personal_message: Option<PersonalMessage>,
}

fn opt_decimal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    ocpp_types::number::deserialize_decimal(d).map(Some)
}

#[derive(Deserialize)]
struct CostMessage {
    #[serde(rename = "transactionId")]
    transaction_id: Value,
    #[serde(deserialize_with = "ocpp_types::number::deserialize_decimal")]
    cost: Decimal,
    #[serde(rename = "priceText", default)]
    price_text: Option<String>,
}

impl Station {
    /// The answer to a TransactionEvent of the outbox arrived: its cost and personal
    /// message, read exactly from the answer's text.
    pub(crate) fn transaction_event_answered(&mut self, seq: u64, answer: &str) {
        if self.v16() {
            return;
        }
        let Some(msg) = self.outbox.queue.iter().find(|m| m.seq == seq) else {
            return;
        };
        if msg.action != "TransactionEvent" {
            return;
        }
        let Ok(sent) = serde_json::from_str::<Value>(&msg.payload) else {
            return;
        };
        let Some(tx) = sent
            .pointer("/transactionInfo/transactionId")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return;
        };
        let ended = sent.get("eventType").and_then(Value::as_str) == Some("Ended");
        let Ok(a) = serde_json::from_str::<TxEventAnswer>(answer) else {
            return;
        };
        let personal = a
            .updated_personal_message
            .map(|m| (m.format, m.content, m.language));
        if a.total_cost.is_some() || personal.is_some() {
            self.cost_known(&tx, a.total_cost, personal, ended, "TransactionEvent");
        }
    }

    /// A 1.6 California Pricing DataTransfer: `Some(status)` when it is one (and the flag is
    /// on), `None` to pass it on.
    pub(crate) fn cost_message_v16(
        &mut self,
        vendor_id: &str,
        message_id: Option<&str>,
        data: Option<&Value>,
    ) -> Option<&'static str> {
        if !self.v16() || !self.cfg.cost_messages || vendor_id != COST_VENDOR_ID {
            return None;
        }
        let final_cost = match message_id {
            Some("RunningCost") => false,
            Some("FinalCost") => true,
            _ => return Some("UnknownMessageId"),
        };
        let Some(text) = data.and_then(Value::as_str) else {
            return Some("Rejected");
        };
        let Ok(m) = serde_json::from_str::<CostMessage>(text) else {
            return Some("Rejected");
        };
        let tx = match &m.transaction_id {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return Some("Rejected"),
        };
        let personal = m.price_text.map(|t| ("UTF8".to_owned(), t, None::<String>));
        let source = if final_cost {
            "FinalCost"
        } else {
            "RunningCost"
        };
        self.cost_known(&tx, Some(m.cost), personal, final_cost, source);
        Some("Accepted")
    }
}

/// The built-in CostUpdated (2.0.1 and 2.1): reports the cost, answers the empty response.
pub(crate) fn cost_updated<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    // The typed request's decimal is written back with its own digits.
    let text = serde_json::to_string(&request).unwrap_or_default();
    #[derive(Deserialize)]
    struct Q2 {
        #[serde(
            rename = "totalCost",
            deserialize_with = "ocpp_types::number::deserialize_decimal"
        )]
        total_cost: Decimal,
        #[serde(rename = "transactionId")]
        transaction_id: String,
    }
    if let Ok(q) = serde_json::from_str::<Q2>(&text) {
        ctx.station.cost_known(
            &q.transaction_id,
            Some(q.total_cost),
            None,
            false,
            "CostUpdated",
        );
    }
    serde_json::from_str("{}").map_err(|_| {
        crate::app::CallError::new(ocpp_codec::ErrorCode::InternalError, "CostUpdated answer")
    })
}
