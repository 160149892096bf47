//! Display messages (2.x functional block O): SetDisplayMessage, GetDisplayMessages with its
//! NotifyDisplayMessages reports, ClearDisplayMessage, and what the station's display shows
//! now ([`Station::displayed_messages`]).
//!
//! - A message has an `id`; a SetDisplayMessage with the id of a held message replaces it
//!   (use case O06). The station holds at most [`DisplayConfig::max_messages`] (default
//!   [`DEFAULT_MAX_DISPLAY_MESSAGES`], `DisplayMessageCtrlr.DisplayMessages`); a new id
//!   beyond is answered `Rejected`.
//! - The answer words, checked in this order: `Rejected` when the station has no display
//!   (`DisplayMessageCtrlr.Available` false), the message ended already (its `endDateTime`
//!   is not after now) or the station is full; `NotSupportedMessageFormat` for a format
//!   outside `SupportedFormats`; `NotSupportedPriority` for a priority outside
//!   `SupportedPriorities`; `NotSupportedState` for a state outside `SupportedStates`;
//!   `UnknownTransaction` for a `transactionId` that is not an ongoing transaction (use case
//!   O02). The content's length is the schema's (512 characters in 2.0.1, 1024 in 2.1): a
//!   longer one is refused by the typed decoding with a CALLERROR.
//! - A message is shown from its `startDateTime` to its `endDateTime` (on the injected
//!   clock), only while the station is in its `state` when it has one, and a message of a
//!   transaction only while that transaction goes on: it is removed when the transaction
//!   ends, and when its `endDateTime` passes.
//! - [`Station::displayed_messages`] gives what to show now, highest priority first
//!   (`AlwaysFront`, `InFront`, `NormalCycle`; then by id); the station reports
//!   [`StationEvent::DisplayChanged`] whenever that changes and gives the list to the
//!   application's [`Display::show_messages`](crate::app::Display::show_messages). With
//!   [`DisplayConfig::show_cost`] (the default) the running cost of a transaction
//!   (CostUpdated, the TransactionEvent answer's `totalCost`, the 1.6 California Pricing
//!   messages) and the answer's `updatedPersonalMessage` are shown too, as messages without
//!   an id.
//! - The messages are part of the state document: they survive a restart.

use super::*;

/// The default bound of the held display messages: 32.
pub const DEFAULT_MAX_DISPLAY_MESSAGES: usize = 32;

/// How many messages one NotifyDisplayMessages carries.
pub const DISPLAY_MESSAGES_PER_REPORT: usize = 8;

/// A message's priority (2.x `MessagePriorityEnumType`), highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MessagePriority {
    /// Shown at once, in front of every other message.
    AlwaysFront,
    /// Shown in front of the normal cycle.
    InFront,
    /// Shown in the normal cycle of messages.
    NormalCycle,
}

impl MessagePriority {
    /// The wire word.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessagePriority::AlwaysFront => "AlwaysFront",
            MessagePriority::InFront => "InFront",
            MessagePriority::NormalCycle => "NormalCycle",
        }
    }

    /// From the wire word.
    pub fn parse(s: &str) -> Option<MessagePriority> {
        [
            MessagePriority::AlwaysFront,
            MessagePriority::InFront,
            MessagePriority::NormalCycle,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// What the station's display can do (`DisplayMessageCtrlr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayConfig {
    /// Whether the station has a display (`DisplayMessageCtrlr.Available`); without one,
    /// every SetDisplayMessage is answered `Rejected`. Default: true.
    pub available: bool,
    /// The most messages held (`DisplayMessageCtrlr.DisplayMessages`). Default
    /// [`DEFAULT_MAX_DISPLAY_MESSAGES`].
    pub max_messages: usize,
    /// The formats it shows (`SupportedFormats`). Default `ASCII`, `UTF8`.
    pub formats: Vec<String>,
    /// The priorities it honours (`SupportedPriorities`). Default all three.
    pub priorities: Vec<MessagePriority>,
    /// The states a message may be tied to (`SupportedStates`). Default `Charging`,
    /// `Faulted`, `Idle`, `Unavailable`.
    pub states: Vec<String>,
    /// Whether the running cost and the personal message of a transaction are shown as
    /// messages. Default: true (when `available`).
    pub show_cost: bool,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            available: true,
            max_messages: DEFAULT_MAX_DISPLAY_MESSAGES,
            formats: vec!["ASCII".into(), "UTF8".into()],
            priorities: vec![
                MessagePriority::AlwaysFront,
                MessagePriority::InFront,
                MessagePriority::NormalCycle,
            ],
            states: ["Charging", "Faulted", "Idle", "Unavailable"]
                .map(String::from)
                .to_vec(),
            show_cost: true,
        }
    }
}

/// Sets the read-only `DisplayMessageCtrlr` variables from the configuration.
pub(crate) fn fill_settings(settings: &mut Settings, c: &DisplayConfig) {
    let on = if c.available { "true" } else { "false" };
    settings.set_fixed("DisplayMessageCtrlr", "Available", None, on);
    settings.set_fixed(
        "DisplayMessageCtrlr",
        "DisplayMessages",
        None,
        &c.max_messages.to_string(),
    );
    settings.set_fixed(
        "DisplayMessageCtrlr",
        "SupportedFormats",
        None,
        &c.formats.join(","),
    );
    let priorities: Vec<&str> = c.priorities.iter().map(|p| p.as_str()).collect();
    settings.set_fixed(
        "DisplayMessageCtrlr",
        "SupportedPriorities",
        None,
        &priorities.join(","),
    );
    settings.set_fixed(
        "DisplayMessageCtrlr",
        "SupportedStates",
        None,
        &c.states.join(","),
    );
}

/// A held message, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HeldMessage {
    pub(crate) id: i32,
    pub(crate) priority: MessagePriority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) transaction_id: Option<String>,
    pub(crate) format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) language: Option<String>,
    pub(crate) content: String,
    /// The display component, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) display: Option<Value>,
}

/// The running cost (and personal message) of a transaction, for the display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CostLine {
    pub(crate) transaction_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cost: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) personal: Option<(String, String, Option<String>)>,
}

/// The display messages, as persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DisplayDoc {
    #[serde(default)]
    pub(crate) messages: Vec<HeldMessage>,
    #[serde(default)]
    pub(crate) costs: Vec<CostLine>,
}

/// The in-memory display state: the persisted messages, the next deadline and what was
/// shown last.
#[derive(Debug, Default)]
pub(crate) struct DisplayState {
    pub(crate) doc: DisplayDoc,
    pub(crate) next: Option<Instant>,
    shown: Vec<DisplayMessage>,
}

impl DisplayState {
    pub(crate) fn new(doc: DisplayDoc) -> DisplayState {
        DisplayState {
            doc,
            next: None,
            shown: Vec::new(),
        }
    }
}

/// A message the display shows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayMessage {
    /// The central system's message id; `None` for the station's own (the running cost,
    /// a transaction's personal message).
    pub id: Option<i32>,
    /// Its priority.
    pub priority: MessagePriority,
    /// `ASCII`, `HTML`, `URI`, `UTF8` (2.1 also `QRCODE`).
    pub format: String,
    /// Its language (RFC 5646), if given.
    pub language: Option<String>,
    /// The text.
    pub content: String,
    /// The transaction it belongs to, if any.
    pub transaction_id: Option<String>,
    /// The display component it is for (`display.name`), if given.
    pub display: Option<String>,
}

/// Why a SetDisplayMessage was not taken.
fn check(
    cfg: &DisplayConfig,
    full: bool,
    m: &HeldMessage,
    wall: DateTime<Utc>,
    known_tx: bool,
) -> Option<&'static str> {
    if !cfg.available || full || m.end.is_some_and(|e| e <= wall) {
        return Some("Rejected");
    }
    if !cfg.formats.contains(&m.format) {
        return Some("NotSupportedMessageFormat");
    }
    if !cfg.priorities.contains(&m.priority) {
        return Some("NotSupportedPriority");
    }
    if m.state
        .as_ref()
        .is_some_and(|s| !cfg.states.iter().any(|x| x == s))
    {
        return Some("NotSupportedState");
    }
    if m.transaction_id.is_some() && !known_tx {
        return Some("UnknownTransaction");
    }
    None
}

impl Station {
    fn ongoing_tx(&self, id: &str) -> bool {
        self.evses
            .iter()
            .filter_map(|e| e.tx.as_ref())
            .any(|t| t.id.as_deref() == Some(id))
    }

    /// SetDisplayMessage: the status word.
    pub(crate) fn set_display_message(&mut self, now: Instant, m: HeldMessage) -> &'static str {
        let wall = self.cfg.time.wall(now);
        let replaces = self.display.doc.messages.iter().position(|x| x.id == m.id);
        let full = replaces.is_none()
            && self.display.doc.messages.len() >= self.cfg.display_config().max_messages;
        let known = m
            .transaction_id
            .as_deref()
            .is_some_and(|t| self.ongoing_tx(t));
        if let Some(refusal) = check(self.cfg.display_config(), full, &m, wall, known) {
            return refusal;
        }
        match replaces {
            Some(i) => self.display.doc.messages[i] = m,
            None => self.display.doc.messages.push(m),
        }
        self.save();
        "Accepted"
    }

    /// ClearDisplayMessage: whether it was held.
    pub(crate) fn clear_display_message(&mut self, id: i32) -> bool {
        let before = self.display.doc.messages.len();
        self.display.doc.messages.retain(|m| m.id != id);
        let held = self.display.doc.messages.len() != before;
        if held {
            self.save();
        }
        held
    }

    /// The held messages GetDisplayMessages selects (every criterion given must match).
    fn select_messages(
        &self,
        ids: Option<&[i64]>,
        priority: Option<&str>,
        state: Option<&str>,
    ) -> Vec<Value> {
        let ids: Option<BTreeSet<i64>> = ids.map(|i| i.iter().copied().collect());
        self.display
            .doc
            .messages
            .iter()
            .filter(|m| ids.as_ref().is_none_or(|s| s.contains(&i64::from(m.id))))
            .filter(|m| priority.is_none_or(|p| m.priority.as_str() == p))
            .filter(|m| state.is_none_or(|s| m.state.as_deref() == Some(s)))
            .map(message_info)
            .collect()
    }

    /// The held display messages set by the central system, as MessageInfo JSON.
    pub fn display_messages(&self) -> Vec<Value> {
        self.display.doc.messages.iter().map(message_info).collect()
    }

    /// Whether the station is in `state` (a message's `state`).
    fn in_state(&self, state: &str) -> bool {
        match state {
            "Charging" => self.evses.iter().any(|e| e.tx.is_some() && !e.suspended),
            "Suspended" => self.evses.iter().any(|e| e.tx.is_some() && e.suspended),
            "Faulted" => self.evses.iter().any(|e| e.faulted),
            "Unavailable" => self.station_inoperative || self.evses.iter().all(|e| e.inoperative),
            "Idle" => self.evses.iter().all(|e| e.tx.is_none()),
            _ => false,
        }
    }

    /// What the display shows now, highest priority first (see the [module docs](self)).
    pub fn displayed_messages(&self, now: Instant) -> Vec<DisplayMessage> {
        let wall = self.cfg.time.wall(now);
        let mut shown: Vec<DisplayMessage> = self
            .display
            .doc
            .messages
            .iter()
            .filter(|m| m.start.is_none_or(|s| s <= wall))
            .filter(|m| m.state.as_deref().is_none_or(|s| self.in_state(s)))
            .map(|m| DisplayMessage {
                id: Some(m.id),
                priority: m.priority,
                format: m.format.clone(),
                language: m.language.clone(),
                content: m.content.clone(),
                transaction_id: m.transaction_id.clone(),
                display: m
                    .display
                    .as_ref()
                    .and_then(|d| d.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
            .collect();
        let cfg = self.cfg.display_config();
        if cfg.available && cfg.show_cost {
            for c in &self.display.doc.costs {
                if let Some((format, content, language)) = &c.personal {
                    shown.push(DisplayMessage {
                        id: None,
                        priority: MessagePriority::InFront,
                        format: format.clone(),
                        language: language.clone(),
                        content: content.clone(),
                        transaction_id: Some(c.transaction_id.clone()),
                        display: None,
                    });
                }
                if let Some(cost) = c.cost {
                    shown.push(DisplayMessage {
                        id: None,
                        priority: MessagePriority::InFront,
                        format: "ASCII".into(),
                        language: None,
                        content: format!("Cost so far: {cost}"),
                        transaction_id: Some(c.transaction_id.clone()),
                        display: None,
                    });
                }
            }
        }
        shown.sort_by_key(|m| (m.priority, m.id.is_none(), m.id));
        shown
    }

    /// A transaction's cost became known (CostUpdated, a TransactionEvent answer's
    /// `totalCost`, a 1.6 RunningCost / FinalCost message).
    pub(crate) fn cost_known(
        &mut self,
        transaction_id: &str,
        cost: Option<Decimal>,
        personal: Option<(String, String, Option<String>)>,
        final_cost: bool,
        source: &'static str,
    ) {
        if let Some(total_cost) = cost {
            self.events.push_back(StationEvent::Cost {
                transaction_id: transaction_id.to_owned(),
                total_cost,
                final_cost,
                source,
            });
        }
        if let Some((_, content, _)) = &personal {
            self.events.push_back(StationEvent::PersonalMessage {
                transaction_id: transaction_id.to_owned(),
                content: content.clone(),
            });
        }
        // Only the ongoing transactions' lines are kept (bounded by the EVSEs).
        if !self.cost_line_wanted(transaction_id) {
            return;
        }
        let costs = &mut self.display.doc.costs;
        let line = match costs
            .iter()
            .position(|c| c.transaction_id == transaction_id)
        {
            Some(i) => &mut costs[i],
            None => {
                costs.push(CostLine {
                    transaction_id: transaction_id.to_owned(),
                    cost: None,
                    personal: None,
                });
                let last = costs.len() - 1;
                &mut costs[last]
            }
        };
        if cost.is_some() {
            line.cost = cost;
        }
        if personal.is_some() {
            line.personal = personal;
        }
        self.save();
    }

    fn cost_line_wanted(&self, transaction_id: &str) -> bool {
        self.evses
            .iter()
            .filter_map(|e| e.tx.as_ref())
            .any(|t| self.tx_id_of(t).as_deref() == Some(transaction_id))
    }

    /// After every input: ends the messages whose end passed or whose transaction ended,
    /// reports a change of what is shown, and sets the next start or end as a deadline.
    pub(crate) fn display_step(&mut self, now: Instant) {
        let wall = self.cfg.time.wall(now);
        let ongoing: BTreeSet<String> = self
            .evses
            .iter()
            .filter_map(|e| e.tx.as_ref())
            .filter_map(|t| self.tx_id_of(t))
            .collect();
        let before = (
            self.display.doc.messages.len(),
            self.display.doc.costs.len(),
        );
        self.display.doc.messages.retain(|m| {
            m.end.is_none_or(|e| e > wall)
                && m.transaction_id
                    .as_ref()
                    .is_none_or(|t| ongoing.contains(t))
        });
        self.display
            .doc
            .costs
            .retain(|c| ongoing.contains(&c.transaction_id));
        if before
            != (
                self.display.doc.messages.len(),
                self.display.doc.costs.len(),
            )
        {
            self.save();
        }
        let shown = self.displayed_messages(now);
        if shown != self.display.shown {
            self.display.shown = shown.clone();
            self.events.push_back(StationEvent::DisplayChanged);
            // The application's display block, taken out of the station for the call (as
            // `on_call` does).
            if let Some(mut application) = self.app.take() {
                if let Some(d) = application.display() {
                    let mut ctx = crate::app::Context {
                        station: self,
                        now,
                        after: Vec::new(),
                        raw: None,
                    };
                    d.show_messages(&mut ctx, &shown);
                }
                self.app = Some(application);
            }
        }
        self.display.next = self
            .display
            .doc
            .messages
            .iter()
            .flat_map(|m| [m.start.filter(|s| *s > wall), m.end])
            .flatten()
            .min()
            .map(|x| deadline(now, (x - wall).to_std().unwrap_or(Duration::ZERO)));
    }

    /// Sends the NotifyDisplayMessages of a GetDisplayMessages, in parts of
    /// [`DISPLAY_MESSAGES_PER_REPORT`].
    pub(crate) fn notify_display_messages(
        &mut self,
        now: Instant,
        request_id: i64,
        infos: Vec<Value>,
    ) {
        let parts: Vec<&[Value]> = infos.chunks(DISPLAY_MESSAGES_PER_REPORT).collect();
        let n = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            let p = json!({
                "requestId": request_id,
                "tbc": i + 1 < n,
                "messageInfo": part,
            });
            self.call(now, "NotifyDisplayMessages", &p, Pending::Plain);
        }
    }
}

/// A held message as MessageInfo JSON.
fn message_info(m: &HeldMessage) -> Value {
    let mut content = json!({ "format": m.format, "content": m.content });
    if let Some(l) = &m.language {
        content["language"] = json!(l);
    }
    let mut v = json!({
        "id": m.id,
        "priority": m.priority.as_str(),
        "message": content,
    });
    if let Some(s) = &m.state {
        v["state"] = json!(s);
    }
    let stamp = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    if let Some(t) = &m.start {
        v["startDateTime"] = json!(stamp(t));
    }
    if let Some(t) = &m.end {
        v["endDateTime"] = json!(stamp(t));
    }
    if let Some(t) = &m.transaction_id {
        v["transactionId"] = json!(t);
    }
    if let Some(d) = &m.display {
        v["display"] = d.clone();
    }
    v
}

/// Reads a SetDisplayMessage's MessageInfo (its payload as JSON).
fn read_message(q: &Value) -> Option<HeldMessage> {
    let m = q.get("message")?;
    let content = m.get("message")?;
    let time = |k: &str| -> Option<Option<DateTime<Utc>>> {
        match m.get(k).and_then(Value::as_str) {
            Some(t) => t.parse().ok().map(Some),
            None => Some(None),
        }
    };
    Some(HeldMessage {
        id: i32::try_from(int(m, "id")?).ok()?,
        priority: MessagePriority::parse(m.get("priority")?.as_str()?)?,
        state: text(m, "state"),
        start: time("startDateTime")?,
        end: time("endDateTime")?,
        transaction_id: text(m, "transactionId"),
        format: text(content, "format")?,
        language: text(content, "language"),
        content: text(content, "content")?,
        display: m.get("display").cloned(),
    })
}

/// What a display call does after its answer went out.
pub(crate) struct FollowUp {
    request_id: i64,
    infos: Vec<Value>,
}

impl Station {
    pub(crate) fn display_follow_up(&mut self, now: Instant, f: FollowUp) {
        self.notify_display_messages(now, f.request_id, f.infos);
    }
}

/// The built-in SetDisplayMessage (2.0.1 and 2.1).
pub(crate) fn set_display_message<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    let value = serde_json::to_value(&request).unwrap_or_default();
    let status = match read_message(&value) {
        Some(m) => ctx.station.set_display_message(ctx.now, m),
        None => "Rejected",
    };
    local_list::status_response(status, "SetDisplayMessage")
}

/// The built-in GetDisplayMessages (2.0.1 and 2.1): `Accepted` and the reports when a held
/// message matches, else `Unknown`.
pub(crate) fn get_display_messages<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    let value = serde_json::to_value(&request).unwrap_or_default();
    let ids: Option<Vec<i64>> = value
        .get("id")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect());
    let infos = ctx.station.select_messages(
        ids.as_deref(),
        value.get("priority").and_then(Value::as_str),
        value.get("state").and_then(Value::as_str),
    );
    if infos.is_empty() {
        return local_list::status_response("Unknown", "GetDisplayMessages");
    }
    let request_id = int(&value, "requestId").unwrap_or(0);
    ctx.after.push(crate::central::After::Display(FollowUp {
        request_id,
        infos,
    }));
    local_list::status_response("Accepted", "GetDisplayMessages")
}

/// The built-in ClearDisplayMessage (2.0.1 and 2.1): `Accepted` or `Unknown`.
pub(crate) fn clear_display_message<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    let value = serde_json::to_value(&request).unwrap_or_default();
    let held = int(&value, "id")
        .and_then(|id| i32::try_from(id).ok())
        .is_some_and(|id| ctx.station.clear_display_message(id));
    local_list::status_response(
        if held { "Accepted" } else { "Unknown" },
        "ClearDisplayMessage",
    )
}
