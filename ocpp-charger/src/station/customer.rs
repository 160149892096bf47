//! Customer information (2.x functional block N, use cases N09 and N10): CustomerInformation
//! and its NotifyCustomerInformation reports.
//!
//! - The request names the customer by exactly one of `idToken`, `customerCertificate` and
//!   `customerIdentifier`: none or more than one is answered `Invalid`; a request that
//!   neither reports nor clears is answered `Rejected`; anything else `Accepted`.
//! - The report (after the answer) says what the station holds about the customer: for an
//!   idToken its local-list entry, its cache entry, the reservations held for it, the
//!   ongoing transactions it started and how many of its transaction messages wait in the
//!   outbox; then the lines the application adds
//!   ([`Diagnostics::customer_data`](crate::app::Diagnostics::customer_data), where
//!   certificates and vendor identifiers live: the station's certificate store holds no
//!   customer certificates). The lines go out in NotifyCustomerInformation parts of at most
//!   512 characters (`seqNo` from 0, `tbc` on all but the last, one `generatedAt`), at most
//!   [`MAX_CUSTOMER_PARTS`] of them; a customer the station knows nothing of gets one part
//!   with empty `data`.
//! - The clear (after the report) removes the token's local-list entry, cache entry and
//!   reservations, and calls
//!   [`Diagnostics::clear_customer`](crate::app::Diagnostics::clear_customer). Ongoing
//!   transactions and queued transaction messages are kept: they are the transaction
//!   record, which is never lost.

use super::*;

/// The most NotifyCustomerInformation parts one request produces (at 512 characters each,
/// 8 KiB); what does not fit is cut, and the last part says so.
pub const MAX_CUSTOMER_PARTS: usize = 16;

/// The most characters of `data` in one NotifyCustomerInformation (the schema's bound).
pub const CUSTOMER_DATA_PER_PART: usize = 512;

/// The customer a CustomerInformation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Customer {
    /// By token.
    IdToken {
        /// The token.
        id_token: String,
        /// Its type, e.g. `ISO14443`.
        token_type: String,
    },
    /// By certificate (hash data).
    Certificate {
        /// `SHA256`, `SHA384` or `SHA512`.
        hash_algorithm: String,
        /// The hash of the issuer's name.
        issuer_name_hash: String,
        /// The hash of the issuer's key.
        issuer_key_hash: String,
        /// The serial number.
        serial_number: String,
    },
    /// By a vendor-specific identifier.
    Identifier(String),
}

/// What a CustomerInformation does after its answer went out.
pub(crate) struct FollowUp {
    request_id: i64,
    customer: Customer,
    report: bool,
    clear: bool,
}

/// Reads the customer of a CustomerInformation (its payload as JSON): `None` unless exactly
/// one identifier is given.
fn read_customer(q: &Value) -> Option<Customer> {
    let mut found = Vec::new();
    if let Some(t) = q.get("idToken") {
        found.push(Customer::IdToken {
            id_token: text(t, "idToken")?,
            token_type: text(t, "type").unwrap_or_default(),
        });
    }
    if let Some(c) = q.get("customerCertificate") {
        found.push(Customer::Certificate {
            hash_algorithm: text(c, "hashAlgorithm")?,
            issuer_name_hash: text(c, "issuerNameHash")?,
            issuer_key_hash: text(c, "issuerKeyHash")?,
            serial_number: text(c, "serialNumber")?,
        });
    }
    if let Some(i) = text(q, "customerIdentifier") {
        found.push(Customer::Identifier(i));
    }
    if found.len() == 1 {
        found.pop()
    } else {
        None
    }
}

/// Cuts `lines` into parts of at most [`CUSTOMER_DATA_PER_PART`] characters (on character
/// boundaries), at most [`MAX_CUSTOMER_PARTS`].
pub(crate) fn parts(lines: &[String]) -> Vec<String> {
    let text = lines.join("\n");
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut n = 0;
    for c in text.chars() {
        if n == CUSTOMER_DATA_PER_PART {
            out.push(std::mem::take(&mut cur));
            n = 0;
        }
        cur.push(c);
        n += 1;
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    if out.len() > MAX_CUSTOMER_PARTS {
        out.truncate(MAX_CUSTOMER_PARTS);
        let note = " [cut: more than the station reports]";
        if let Some(last) = out.last_mut() {
            let keep = CUSTOMER_DATA_PER_PART - note.chars().count();
            *last = last.chars().take(keep).collect::<String>() + note;
        }
    }
    out
}

impl Station {
    /// What the station itself holds about `customer`, one line per item.
    pub fn customer_data(&self, customer: &Customer) -> Vec<String> {
        let Customer::IdToken { id_token, .. } = customer else {
            return Vec::new();
        };
        let stamp = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut lines = Vec::new();
        if let Some(e) = self.local_list.entries.get(id_token) {
            let mut l = format!("local list: {}", e.status);
            if let Some(x) = &e.expiry {
                l += &format!(", expires {}", stamp(x));
            }
            if let Some(g) = &e.group {
                l += &format!(", group {g}");
            }
            lines.push(l);
        }
        if let Some(e) = self.cache.get(id_token) {
            let mut l = format!(
                "authorization cache: {}",
                if e.accepted {
                    "Accepted"
                } else {
                    "not accepted"
                }
            );
            if let Some(x) = &e.expiry {
                l += &format!(", expires {}", stamp(x));
            }
            if let Some(g) = &e.group {
                l += &format!(", group {g}");
            }
            lines.push(l);
        }
        for r in self
            .reservations
            .held
            .iter()
            .filter(|r| &r.token == id_token)
        {
            lines.push(format!(
                "reservation {} on EVSE {} until {}",
                r.id,
                r.evse,
                stamp(&r.expiry)
            ));
        }
        for e in &self.evses {
            if let Some(tx) = e.tx.as_ref().filter(|t| &t.token == id_token) {
                lines.push(format!(
                    "ongoing transaction {} on EVSE {}, meter start {} Wh",
                    self.tx_id_of(tx).unwrap_or_else(|| "(id pending)".into()),
                    e.id,
                    tx.meter_start
                ));
            }
        }
        let needle = format!(
            "\"{}\"",
            id_token.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let queued = self
            .outbox
            .queue
            .iter()
            .filter(|m| m.payload.contains(&needle))
            .count();
        if queued > 0 {
            lines.push(format!(
                "{queued} transaction message(s) waiting to be sent"
            ));
        }
        lines
    }

    /// Removes what the station holds about `customer` (see the [module docs](self)).
    pub(crate) fn clear_customer(&mut self, customer: &Customer) {
        let Customer::IdToken { id_token, .. } = customer else {
            return;
        };
        let mut changed = self.local_list.entries.remove(id_token).is_some();
        if changed {
            let n = self.local_list.entries.len().to_string();
            self.settings
                .set_fixed("LocalAuthListCtrlr", "Entries", None, &n);
        }
        self.cache.remove(id_token);
        let ended: Vec<i32> = self
            .reservations
            .held
            .iter()
            .filter(|r| &r.token == id_token)
            .map(|r| r.id)
            .collect();
        self.reservations.held.retain(|r| &r.token != id_token);
        for id in ended {
            changed = true;
            self.events.push_back(StationEvent::ReservationEnded {
                reservation_id: id,
                reason: "Cancelled",
            });
        }
        if changed {
            self.save();
        }
    }

    /// The report and the clear of a CustomerInformation, after its answer.
    pub(crate) fn customer_follow_up(&mut self, now: Instant, f: FollowUp) {
        let mut application = self
            .app
            .take()
            .unwrap_or_else(|| Box::new(crate::app::BuiltIn));
        let mut lines = Vec::new();
        if f.report {
            lines = self.customer_data(&f.customer);
            if let Some(d) = application.diagnostics() {
                let mut ctx = crate::app::Context {
                    station: self,
                    now,
                    after: Vec::new(),
                    raw: None,
                };
                lines.extend(d.customer_data(&mut ctx, &f.customer));
            }
        }
        if f.clear {
            self.clear_customer(&f.customer);
            if let Some(d) = application.diagnostics() {
                let mut ctx = crate::app::Context {
                    station: self,
                    now,
                    after: Vec::new(),
                    raw: None,
                };
                d.clear_customer(&mut ctx, &f.customer);
            }
            self.events.push_back(StationEvent::CustomerCleared {
                customer: f.customer.clone(),
            });
        }
        self.app = Some(application);
        if !f.report {
            return;
        }
        let parts = parts(&lines);
        let n = parts.len();
        let generated = self.wall(now);
        for (seq, data) in parts.into_iter().enumerate() {
            let p = json!({
                "data": data,
                "tbc": seq + 1 < n,
                "seqNo": seq,
                "generatedAt": generated,
                "requestId": f.request_id,
            });
            self.call(now, "NotifyCustomerInformation", &p, Pending::Plain);
        }
    }
}

/// The built-in CustomerInformation (2.0.1 and 2.1).
pub(crate) fn customer_information<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    let value = serde_json::to_value(&request).unwrap_or_default();
    let Some(customer) = read_customer(&value) else {
        return local_list::status_response("Invalid", "CustomerInformation");
    };
    let report = value
        .get("report")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let clear = value.get("clear").and_then(Value::as_bool).unwrap_or(false);
    if !report && !clear {
        return local_list::status_response("Rejected", "CustomerInformation");
    }
    let request_id = int(&value, "requestId").unwrap_or(0);
    ctx.after.push(crate::central::After::Customer(FollowUp {
        request_id,
        customer,
        report,
        clear,
    }));
    local_list::status_response("Accepted", "CustomerInformation")
}
