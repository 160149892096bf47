//! Headless Chromium for the browser tests (Debian's `chromium` and `chromium-driver`, driven
//! through chromedriver with fantoccini): finding the binaries and opening a browser whose
//! chromedriver is killed when the test ends.
// Each test file includes this module and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// How long chromedriver may take to come up.
const STARTUP: Duration = Duration::from_secs(30);

/// A child process killed (and reaped) when dropped.
pub struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary named by the environment variable `var`, else `default`, if it exists.
pub fn binary(var: &str, default: &str) -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_owned()));
    path.exists().then_some(path)
}

/// A free TCP port on 127.0.0.1.
pub async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr").port()
}

/// Starts chromedriver and opens headless `chromium` with a window of `window` ("W,H");
/// the guard stops chromedriver.
pub async fn open(chromium: &Path, driver: &Path, window: &str) -> (Client, KillOnDrop) {
    let port = free_port().await;
    let guard = KillOnDrop(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={window}")],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let started = Instant::now();
    let client = loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&webdriver)
            .await
        {
            Ok(c) => break c,
            // chromedriver is still starting up.
            Err(_) if started.elapsed() < STARTUP => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("chromedriver did not come up: {e}"),
        }
    };
    (client, guard)
}
