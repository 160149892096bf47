//! The README's run command, `network`, plays the whole flow and exits cleanly
//! (`--exit-after-demo`), on free ports and a fresh SQLite file.

use std::process::Command;

#[test]
fn network_plays_the_whole_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("network.db");
    let out = Command::new(env!("CARGO_BIN_EXE_network"))
        .args([
            "--ocpp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--database-url",
        ])
        .arg(&db)
        .args([
            "--charge-secs",
            "3",
            "--meter-interval",
            "1",
            "--exit-after-demo",
        ])
        .output()
        .expect("run network");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "network failed:\n{stdout}\n{stderr}");
    for needle in [
        "Dashboard: http://127.0.0.1:",
        "10 chargers booted",
        "4 on OCPP 1.6, 3 on 2.0.1, 3 on 2.1",
        "RemoteStartTransaction Accepted",
        "RequestStartTransaction Accepted",
        "RemoteStopTransaction Accepted",
        "RequestStopTransaction Accepted",
        "The whole flow is done",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing in:\n{stdout}");
    }
    // Three sessions stored, each with energy and a cost.
    let stored: Vec<&str> = stdout.lines().filter(|l| l.contains("stored:")).collect();
    assert_eq!(stored.len(), 3, "{stdout}");
    for line in stored {
        assert!(!line.contains("stored: 0 Wh"), "no energy in {line:?}");
        assert!(line.contains("EUR"), "no cost in {line:?}");
    }
    assert!(db.exists(), "the SQLite file was created");
}

#[test]
fn every_flag_is_explained() {
    for (bin, flags) in [
        (
            env!("CARGO_BIN_EXE_central-system"),
            &[
                "--ocpp-listen",
                "--http-listen",
                "--database-url",
                "--known-only",
                "--passwords-file",
                "--ocpp-version",
                "--heartbeat-interval",
                "--unknown-tokens",
                "--price-per-kwh",
                "--price-per-hour",
                "--session-fee",
                "--currency",
                "--call-timeout",
                "--lenient",
                "--log-format",
                "--threads",
            ][..],
        ),
        (
            env!("CARGO_BIN_EXE_network"),
            &[
                "--ocpp-listen",
                "--http-listen",
                "--database-url",
                "--chargers",
                "--charge-secs",
                "--meter-interval",
                "--exit-after-demo",
            ][..],
        ),
    ] {
        let out = Command::new(bin).arg("--help").output().expect("--help");
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in flags {
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(flag) || l.contains(&format!(" {flag}")))
                .unwrap_or_else(|| panic!("{bin}: {flag} not in --help:\n{help}"));
            let _ = line;
        }
        // Every option line is followed by an explanation (clap puts it on the same line or
        // the next, indented).
        assert!(!help.contains("\n\n\n"), "{help}");
    }
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_central-system"))
        .args([
            "--ocpp-listen",
            &addr,
            "--http-listen",
            "127.0.0.1:0",
            "--database-url",
        ])
        .arg(dir.path().join("c.db"))
        .output()
        .expect("run central-system");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}
