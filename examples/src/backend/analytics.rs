//! Analytics and charger health for the operator, from what the backend stores already
//! (`sessions`, `events`, `chargers`, `connectors`): no table of its own.
//!
//! - [`daily`]: sessions, energy and revenue per day (UTC) over the last `days` days.
//! - [`health`]: per charger, over the last 24 hours against the 24 before: faults (status
//!   events to `Faulted` or with an error code other than `NoError`), reconnects (`connected`
//!   events), utilization (the share of the window with a session running), the error codes
//!   seen; flagged `down` (offline, or a connector `Faulted` now), `degrading` (at least
//!   [`DEGRADING_MIN`] faults and reconnects in the window and more than twice the window
//!   before: predictive maintenance) or `ok`; with the counts of each flag over all chargers
//!   and one page of chargers, worst first, searchable. Reads at most [`MAX_EVENTS`] events
//!   and [`MAX_SESSIONS`] sessions per call.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;

use super::db::{self, ts, Db, DbError};

/// The most events one health report reads.
pub const MAX_EVENTS: i64 = 200_000;
/// The most sessions one report reads.
pub const MAX_SESSIONS: i64 = 200_000;
/// Faults and reconnects in the last 24 hours from which a rising trend flags `degrading`.
pub const DEGRADING_MIN: i64 = 3;

/// One day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayStat {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Sessions started that day.
    pub sessions: i64,
    /// Energy of those sessions, kWh.
    #[schema(value_type = String)]
    pub energy_kwh: Decimal,
    /// Their cost, per currency.
    #[schema(value_type = Object)]
    pub revenue: BTreeMap<String, Decimal>,
}

/// Sessions, energy and revenue per day over the last `days` days (1 to 366) up to `now`.
pub async fn daily(db: &Db, days: i64, now: DateTime<Utc>) -> Result<Vec<DayStat>, DbError> {
    let days = days.clamp(1, 366);
    let first = (now - Duration::days(days - 1)).date_naive();
    let from = first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let mut out: Vec<DayStat> = (0..days)
        .map(|i| DayStat {
            day: (first + Duration::days(i)).format("%Y-%m-%d").to_string(),
            sessions: 0,
            energy_kwh: Decimal::ZERO,
            revenue: BTreeMap::new(),
        })
        .collect();
    let rows = sqlx::query(
        "SELECT started_at, energy_wh, cost, currency FROM sessions WHERE started_at >= $1 LIMIT $2",
    )
    .bind(ts(from))
    .bind(MAX_SESSIONS)
    .fetch_all(db.reader())
    .await?;
    for r in rows {
        let at = db::parse_ts("sessions.started_at", r.try_get("started_at")?)?;
        let Ok(i) = usize::try_from((at.date_naive() - first).num_days()) else {
            continue;
        };
        let Some(d) = out.get_mut(i) else { continue };
        let wh = db::parse_dec("sessions.energy_wh", r.try_get("energy_wh")?)?;
        let cost = db::parse_dec("sessions.cost", r.try_get("cost")?)?;
        d.sessions = d.sessions.saturating_add(1);
        d.energy_kwh = d
            .energy_kwh
            .checked_add(wh / Decimal::from(1000))
            .unwrap_or(d.energy_kwh);
        let rev = d.revenue.entry(r.try_get("currency")?).or_default();
        *rev = rev.checked_add(cost).unwrap_or(*rev);
    }
    Ok(out)
}

/// One charger's health.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerHealth {
    /// Identity.
    pub charger: String,
    /// Connected now.
    pub connected: bool,
    /// Last message.
    pub last_seen: Option<DateTime<Utc>>,
    /// Faults in the last 24 hours.
    pub faults: i64,
    /// Faults in the 24 hours before.
    pub faults_before: i64,
    /// Reconnects in the last 24 hours.
    pub reconnects: i64,
    /// Reconnects in the 24 hours before.
    pub reconnects_before: i64,
    /// The share of the last 24 hours with a session running (0 to 1, per connector summed).
    pub utilization: f64,
    /// Error codes reported in the last 24 hours.
    pub error_codes: Vec<String>,
    /// `down`, `degrading` or `ok`.
    pub flag: String,
}

/// The health report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Chargers in all.
    pub total: usize,
    /// Online now.
    pub online: usize,
    /// Flagged `down`.
    pub down: usize,
    /// Flagged `degrading`.
    pub degrading: usize,
    /// Chargers matching the search (before paging).
    pub matching: usize,
    /// One page of them, worst first (`down`, `degrading`, then by faults and reconnects).
    pub chargers: Vec<ChargerHealth>,
}

#[derive(Default)]
struct Counts {
    faults: [i64; 2],
    reconnects: [i64; 2],
    codes: Vec<String>,
}

/// The health report at `now` (see the module docs).
pub async fn health(
    db: &Db,
    now: DateTime<Utc>,
    search: &str,
    offset: usize,
    limit: usize,
) -> Result<Health, DbError> {
    let day = Duration::hours(24);
    let rows = sqlx::query(
        "SELECT at, charger, kind, detail FROM events WHERE at >= $1
         AND kind IN ('status', 'connected') ORDER BY id DESC LIMIT $2",
    )
    .bind(ts(now - day - day))
    .bind(MAX_EVENTS)
    .fetch_all(db.reader())
    .await?;
    let mut counts: HashMap<String, Counts> = HashMap::new();
    for r in rows {
        let at = db::parse_ts("events.at", r.try_get("at")?)?;
        let w = usize::from(at < now - day);
        let c = counts.entry(r.try_get("charger")?).or_default();
        let kind: String = r.try_get("kind")?;
        if kind == "connected" {
            c.reconnects[w] = c.reconnects[w].saturating_add(1);
            continue;
        }
        let detail: serde_json::Value =
            serde_json::from_str(&r.try_get::<String, _>("detail")?).unwrap_or_default();
        let code = detail["errorCode"].as_str().filter(|c| *c != "NoError");
        if detail["status"] == "Faulted" || code.is_some() {
            c.faults[w] = c.faults[w].saturating_add(1);
            if let Some(code) = code.filter(|_| w == 0) {
                if !c.codes.iter().any(|x| x == code) && c.codes.len() < 16 {
                    c.codes.push(code.to_owned());
                }
            }
        }
    }
    // Utilization: the overlap of each session with the last 24 hours.
    let mut busy: HashMap<String, i64> = HashMap::new();
    for r in sqlx::query(
        "SELECT charger, started_at, ended_at FROM sessions WHERE ended_at IS NULL OR ended_at >= $1 LIMIT $2",
    )
    .bind(ts(now - day))
    .bind(MAX_SESSIONS)
    .fetch_all(db.reader())
    .await?
    {
        let start = db::parse_ts("sessions.started_at", r.try_get("started_at")?)?.max(now - day);
        let end: Option<String> = r.try_get("ended_at")?;
        let end = match end {
            Some(e) => db::parse_ts("sessions.ended_at", e)?.min(now),
            None => now,
        };
        let secs = (end - start).num_seconds().max(0);
        let b = busy.entry(r.try_get("charger")?).or_default();
        *b = b.saturating_add(secs);
    }
    let faulted_now: std::collections::HashSet<String> =
        sqlx::query("SELECT DISTINCT charger FROM connectors WHERE status = 'Faulted'")
            .fetch_all(db.reader())
            .await?
            .iter()
            .map(|r| r.try_get("charger"))
            .collect::<Result<_, _>>()?;
    let chargers = db.chargers().await?;
    let mut all = Vec::with_capacity(chargers.len());
    for c in chargers {
        let n = counts.remove(&c.identity).unwrap_or_default();
        let down = !c.connected || faulted_now.contains(&c.identity);
        let recent = n.faults[0].saturating_add(n.reconnects[0]);
        let before = n.faults[1].saturating_add(n.reconnects[1]);
        let flag = if down {
            "down"
        } else if recent >= DEGRADING_MIN && recent > before.saturating_mul(2) {
            "degrading"
        } else {
            "ok"
        };
        all.push(ChargerHealth {
            utilization: busy.get(&c.identity).copied().unwrap_or(0) as f64 / 86_400.0,
            charger: c.identity,
            connected: c.connected,
            last_seen: c.last_seen,
            faults: n.faults[0],
            faults_before: n.faults[1],
            reconnects: n.reconnects[0],
            reconnects_before: n.reconnects[1],
            error_codes: n.codes,
            flag: flag.to_owned(),
        });
    }
    let rank = |h: &ChargerHealth| match h.flag.as_str() {
        "down" => 0,
        "degrading" => 1,
        _ => 2,
    };
    all.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then((b.faults + b.reconnects).cmp(&(a.faults + a.reconnects)))
            .then(a.charger.cmp(&b.charger))
    });
    let search = search.to_ascii_lowercase();
    let matching: Vec<ChargerHealth> = all
        .iter()
        .filter(|h| search.is_empty() || h.charger.to_ascii_lowercase().contains(&search))
        .cloned()
        .collect();
    Ok(Health {
        total: all.len(),
        online: all.iter().filter(|h| h.connected).count(),
        down: all.iter().filter(|h| h.flag == "down").count(),
        degrading: all.iter().filter(|h| h.flag == "degrading").count(),
        matching: matching.len(),
        chargers: matching
            .into_iter()
            .skip(offset)
            .take(limit.clamp(1, 500))
            .collect(),
    })
}
