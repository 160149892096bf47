//! The durable outbox of transaction messages.

use super::*;

/// The durable, ordered queue of transaction messages (a copy of what the [`Store`] holds),
/// with the delivery state of its head: at most one in flight, the failed attempts so far and
/// when the next attempt may go. A message whose append the driver has not reported yet
/// ([`Persist::Append`]) is not sent.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// The messages, oldest first.
    pub(crate) queue: VecDeque<StoredMessage>,
    /// The sequence number of the message in flight.
    pub(crate) inflight: Option<u64>,
    /// Failed attempts of the head.
    pub(crate) attempts: u32,
    /// When the head may be sent again after a failure.
    pub(crate) retry_at: Option<Instant>,
    /// The sequence number of the next message.
    pub(crate) next_seq: u64,
    /// Messages whose append is not reported done yet: they may not be sent.
    pub(crate) unpersisted: BTreeSet<u64>,
}

impl Outbox {
    /// The queue restored from the store, numbering on from `next_seq`.
    pub(crate) fn new(queue: VecDeque<StoredMessage>, next_seq: u64) -> Outbox {
        Outbox {
            queue,
            next_seq,
            ..Outbox::default()
        }
    }

    /// The append of message `seq` was performed (or failed and was reported).
    pub(crate) fn persisted(&mut self, seq: u64) {
        self.unpersisted.remove(&seq);
    }

    /// Whether the head of the queue may be sent: its append was reported.
    pub(crate) fn head_durable(&self) -> bool {
        self.queue
            .front()
            .is_some_and(|m| !self.unpersisted.contains(&m.seq))
    }

    /// How many messages wait (including one in flight).
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// A new connection or a lost one: nothing is in flight, the head may go at once.
    pub(crate) fn reset_delivery(&mut self) {
        self.inflight = None;
        self.retry_at = None;
    }

    /// The head was delivered or given up: the next message starts with a clean slate.
    pub(crate) fn reset_attempts(&mut self) {
        self.attempts = 0;
        self.retry_at = None;
    }

    /// A new message at the end, with the next sequence number.
    pub(crate) fn message(
        &mut self,
        action: &str,
        payload: String,
        local_tx: Option<u64>,
    ) -> StoredMessage {
        let msg = StoredMessage {
            seq: self.next_seq,
            action: action.to_owned(),
            payload,
            local_tx,
        };
        self.next_seq += 1;
        msg
    }

    /// Whether messages of the transaction `local` (any message, when `None`) wait.
    pub(crate) fn has_queued(&self, local: Option<u64>) -> bool {
        match local {
            Some(l) => self.queue.iter().any(|m| m.local_tx == Some(l)),
            None => !self.queue.is_empty(),
        }
    }
}

impl Station {
    // ----- outbox -----

    pub(crate) fn enqueue(&mut self, action: &str, payload: &Value, local_tx: Option<u64>) {
        let msg = self.outbox.message(action, payload.to_string(), local_tx);
        self.outbox.unpersisted.insert(msg.seq);
        self.persist.push_back(Persist::Append(msg.clone()));
        self.outbox.queue.push_back(msg);
    }

    pub(crate) fn pump_outbox(&mut self, now: Instant) {
        while self.accepted()
            && self.outbox.inflight.is_none()
            && self.outbox.retry_at.is_none_or(|t| t <= now)
            && self.outbox.head_durable()
        {
            let Some(head) = self.outbox.queue.front().cloned() else {
                return;
            };
            let mut text = head.payload.clone();
            if self.v16() && head.action != "StartTransaction" {
                if let Some(local) = head.local_tx {
                    match self.tx_ids.get(&local) {
                        Some(id) => {
                            let mut v: Value = serde_json::from_str(&text).unwrap_or_default();
                            v["transactionId"] = json!(id);
                            text = v.to_string();
                        }
                        None => {
                            // Its StartTransaction was given up: there is no id to send.
                            self.drop_head(head.seq, &head.action);
                            continue;
                        }
                    }
                }
            }
            self.check_outgoing(&head.action, ocpp_types::MessageKind::Request, &text);
            let Ok(raw) = serde_json::value::RawValue::from_string(text) else {
                self.drop_head(head.seq, &head.action);
                continue;
            };
            let Some(ep) = self.ep.as_mut() else { return };
            match ep.call(now, &head.action, raw) {
                Ok(id) => {
                    self.pending.insert(id, Pending::Outbox(head.seq));
                    self.outbox.inflight = Some(head.seq);
                }
                Err(_) => return,
            }
        }
    }

    /// Drops a queued message that is not in flight (anywhere in the queue).
    pub(crate) fn drop_queued(&mut self, seq: u64) {
        let Some(pos) = self.outbox.queue.iter().position(|m| m.seq == seq) else {
            return;
        };
        if pos == 0 {
            if let Some(head) = self.outbox.queue.front() {
                let action = head.action.clone();
                self.drop_head(seq, &action);
            }
            return;
        }
        let Some(msg) = self.outbox.queue.remove(pos) else {
            return;
        };
        self.outbox.unpersisted.remove(&seq);
        self.persist.push_back(Persist::Remove(seq));
        self.events.push_back(StationEvent::Dropped {
            seq,
            action: msg.action,
        });
    }

    pub(crate) fn drop_head(&mut self, seq: u64, action: &str) {
        self.outbox.queue.pop_front();
        self.persist.push_back(Persist::Remove(seq));
        self.events.push_back(StationEvent::Dropped {
            seq,
            action: action.to_owned(),
        });
        self.outbox.reset_attempts();
    }

    pub(crate) fn on_outbox_confirmed(&mut self, now: Instant, seq: u64, v: &Value) {
        if self.outbox.inflight == Some(seq) {
            self.outbox.inflight = None;
        }
        let Some(pos) = self.outbox.queue.iter().position(|m| m.seq == seq) else {
            return;
        };
        let Some(msg) = self.outbox.queue.remove(pos) else {
            return;
        };
        self.persist.push_back(Persist::Remove(seq));
        self.outbox.reset_attempts();
        match msg.action.as_str() {
            "StartTransaction" => {
                // A 32-bit integer (checked by the typed decoding of the answer).
                let id = int(v, "transactionId")
                    .and_then(|i| i32::try_from(i).ok())
                    .unwrap_or(0);
                let info = v.get("idTagInfo").cloned().unwrap_or_default();
                if let Some(local) = msg.local_tx {
                    self.tx_ids.insert(local, id);
                    self.events.push_back(StationEvent::TransactionIdAssigned {
                        local_id: local,
                        transaction_id: id,
                    });
                    let token = self
                        .evses
                        .iter()
                        .find_map(|e| e.tx.as_ref().filter(|t| t.local == local))
                        .map(|t| t.token.clone());
                    if let Some(token) = token {
                        let accepted = self.update_cache(&token, &info);
                        if !accepted && self.settings.flag(Setting::StopOnInvalidId) {
                            if let Some(evse) = self.evse_of_tx(&id.to_string()) {
                                self.stop_tx(now, evse, Stop::DEAUTHORIZED, None);
                            }
                        }
                    }
                    self.save();
                }
            }
            "StopTransaction" => {
                if let Some(local) = msg.local_tx {
                    // Later messages of this transaction (none normally) still need the id,
                    // so the mapping goes only when nothing refers to it any more.
                    if !self.outbox.queue.iter().any(|m| m.local_tx == Some(local)) {
                        self.tx_ids.remove(&local);
                        self.save();
                    }
                }
            }
            "TransactionEvent" => {
                if let Some(info) = v.get("idTokenInfo") {
                    let evse = self
                        .evses
                        .iter()
                        .find(|e| e.tx.as_ref().is_some_and(|t| Some(t.local) == msg.local_tx))
                        .map(|e| (e.id, e.tx.as_ref().map(|t| t.token.clone())));
                    if let Some((evse, Some(token))) = evse {
                        let accepted = self.update_cache(&token, info);
                        if !accepted && self.settings.flag(Setting::StopOnInvalidId) {
                            self.stop_tx(now, evse, Stop::DEAUTHORIZED, None);
                        }
                    }
                }
            }
            _ => {}
        }
        self.events.push_back(StationEvent::Delivered {
            seq,
            action: msg.action,
        });
    }

    pub(crate) fn on_outbox_failed(&mut self, now: Instant, seq: u64) {
        if self.outbox.inflight == Some(seq) {
            self.outbox.inflight = None;
        }
        self.outbox.attempts = self.outbox.attempts.saturating_add(1);
        let max = u32::try_from(self.settings.int(Setting::MessageAttempts))
            .unwrap_or(u32::MAX)
            .max(1);
        if self.outbox.attempts >= max {
            let action = self
                .outbox
                .queue
                .front()
                .filter(|m| m.seq == seq)
                .map(|m| m.action.clone());
            if let Some(action) = action {
                self.drop_head(seq, &action);
            }
        } else {
            // 1.6 TransactionMessageRetryInterval / 2.x E13: the interval times the attempts so
            // far, saturating, at least MIN_RETRY and at most MAX_TIMER (a day).
            let interval = self.settings.duration(Setting::MessageAttemptInterval);
            let wait = interval
                .saturating_mul(self.outbox.attempts)
                .clamp(MIN_RETRY, MAX_TIMER);
            self.outbox.retry_at = Some(deadline(now, wait));
        }
    }

    /// Whether queued messages of a transaction (2.x id) are still undelivered.
    pub(crate) fn has_queued(&self, local: Option<u64>) -> bool {
        self.outbox.has_queued(local)
    }

    /// The local key of a 2.x transaction id, ongoing or still queued.
    pub(crate) fn local_of(&self, id: &str) -> Option<u64> {
        self.evses
            .iter()
            .filter_map(|e| e.tx.as_ref())
            .find(|t| t.id.as_deref() == Some(id))
            .map(|t| t.local)
            .or_else(|| {
                self.outbox.queue.iter().find_map(|m| {
                    let v: Value = serde_json::from_str(&m.payload).ok()?;
                    (v.pointer("/transactionInfo/transactionId")?.as_str()? == id)
                        .then_some(m.local_tx)?
                })
            })
    }
}
