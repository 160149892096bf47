//! Meter values: periodic samples, clock-aligned readings, the sampled values.

use super::*;

/// A JSON number carrying exactly the decimal `d`. Our readings have at most 15 significant
/// digits (3 decimals), which an `f64` holds exactly in the sense that its shortest printed
/// form is that decimal again.
pub(crate) fn number(d: Decimal) -> Value {
    let d = if d.scale() > 3 { d.round_dp(3) } else { d };
    if d.fract().is_zero() {
        if let Some(i) = d.to_i64() {
            return Value::from(i);
        }
    }
    let f = d.to_f64().unwrap_or(0.0);
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// What a reading is signed for ([`Station::sign_meter_value`]).
pub(crate) struct Signing<'a> {
    pub(crate) evse: u32,
    pub(crate) context: &'a str,
    pub(crate) transaction_id: Option<&'a str>,
    pub(crate) id_token: Option<&'a str>,
    /// The key already went with a value of this transaction.
    pub(crate) key_sent: bool,
}

/// The 2.x `publicKey` of a meter key: base64 of the key's bytes when it is hex (the OCMF
/// convention), of its text otherwise.
fn key_base64(key: &str) -> String {
    use base64::Engine as _;
    let k = key.trim();
    let bytes: Option<Vec<u8>> = (k.len() % 2 == 0 && !k.is_empty())
        .then(|| {
            (0..k.len())
                .step_by(2)
                .map(|i| k.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect()
        })
        .flatten();
    base64::engine::general_purpose::STANDARD.encode(bytes.as_deref().unwrap_or(k.as_bytes()))
}

impl Station {
    /// Adds the meter's signed form of `reading` to the MeterValue `mv` when the settings ask
    /// for it (`SampledSignReadings` for transaction readings, `AlignedSignReadings` for
    /// `Sample.Clock`) and the meter signs: 1.6 a sampled value of format `SignedData`; 2.x
    /// the energy register's `signedMeterValue`, with the public key as
    /// `PublicKeyWithSignedMeterValue` says. Returns whether the key went with it.
    pub(crate) fn sign_meter_value(
        &mut self,
        now: Instant,
        reading: &MeterReading,
        sign: &Signing<'_>,
        mv: &mut Value,
    ) -> bool {
        let setting = if sign.context == "Sample.Clock" {
            Setting::AlignedSignReadings
        } else {
            Setting::SampledSignReadings
        };
        if !self.settings.flag(setting) {
            return false;
        }
        let request = SignRequest {
            evse: sign.evse,
            context: sign.context,
            transaction_id: sign.transaction_id,
            id_token: sign.id_token,
            timestamp: self.cfg.time.wall(now),
        };
        let Some(signed) = self.hw.sign_reading(now, &request, reading) else {
            return false;
        };
        let v16 = self.v16();
        let with_key = !v16
            && signed.public_key.is_some()
            && match self.settings.get(Setting::PublicKeyWithSignedMeterValue) {
                "EveryMeterValue" => true,
                "OncePerTransaction" => !sign.key_sent && sign.transaction_id.is_some(),
                _ => false,
            };
        let Some(values) = mv.get_mut("sampledValue").and_then(Value::as_array_mut) else {
            return false;
        };
        const REGISTER: &str = "Energy.Active.Import.Register";
        if v16 {
            values.push(json!({
                "value": signed.data,
                "context": sign.context,
                "format": "SignedData",
                "measurand": REGISTER,
                "location": "Outlet",
                "unit": "Wh",
            }));
            return false;
        }
        use base64::Engine as _;
        let v201 = self.cfg.version == Version::V201;
        let mut smv = json!({
            "signedMeterData": base64::engine::general_purpose::STANDARD.encode(signed.data.as_bytes()),
            "encodingMethod": signed.encoding,
        });
        // 2.0.1 requires signingMethod and publicKey (empty when not sent); 2.1 leaves them out.
        match (&signed.signing_method, v201) {
            (Some(m), _) => smv["signingMethod"] = json!(m),
            (None, true) => smv["signingMethod"] = json!(""),
            (None, false) => {}
        }
        match (
            with_key.then_some(signed.public_key.as_deref()).flatten(),
            v201,
        ) {
            (Some(k), _) => smv["publicKey"] = json!(key_base64(k)),
            (None, true) => smv["publicKey"] = json!(""),
            (None, false) => {}
        }
        match values
            .iter_mut()
            .find(|v| v.get("measurand").and_then(Value::as_str) == Some(REGISTER))
        {
            Some(v) => v["signedMeterValue"] = smv,
            None => values.push(json!({
                "value": number(reading.energy_wh),
                "context": sign.context,
                "measurand": REGISTER,
                "location": "Outlet",
                "unitOfMeasure": { "unit": "Wh" },
                "signedMeterValue": smv,
            })),
        }
        with_key
    }

    /// A periodic sample of the transaction on `self.evses[i]`.
    pub(crate) fn sample(&mut self, now: Instant, i: usize) {
        let interval = self.settings.duration(Setting::SampleInterval);
        let evse = self.evses[i].id;
        self.evses[i].next_sample = (!interval.is_zero()).then(|| deadline(now, interval));
        if self.evses[i].tx.is_none() {
            return;
        }
        let measurands = self.settings.measurands(Setting::SampledMeasurands);
        let reading = self.hw.meter(now, evse);
        self.tx_meter_message(now, evse, &reading, &measurands, "Sample.Periodic");
    }

    /// MeterValues (1.6) / TransactionEvent Updated (2.x) for the transaction on `evse`.
    pub(crate) fn tx_meter_message(
        &mut self,
        now: Instant,
        evse: u32,
        reading: &MeterReading,
        measurands: &[&str],
        context: &str,
    ) {
        let mut mv = self.meter_value(now, reading, measurands, context);
        let Some(tx) = self.evse_mut(evse).and_then(|e| e.tx.clone()) else {
            return;
        };
        let tx_id = self.tx_id_of(&tx);
        let sign = Signing {
            evse,
            context,
            transaction_id: tx_id.as_deref(),
            id_token: Some(&tx.token),
            key_sent: tx.key_sent,
        };
        if self.sign_meter_value(now, reading, &sign, &mut mv) {
            if let Some(t) = self.evse_mut(evse).and_then(|e| e.tx.as_mut()) {
                t.key_sent = true;
            }
        }
        if self.v16() {
            let p = json!({
                "connectorId": evse,
                "transactionId": self.tx_ids.get(&tx.local).copied().unwrap_or(0),
                "meterValue": [mv],
            });
            self.enqueue("MeterValues", &p, Some(tx.local));
        } else {
            let trigger = match context {
                "Sample.Clock" => "MeterValueClock",
                "Trigger" => "Trigger",
                "Other" => "ChargingStateChanged",
                _ => "MeterValuePeriodic",
            };
            let plugged = self.evse_mut(evse).is_some_and(|e| e.plugged);
            let suspended = self.evse_mut(evse).is_some_and(|e| e.suspended);
            let p = json!({
                "eventType": "Updated",
                "timestamp": self.wall(now),
                "triggerReason": trigger,
                "seqNo": tx.seq_no,
                "offline": !self.accepted(),
                "transactionInfo": {
                    "transactionId": tx.id,
                    "chargingState": match (plugged, suspended) {
                        (false, _) => "Idle",
                        (true, true) => "SuspendedEV",
                        (true, false) => "Charging",
                    },
                },
                "meterValue": [mv],
            });
            if let Some(t) = self.evse_mut(evse).and_then(|e| e.tx.as_mut()) {
                t.seq_no += 1;
            }
            self.enqueue("TransactionEvent", &p, Some(tx.local));
            self.save();
        }
    }

    pub(crate) fn schedule_aligned(&mut self, now: Instant) {
        let every = self.settings.duration(Setting::AlignedInterval);
        self.next_aligned = (!every.is_zero()).then(|| {
            let wall = self.cfg.time.wall(now);
            let next = next_aligned(wall, every);
            let wait = (next - wall)
                .to_std()
                .unwrap_or(every)
                .max(Duration::from_millis(1));
            deadline(now, wait)
        });
    }

    pub(crate) fn reschedule(&mut self, now: Instant) {
        self.schedule_aligned(now);
        if self.accepted() {
            self.schedule_heartbeat(now);
        }
        let interval = self.settings.duration(Setting::SampleInterval);
        for e in &mut self.evses {
            e.next_sample =
                (e.tx.is_some() && !interval.is_zero()).then(|| deadline(now, interval));
        }
    }

    /// Clock-aligned readings of every EVSE.
    pub(crate) fn aligned(&mut self, now: Instant) {
        let measurands = self.settings.measurands(Setting::AlignedMeasurands);
        for i in 0..self.evses.len() {
            let evse = self.evses[i].id;
            let reading = self.hw.meter(now, evse);
            if self.evses[i].tx.is_some() {
                self.tx_meter_message(now, evse, &reading, &measurands, "Sample.Clock");
            } else if self.accepted() {
                // Not transaction-related: sent only while online (nothing to keep).
                self.plain_meter_values(now, evse, &reading, &measurands, "Sample.Clock");
            }
        }
    }

    /// A MeterValues outside the outbox (no transaction).
    pub(crate) fn plain_meter_values(
        &mut self,
        now: Instant,
        evse: u32,
        reading: &MeterReading,
        measurands: &[&str],
        context: &str,
    ) {
        let mut mv = self.meter_value(now, reading, measurands, context);
        let sign = Signing {
            evse,
            context,
            transaction_id: None,
            id_token: None,
            key_sent: false,
        };
        self.sign_meter_value(now, reading, &sign, &mut mv);
        let p = if self.v16() {
            json!({ "connectorId": evse, "meterValue": [mv] })
        } else {
            json!({ "evseId": evse, "meterValue": [mv] })
        };
        self.call(now, "MeterValues", &p, Pending::Plain);
    }

    /// One MeterValue with a sampled value per supported measurand.
    pub(crate) fn meter_value(
        &self,
        now: Instant,
        r: &MeterReading,
        measurands: &[&str],
        context: &str,
    ) -> Value {
        let mut values = Vec::new();
        let list: &[&str] = if measurands.is_empty() {
            &["Energy.Active.Import.Register"]
        } else {
            measurands
        };
        for m in list {
            let (value, unit, location) = match *m {
                "Energy.Active.Import.Register" => (r.energy_wh, "Wh", "Outlet"),
                "Power.Active.Import" => (r.power_w, "W", "Outlet"),
                "Energy.Active.Export.Register" => (r.energy_export_wh, "Wh", "Outlet"),
                "Power.Active.Export" => (r.power_w.min(Decimal::ZERO).abs(), "W", "Outlet"),
                "Current.Import" => (r.current_a, "A", "Outlet"),
                "Voltage" => (r.voltage_v, "V", "Outlet"),
                "SoC" => match r.soc_percent {
                    Some(s) => (s, "Percent", "EV"),
                    None => continue,
                },
                _ => continue,
            };
            values.push(if self.v16() {
                json!({
                    "value": value.to_string(),
                    "context": context,
                    "format": "Raw",
                    "measurand": m,
                    "location": location,
                    "unit": unit,
                })
            } else {
                json!({
                    "value": number(value),
                    "context": context,
                    "measurand": m,
                    "location": location,
                    "unitOfMeasure": { "unit": unit },
                })
            });
        }
        if values.is_empty() {
            return self.meter_value(now, r, &[], context);
        }
        json!({ "timestamp": self.wall(now), "sampledValue": values })
    }
}
