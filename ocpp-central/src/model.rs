//! One model over all versions: a version-neutral view of a charger,
//! its connectors / EVSEs, its transactions and meter samples, and the version-neutral
//! [`Event`]s a session reports. Every event that stems from a charger message carries that
//! message, typed in its own version ([`AnyRequest`]), so nothing of the original is lost.
//!
//! Energy is an exact [`Decimal`] in Wh: `kWh` values are multiplied by 1000 and 2.x unit
//! multipliers applied exactly; no floating point anywhere.

use std::borrow::{Borrow, Cow};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ocpp_types::{Decimal, Version};

use crate::message::{AnyRequest, AnyResponse};

/// Where a boot stands on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BootState {
    /// No BootNotification answered on this connection yet (a charger that reconnects need
    /// not boot again, so it is not refused).
    Unknown,
    /// The last BootNotification was answered `Pending`: the central system may send calls,
    /// the charger only BootNotification and what the central system triggered.
    Pending,
    /// The last BootNotification was answered `Accepted`.
    Accepted,
    /// The last BootNotification was answered `Rejected`: the central system sends nothing.
    Rejected,
}

impl BootState {
    /// `Unknown`, `Pending`, `Accepted` or `Rejected`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BootState::Unknown => "Unknown",
            BootState::Pending => "Pending",
            BootState::Accepted => "Accepted",
            BootState::Rejected => "Rejected",
        }
    }

    pub(crate) fn from_registration(status: &str) -> BootState {
        match status {
            "Accepted" => BootState::Accepted,
            "Pending" => BootState::Pending,
            _ => BootState::Rejected,
        }
    }
}

/// What a charger says about itself in its BootNotification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChargerInfo {
    /// Vendor (1.6 `chargePointVendor`, 2.x `vendorName`).
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Serial number (1.6 `chargePointSerialNumber`, 2.x `serialNumber`).
    pub serial_number: Option<String>,
    /// Firmware version.
    pub firmware_version: Option<String>,
}

/// A connector (1.6) or an EVSE / connector pair (2.x).
///
/// A 1.6 `connectorId` n is `evse: n, connector: None` (1.6 connectors are what 2.x calls
/// EVSEs; 0 is the charge point itself). A 2.x status of EVSE e, connector c is
/// `evse: e, connector: Some(c)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectorRef {
    /// The EVSE id (1.6: the connector id).
    pub evse: i32,
    /// The connector id within the EVSE (2.x only).
    pub connector: Option<i32>,
}

impl ConnectorRef {
    /// A 1.6 connector.
    pub const fn v16(connector_id: i32) -> ConnectorRef {
        ConnectorRef {
            evse: connector_id,
            connector: None,
        }
    }

    /// A 2.x EVSE / connector.
    pub const fn evse(evse: i32, connector: Option<i32>) -> ConnectorRef {
        ConnectorRef { evse, connector }
    }
}

/// A connector status, the union of 1.6's `ChargePointStatus` and 2.x's
/// `ConnectorStatusEnumType`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectorStatus {
    /// Available for a new user.
    Available,
    /// (1.6) A user is preparing (plugged in or authorized).
    Preparing,
    /// (1.6) Charging.
    Charging,
    /// (1.6) The EVSE suspended charging.
    SuspendedEvse,
    /// (1.6) The EV suspended charging.
    SuspendedEv,
    /// (1.6) The transaction stopped, the connector is not yet available.
    Finishing,
    /// (2.x) In use (plugged in, charging, ...).
    Occupied,
    /// Reserved.
    Reserved,
    /// Unavailable.
    Unavailable,
    /// Faulted.
    Faulted,
    /// A value no version defines (kept verbatim).
    Other(String),
}

impl ConnectorStatus {
    /// Reads the wire name of either version.
    pub fn from_wire(s: &str) -> ConnectorStatus {
        match s {
            "Available" => ConnectorStatus::Available,
            "Preparing" => ConnectorStatus::Preparing,
            "Charging" => ConnectorStatus::Charging,
            "SuspendedEVSE" => ConnectorStatus::SuspendedEvse,
            "SuspendedEV" => ConnectorStatus::SuspendedEv,
            "Finishing" => ConnectorStatus::Finishing,
            "Occupied" => ConnectorStatus::Occupied,
            "Reserved" => ConnectorStatus::Reserved,
            "Unavailable" => ConnectorStatus::Unavailable,
            "Faulted" => ConnectorStatus::Faulted,
            other => ConnectorStatus::Other(other.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ConnectorStatus::Available => "Available",
            ConnectorStatus::Preparing => "Preparing",
            ConnectorStatus::Charging => "Charging",
            ConnectorStatus::SuspendedEvse => "SuspendedEVSE",
            ConnectorStatus::SuspendedEv => "SuspendedEV",
            ConnectorStatus::Finishing => "Finishing",
            ConnectorStatus::Occupied => "Occupied",
            ConnectorStatus::Reserved => "Reserved",
            ConnectorStatus::Unavailable => "Unavailable",
            ConnectorStatus::Faulted => "Faulted",
            ConnectorStatus::Other(s) => s,
        }
    }

    /// Whether a vehicle or user occupies the connector.
    pub fn is_occupied(&self) -> bool {
        matches!(
            self,
            ConnectorStatus::Preparing
                | ConnectorStatus::Charging
                | ConnectorStatus::SuspendedEvse
                | ConnectorStatus::SuspendedEv
                | ConnectorStatus::Finishing
                | ConnectorStatus::Occupied
        )
    }
}

/// The last known state of one connector.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorState {
    /// Its status.
    pub status: ConnectorStatus,
    /// (1.6) The error code reported with it (`NoError` when fine).
    pub error_code: Option<String>,
    /// When the charger says the status began (or when it was received).
    pub since: DateTime<Utc>,
}

/// An authorization status, the union of 1.6's `AuthorizationStatus` and 2.x's
/// `AuthorizationStatusEnumType`, kept as the wire name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthorizationStatus(pub String);

impl AuthorizationStatus {
    /// Whether the status is `Accepted`.
    pub fn is_accepted(&self) -> bool {
        self.0 == "Accepted"
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One sampled value, version-neutral.
///
/// Its texts are the specification's vocabulary (measurands, units, phases, contexts,
/// locations): each is the generated enum's static text, borrowed, never copied per sample
/// (a meter value of a running transaction carries a dozen of them); only a 2.x unit
/// outside the usual ones is owned.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterSample {
    /// When it was sampled.
    pub timestamp: DateTime<Utc>,
    /// The measurand (defaults to `Energy.Active.Import.Register`, as both versions say).
    pub measurand: Cow<'static, str>,
    /// The value exactly as sent, unit and multiplier not applied.
    pub value: Decimal,
    /// The unit as sent (`None`: the measurand's default, Wh for energy).
    pub unit: Option<Cow<'static, str>>,
    /// (2.x) The power-of-ten multiplier (0 when absent or on 1.6).
    pub multiplier: i32,
    /// The phase, if given.
    pub phase: Option<Cow<'static, str>>,
    /// The reading context (`Sample.Periodic`, `Transaction.Begin`, ...), if given.
    pub context: Option<Cow<'static, str>>,
    /// The location (`Outlet`, `EV`, ...), if given.
    pub location: Option<Cow<'static, str>>,
    /// The signed form of this reading, verbatim (1.6 `format: SignedData`, 2.x
    /// `signedMeterValue`); parse and verify it with [`crate::signed`].
    pub signed: Option<SignedMeterValue>,
}

/// A signed meter value exactly as the charger sent it (metering law, e.g. Germany's
/// Eichrecht): nothing is decoded or dropped here, so the application can store it verbatim
/// and check it later with [`crate::signed::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMeterValue {
    /// The signed data verbatim: 1.6 the sampled value's `value` (usually an OCMF string),
    /// 2.x `signedMeterData` (base64 by the specification; plain OCMF is seen in the field).
    pub data: String,
    /// (2.x) `encodingMethod` (`OCMF`, `EDL`, ...); `None` on 1.6.
    pub encoding: Option<String>,
    /// (2.x) `signingMethod`, if given.
    pub signing_method: Option<String>,
    /// (2.x) `publicKey` (base64 by the specification), if sent with this value (see the
    /// station's `PublicKeyWithSignedMeterValue`).
    pub public_key: Option<String>,
    /// True for 1.6 `SignedData`: the signed data stands in place of the number, so the
    /// sample's `value` is zero and counts for no register ([`MeterSample::has_value`]).
    pub replaces_value: bool,
}

/// The default measurand of both versions.
pub const ENERGY_IMPORT_REGISTER: &str = "Energy.Active.Import.Register";

impl MeterSample {
    /// Whether `value` is a reading: false for a 1.6 `SignedData` sample, whose only content
    /// is [`MeterSample::signed`].
    pub fn has_value(&self) -> bool {
        !self.signed.as_ref().is_some_and(|s| s.replaces_value)
    }

    /// The value in Wh, when this is an energy measurand in Wh or kWh.
    pub fn energy_wh(&self) -> Option<Decimal> {
        if !self.has_value() || !self.measurand.starts_with("Energy.") {
            return None;
        }
        let base = match self.unit.as_deref() {
            None | Some("Wh") => self.value,
            Some("kWh") => self.value.checked_mul(Decimal::from(1000))?,
            Some(_) => return None,
        };
        scale_pow10(base, self.multiplier)
    }

    /// The value in W, when this is a power measurand in W or kW (`None` otherwise, or when
    /// it does not fit).
    pub fn power_w(&self) -> Option<Decimal> {
        if !self.has_value() || !self.measurand.starts_with("Power.") {
            return None;
        }
        let base = match self.unit.as_deref() {
            None | Some("W") => self.value,
            Some("kW") => self.value.checked_mul(Decimal::from(1000))?,
            Some(_) => return None,
        };
        scale_pow10(base, self.multiplier)
    }

    /// Whether this is the total imported active energy register, without phase (the value
    /// transactions are billed on).
    pub fn is_import_register(&self) -> bool {
        self.has_value() && self.measurand == ENERGY_IMPORT_REGISTER && self.phase.is_none()
    }
}

fn scale_pow10(value: Decimal, exp: i32) -> Option<Decimal> {
    if !(-28..=28).contains(&exp) {
        return None;
    }
    let factor = Decimal::from_i128_with_scale(10i128.pow(exp.unsigned_abs()), 0);
    if exp >= 0 {
        value.checked_mul(factor)
    } else {
        value.checked_div(factor)
    }
}

/// Parses a 1.6 sampled value (a string) as an exact decimal.
pub(crate) fn parse_decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str_exact(s.trim())
        .ok()
        .or_else(|| Decimal::from_scientific(s.trim()).ok())
        .or_else(|| Decimal::from_str(s.trim()).ok())
}

/// A transaction, version-neutral: what the model keeps of it (registers, power, sequence
/// bookkeeping), never its meter samples, which leave with the events
/// ([`Event::TransactionUpdated`] and the others) for the application to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// The transaction id: 1.6's central-issued integer as a string, 2.x's charger-made id.
    pub id: String,
    /// Where it runs.
    pub connector: ConnectorRef,
    /// The id token that started it (1.6 `idTag`, 2.x `idToken.idToken`), if known.
    pub id_token: Option<String>,
    /// When it started, as the charger says (or when it was first seen).
    pub started_at: DateTime<Utc>,
    /// When it ended (`None` while active).
    pub ended_at: Option<DateTime<Utc>>,
    /// The energy register at the start, in Wh, if known.
    pub meter_start_wh: Option<Decimal>,
    /// The latest energy register reading, in Wh, if known.
    pub meter_last_wh: Option<Decimal>,
    /// When the latest energy register reading was taken, if known.
    pub meter_last_at: Option<DateTime<Utc>>,
    /// Energy delivered so far (latest register minus start), in Wh. When the difference does
    /// not fit a decimal, it keeps its previous value and [`Event::OutOfRange`] is reported.
    pub energy_wh: Decimal,
    /// The latest total active import power in W: the last `Power.Active.Import` sample
    /// without phase, else the rate between the last two energy register readings.
    pub power_w: Option<Decimal>,
    /// How many meter samples arrived for it (saturating).
    pub samples_received: u64,
    /// Why it stopped, as the charger says.
    pub stop_reason: Option<String>,
    /// Whether any of its messages was sent or flagged offline (2.x `offline`; 1.6: a
    /// message whose timestamp lay before its receipt by more than the session's tolerance is
    /// not judged, so this stays `false` on 1.6).
    pub offline: bool,
    /// (2.x) The next `seqNo` expected (saturates at `i32::MAX`).
    pub next_seq_no: Option<i32>,
    /// (2.x) `seqNo`s skipped so far and not (yet) received, as ranges.
    pub seq_gaps: SeqGaps,
}

/// (2.x) The `seqNo`s a transaction skipped and did not (yet) receive, as inclusive ranges in
/// ascending order, at most [`Limits::max_sequence_gaps`] of them: a gap of two billion is one
/// range, and a charger that skips every other number cannot grow it beyond the bound (the
/// oldest ranges are forgotten, [`Event::LimitReached`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeqGaps {
    ranges: Vec<(i32, i32)>,
}

impl SeqGaps {
    /// The missing ranges, inclusive, ascending.
    pub fn ranges(&self) -> &[(i32, i32)] {
        &self.ranges
    }

    /// Whether nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many `seqNo`s are missing in all.
    pub fn missing(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(a, b)| (i64::from(*b) - i64::from(*a) + 1).unsigned_abs())
            .sum()
    }

    /// Whether `seq` is missing.
    pub fn contains(&self, seq: i32) -> bool {
        self.ranges.iter().any(|(a, b)| *a <= seq && seq <= *b)
    }

    /// Adds the range `from..=to` (above every range so far); returns how many of the oldest
    /// ranges were forgotten to stay within `max`.
    fn add(&mut self, from: i32, to: i32, max: usize) -> usize {
        if from <= to {
            self.ranges.push((from, to));
        }
        self.cap(max)
    }

    /// `seq` arrived late: takes it out of its range; returns how many of the oldest ranges
    /// were forgotten to stay within `max`.
    fn fill(&mut self, seq: i32, max: usize) -> usize {
        let Some(i) = self.ranges.iter().position(|(a, b)| *a <= seq && seq <= *b) else {
            return 0;
        };
        let (a, b) = self.ranges[i];
        // seq > a and seq < b make these subtractions and additions exact.
        let mut parts = Vec::with_capacity(2);
        if seq > a {
            parts.push((a, seq - 1));
        }
        if seq < b {
            parts.push((seq + 1, b));
        }
        self.ranges.splice(i..=i, parts);
        self.cap(max)
    }

    fn cap(&mut self, max: usize) -> usize {
        let over = self.ranges.len().saturating_sub(max);
        self.ranges.drain(..over);
        over
    }
}

/// What [`Transaction::sequence`] found.
#[derive(Debug, Default)]
pub(crate) struct SeqOutcome {
    /// A gap opened: the `seqNo` that was expected.
    pub(crate) gap_from: Option<i32>,
    /// How many of the oldest gap ranges were forgotten.
    pub(crate) gaps_dropped: usize,
    /// The `seqNo` leaves no next one (`i32::MAX`).
    pub(crate) overflow: bool,
}

impl Transaction {
    /// A transaction with nothing known but its id, place and start (e.g. to restore one
    /// persisted by the application, see [`Session::restore_transaction`](crate::Session::restore_transaction)).
    pub fn new(id: String, connector: ConnectorRef, started_at: DateTime<Utc>) -> Self {
        Transaction {
            id,
            connector,
            id_token: None,
            started_at,
            ended_at: None,
            meter_start_wh: None,
            meter_last_wh: None,
            meter_last_at: None,
            energy_wh: Decimal::ZERO,
            power_w: None,
            samples_received: 0,
            stop_reason: None,
            offline: false,
            next_seq_no: None,
            seq_gaps: SeqGaps::default(),
        }
    }

    /// (2.x) Records `seqNo` `seq`: opens a gap when numbers were skipped, fills one when a
    /// late number arrives.
    pub(crate) fn sequence(&mut self, seq: i32, max_gaps: usize) -> SeqOutcome {
        let mut out = SeqOutcome::default();
        let next = match self.next_seq_no {
            Some(next) if seq > next => {
                // seq > next, so seq - 1 >= next: no overflow.
                out.gaps_dropped = self.seq_gaps.add(next, seq - 1, max_gaps);
                out.gap_from = Some(next);
                seq
            }
            Some(next) if seq < next => {
                out.gaps_dropped = self.seq_gaps.fill(seq, max_gaps);
                return out;
            }
            _ => seq,
        };
        self.next_seq_no = Some(match next.checked_add(1) {
            Some(n) => n,
            None => {
                out.overflow = true;
                i32::MAX
            }
        });
        out
    }

    /// Adds one message's samples, moving the start / last register readings, the power and
    /// the energy so far. Values that do not fit (a register in kWh whose Wh value exceeds a
    /// decimal, an energy difference out of range) are left out; the first is described in
    /// the error.
    pub(crate) fn add_samples(&mut self, samples: &[MeterSample]) -> Result<(), String> {
        let mut problem = None;
        let mut power = None;
        for s in samples {
            if s.is_import_register() {
                match s.energy_wh() {
                    Some(wh) => {
                        let begin = s.context.as_deref() == Some("Transaction.Begin");
                        if self.meter_start_wh.is_none() || (begin && self.samples_received == 0) {
                            self.meter_start_wh = Some(wh);
                        }
                        if !begin || self.meter_last_wh.is_none() {
                            if let (Some(e0), Some(t0)) = (self.meter_last_wh, self.meter_last_at) {
                                if let Some(p) = rate_w(e0, t0, wh, s.timestamp) {
                                    self.power_w = Some(p);
                                }
                            }
                            self.meter_last_wh = Some(wh);
                            self.meter_last_at = Some(s.timestamp);
                        }
                    }
                    None => {
                        problem.get_or_insert_with(|| {
                            format!(
                                "energy register {} {} (multiplier {}) does not fit in Wh",
                                s.value,
                                s.unit.as_deref().unwrap_or("Wh"),
                                s.multiplier
                            )
                        });
                    }
                }
            } else if s.has_value() && s.measurand == "Power.Active.Import" && s.phase.is_none() {
                match s.power_w() {
                    Some(w) => power = Some(w),
                    None => {
                        problem
                            .get_or_insert_with(|| format!("power {} does not fit in W", s.value));
                    }
                }
            }
            self.samples_received = self.samples_received.saturating_add(1);
        }
        if power.is_some() {
            self.power_w = power;
        }
        if let Err(e) = self.recompute() {
            problem.get_or_insert(e);
        }
        match problem {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }

    /// Energy = last register - start register, when both are known and the difference fits.
    pub(crate) fn recompute(&mut self) -> Result<(), String> {
        if let (Some(start), Some(last)) = (self.meter_start_wh, self.meter_last_wh) {
            match last.checked_sub(start) {
                Some(e) => self.energy_wh = e,
                None => {
                    return Err(format!(
                        "energy {last} Wh - {start} Wh does not fit; kept {} Wh",
                        self.energy_wh
                    ))
                }
            }
        }
        Ok(())
    }
}

/// The average power in W between two register readings, when time moved forward and the
/// arithmetic fits.
fn rate_w(e0: Decimal, t0: DateTime<Utc>, e1: Decimal, t1: DateTime<Utc>) -> Option<Decimal> {
    let ms = (t1 - t0).num_milliseconds();
    if ms <= 0 {
        return None;
    }
    let wh = e1.checked_sub(e0)?;
    let p = wh
        .checked_mul(Decimal::from(3_600_000))?
        .checked_div(Decimal::from(ms))?;
    Some(p.round_dp(1))
}

/// A map kept as a vector sorted by key: the model's maps hold a handful of entries per
/// charger (its connectors, its running transactions), where a `BTreeMap` would allocate a
/// node of eleven slots for the first one. Iteration is in key order, as a `BTreeMap`'s.
#[derive(Debug, Clone, PartialEq)]
pub struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        SmallMap::default()
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value of `key`, to change.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets the value of `key`; returns the one it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = self.find(key).ok()?;
        let (_, v) = self.entries.remove(i);
        if self.entries.is_empty() {
            self.entries = Vec::new();
        }
        Some(v)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values in key order, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Ord + Borrow<Q>, V, Q: Ord + ?Sized> std::ops::Index<&Q> for SmallMap<K, V> {
    type Output = V;

    /// The value of `key`; panics when there is none (as `BTreeMap`'s index does).
    fn index(&self, key: &Q) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no entry for the key"),
        }
    }
}

/// Everything known about one charger connection, version-neutral.
///
/// A driver publishes it after each change and the next change copies it (the published
/// copy is still held): what rarely changes, the identity and the boot information, is
/// shared between the copies instead of copied.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargerState {
    /// The charger's identity (the last path segment of its URL).
    pub identity: Arc<str>,
    /// The OCPP version of the connection.
    pub version: Version,
    /// Whether the connection is open.
    pub connected: bool,
    /// What the BootNotification said (`None` before one on this connection).
    pub info: Option<Arc<ChargerInfo>>,
    /// The boot state.
    pub boot: BootState,
    /// The heartbeat interval given in the last boot answer, in seconds.
    pub heartbeat_interval: Option<i32>,
    /// When the connection opened (wall clock).
    pub connected_at: DateTime<Utc>,
    /// When the charger last sent a Heartbeat (wall clock).
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Connector / EVSE states.
    pub connectors: SmallMap<ConnectorRef, ConnectorState>,
    /// Transactions in progress, by id (at most [`Limits::max_transactions`]).
    pub transactions: SmallMap<String, Transaction>,
}

/// The bounds of the model of one charger, each reported with [`Event::LimitReached`] when
/// reached. A conforming charger stays far below every default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Transactions tracked at once (default 64); beyond, the one started longest ago is
    /// forgotten by the model (the application still has it from the events).
    pub max_transactions: usize,
    /// Connectors / EVSEs tracked (default 128); statuses of further ones are reported to the
    /// application but not tracked.
    pub max_connectors: usize,
    /// (2.x) Missing `seqNo` ranges kept per transaction (default 64); beyond, the oldest are
    /// forgotten.
    pub max_sequence_gaps: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_transactions: 64,
            max_connectors: 128,
            max_sequence_gaps: 64,
        }
    }
}

/// Which bound of [`Limits`] (or of the session) was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::max_transactions`].
    Transactions,
    /// [`Limits::max_connectors`].
    Connectors,
    /// [`Limits::max_sequence_gaps`].
    SequenceGaps,
}

impl Limit {
    /// A short name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Limit::Transactions => "transactions",
            Limit::Connectors => "connectors",
            Limit::SequenceGaps => "sequence_gaps",
        }
    }
}

impl ChargerState {
    /// The state of a charger that just connected (nothing known yet).
    pub fn new(identity: String, version: Version, now: DateTime<Utc>) -> Self {
        ChargerState {
            identity: identity.into(),
            version,
            connected: true,
            info: None,
            boot: BootState::Unknown,
            heartbeat_interval: None,
            connected_at: now,
            last_heartbeat: None,
            connectors: SmallMap::new(),
            transactions: SmallMap::new(),
        }
    }
}

/// A version-neutral event about a charger. Each variant that stems from a charger message
/// carries it typed (`request`) and, where it matters, the answer it got (`response`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The session started (the connection is open).
    Connected {
        /// The charger's identity.
        identity: String,
        /// The connection's version.
        version: Version,
    },
    /// A BootNotification was answered.
    Booted {
        /// What the charger said about itself.
        info: ChargerInfo,
        /// The resulting boot state.
        state: BootState,
        /// The typed request.
        request: Arc<AnyRequest>,
        /// The typed answer.
        response: AnyResponse,
    },
    /// A Heartbeat arrived.
    Heartbeat {
        /// When (wall clock).
        at: DateTime<Utc>,
    },
    /// A connector / EVSE reported a status.
    StatusChanged {
        /// Which one.
        connector: ConnectorRef,
        /// The status before (`None` when first reported on this connection).
        previous: Option<ConnectorStatus>,
        /// The new status.
        status: ConnectorStatus,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// An id token was authorized (Authorize; the decision given).
    Authorized {
        /// The id token.
        id_token: String,
        /// The decision.
        status: AuthorizationStatus,
        /// The typed request.
        request: Arc<AnyRequest>,
        /// The typed answer.
        response: AnyResponse,
    },
    /// A transaction began (1.6 StartTransaction answered; 2.x the first TransactionEvent of
    /// a transaction id).
    TransactionStarted {
        /// The transaction as now known.
        transaction: Transaction,
        /// The samples this message brought (2.x `meterValue` of the Started event).
        samples: Vec<MeterSample>,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// New meter data or state for a running transaction.
    TransactionUpdated {
        /// The transaction as now known.
        transaction: Transaction,
        /// The samples this message brought.
        samples: Vec<MeterSample>,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// A transaction ended.
    TransactionEnded {
        /// The transaction, final (energy in Wh, stop reason).
        transaction: Transaction,
        /// The samples this message brought (1.6 `transactionData`, 2.x `meterValue`).
        samples: Vec<MeterSample>,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// Meter values not bound to a transaction known to this session.
    MeterValues {
        /// Where they were measured.
        connector: ConnectorRef,
        /// (1.6) The transaction id the charger gave, if any (e.g. one started before this
        /// connection).
        transaction_id: Option<String>,
        /// The samples.
        samples: Vec<MeterSample>,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// A re-sent transaction message (already processed) was answered again with the first
    /// answer, without reaching the application.
    DuplicateMessage {
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.x) A TransactionEvent skipped one or more `seqNo`s.
    SequenceGap {
        /// The transaction id.
        transaction_id: String,
        /// The `seqNo` expected.
        expected: i32,
        /// The `seqNo` received.
        received: i32,
    },
    /// A bound of the model or the session was reached (see [`Limits`]); what it says was
    /// not kept by the model. The message was answered as usual.
    LimitReached {
        /// Which bound.
        limit: Limit,
        /// Its value.
        bound: usize,
        /// What was not kept.
        detail: String,
    },
    /// A value from the charger whose result does not fit the model (e.g. an energy
    /// difference beyond the largest decimal, a `seqNo` of `i32::MAX`): the message was
    /// answered and is passed on whole, the model did not apply that value.
    OutOfRange {
        /// The transaction concerned, if any.
        transaction_id: Option<String>,
        /// What did not fit.
        detail: String,
    },
    /// (Lenient mode, [`SessionConfig::lenient`](crate::SessionConfig::lenient)) A charger
    /// request that broke its schema was repaired and accepted; the request then arrives as
    /// usual.
    Repaired {
        /// The action.
        action: String,
        /// Every repair made, with its JSON pointer in the original payload.
        repairs: Vec<ocpp_codec::typed::Repair>,
    },
    /// A charger request was refused by the session (before boot acceptance, not a charger
    /// action, unknown, or invalid), without reaching the application.
    Refused {
        /// The action.
        action: String,
        /// The CALLERROR code sent.
        code: ocpp_codec::ErrorCode,
        /// Why.
        reason: String,
    },
    /// (2.x) A smart-charging notification (NotifyChargingLimit, ClearedChargingLimit,
    /// NotifyEVChargingNeeds, NotifyEVChargingSchedule, ReportChargingProfiles), answered.
    SmartCharging {
        /// What it says, version-neutral.
        notice: crate::smart_charging::SmartChargingNotice,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.x) A ReservationStatusUpdate (a reservation expired or was removed), answered.
    ReservationStatus {
        /// What it says ([`crate::reservations`]).
        update: crate::reservations::ReservationStatus,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// A firmware, diagnostics or log status notification, answered.
    TransferStatus {
        /// What it says ([`crate::firmware`]).
        status: crate::firmware::TransferStatus,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.x) A NotifyReport (one part of a report), answered.
    Report {
        /// What it says ([`crate::device_model`]).
        part: crate::device_model::ReportPart,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.x) A NotifyMonitoringReport (one part of a monitoring report), answered.
    MonitoringReport {
        /// What it says ([`crate::device_model`]).
        part: crate::device_model::MonitoringReportPart,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.x) A NotifyEvent (monitors that fired, hard-wired notifications), answered.
    DeviceEvents {
        /// What it says ([`crate::device_model`]).
        events: crate::device_model::DeviceEvents,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.x) A NotifyDisplayMessages (a report of GetDisplayMessages), answered.
    DisplayMessages {
        /// What it says ([`crate::display`]).
        report: crate::display::DisplayReport,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.x) A NotifyCustomerInformation part (a report of CustomerInformation), answered.
    CustomerInformation {
        /// What it says ([`crate::display`]).
        part: crate::display::CustomerInformationPart,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.1) An OpenPeriodicEventStream or ClosePeriodicEventStream, answered.
    EventStream {
        /// What it says ([`crate::streams`]).
        notice: crate::streams::StreamNotice,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.1) A NotifyDERAlarm, NotifyDERStartStop or ReportDERControl, answered.
    Der {
        /// What it says ([`crate::der`]).
        notice: crate::der::DerNotice,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// (2.1) A NotifyPeriodicEventStream (a SEND, never answered), checked and decoded.
    StreamData {
        /// Its samples with their absolute times ([`crate::streams`]).
        data: crate::streams::StreamData,
    },
    /// (2.1) A TransactionEvent that names its tariff or carries the cost the station
    /// computed (`costDetails`), answered.
    #[cfg(feature = "v21")]
    TariffCost {
        /// What it says ([`crate::tariffs`]; boxed: `costDetails` is large).
        report: Box<crate::tariffs::CostReport>,
        /// The typed request.
        request: Arc<AnyRequest>,
    },
    /// The connection closed.
    Disconnected {
        /// Why, if known.
        reason: Option<String>,
    },
}
