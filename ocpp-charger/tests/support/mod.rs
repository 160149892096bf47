//! What several of these tests share: a central-system application with every default
//! answer, and a bounded wait for a condition.

#![allow(dead_code)] // each test file uses its own part

use std::time::{Duration, Instant};

use ocpp_central::{HandleV16, HandleV201, HandleV21, Handler};

/// A central-system application that answers everything with the library's defaults.
pub struct App;
impl Handler for App {}
impl HandleV16 for App {}
impl HandleV201 for App {}
impl HandleV21 for App {}

/// Waits (polling every 5 ms) until `f` holds; fails the test after 10 s naming `what`.
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
