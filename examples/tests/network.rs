//! The README's run command, `network`, plays the whole flow and exits cleanly
//! (`--exit-after-demo`), on free ports and a fresh SQLite file.

use std::process::Command;

use ocpp_examples::backend::auth::{Auth, AuthConfig, Secret};
use ocpp_examples::backend::Db;

/// The `network` binary on free ports with its database at `db`.
fn network(db: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_network"));
    command
        .args([
            "--ocpp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--database-url",
        ])
        .arg(db);
    command
}

#[test]
fn network_plays_the_whole_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("network.db");
    let out = network(&db)
        .args([
            "--charge-secs",
            "3",
            "--meter-interval",
            "1",
            "--exit-after-demo",
        ])
        .env_remove("OCPP_ADMIN_PASSWORD")
        .output()
        .expect("run network");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "network failed:\n{stdout}\n{stderr}");
    for needle in [
        "Dashboard: http://127.0.0.1:",
        "Sign in to the dashboard as admin, password ",
        "10 chargers booted",
        "4 on OCPP 1.6, 3 on 2.0.1, 3 on 2.1",
        "The 7 simulated chargers share the site \"Depot\": 38.5 kW for all of them",
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
    // The password printed is the admin's, and it is not in the logs.
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Sign in to the dashboard as admin, password "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the password line");
    assert!(!stderr.contains(password), "the password reached the logs");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let db = Db::open(&db.display().to_string()).await.expect("db");
        let auth = Auth::new(db, AuthConfig::new()).expect("auth");
        let addr = std::net::IpAddr::from([127, 0, 0, 1]);
        auth.login(addr, "admin", &Secret::new(password))
            .await
            .expect("the printed password signs in");
        // The demo's API key was revoked at the end.
        assert!(auth.api_keys().await.expect("keys").is_empty());
    });
}

/// `OCPP_ADMIN_PASSWORD` sets the first admin's password; nothing is printed then.
#[test]
fn the_admin_password_comes_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("env.db");
    let out = network(&db)
        .args([
            "--chargers",
            "3",
            "--charge-secs",
            "1",
            "--meter-interval",
            "1",
            "--exit-after-demo",
        ])
        .env("OCPP_ADMIN_PASSWORD", "from-the-environment")
        .output()
        .expect("run network");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("from-the-environment"), "{stdout}");
    assert!(
        stdout.contains("Sign in to the dashboard as admin (its password"),
        "{stdout}"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let db = Db::open(&db.display().to_string()).await.expect("db");
        let auth = Auth::new(db, AuthConfig::new()).expect("auth");
        auth.login(
            std::net::IpAddr::from([127, 0, 0, 1]),
            "admin",
            &Secret::new("from-the-environment"),
        )
        .await
        .expect("the environment's password signs in");
    });
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
                "--allowed-host",
                "--admin-password-file",
                "--session-idle-timeout",
                "--session-max-age",
                "--secure-cookie",
                "--http-header-timeout-ms",
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
                "--admin-password-file",
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

/// `central-system` on an empty database prints the `admin` password once, on stdout.
#[test]
fn central_system_prints_the_first_admin_password() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_central-system"))
        .args([
            "--ocpp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--database-url",
        ])
        .arg(dir.path().join("first.db"))
        .env_remove("OCPP_ADMIN_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run central-system");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let password = loop {
        let Some(Ok(line)) = lines.next() else {
            break None;
        };
        if let Some(rest) = line.split("with password ").nth(1) {
            break Some(rest.trim().to_owned());
        }
        seen.push(line);
    };
    let _ = child.kill();
    let _ = child.wait();
    let password = password.unwrap_or_else(|| panic!("no password line in {seen:?}"));
    assert!(password.len() >= 12, "{password}");
    assert!(
        seen.iter()
            .any(|l| l.contains("dashboard and API on http://")),
        "{seen:?}"
    );
}
