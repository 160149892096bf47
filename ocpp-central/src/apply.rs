//! The projector: applying one answered charger request to the version-neutral model.
//!
//! [`ChargerState::apply`] is a pure function of the state, the request, its answer, the wall
//! clock's reading and the [`Limits`]: no I/O, no clock, no randomness. The live
//! [`Session`](crate::Session) calls it once per answered request; an application that
//! journals requests and answers replays them through the same function at start (the example
//! backend's recovery does), so a replay produces exactly the events the live session did.
//!
//! It costs O(message): the model keeps registers, power, status and sequence bookkeeping, and
//! hands the meter samples of each message to the application in the events, never keeping
//! them. Every number from the charger goes through checked arithmetic; a value whose result
//! does not fit is not applied and is reported as [`Event::OutOfRange`] (the message itself is
//! answered and kept: transaction data is never refused for its values). Every collection has a
//! bound from [`Limits`], reported as [`Event::LimitReached`] when it is reached.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ocpp_types::Decimal;

use crate::message::{AnyRequest, AnyResponse};
use crate::model::{
    AuthorizationStatus, BootState, ChargerInfo, ChargerState, ConnectorRef, ConnectorState,
    ConnectorStatus, Event, Limit, Limits, MeterSample, Transaction, ENERGY_IMPORT_REGISTER,
};

fn to_utc(t: &ocpp_types::DateTime) -> DateTime<Utc> {
    t.to_utc()
}

impl ChargerState {
    /// Applies the charger request `request`, answered with `response`, to the model and
    /// appends the resulting [`Event`]s to `events`. `now` is the wall clock's reading (for
    /// heartbeats and statuses without a timestamp). A request and response of different
    /// versions or actions change nothing.
    pub fn apply(
        &mut self,
        request: &Arc<AnyRequest>,
        response: &AnyResponse,
        now: DateTime<Utc>,
        limits: &Limits,
        events: &mut Vec<Event>,
    ) {
        let mut cx = Cx {
            state: self,
            now,
            limits,
            events,
            request,
            response,
        };
        match (&**request, response) {
            #[cfg(feature = "v16")]
            (AnyRequest::V16(q), AnyResponse::V16(r)) => cx.v16(q, r),
            #[cfg(feature = "v201")]
            (AnyRequest::V201(q), AnyResponse::V201(r)) => cx.v201(q, r),
            #[cfg(feature = "v21")]
            (AnyRequest::V21(q), AnyResponse::V21(r)) => cx.v21(q, r),
            #[allow(unreachable_patterns)]
            _ => {}
        }
        #[cfg(feature = "v21")]
        if let Some(report) = crate::tariffs::cost_report(request) {
            events.push(Event::TariffCost {
                report: Box::new(report),
                request: request.clone(),
            });
        }
        if let Some(status) = crate::firmware::transfer_status(request) {
            events.push(Event::TransferStatus {
                status,
                request: request.clone(),
            });
        }
    }

    /// Seeds a transaction known from before this connection (e.g. persisted by the
    /// application), so its meter values and end are attributed and its energy computed.
    /// Beyond [`Limits::max_transactions`] the one started longest ago is forgotten.
    pub fn restore_transaction(&mut self, transaction: Transaction, limits: &Limits) {
        let mut events = Vec::new();
        track(self, transaction, limits, &mut events);
    }
}

/// Tracks an active transaction; beyond [`Limits::max_transactions`] the one started longest
/// ago is forgotten (a charger has a handful of EVSEs; the bound only holds a hostile peer) and
/// [`Event::LimitReached`] reported.
fn track(state: &mut ChargerState, tx: Transaction, limits: &Limits, events: &mut Vec<Event>) {
    if !state.transactions.contains_key(&tx.id)
        && state.transactions.len() >= limits.max_transactions
    {
        let oldest = state
            .transactions
            .values()
            .min_by_key(|t| t.started_at)
            .map(|t| t.id.clone());
        if let Some(old) = oldest {
            state.transactions.remove(&old);
            events.push(Event::LimitReached {
                limit: Limit::Transactions,
                bound: limits.max_transactions,
                detail: format!("transaction {old} forgotten to track {}", tx.id),
            });
        }
    }
    if limits.max_transactions > 0 {
        state.transactions.insert(tx.id.clone(), tx);
    }
}

/// One application of a request to the state.
struct Cx<'a> {
    state: &'a mut ChargerState,
    now: DateTime<Utc>,
    limits: &'a Limits,
    events: &'a mut Vec<Event>,
    request: &'a Arc<AnyRequest>,
    response: &'a AnyResponse,
}

impl Cx<'_> {
    fn push(&mut self, e: Event) {
        self.events.push(e);
    }

    fn booted(&mut self, info: ChargerInfo, status: &str, interval: i32) {
        let state = BootState::from_registration(status);
        self.state.info = Some(std::sync::Arc::new(info.clone()));
        self.state.boot = state;
        self.state.heartbeat_interval = Some(interval);
        let (request, response) = (self.request.clone(), self.response.clone());
        self.push(Event::Booted {
            info,
            state,
            request,
            response,
        });
    }

    fn heartbeat(&mut self) {
        let at = self.now;
        self.state.last_heartbeat = Some(at);
        self.push(Event::Heartbeat { at });
    }

    fn status(
        &mut self,
        connector: ConnectorRef,
        status: &str,
        error_code: Option<String>,
        since: Option<DateTime<Utc>>,
    ) {
        let status = ConnectorStatus::from_wire(status);
        let since = since.unwrap_or(self.now);
        if !self.state.connectors.contains_key(&connector)
            && self.state.connectors.len() >= self.limits.max_connectors
        {
            let bound = self.limits.max_connectors;
            self.push(Event::LimitReached {
                limit: Limit::Connectors,
                bound,
                detail: format!(
                    "status {} of EVSE {} connector {:?} not tracked",
                    status.as_str(),
                    connector.evse,
                    connector.connector
                ),
            });
            return;
        }
        let previous = self
            .state
            .connectors
            .insert(
                connector,
                ConnectorState {
                    status: status.clone(),
                    error_code,
                    since,
                },
            )
            .map(|c| c.status);
        let request = self.request.clone();
        self.push(Event::StatusChanged {
            connector,
            previous,
            status,
            request,
        });
    }

    fn authorized(&mut self, token: String, status: &str) {
        let (request, response) = (self.request.clone(), self.response.clone());
        self.push(Event::Authorized {
            id_token: token,
            status: AuthorizationStatus(status.to_owned()),
            request,
            response,
        });
    }

    /// Adds `samples` to the running transaction `id` where it stands in the state (no copy
    /// of its key, no move out and back), reporting what does not fit; returns the
    /// transaction as it is now, for the event, or `None` when no transaction `id` runs.
    fn update_running(&mut self, id: &str, samples: &[MeterSample]) -> Option<Transaction> {
        let tx = self.state.transactions.get_mut(id)?;
        let added = tx.add_samples(samples);
        let transaction = tx.clone();
        self.out_of_range(&transaction, added);
        Some(transaction)
    }

    /// Adds a message's samples to `tx`, reporting what does not fit.
    fn add_samples(&mut self, tx: &mut Transaction, samples: &[MeterSample]) {
        let added = tx.add_samples(samples);
        self.out_of_range(tx, added);
    }

    fn set_last(&mut self, tx: &mut Transaction, wh: Decimal) {
        tx.meter_last_wh = Some(wh);
        let recomputed = tx.recompute();
        self.out_of_range(tx, recomputed);
    }

    /// Reports an update of `tx` that did not fit (`Err`: what) as [`Event::OutOfRange`].
    fn out_of_range(&mut self, tx: &Transaction, result: Result<(), String>) {
        out_of_range(self.events, tx, result);
    }
}

/// Reports an update of `tx` that did not fit (`Err`: what) as [`Event::OutOfRange`] in
/// `events` (for an update of a transaction borrowed from the state, where `Cx` is not).
fn out_of_range(events: &mut Vec<Event>, tx: &Transaction, result: Result<(), String>) {
    if let Err(detail) = result {
        events.push(Event::OutOfRange {
            transaction_id: Some(tx.id.clone()),
            detail,
        });
    }
}

/// A version-neutral sample from the parts every version has (the signed form, if any, is
/// added by the caller).
#[allow(clippy::too_many_arguments)]
fn sample(
    timestamp: DateTime<Utc>,
    value: Decimal,
    measurand: Option<&'static str>,
    unit: Option<Cow<'static, str>>,
    multiplier: i32,
    phase: Option<&'static str>,
    context: Option<&'static str>,
    location: Option<&'static str>,
) -> MeterSample {
    MeterSample {
        timestamp,
        measurand: Cow::Borrowed(measurand.unwrap_or(ENERGY_IMPORT_REGISTER)),
        value,
        unit,
        multiplier,
        phase: phase.map(Cow::Borrowed),
        context: context.map(Cow::Borrowed),
        location: location.map(Cow::Borrowed),
        signed: None,
    }
}

/// A 2.x unit (free text there): one of the usual ones borrowed, any other copied.
#[cfg(any(feature = "v201", feature = "v21"))]
fn unit_text(unit: &str) -> Cow<'static, str> {
    const USUAL: [&str; 16] = [
        "Wh", "kWh", "varh", "kvarh", "W", "kW", "VA", "kVA", "var", "kvar", "A", "V", "K",
        "Celsius", "Percent", "Hz",
    ];
    USUAL
        .iter()
        .find(|u| **u == unit)
        .map_or_else(|| Cow::Owned(unit.to_owned()), |u| Cow::Borrowed(*u))
}

/// A signed value's optional text (2.0.1 requires `signingMethod` and `publicKey`, 2.1 makes
/// them optional): `None` when absent or empty.
trait OptText {
    fn text(&self) -> Option<&str>;
}

impl<const N: usize> OptText for ocpp_types::BoundedString<N> {
    fn text(&self) -> Option<&str> {
        Some(self.as_str()).filter(|s| !s.is_empty())
    }
}

impl<const N: usize> OptText for Option<ocpp_types::BoundedString<N>> {
    fn text(&self) -> Option<&str> {
        self.as_ref().and_then(OptText::text)
    }
}

#[cfg(any(feature = "v201", feature = "v21"))]
fn opt_str(v: &impl OptText) -> Option<String> {
    v.text().map(str::to_owned)
}

#[cfg(feature = "v16")]
macro_rules! v16_sample {
    ($ts:expr, $sv:expr) => {{
        let sv = $sv;
        let signed = sv.format.map(|f| f.as_str()) == Some("SignedData");
        // A signed sample carries its data in place of the number: kept verbatim, never
        // dropped; a plain value that is not a number is not a reading.
        let value = if signed {
            Some(Decimal::ZERO)
        } else {
            crate::model::parse_decimal(&sv.value)
        };
        value.map(|value| {
            let mut s = sample(
                $ts,
                value,
                sv.measurand.map(|m| m.as_str()),
                sv.unit.map(|u| Cow::Borrowed(u.as_str())),
                0,
                sv.phase.map(|p| p.as_str()),
                sv.context.map(|c| c.as_str()),
                sv.location.map(|l| l.as_str()),
            );
            if signed {
                s.signed = Some(crate::model::SignedMeterValue {
                    data: sv.value.clone(),
                    encoding: None,
                    signing_method: None,
                    public_key: None,
                    replaces_value: true,
                });
            }
            s
        })
    }};
}

#[cfg(feature = "v16")]
impl Cx<'_> {
    fn v16(&mut self, q: &ocpp_types::v16::AnyRequest, r: &ocpp_types::v16::AnyResponse) {
        use ocpp_types::v16::{AnyRequest as Q, AnyResponse as R};
        match (q, r) {
            (Q::BootNotification(q), R::BootNotification(r)) => {
                let info = ChargerInfo {
                    vendor: q.charge_point_vendor.as_str().to_owned(),
                    model: q.charge_point_model.as_str().to_owned(),
                    serial_number: q
                        .charge_point_serial_number
                        .as_ref()
                        .or(q.charge_box_serial_number.as_ref())
                        .map(|s| s.as_str().to_owned()),
                    firmware_version: q.firmware_version.as_ref().map(|s| s.as_str().to_owned()),
                };
                self.booted(info, r.status.as_str(), r.interval);
            }
            (Q::Heartbeat(_), _) => self.heartbeat(),
            (Q::StatusNotification(q), _) => self.status(
                ConnectorRef::v16(q.connector_id),
                q.status.as_str(),
                Some(q.error_code.as_str().to_owned()),
                q.timestamp.as_ref().map(to_utc),
            ),
            (Q::Authorize(q), R::Authorize(r)) => {
                self.authorized(q.id_tag.as_str().to_owned(), r.id_tag_info.status.as_str())
            }
            (Q::StartTransaction(q), R::StartTransaction(r)) => {
                let mut tx = Transaction::new(
                    r.transaction_id.to_string(),
                    ConnectorRef::v16(q.connector_id),
                    to_utc(&q.timestamp),
                );
                tx.id_token = Some(q.id_tag.as_str().to_owned());
                tx.meter_start_wh = Some(q.meter_start.into());
                tx.meter_last_wh = Some(q.meter_start.into());
                tx.meter_last_at = Some(tx.started_at);
                let limits = self.limits;
                track(self.state, tx.clone(), limits, self.events);
                let request = self.request.clone();
                self.push(Event::TransactionStarted {
                    transaction: tx,
                    samples: Vec::new(),
                    request,
                });
            }
            (Q::MeterValues(q), _) => {
                let samples: Vec<MeterSample> = q
                    .meter_value
                    .iter()
                    .flat_map(|mv| {
                        let ts = to_utc(&mv.timestamp);
                        mv.sampled_value
                            .iter()
                            .filter_map(move |sv| v16_sample!(ts, sv))
                    })
                    .collect();
                let connector = ConnectorRef::v16(q.connector_id);
                let key = q.transaction_id.map(|t| t.to_string());
                let updated = key.as_ref().and_then(|k| self.update_running(k, &samples));
                let request = self.request.clone();
                match updated {
                    Some(transaction) => {
                        self.push(Event::TransactionUpdated {
                            transaction,
                            samples,
                            request,
                        });
                    }
                    None => self.push(Event::MeterValues {
                        connector,
                        transaction_id: key,
                        samples,
                        request,
                    }),
                }
            }
            (Q::StopTransaction(q), _) => {
                let id = q.transaction_id.to_string();
                let mut tx = self.state.transactions.remove(&id).unwrap_or_else(|| {
                    // Started before this session (or on another node): what we know now.
                    Transaction::new(id.clone(), ConnectorRef::v16(0), to_utc(&q.timestamp))
                });
                let samples: Vec<MeterSample> = q
                    .transaction_data
                    .iter()
                    .flatten()
                    .flat_map(|mv| {
                        let ts = to_utc(&mv.timestamp);
                        mv.sampled_value
                            .iter()
                            .filter_map(move |sv| v16_sample!(ts, sv))
                    })
                    .collect();
                self.add_samples(&mut tx, &samples);
                tx.meter_last_at = Some(to_utc(&q.timestamp));
                self.set_last(&mut tx, q.meter_stop.into());
                tx.ended_at = Some(to_utc(&q.timestamp));
                tx.stop_reason = Some(q.reason.map_or("Local", |r| r.as_str()).to_owned());
                if tx.id_token.is_none() {
                    tx.id_token = q.id_tag.as_ref().map(|t| t.as_str().to_owned());
                }
                let request = self.request.clone();
                self.push(Event::TransactionEnded {
                    transaction: tx,
                    samples,
                    request,
                });
            }
            _ => {}
        }
    }
}

/// What a 2.x `TransactionEvent` changes in its transaction, whichever its event type.
#[cfg(any(feature = "v201", feature = "v21"))]
struct TxUpdate<'a> {
    connector: ConnectorRef,
    seq: i32,
    offline: bool,
    id_token: Option<&'a str>,
    samples: &'a [MeterSample],
}

#[cfg(any(feature = "v201", feature = "v21"))]
impl TxUpdate<'_> {
    /// Applies the update to `tx`: its place once known, its `seqNo` bookkeeping (a gap, gaps
    /// forgotten at the bound, a number that leaves no next one: each an event), the offline
    /// flag, the id token and the samples (what does not fit: [`Event::OutOfRange`]).
    fn apply(&self, tx: &mut Transaction, limits: &Limits, events: &mut Vec<Event>) {
        if tx.connector.evse == 0 && self.connector.evse != 0 {
            tx.connector = self.connector;
        }
        let seq = self.seq;
        let seqs = tx.sequence(seq, limits.max_sequence_gaps);
        if let Some(expected) = seqs.gap_from {
            events.push(Event::SequenceGap {
                transaction_id: tx.id.clone(),
                expected,
                received: seq,
            });
        }
        if seqs.gaps_dropped > 0 {
            events.push(Event::LimitReached {
                limit: Limit::SequenceGaps,
                bound: limits.max_sequence_gaps,
                detail: format!(
                    "transaction {}: {} oldest missing seqNo ranges forgotten",
                    tx.id, seqs.gaps_dropped
                ),
            });
        }
        if seqs.overflow {
            events.push(Event::OutOfRange {
                transaction_id: Some(tx.id.clone()),
                detail: format!("seqNo {seq} leaves no next seqNo"),
            });
        }
        if self.offline {
            tx.offline = true;
        }
        if let Some(token) = self.id_token {
            if tx.id_token.as_deref() != Some(token) {
                tx.id_token = Some(token.to_owned());
            }
        }
        let added = tx.add_samples(self.samples);
        out_of_range(events, tx, added);
    }
}

macro_rules! apply_2x {
    ($fn_name:ident, $m:ident, $feature:literal) => {
        #[cfg(feature = $feature)]
        impl Cx<'_> {
            fn $fn_name(
                &mut self,
                q: &ocpp_types::$m::AnyRequest,
                r: &ocpp_types::$m::AnyResponse,
            ) {
                use ocpp_types::$m::{AnyRequest as Q, AnyResponse as R};

                fn samples(mv: &[ocpp_types::$m::MeterValueType]) -> Vec<MeterSample> {
                    mv.iter()
                        .flat_map(|mv| {
                            let ts = to_utc(&mv.timestamp);
                            mv.sampled_value.iter().map(move |sv| {
                                let unit = sv.unit_of_measure.as_ref();
                                let mut s = sample(
                                    ts,
                                    sv.value,
                                    sv.measurand.map(|m| m.as_str()),
                                    unit.and_then(|u| u.unit.as_ref())
                                        .map(|u| unit_text(u.as_str())),
                                    unit.and_then(|u| u.multiplier).unwrap_or(0),
                                    sv.phase.map(|p| p.as_str()),
                                    sv.context.map(|c| c.as_str()),
                                    sv.location.map(|l| l.as_str()),
                                );
                                s.signed = sv.signed_meter_value.as_ref().map(|v| {
                                    crate::model::SignedMeterValue {
                                        data: v.signed_meter_data.as_str().to_owned(),
                                        encoding: Some(v.encoding_method.as_str().to_owned()),
                                        signing_method: opt_str(&v.signing_method),
                                        public_key: opt_str(&v.public_key),
                                        replaces_value: false,
                                    }
                                });
                                s
                            })
                        })
                        .collect()
                }

                match (q, r) {
                    (Q::BootNotification(q), R::BootNotification(r)) => {
                        let cs = &q.charging_station;
                        let info = ChargerInfo {
                            vendor: cs.vendor_name.as_str().to_owned(),
                            model: cs.model.as_str().to_owned(),
                            serial_number: cs.serial_number.as_ref().map(|s| s.as_str().to_owned()),
                            firmware_version: cs
                                .firmware_version
                                .as_ref()
                                .map(|s| s.as_str().to_owned()),
                        };
                        self.booted(info, r.status.as_str(), r.interval);
                    }
                    (Q::Heartbeat(_), _) => self.heartbeat(),
                    (Q::StatusNotification(q), _) => self.status(
                        ConnectorRef::evse(q.evse_id, Some(q.connector_id)),
                        q.connector_status.as_str(),
                        None,
                        Some(to_utc(&q.timestamp)),
                    ),
                    (Q::Authorize(q), R::Authorize(r)) => self.authorized(
                        q.id_token.id_token.as_str().to_owned(),
                        r.id_token_info.status.as_str(),
                    ),
                    (Q::MeterValues(q), _) => {
                        let samples = samples(&q.meter_value);
                        let connector = ConnectorRef::evse(q.evse_id, None);
                        let request = self.request.clone();
                        // Meter values of an EVSE with exactly one running transaction belong to it.
                        let only = {
                            let mut running = self
                                .state
                                .transactions
                                .values()
                                .filter(|t| t.connector.evse == q.evse_id && q.evse_id > 0)
                                .map(|t| t.id.clone());
                            match (running.next(), running.next()) {
                                (Some(id), None) => Some(id),
                                _ => None,
                            }
                        };
                        match only.and_then(|id| self.update_running(&id, &samples)) {
                            Some(transaction) => {
                                self.push(Event::TransactionUpdated {
                                    transaction,
                                    samples,
                                    request,
                                });
                            }
                            None => self.push(Event::MeterValues {
                                connector,
                                transaction_id: None,
                                samples,
                                request,
                            }),
                        }
                    }
                    (Q::TransactionEvent(q), _) => {
                        let seq = q.seq_no;
                        let samples = q.meter_value.as_deref().map(samples).unwrap_or_default();
                        let connector = q.evse.as_ref().map_or(ConnectorRef::evse(0, None), |e| {
                            ConnectorRef::evse(e.id, e.connector_id)
                        });
                        let ended = q.event_type.as_str() == "Ended";
                        let update = TxUpdate {
                            connector,
                            seq,
                            offline: q.offline == Some(true),
                            id_token: q.id_token.as_ref().map(|t| t.id_token.as_str()),
                            samples: &samples,
                        };
                        // A known transaction's update (every meter value) changes it where it
                        // stands: no copy of its key, no removal and insertion.
                        let id = q.transaction_info.transaction_id.as_str();
                        if let Some(tx) = self.state.transactions.get_mut(id).filter(|_| !ended) {
                            update.apply(tx, self.limits, self.events);
                            let transaction = tx.clone();
                            let request = self.request.clone();
                            self.push(Event::TransactionUpdated {
                                transaction,
                                samples,
                                request,
                            });
                            return;
                        }
                        let id = id.to_owned();
                        let known = self.state.transactions.remove(&id);
                        let is_new = known.is_none();
                        let mut tx = known.unwrap_or_else(|| {
                            Transaction::new(id.clone(), connector, to_utc(&q.timestamp))
                        });
                        let limits = self.limits;
                        update.apply(&mut tx, limits, self.events);
                        let request = self.request.clone();
                        if ended {
                            tx.ended_at = Some(to_utc(&q.timestamp));
                            tx.stop_reason = q
                                .transaction_info
                                .stopped_reason
                                .map(|r| r.as_str().to_owned())
                                .or(Some("Local".to_owned()));
                        }
                        if is_new {
                            // A transaction seen first in its Ended event starts and ends here;
                            // the samples go with the end.
                            let (start_samples, rest) = if ended {
                                (Vec::new(), samples)
                            } else {
                                (samples, Vec::new())
                            };
                            self.push(Event::TransactionStarted {
                                transaction: tx.clone(),
                                samples: start_samples,
                                request: request.clone(),
                            });
                            if ended {
                                self.push(Event::TransactionEnded {
                                    transaction: tx,
                                    samples: rest,
                                    request,
                                });
                            } else {
                                track(self.state, tx, limits, self.events);
                            }
                        } else if ended {
                            self.push(Event::TransactionEnded {
                                transaction: tx,
                                samples,
                                request,
                            });
                        } else {
                            let transaction = tx.clone();
                            track(self.state, tx, limits, self.events);
                            self.push(Event::TransactionUpdated {
                                transaction,
                                samples,
                                request,
                            });
                        }
                    }
                    _ => {
                        if let Some(notice) = crate::smart_charging::notice(self.request) {
                            let request = self.request.clone();
                            self.push(Event::SmartCharging { notice, request });
                        }
                        if let Some(update) = crate::reservations::reservation_status(self.request)
                        {
                            let request = self.request.clone();
                            self.push(Event::ReservationStatus { update, request });
                        }
                        // The device model and monitoring (device_model.rs).
                        if let Some(part) = crate::device_model::report_part(self.request) {
                            let request = self.request.clone();
                            self.push(Event::Report { part, request });
                        } else if let Some(part) =
                            crate::device_model::monitoring_report_part(self.request)
                        {
                            let request = self.request.clone();
                            self.push(Event::MonitoringReport { part, request });
                        } else if let Some(events) =
                            crate::device_model::device_events(self.request)
                        {
                            let request = self.request.clone();
                            self.push(Event::DeviceEvents { events, request });
                        }
                        if let Some(report) = crate::display::display_report(self.request) {
                            let request = self.request.clone();
                            self.push(Event::DisplayMessages { report, request });
                        }
                        if let Some(part) = crate::display::customer_part(self.request) {
                            let request = self.request.clone();
                            self.push(Event::CustomerInformation { part, request });
                        }
                        if let Some(notice) = crate::der::der_notice(self.request) {
                            let request = self.request.clone();
                            self.push(Event::Der { notice, request });
                        }
                        if let Some(notice) = crate::streams::stream_notice(self.request) {
                            let request = self.request.clone();
                            self.push(Event::EventStream { notice, request });
                        }
                    }
                }
            }
        }
    };
}

apply_2x!(v201, v201, "v201");
apply_2x!(v21, v21, "v21");
