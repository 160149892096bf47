//! Prometheus metrics of the central system (`GET /metrics`, text exposition format).

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use ocpp_central::ocpp_types::Version;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    version: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// The metrics. Cheap to clone (every clone updates the same series).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    connected: Family<VersionLabels, Gauge<i64, AtomicI64>>,
    compressed: Family<VersionLabels, Gauge<i64, AtomicI64>>,
    messages_in: Family<MessageLabels, Counter>,
    messages_out: Family<MessageLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    call_latency: Family<MessageLabels, Histogram>,
    http_requests: Counter,
    journal_set_aside: Gauge<i64, AtomicI64>,
    /// NotifyEvent events by trigger (device_model.rs).
    device_events: Family<TriggerLabels, Counter>,
    /// Open alerts by severity (device_model.rs).
    open_alerts: Family<SeverityLabels, Gauge<i64, AtomicI64>>,
    /// API requests routed to the node holding the charger, by node (cluster.rs).
    routed: Family<NodeLabels, Histogram>,
    /// Journal rows per commit (journal.rs's group commit).
    journal_group: Histogram,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeverityLabels {
    severity: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ocpp");
        let connected = Family::<VersionLabels, Gauge<i64, AtomicI64>>::default();
        let compressed = Family::<VersionLabels, Gauge<i64, AtomicI64>>::default();
        let messages_in = Family::<MessageLabels, Counter>::default();
        let messages_out = Family::<MessageLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let call_latency = Family::<MessageLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms .. ~65 s
            Histogram::new(exponential_buckets(0.0005, 2.0, 18))
        });
        let http_requests = Counter::default();
        let routed = Family::<NodeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 18))
        });
        registry.register(
            "routed_seconds",
            "API requests for a charger on another cluster node: time until its answer came back, by node",
            routed.clone(),
        );
        // 1 .. 512 rows
        let journal_group = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "journal_group_rows",
            "Transaction messages journaled per database commit (the group commit: more rows per commit under load)",
            journal_group.clone(),
        );
        let journal_set_aside = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "journal_set_aside",
            "Journaled transaction messages that could not be applied at start and were set aside (GET /api/journal/set-aside)",
            journal_set_aside.clone(),
        );
        registry.register(
            "connected_chargers",
            "Chargers connected now, by OCPP version",
            connected.clone(),
        );
        registry.register(
            "compressed_chargers",
            "Chargers connected now whose WebSocket uses compression (RFC 7692 permessage-deflate), by OCPP version",
            compressed.clone(),
        );
        registry.register(
            "messages_in",
            "CALLs received from chargers and answered, by version and action",
            messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "CALLs sent to chargers, by version and action",
            messages_out.clone(),
        );
        registry.register(
            "errors",
            "Errors: refused charger messages by CALLERROR code, failed central calls, database failures",
            errors.clone(),
        );
        registry.register(
            "call_latency_seconds",
            "Time from sending a central call to the charger's answer",
            call_latency.clone(),
        );
        registry.register(
            "http_api_requests",
            "HTTP API requests served",
            http_requests.clone(),
        );
        let device_events = Family::<TriggerLabels, Counter>::default();
        let open_alerts = Family::<SeverityLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "device_events",
            "Device events (2.x NotifyEvent) received, by trigger (Alerting, Delta, Periodic)",
            device_events.clone(),
        );
        registry.register(
            "open_alerts",
            "Monitor alerts not cleared yet, by severity (0 danger .. 9 debug; unknown: monitor not known)",
            open_alerts.clone(),
        );
        Metrics {
            device_events,
            open_alerts,
            routed,
            registry: Arc::new(registry),
            connected,
            compressed,
            messages_in,
            messages_out,
            errors,
            call_latency,
            http_requests,
            journal_set_aside,
            journal_group,
        }
    }

    /// One journal commit of `rows` rows.
    pub fn journal_group(&self, rows: usize) {
        self.journal_group.observe(rows as f64);
    }

    /// One device event with `trigger`.
    pub fn device_event(&self, trigger: &str) {
        self.device_events
            .get_or_create(&TriggerLabels {
                trigger: trigger.chars().take(32).collect(),
            })
            .inc();
    }

    /// `n` alerts of `severity` are open.
    pub fn open_alerts(&self, severity: &str, n: i64) {
        self.open_alerts
            .get_or_create(&SeverityLabels {
                severity: severity.to_owned(),
            })
            .set(n);
    }

    /// How many journal rows are set aside now.
    pub fn journal_set_aside(&self, n: i64) {
        self.journal_set_aside.set(n);
    }

    fn version(v: Version) -> VersionLabels {
        VersionLabels {
            version: v.as_str().to_owned(),
        }
    }

    fn msg(v: Version, action: &str) -> MessageLabels {
        MessageLabels {
            version: v.as_str().to_owned(),
            action: action.to_owned(),
        }
    }

    /// A charger connected, over a compressed WebSocket or not.
    pub fn connected(&self, v: Version, compressed: bool) {
        self.connected.get_or_create(&Self::version(v)).inc();
        if compressed {
            self.compressed.get_or_create(&Self::version(v)).inc();
        }
    }

    /// A charger disconnected.
    pub fn disconnected(&self, v: Version, compressed: bool) {
        self.connected.get_or_create(&Self::version(v)).dec();
        if compressed {
            self.compressed.get_or_create(&Self::version(v)).dec();
        }
    }

    /// A charger's CALL was answered.
    pub fn message_in(&self, v: Version, action: &str) {
        self.messages_in.get_or_create(&Self::msg(v, action)).inc();
    }

    /// A central call went out and ended after `latency` (answer, error or timeout).
    pub fn message_out(&self, v: Version, action: &str, latency: Duration) {
        let labels = Self::msg(v, action);
        self.messages_out.get_or_create(&labels).inc();
        self.call_latency
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
    }

    /// An error of `kind` (`refused`, `call`, `database`) with `code`.
    pub fn error(&self, kind: &str, code: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
                code: code.to_owned(),
            })
            .inc();
    }

    /// An API request was routed to cluster node `node` and ended after `latency`.
    pub fn routed(&self, node: &str, latency: Duration) {
        self.routed
            .get_or_create(&NodeLabels {
                node: node.to_owned(),
            })
            .observe(latency.as_secs_f64());
    }

    /// An HTTP API request was served.
    pub fn http_request(&self) {
        self.http_requests.inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }
}
