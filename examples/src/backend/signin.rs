//! What the two principals' sessions share, operators ([`super::auth`]) and drivers
//! ([`super::accounts`]): the clock of sessions and sign-in limits (replaceable in tests),
//! the table of failed sign-ins per client address and its bound, and the session cookies.
//! Each principal keeps its own sessions table and cookie name; the rules are these, once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};

use super::auth::{AuthConfig, Clock, Secret};

/// The clock and the failed sign-ins of one principal.
pub struct SignIns {
    clock: RwLock<Clock>,
    /// Per client address: failures and when the first of the window happened.
    failures: Mutex<HashMap<IpAddr, (u32, DateTime<Utc>)>>,
}

impl Default for SignIns {
    fn default() -> Self {
        SignIns {
            clock: RwLock::new(Arc::new(Utc::now)),
            failures: Mutex::new(HashMap::new()),
        }
    }
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl SignIns {
    /// Replaces the clock (tests).
    pub fn set_clock(&self, clock: Clock) {
        *self.clock.write().unwrap_or_else(PoisonError::into_inner) = clock;
    }

    /// Now, by the clock.
    pub fn now(&self) -> DateTime<Utc> {
        let clock = self
            .clock
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        clock()
    }

    /// How long `addr` must still wait: `config.login_failures` failures within
    /// `config.login_window`; `None` when it may try.
    pub fn locked_out(&self, addr: IpAddr, config: &AuthConfig) -> Option<Duration> {
        let now = self.now();
        let window = chrono_of(config.login_window);
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let (n, since) = failures.get(&addr)?;
        let ends = *since + window;
        (*n >= config.login_failures && ends > now)
            .then(|| (ends - now).to_std().unwrap_or(Duration::ZERO))
    }

    /// Counts a failure of `addr`. The table holds at most `max_addresses` addresses: when
    /// full, expired entries go first, then the oldest.
    pub fn failed(&self, addr: IpAddr, config: &AuthConfig, max_addresses: usize) {
        let now = self.now();
        let window = chrono_of(config.login_window);
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if !failures.contains_key(&addr) && failures.len() >= max_addresses {
            failures.retain(|_, (_, since)| *since + window > now);
            if failures.len() >= max_addresses {
                let oldest = failures
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(a, _)| *a);
                if let Some(a) = oldest {
                    failures.remove(&a);
                }
            }
        }
        let entry = failures.entry(addr).or_insert((0, now));
        if entry.1 + window <= now {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    /// Forgets the failures of `addr` (it signed in).
    pub fn succeeded(&self, addr: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&addr);
    }

    /// How many client addresses the table holds now.
    pub fn tracked(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The `Set-Cookie` value that opens a session in cookie `name`: `HttpOnly`,
/// `SameSite=Strict`, `Max-Age` the longest session, `Secure` when configured.
pub fn set_cookie(name: &str, token: &Secret, config: &AuthConfig) -> String {
    format!(
        "{name}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        token.expose(),
        config.session_max.as_secs(),
        if config.secure_cookie { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that clears cookie `name`.
pub fn clear_cookie(name: &str, config: &AuthConfig) -> String {
    format!(
        "{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if config.secure_cookie { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` in `headers`.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_out_until_the_window_ends_and_the_table_is_bounded() {
        let s = SignIns::default();
        let t0 = Utc::now();
        let now = Arc::new(Mutex::new(t0));
        let clock_now = now.clone();
        s.set_clock(Arc::new(move || *clock_now.lock().unwrap()));
        let mut config = AuthConfig::new();
        config.login_failures = 2;
        config.login_window = Duration::from_secs(60);
        let a: IpAddr = [10, 0, 0, 1].into();
        s.failed(a, &config, 2);
        assert_eq!(s.locked_out(a, &config), None);
        s.failed(a, &config, 2);
        assert_eq!(s.locked_out(a, &config), Some(Duration::from_secs(60)));
        *now.lock().unwrap() = t0 + chrono::Duration::seconds(61);
        assert_eq!(s.locked_out(a, &config), None);
        for i in 0..5u8 {
            s.failed([10, 0, 1, i].into(), &config, 2);
        }
        assert_eq!(s.tracked(), 2);
        s.succeeded([10, 0, 1, 4].into());
        assert_eq!(s.tracked(), 1);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; ocpp_x=tok; b=2".parse().unwrap());
        assert_eq!(cookie_value(&h, "ocpp_x").as_deref(), Some("tok"));
        assert_eq!(cookie_value(&h, "ocpp_y"), None);
        config.secure_cookie = true;
        assert_eq!(
            clear_cookie("c", &config),
            "c=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure"
        );
    }
}
