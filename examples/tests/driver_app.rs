//! The driver app in headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! over WebDriver), the driver's whole journey against a simulated charger: sign up, put a
//! card on file, find the charger (the QR code's deep link `/app#charger=ID`; the power and
//! plug filters; the site map and list, tapping the site), start on a
//! connector, watch the session live (time, energy, cost so far, the power/energy chart),
//! stop, see it in the history paid, open the receipt. Leaves screenshots in
//! `target/driver-app-*.png`.
//!
//! `OCPP_CHROMIUM` / `OCPP_CHROMEDRIVER` override the binaries (default `/usr/bin/chromium`,
//! `/usr/bin/chromedriver`). Where they are missing the test says loudly that it was skipped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use ocpp_charger::settings::Setting;
use ocpp_charger::ws::{self, ClientConfig};
use ocpp_charger::{HardwareEvent, MemoryStore, Saved, SimulatedHardware, Station, StationConfig};
use ocpp_examples::backend::run::{start, CentralArgs};
use ocpp_examples::backend::wait_for;
use ocpp_types::Version;
use rust_decimal::Decimal;

#[path = "support/browser.rs"]
mod browser;
use browser::binary;
#[path = "support/api.rs"]
mod api;

const WAIT: Duration = Duration::from_secs(30);

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join(format!("driver-app-{name}.png")))
        .unwrap_or_else(|| PathBuf::from(format!("driver-app-{name}.png")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_signs_up_finds_starts_watches_stops_and_gets_a_receipt() {
    let (Some(chromium), Some(driver)) = (
        binary("OCPP_CHROMIUM", "/usr/bin/chromium"),
        binary("OCPP_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        eprintln!(
            "\n*** SKIPPED driver app test: chromium / chromedriver not found (scripts/test.sh \
             installs Debian's chromium and chromium-driver) ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args =
        CentralArgs::with_database(format!("sqlite://{}", dir.path().join("app.db").display()))
            .ephemeral();
    args.session_fee = Decimal::new(150, 2);
    let central = start(&args).await.expect("central system");
    let mut feed = central.backend().subscribe();
    let station = Station::new(
        StationConfig::new("APP-1", Version::V201)
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
        ClientConfig::new(format!("ws://{}/ocpp/APP-1", central.ocpp_addr()))
            .backoff(Duration::from_millis(50), Duration::from_millis(300)),
    );
    wait_for(&mut feed, "APP-1", "booted", WAIT, |_| true)
        .await
        .expect("boot in time");
    cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
        .unwrap();
    // The operator puts the charger on a located site and says what its connectors are.
    let operator = api::Api::admin(&central).await;
    let (s, site) = operator
        .post(
            "/api/sites",
            serde_json::json!({ "name": "Harbour", "limit": "100", "unit": "kW" }),
        )
        .await;
    assert!(s.is_success(), "{site}");
    let site = site["id"].as_i64().expect("site id");
    for (path, body) in [
        (
            format!("/api/sites/{site}/location"),
            serde_json::json!({ "lat": "51.9225", "lon": "4.4792", "address": "Quay 4" }),
        ),
        (
            "/api/chargers/APP-1/connectors/1/spec".to_owned(),
            serde_json::json!({ "maxPowerKw": "22", "connectorType": "cCCS2" }),
        ),
        (
            "/api/chargers/APP-1/connectors/2/spec".to_owned(),
            serde_json::json!({ "maxPowerKw": "22", "connectorType": "cCCS2" }),
        ),
        (
            format!("/api/sites/{site}/chargers/APP-1"),
            serde_json::json!({}),
        ),
    ] {
        let (s, v) = operator.put(&path, body).await;
        assert!(s.is_success(), "{path}: {v}");
    }

    // A phone's viewport: the app is mobile-first.
    let (browser, _driver) = browser::open(&chromium, &driver, "412,915").await;
    let base = format!("http://{}", central.http_addr());
    let result = async {
        // The QR code's deep link.
        browser.goto(&format!("{base}/app#charger=APP-1")).await?;
        let wait = |loc: String| {
            let b = browser.clone();
            async move { b.wait().at_most(WAIT).for_element(Locator::XPath(&loc)).await }
        };
        let fill = |css: &'static str, text: &'static str| {
            let b = browser.clone();
            async move {
                let e = b.find(Locator::Css(css)).await?;
                e.clear().await?;
                e.send_keys(text).await
            }
        };
        wait("//form[@id='signup-form']".into()).await?;
        // A short password is refused with the API's reason.
        fill("#su-email", "dana@example.org").await?;
        fill("#su-name", "Dana").await?;
        fill("#su-password", "short").await?;
        browser.find(Locator::Css("#sign-up")).await?.click().await?;
        wait("//p[@id='auth-error' and contains(text(),'12')]".into()).await?;
        fill("#su-password", "correct horse battery").await?;
        browser.find(Locator::Css("#sign-up")).await?.click().await?;
        wait("//span[@id='who' and text()='Dana']".into()).await?;

        // A card on file.
        browser.find(Locator::Css("nav button[data-tab='account']")).await?.click().await?;
        fill("#card-number", "4242 4242 4242 4242").await?;
        browser.find(Locator::Css("#save-card")).await?.click().await?;
        wait("//b[@id='card-on-file' and contains(text(),'4242')]".into()).await?;

        // Find the charger (the deep link filled the search); the filters: nothing of
        // 150 kW, then 22 kW CCS2 finds it, with its power and plug.
        browser.find(Locator::Css("nav button[data-tab='find']")).await?.click().await?;
        wait("//li[@data-charger='APP-1']".into()).await?;
        browser.find(Locator::Css("#min-power option[value='150']")).await?.click().await?;
        wait("//ul[@id='chargers']/li[text()='No charger matches.']".into()).await?;
        browser.find(Locator::Css("#min-power option[value='22']")).await?.click().await?;
        browser.find(Locator::Css("#connector-type option[value='cCCS2']")).await?.click().await?;
        wait("//li[@data-charger='APP-1']//small[contains(@class,'spec') and contains(text(),'22 kW · cCCS2')]".into()).await?;

        // The map: the site's marker and its list entry, available/total per plug; tapping
        // the marker lists the site's chargers.
        browser.find(Locator::Css("nav button[data-tab='map']")).await?.click().await?;
        wait(format!("//*[local-name()='svg' and @id='map']/*[local-name()='g' and @data-site='{site}']")).await?;
        wait(format!("//ul[@id='sites']/li[@data-site='{site}']/div[@data-type='cCCS2']/b[text()='1/2']")).await?;
        browser
            .screenshot()
            .await
            .map(|png| std::fs::write(screenshot_path("map"), png))?
            .ok();
        browser
            .find(Locator::Css(&format!("#map g[data-site='{site}'] circle")))
            .await?
            .click()
            .await?;
        wait("//p[@id='site-chip' and not(@hidden)]/b[text()='Harbour']".into()).await?;
        wait("//li[@data-charger='APP-1']//button[@data-evse='1' and not(@disabled)]".into()).await?;
        browser
            .screenshot()
            .await
            .map(|png| std::fs::write(screenshot_path("find"), png))?
            .ok();
        browser
            .find(Locator::Css("li[data-charger='APP-1'] button[data-evse='1']"))
            .await?
            .click()
            .await?;

        // Watch: the live view with energy flowing, a cost and the chart.
        wait("//div[@id='live' and @data-session]".into()).await?;
        wait("//span[@id='energy' and text()!='0.000']".into()).await?;
        wait("//*[local-name()='svg' and @id='chart']/*[local-name()='polyline' and @class='p']".into()).await?;
        wait("//b[@id='cost' and contains(text(),'EUR')]".into()).await?;
        browser
            .screenshot()
            .await
            .map(|png| std::fs::write(screenshot_path("live"), png))?
            .ok();

        // Stop; the history shows it paid, with a receipt.
        browser.find(Locator::Css("#stop")).await?.click().await?;
        wait("//ul[@id='history']/li[@data-session]//div[contains(@class,'payment') and text()='payment: captured']".into()).await?;
        browser
            .screenshot()
            .await
            .map(|png| std::fs::write(screenshot_path("history"), png))?
            .ok();
        let href = browser
            .find(Locator::Css("#history a.receipt"))
            .await?
            .attr("href")
            .await?
            .unwrap_or_default();
        browser.goto(&format!("{base}{href}")).await?;
        wait("//h1[text()='Charging receipt']".into()).await?;
        wait("//td[@id='payment-status' and starts-with(text(),'captured')]".into()).await?;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    if let Err(e) = result {
        panic!("driver app in Chromium: {e}");
    }
    let (_, total) = central
        .backend()
        .accounts()
        .accounts("dana", 0, 10)
        .await
        .expect("accounts");
    assert_eq!(total, 1);
    cp.shutdown().await;
    central.shutdown().await.expect("shutdown");
}
