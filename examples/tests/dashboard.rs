//! The dashboard in headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! over WebDriver): the login page (a wrong password is refused, the first-run admin password
//! signs in), then it shows a charger, a connector's status change live (server-sent events,
//! no reload), and its Start and Stop buttons run a whole session; a viewer sees no Start
//! button; the per-site analytics (energy per site, power against the limit, the alert
//! webhook form) and the accounts and fleets panel (server-side paging, search, tokens,
//! block, a fleet's members and invoice links); Sign out goes back to the login page. Leaves a screenshot in
//! `target/dashboard.png`.
//!
//! `OCPP_CHROMIUM` / `OCPP_CHROMEDRIVER` override the binaries (default `/usr/bin/chromium`,
//! `/usr/bin/chromedriver`); the test command installs them. Where they are missing the test
//! says loudly that it was skipped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use ocpp_charger::settings::Setting;
use ocpp_charger::ws::{self, ClientConfig};
use ocpp_charger::{HardwareEvent, MemoryStore, Saved, SimulatedHardware, Station, StationConfig};
use ocpp_examples::backend::auth::{Role, Secret};
use ocpp_examples::backend::run::{start, CentralArgs};
use ocpp_examples::backend::wait_for;
use ocpp_types::Version;
use rust_decimal::Decimal;

#[path = "support/browser.rs"]
mod browser;
use browser::binary;
#[path = "support/api.rs"]
mod api;

/// Driver accounts written straight into the database (more than one page of the panel).
const ACCOUNTS: usize = 45;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_status_live_and_runs_a_session() {
    let (Some(chromium), Some(driver)) = (
        binary("OCPP_CHROMIUM", "/usr/bin/chromium"),
        binary("OCPP_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        eprintln!(
            "\n*** SKIPPED dashboard test: chromium / chromedriver not found (scripts/test.sh \
             installs Debian's chromium and chromium-driver) ***\n"
        );
        return;
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("dash.db").display());
    let central = start(&CentralArgs::with_database(db.clone()).ephemeral())
        .await
        .expect("central system");
    let admin_password = central
        .initial_admin_password()
        .expect("first run: a random admin password")
        .expose()
        .to_owned();
    central
        .auth()
        .create_user("watcher", &Secret::new("watcher-password-1"), Role::Viewer)
        .await
        .expect("viewer account");
    let mut feed = central.backend().subscribe();
    let url = format!("ws://{}/ocpp/DASH-1", central.ocpp_addr());
    let station = Station::new(
        StationConfig::new("DASH-1", Version::V201)
            .vendor_model("ACME", "Volt 22")
            .evses(2)
            .setting(Setting::SampleInterval, "1"),
        Box::new(SimulatedHardware::new(2, Decimal::from(22_000))),
        Saved::default(),
        Instant::now(),
    );
    let cp = ws::spawn(
        station,
        Box::new(MemoryStore::new()),
        ClientConfig::new(url).backoff(Duration::from_millis(50), Duration::from_millis(300)),
    );
    // Booted before the page opens, so the table has it at first load.
    wait_for(&mut feed, "DASH-1", "booted", WAIT, |_| true)
        .await
        .expect("boot in time");

    // Driver accounts (one with a card token), a fleet with one member, a located site
    // with the charger: what the accounts, fleets and per-site panels show.
    {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db).await.expect("database");
        for i in 1..=ACCOUNTS {
            sqlx::query(
                "INSERT INTO driver_accounts (email, name, password_hash, status, created_at)
                 VALUES ($1, $2, 'x', 'active', '2026-01-01T00:00:00Z')",
            )
            .bind(format!("driver-{i:02}@example.org"))
            .bind(format!("Driver {i:02}"))
            .execute(&pool)
            .await
            .expect("account");
        }
        sqlx::query(
            "INSERT INTO driver_tokens (id_token, account_id, kind, label, created_at)
             SELECT 'CARD-07', id, 'rfid', 'blue card', '2026-01-01T00:00:00Z' FROM driver_accounts
             WHERE email = 'driver-07@example.org'",
        )
        .execute(&pool)
        .await
        .expect("token");
        pool.close().await;
    }
    let operator = api::Api::admin(&central).await;
    let (_, fleet) = operator
        .post(
            "/api/fleets",
            serde_json::json!({ "name": "Vans", "currency": "EUR" }),
        )
        .await;
    let (_, page) = operator.get("/api/accounts?search=driver-07").await;
    let (s, v) = operator
        .put(
            &format!("/api/accounts/{}/fleet", page["accounts"][0]["id"]),
            serde_json::json!({ "fleetId": fleet["id"] }),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (_, site) = operator
        .post(
            "/api/sites",
            serde_json::json!({ "name": "Depot", "limit": "50", "unit": "kW" }),
        )
        .await;
    let (s, v) = operator
        .put(
            &format!("/api/sites/{}/chargers/DASH-1", site["id"]),
            serde_json::json!({}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let fleet_id = fleet["id"].as_i64().expect("fleet id");
    let (browser, _driver) = browser::open(&chromium, &driver, "1400,1000").await;

    let result = async {
        browser
            .goto(&format!("http://{}/", central.http_addr()))
            .await?;
        let wait = |loc: &str| {
            let b = browser.clone();
            let loc = loc.to_owned();
            async move {
                b.wait()
                    .at_most(WAIT)
                    .for_element(Locator::XPath(&loc))
                    .await
            }
        };
        let sign_in = |user: &'static str, password: String| {
            let b = browser.clone();
            async move {
                b.wait()
                    .at_most(WAIT)
                    .for_element(Locator::Css("form#login"))
                    .await?;
                let name = b.find(Locator::Css("#username")).await?;
                name.clear().await?;
                name.send_keys(user).await?;
                let pw = b.find(Locator::Css("#password")).await?;
                pw.clear().await?;
                pw.send_keys(&password).await?;
                b.find(Locator::Css("#sign-in")).await?.click().await
            }
        };

        // Not signed in: the login page. A wrong password stays there with the error.
        sign_in("admin", "not-the-password".into()).await?;
        wait("//p[@id='login-error' and contains(text(),'wrong user name or password')]").await?;
        sign_in("admin", admin_password.clone()).await?;
        wait("//span[@id='user-role' and text()='admin']").await?;
        wait("//tr[@data-charger='DASH-1']//span[contains(@class,'link') and text()='online']").await?;
        wait("//span[@data-connector='DASH-1/1']/span[contains(@class,'status') and text()='Available']").await?;

        // A status change appears without a reload (live feed).
        cp.hardware(HardwareEvent::CablePlugged { evse: 1 }).unwrap();
        wait("//span[@data-connector='DASH-1/1']/span[contains(@class,'status') and text()='Occupied']").await?;

        // Start: the driver-app flow.
        browser
            .find(Locator::Css(
                "button[data-action='start'][data-charger='DASH-1'][data-evse='1']",
            ))
            .await?
            .click()
            .await?;
        wait("//table[@id='live']//tr[@data-session]").await?;
        // Energy flows into the live row.
        wait("//table[@id='live']//td[contains(@class,'energy') and not(starts-with(text(),'0.000'))]").await?;
        browser
            .screenshot()
            .await
            .map(|png| std::fs::write(screenshot_path(), png))?
            .ok();

        // Stop from the live sessions table.
        browser
            .find(Locator::Css("#live button[data-action='stop']"))
            .await?
            .click()
            .await?;
        wait("//table[@id='history']//tr[@data-session]").await?;
        wait("//table[@id='history']//td[contains(@class,'energy') and not(starts-with(text(),'0.000'))]").await?;
        let live_rows = browser
            .find_all(Locator::Css("#live tbody tr"))
            .await?
            .len();
        assert_eq!(live_rows, 0, "the stopped session left the live table");

        // The charger table is searched and paged by the server: no match, then the charger
        // again; the header counts every charger (the summary, not the page).
        let search = browser.find(Locator::Css("#charger-search")).await?;
        search.send_keys("no-such-charger").await?;
        wait("//span[@id='chargers-page' and text()='no charger matches']").await?;
        let rows = browser
            .find_all(Locator::Css("#chargers tbody tr"))
            .await?
            .len();
        assert_eq!(rows, 0, "nothing matched");
        search.clear().await?;
        search.send_keys("DASH-1").await?;
        wait("//span[@id='chargers-page' and text()='1\u{2013}1 of 1']").await?;
        wait("//tr[@data-charger='DASH-1']").await?;
        wait("//span[@id='count-connected' and text()='1']").await?;

        // The analytics panel: a search refreshes it; the charger's health row, the counts
        // and today's energy bar.
        let search = browser.find(Locator::Css("#health-search")).await?;
        search.send_keys("DASH").await?;
        wait("//table[@id='health']//tr[@data-health='DASH-1']//span[text()='ok']").await?;
        wait("//p[@id='health-counts' and starts-with(text(),'1 chargers · 1 online · 0 down')]").await?;
        wait("//*[local-name()='svg' and @id='energy-chart']/*[local-name()='rect' and @height>0]").await?;
        if let Ok(png) = browser
            .find(Locator::Css("#analytics-panel"))
            .await?
            .screenshot()
            .await
        {
            let _ = std::fs::write(screenshot_path().with_file_name("analytics.png"), png);
        }

        // The per-site panel: the site's energy bar (the session just ended), its power
        // chart, and the alert webhook saved from the form.
        browser.refresh().await?;
        wait("//*[local-name()='svg' and @id='site-energy-chart']/*[local-name()='rect' and @height>0]").await?;
        wait("//select[@id='power-site']/option[text()='Depot']").await?;
        wait("//*[local-name()='svg' and @id='site-power-chart']/*[local-name()='line' and contains(@class,'limit')]").await?;
        for (field, value) in [("url", "http://127.0.0.1:9/alerts"), ("secret", "dashboard-secret-123")] {
            let input = browser
                .find(Locator::Css(&format!("#alert-hook-form input[name='{field}']")))
                .await?;
            input.clear().await?;
            input.send_keys(value).await?;
        }
        browser
            .find(Locator::Css("#alert-hook-form button[type='submit']"))
            .await?
            .click()
            .await?;
        wait("//div[@id='toast' and text()='alert webhook saved']").await?;
        // Specs and a location from the panel's forms, as the driver app will show them.
        for (field, value) in [("charger", "DASH-1"), ("evse", "1"), ("kw", "22")] {
            let input = browser
                .find(Locator::Css(&format!("#spec-form input[name='{field}']")))
                .await?;
            input.clear().await?;
            input.send_keys(value).await?;
        }
        browser
            .find(Locator::Css("#spec-form select[name='type'] option[value='cCCS2']"))
            .await?
            .click()
            .await?;
        browser
            .find(Locator::Css("#spec-form button[type='submit']"))
            .await?
            .click()
            .await?;
        wait("//div[@id='toast' and text()='connector specs set']").await?;
        for (field, value) in [("lat", "48.8566"), ("lon", "2.3522")] {
            let input = browser
                .find(Locator::Css(&format!("#location-form input[name='{field}']")))
                .await?;
            input.clear().await?;
            input.send_keys(value).await?;
        }
        browser
            .find(Locator::Css("#location-form button[type='submit']"))
            .await?
            .click()
            .await?;
        wait("//div[@id='toast' and text()='site location set']").await?;
        if let Ok(png) = browser
            .find(Locator::Css("#site-analytics-panel"))
            .await?
            .screenshot()
            .await
        {
            let _ = std::fs::write(screenshot_path().with_file_name("site-analytics.png"), png);
        }
        // Accounts: paged on the server, searched, blocked, their tokens; a fleet's members
        // and its invoice links.
        wait(&format!("//span[@id='accounts-count' and text()='1–20 of {ACCOUNTS}']")).await?;
        browser.find(Locator::Css("#accounts-next")).await?.click().await?;
        wait(&format!("//span[@id='accounts-count' and text()='21–40 of {ACCOUNTS}']")).await?;
        wait("//table[@id='accounts']//tr/td[text()='driver-21@example.org']").await?;
        browser
            .find(Locator::Css("#accounts-search"))
            .await?
            .send_keys("driver-07")
            .await?;
        wait("//span[@id='accounts-count' and text()='1–1 of 1']").await?;
        browser
            .find(Locator::Css("#accounts button[data-tokens]"))
            .await?
            .click()
            .await?;
        wait("//ul[@id='account-tokens']/li[starts-with(text(),'CARD-07')]").await?;
        browser
            .find(Locator::Css("#accounts button[data-status='blocked']"))
            .await?
            .click()
            .await?;
        wait("//table[@id='accounts']//tr/td/span[text()='blocked']").await?;
        wait(&format!("//table[@id='fleets']//tr[@data-fleet='{fleet_id}']/td/a[starts-with(@href,'/api/fleets/{fleet_id}/invoice.pdf?month=')]")).await?;
        browser
            .find(Locator::Css(&format!("#fleets button[data-members='{fleet_id}']")))
            .await?
            .click()
            .await?;
        wait("//ul[@id='fleet-members']/li[starts-with(text(),'Driver 07')]").await?;
        if let Ok(png) = browser
            .find(Locator::Css("#accounts-panel"))
            .await?
            .screenshot()
            .await
        {
            let _ = std::fs::write(screenshot_path().with_file_name("accounts.png"), png);
        }
        // Reserve EVSE 2 from the reservation panel, see it Reserved, cancel it.
        for (field, value) in [("charger", "DASH-1"), ("evse", "2"), ("idTag", "DASH-R")] {
            let input = browser
                .find(Locator::Css(&format!("#reserve-form input[name='{field}']")))
                .await?;
            input.clear().await?;
            input.send_keys(value).await?;
        }
        browser
            .find(Locator::Css("#reserve-form button[type='submit']"))
            .await?
            .click()
            .await?;
        wait("//table[@id='reservations']//tr[td[text()='DASH-R'] and td[text()='Accepted']]").await?;
        wait("//span[@data-connector='DASH-1/2']/span[contains(@class,'status') and text()='Reserved']").await?;
        browser
            .find(Locator::Css("#reservations button[data-cancel]"))
            .await?
            .click()
            .await?;
        wait("//table[@id='reservations']//tr[td[text()='DASH-R'] and td[text()='Cancelled']]").await?;
        wait("//span[@data-connector='DASH-1/2']/span[contains(@class,'status') and text()='Available']").await?;

        // The device-model panel: ask for a report, find the heartbeat interval among the
        // variables (the report arrives in parts; "Show" reads what is stored so far).
        for (field, value) in [("charger", "DASH-1"), ("search", "heartbeat")] {
            let input = browser
                .find(Locator::Css(&format!("#device-model-form input[name='{field}']")))
                .await?;
            input.clear().await?;
            input.send_keys(value).await?;
        }
        browser.find(Locator::Css("#request-report")).await?.click().await?;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            browser
                .find(Locator::Css("#device-model-form button[type='submit']"))
                .await?
                .click()
                .await?;
            let rows = browser
                .find_all(Locator::XPath("//table[@id='device-variables']//tr[td[text()='HeartbeatInterval']]"))
                .await?;
            if !rows.is_empty() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no HeartbeatInterval in the panel");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Sign out: back to the login page. A viewer sees the chargers but no Start button.
        browser.find(Locator::Css("#logout")).await?.click().await?;
        sign_in("watcher", "watcher-password-1".into()).await?;
        wait("//span[@id='user-role' and text()='viewer']").await?;
        wait("//tr[@data-charger='DASH-1']//span[contains(@class,'link') and text()='online']").await?;
        // Asked in one script: the live table re-renders its rows as events arrive, so an
        // element found by one command can be replaced before the next asks about it.
        let shown = |css: &'static str| {
            let b = browser.clone();
            async move {
                let answer = b
                    .execute(
                        "const e = document.querySelector(arguments[0]);
                         if (e === null) { return null; }
                         return e.getClientRects().length > 0
                             && getComputedStyle(e).visibility !== 'hidden';",
                        vec![serde_json::json!(css)],
                    )
                    .await?;
                Ok::<_, fantoccini::error::CmdError>(answer)
            }
        };
        assert_eq!(
            shown("button[data-action='start'][data-charger='DASH-1']").await?,
            serde_json::json!(false),
            "a viewer is not offered Start (the button is on the page, hidden)"
        );
        assert_eq!(
            shown("#reserve-form").await?,
            serde_json::json!(false),
            "a viewer is not offered Reserve (the form is on the page, hidden)"
        );
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    if let Err(e) = result {
        panic!("dashboard in Chromium: {e}");
    }

    // The API agrees with what the page showed.
    let sessions = central
        .backend()
        .db()
        .sessions(&ocpp_examples::backend::db::SessionFilter {
            charger: Some("DASH-1".into()),
            status: Some("completed".into()),
            limit: 10,
        })
        .await
        .expect("sessions");
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].energy_wh > Decimal::ZERO);
    let (_, blocked) = operator.get("/api/accounts?search=driver-07").await;
    assert_eq!(blocked["accounts"][0]["status"], "blocked");
    let (_, specs) = operator.get("/api/chargers/DASH-1/specs").await;
    // The operator's row, beside what the report of the device-model panel brought.
    assert_eq!(
        specs[0],
        serde_json::json!({ "evse": 1, "connector": -1, "maxPowerW": 22000, "connectorType": "cCCS2", "phases": null, "source": "operator" })
    );
    let (_, hook) = operator.get("/api/health-alerts/webhook").await;
    assert_eq!(hook["url"], "http://127.0.0.1:9/alerts");
    cp.shutdown().await;
    central.shutdown().await.expect("shutdown");
}

fn screenshot_path() -> PathBuf {
    // target/ next to this crate's build output (CARGO_TARGET_TMPDIR is target/tmp).
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("dashboard.png"))
        .unwrap_or_else(|| PathBuf::from("dashboard.png"))
}
