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
    let all = all_health(db, now).await?;
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

/// Every charger's health at `now`, worst first (the report before search and paging; the
/// alerts of [`super::alerts`] follow its flags).
pub async fn all_health(db: &Db, now: DateTime<Utc>) -> Result<Vec<ChargerHealth>, DbError> {
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
    Ok(all)
}

// ------------------------------------------------------------------ per site

/// The most sessions [`site_power`] reads the meter values of.
pub const MAX_SITE_SESSIONS: i64 = 1_000;
/// Reconnects within [`STORM_WINDOW_SECS`] from which [`connectivity`] sees a storm.
pub const STORM_MIN: usize = 5;
/// The window of a reconnect storm, seconds.
pub const STORM_WINDOW_SECS: i64 = 600;
/// The most storms [`connectivity`] lists per charger (the count goes on).
pub const MAX_STORMS: usize = 16;

/// One day of one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Sessions started that day on the site's chargers.
    pub sessions: i64,
    /// Their energy, kWh.
    #[schema(value_type = String)]
    pub energy_kwh: Decimal,
}

/// A site's days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteDays {
    /// Site id.
    pub site_id: i64,
    /// Its name.
    pub name: String,
    /// Oldest first, one entry per day of the window.
    pub days: Vec<SiteDay>,
}

/// Sessions and energy per day (UTC) per site over the last `days` days (1 to 366) up to
/// `now`, by the site the session's charger is on now. Reads at most [`MAX_SESSIONS`]
/// sessions.
pub async fn site_daily(db: &Db, days: i64, now: DateTime<Utc>) -> Result<Vec<SiteDays>, DbError> {
    let days = days.clamp(1, 366);
    let first = (now - Duration::days(days - 1)).date_naive();
    let from = first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let empty: Vec<SiteDay> = (0..days)
        .map(|i| SiteDay {
            day: (first + Duration::days(i)).format("%Y-%m-%d").to_string(),
            sessions: 0,
            energy_kwh: Decimal::ZERO,
        })
        .collect();
    let mut out: Vec<SiteDays> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for r in sqlx::query("SELECT id, name FROM sites ORDER BY id LIMIT $1")
        .bind(super::catalog::MAX_SITES)
        .fetch_all(db.reader())
        .await?
    {
        let id: i64 = r.try_get("id")?;
        index.insert(id, out.len());
        out.push(SiteDays {
            site_id: id,
            name: r.try_get("name")?,
            days: empty.clone(),
        });
    }
    let rows = sqlx::query(
        "SELECT sa.site_id, s.started_at, s.energy_wh FROM sessions s
         JOIN site_chargers sa ON sa.charger = s.charger
         WHERE s.started_at >= $1 LIMIT $2",
    )
    .bind(ts(from))
    .bind(MAX_SESSIONS)
    .fetch_all(db.reader())
    .await?;
    for r in rows {
        let Some(site) = index.get(&r.try_get::<i64, _>("site_id")?).copied() else {
            continue;
        };
        let at = db::parse_ts("sessions.started_at", r.try_get("started_at")?)?;
        let Ok(i) = usize::try_from((at.date_naive() - first).num_days()) else {
            continue;
        };
        let Some(d) = out.get_mut(site).and_then(|s| s.days.get_mut(i)) else {
            continue;
        };
        let wh = db::parse_dec("sessions.energy_wh", r.try_get("energy_wh")?)?;
        d.sessions = d.sessions.saturating_add(1);
        d.energy_kwh = d
            .energy_kwh
            .checked_add(wh / Decimal::from(1000))
            .unwrap_or(d.energy_kwh);
    }
    Ok(out)
}

/// One bucket of a site's power.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PowerBucket {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    /// The sum over the site's sessions of each session's mean `Power.Active.Import` in the
    /// bucket, W (to 0.1 W); `0` where no session reported.
    #[schema(value_type = String)]
    pub power_w: Decimal,
    /// Sessions that reported in the bucket.
    pub sessions: usize,
    /// `power_w` is above the site's limit.
    pub over_limit: bool,
}

/// A site's power over time against its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SitePower {
    /// Site id.
    pub site_id: i64,
    /// The site's limit now, W.
    #[schema(value_type = String)]
    pub limit_w: Decimal,
    /// Bucket length, minutes.
    pub bucket_minutes: i64,
    /// The highest bucket, W.
    #[schema(value_type = String)]
    pub peak_w: Decimal,
    /// Buckets over the limit.
    pub over_limit: usize,
    /// Oldest first, every bucket of the window.
    pub buckets: Vec<PowerBucket>,
}

/// The sessions of `site` that overlap `[from, now]` (at most [`MAX_SITE_SESSIONS`], newest
/// first): their ids.
pub async fn site_sessions(db: &Db, site: i64, from: DateTime<Utc>) -> Result<Vec<i64>, DbError> {
    sqlx::query(
        "SELECT s.id FROM sessions s JOIN site_chargers sa ON sa.charger = s.charger
         WHERE sa.site_id = $1 AND (s.ended_at IS NULL OR s.ended_at >= $2)
         ORDER BY s.id DESC LIMIT $3",
    )
    .bind(site)
    .bind(ts(from))
    .bind(MAX_SITE_SESSIONS)
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| r.try_get("id").map_err(DbError::from))
    .collect()
}

/// Buckets the samples of each session (`Power.Active.Import` without a phase, W or kW)
/// over `[now - hours, now]` (1 to 168 hours) in buckets of `bucket_minutes` (1 to 1440)
/// aligned to the epoch: per bucket the sum over sessions of each session's mean.
pub fn site_power(
    site_id: i64,
    limit_w: Decimal,
    sessions: &[Vec<db::SampleRow>],
    hours: i64,
    bucket_minutes: i64,
    now: DateTime<Utc>,
) -> SitePower {
    let hours = hours.clamp(1, 168);
    let bucket_minutes = bucket_minutes.clamp(1, 1440);
    let step = bucket_minutes * 60;
    let from = now - Duration::hours(hours);
    let first = from.timestamp().div_euclid(step) * step;
    let last = now.timestamp().div_euclid(step) * step;
    let n = usize::try_from((last - first) / step + 1).unwrap_or(0);
    let mut sums = vec![(Decimal::ZERO, 0usize); n];
    for samples in sessions {
        let mut per: BTreeMap<usize, (Decimal, i64)> = BTreeMap::new();
        for s in samples {
            if s.measurand != "Power.Active.Import" || s.phase.is_some() || s.timestamp < from {
                continue;
            }
            let t = s.timestamp.timestamp();
            let Ok(i) = usize::try_from((t.div_euclid(step) * step - first) / step) else {
                continue;
            };
            if i >= n {
                continue;
            }
            let w = if s.unit.as_deref() == Some("kW") {
                s.value.checked_mul(Decimal::from(1000))
            } else {
                Some(s.value)
            };
            let Some(w) = w else { continue };
            let e = per.entry(i).or_default();
            e.0 = e.0.checked_add(w).unwrap_or(e.0);
            e.1 = e.1.saturating_add(1);
        }
        for (i, (sum, count)) in per {
            if let Some(b) = sums.get_mut(i) {
                let mean = (sum / Decimal::from(count.max(1))).round_dp(1);
                b.0 = b.0.checked_add(mean).unwrap_or(b.0);
                b.1 += 1;
            }
        }
    }
    let buckets: Vec<PowerBucket> = sums
        .into_iter()
        .enumerate()
        .map(|(i, (w, sessions))| PowerBucket {
            at: DateTime::from_timestamp(first + i as i64 * step, 0).unwrap_or(now),
            power_w: w.normalize(),
            sessions,
            over_limit: w > limit_w,
        })
        .collect();
    SitePower {
        site_id,
        limit_w: limit_w.normalize(),
        bucket_minutes,
        peak_w: buckets.iter().map(|b| b.power_w).max().unwrap_or_default(),
        over_limit: buckets.iter().filter(|b| b.over_limit).count(),
        buckets,
    }
}

/// A reconnect storm: at least [`STORM_MIN`] connections within [`STORM_WINDOW_SECS`]
/// (overlapping runs merged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Storm {
    /// The first connection of the run.
    pub from: DateTime<Utc>,
    /// The last.
    pub to: DateTime<Utc>,
    /// Connections in the run.
    pub reconnects: usize,
}

/// A charger's connectivity over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connectivity {
    /// Identity.
    pub charger: String,
    /// Connections in the window.
    pub reconnects: usize,
    /// Gaps: a disconnection and the next connection (or now, when it is still away).
    pub gaps: usize,
    /// The longest gap, seconds.
    pub longest_gap_secs: i64,
    /// All gaps, seconds.
    pub offline_secs: i64,
    /// Offline now (its last event in the window is a disconnection).
    pub away_now: bool,
    /// Storms, oldest first (at most [`MAX_STORMS`]).
    pub storms: Vec<Storm>,
    /// Storms in all.
    pub storm_count: usize,
}

/// Heartbeat gaps and reconnect storms per charger over the last `hours` hours (1 to 168),
/// from the event log's `connected` and `disconnected` events (a charger whose connection
/// dies, heartbeat timeout or not, is `disconnected`; heartbeats themselves are not logged):
/// the chargers with a gap or a storm, most storms first, then longest offline; at most
/// `limit` (1 to 500). Reads at most [`MAX_EVENTS`] events.
pub async fn connectivity(
    db: &Db,
    hours: i64,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<Vec<Connectivity>, DbError> {
    let from = now - Duration::hours(hours.clamp(1, 168));
    let rows = sqlx::query(
        "SELECT at, charger, kind FROM events WHERE at >= $1
         AND kind IN ('connected', 'disconnected') ORDER BY id LIMIT $2",
    )
    .bind(ts(from))
    .bind(MAX_EVENTS)
    .fetch_all(db.reader())
    .await?;
    let mut per: BTreeMap<String, Vec<(DateTime<Utc>, bool)>> = BTreeMap::new();
    for r in rows {
        let at = db::parse_ts("events.at", r.try_get("at")?)?;
        let kind: String = r.try_get("kind")?;
        per.entry(r.try_get("charger")?)
            .or_default()
            .push((at, kind == "connected"));
    }
    let mut out = Vec::new();
    for (charger, mut evs) in per {
        evs.sort_by_key(|e| e.0);
        let connects: Vec<DateTime<Utc>> = evs.iter().filter(|e| e.1).map(|e| e.0).collect();
        let (mut gaps, mut longest, mut offline) = (0usize, 0i64, 0i64);
        let mut down: Option<DateTime<Utc>> = None;
        for (at, up) in &evs {
            match (up, down) {
                (false, None) => down = Some(*at),
                (true, Some(d)) => {
                    let secs = (*at - d).num_seconds().max(0);
                    gaps += 1;
                    longest = longest.max(secs);
                    offline = offline.saturating_add(secs);
                    down = None;
                }
                _ => {}
            }
        }
        if let Some(d) = down {
            let secs = (now - d).num_seconds().max(0);
            gaps += 1;
            longest = longest.max(secs);
            offline = offline.saturating_add(secs);
        }
        // Runs of STORM_MIN connections within the window, overlapping runs merged.
        let mut storms: Vec<Storm> = Vec::new();
        let mut storm_count = 0;
        let mut cur: Option<(usize, usize)> = None;
        let mut j = 0;
        for i in 0..connects.len() {
            j = j.max(i);
            while j + 1 < connects.len()
                && (connects[j + 1] - connects[i]).num_seconds() <= STORM_WINDOW_SECS
            {
                j += 1;
            }
            if j + 1 - i < STORM_MIN {
                continue;
            }
            cur = match cur {
                Some((a, b)) if b >= i => Some((a, j)),
                other => {
                    if let Some(run) = other {
                        storm_count += 1;
                        push_storm(&mut storms, &connects, run);
                    }
                    Some((i, j))
                }
            };
        }
        if let Some(run) = cur {
            storm_count += 1;
            push_storm(&mut storms, &connects, run);
        }
        if gaps == 0 && storm_count == 0 {
            continue;
        }
        out.push(Connectivity {
            charger,
            reconnects: connects.len(),
            gaps,
            longest_gap_secs: longest,
            offline_secs: offline,
            away_now: down.is_some(),
            storms,
            storm_count,
        });
    }
    out.sort_by(|a, b| {
        b.storm_count
            .cmp(&a.storm_count)
            .then(b.offline_secs.cmp(&a.offline_secs))
            .then(a.charger.cmp(&b.charger))
    });
    out.truncate(limit.clamp(1, 500));
    Ok(out)
}

fn push_storm(storms: &mut Vec<Storm>, connects: &[DateTime<Utc>], (a, b): (usize, usize)) {
    if storms.len() < MAX_STORMS {
        storms.push(Storm {
            from: connects[a],
            to: connects[b],
            reconnects: b + 1 - a,
        });
    }
}
