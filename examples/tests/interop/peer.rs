//! A peer implementation (Python `ocpp` or ocpp-rpc) running as a subprocess, driven over the
//! line protocol of `interop/python/bridge.py` / `interop/node/bridge.js`: JSON commands on
//! its stdin, JSON events on its stdout. Killed when dropped.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocpp_types::Version;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How long one wait for a peer event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The library on the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lib {
    /// mobilityhouse `ocpp` 2.1.0 from PyPI (with `websockets`).
    PythonOcpp,
    /// `ocpp-rpc` 2.2.1 from npm, strict mode.
    OcppRpc,
}

impl Lib {
    /// The name used in failures and coverage.
    pub fn name(self) -> &'static str {
        match self {
            Lib::PythonOcpp => "python-ocpp",
            Lib::OcppRpc => "ocpp-rpc",
        }
    }

    /// A short prefix for charger identities.
    pub fn tag(self) -> &'static str {
        match self {
            Lib::PythonOcpp => "PY",
            Lib::OcppRpc => "RPC",
        }
    }
}

/// Which side the peer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Their charge point against our central system.
    ChargePoint,
    /// Their central system against our charger.
    CentralSystem,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::ChargePoint => "charge point",
            Role::CentralSystem => "central system",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Role::ChargePoint => "charge_point",
            Role::CentralSystem => "central_system",
        }
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The program and script of `lib` playing `role`, or why it cannot run here. Panics when
/// the environment names a peer that is not there (a broken setup must not pass as a skip).
fn program(lib: Lib, role: Role) -> Result<(PathBuf, PathBuf), &'static str> {
    match lib {
        Lib::PythonOcpp => {
            let python = env_path("OCPP_INTEROP_PYTHON").ok_or("OCPP_INTEROP_PYTHON is not set")?;
            assert!(
                python.exists(),
                "OCPP_INTEROP_PYTHON={} does not exist; run scripts/interop-setup.sh",
                python.display()
            );
            let script = workspace()
                .join("interop/python")
                .join(format!("{}.py", role.file()));
            Ok((python, script))
        }
        Lib::OcppRpc => {
            let dir =
                env_path("OCPP_INTEROP_NODE_DIR").ok_or("OCPP_INTEROP_NODE_DIR is not set")?;
            assert!(
                dir.join("node_modules/ocpp-rpc").exists(),
                "OCPP_INTEROP_NODE_DIR={} has no node_modules/ocpp-rpc; run scripts/interop-setup.sh",
                dir.display()
            );
            let node = env_path("OCPP_INTEROP_NODE").unwrap_or_else(|| PathBuf::from("node"));
            Ok((node, dir.join(format!("{}.js", role.file()))))
        }
    }
}

/// Prints a SKIPPED line that `cargo test` does not swallow (it bypasses the output capture),
/// unless `OCPP_INTEROP_REQUIRED=1`, where a missing peer fails the test.
fn skipped(test: &str, why: &str) {
    let required = std::env::var("OCPP_INTEROP_REQUIRED").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: the peer is not installed ({why}) and OCPP_INTEROP_REQUIRED=1"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: {why}. Install the peers and export their paths with \
         `eval \"$(bash scripts/interop-setup.sh)\"` ***\n"
    );
}

/// Whether `lib` can play `role` here; prints SKIPPED (see [`skipped`]) when it cannot.
pub fn available(test: &str, lib: Lib, role: Role) -> bool {
    match program(lib, role) {
        Ok(_) => true,
        Err(why) => {
            skipped(test, why);
            false
        }
    }
}

/// Where the coverage lines of the peers go.
pub fn coverage_dir() -> PathBuf {
    env_path("OCPP_INTEROP_COVERAGE_DIR")
        .unwrap_or_else(|| workspace().join("target/interop/coverage"))
}

/// A running peer.
pub struct Peer {
    /// `python-ocpp 2.0.1 charge point`: the prefix of every failure.
    pub label: String,
    child: Child,
    stdin: ChildStdin,
    events: mpsc::UnboundedReceiver<Value>,
    backlog: VecDeque<Value>,
    stderr: Arc<Mutex<String>>,
    next_id: u64,
    /// OCPP 2.1 SEND frames from us the peer could not process (it has no SEND).
    pub sends_refused: u32,
}

impl Peer {
    /// Starts `lib` as `role` for `version` with `args`, or prints SKIPPED and returns `None`
    /// when the peer is not installed. The coverage file of this peer, role and version is
    /// started afresh.
    pub async fn spawn(
        test: &str,
        lib: Lib,
        role: Role,
        version: Version,
        args: &[String],
    ) -> Option<Peer> {
        Peer::spawn_as(test, lib, role, version, "", args).await
    }

    /// [`Peer::spawn`] with its own coverage file, `<lib>-<role>-<version><suffix>.jsonl`, so
    /// a test beside the main one (e.g. over TLS) does not start the main one's file afresh.
    pub async fn spawn_as(
        test: &str,
        lib: Lib,
        role: Role,
        version: Version,
        suffix: &str,
        args: &[String],
    ) -> Option<Peer> {
        let label = format!("{} {} {}", lib.name(), version.as_str(), role.name());
        let (program, script) = match program(lib, role) {
            Ok(p) => p,
            Err(why) => {
                skipped(test, why);
                return None;
            }
        };
        let coverage = coverage_dir();
        std::fs::create_dir_all(&coverage).expect("coverage directory");
        let coverage = coverage.join(format!(
            "{}-{}-{}{suffix}.jsonl",
            lib.name(),
            role.file(),
            version.as_str()
        ));
        let _ = std::fs::remove_file(&coverage);
        let mut cmd = Command::new(&program);
        cmd.arg(&script)
            .arg("--version")
            .arg(version.as_str())
            .arg("--coverage")
            .arg(&coverage)
            .args(args)
            .current_dir(script.parent().expect("script directory"))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start {}: {e}", program.display()));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, events) = mpsc::unbounded_channel();
        // OCPP_INTEROP_TRACE=1: every event of the peer on stderr, as it arrives.
        let trace_label = std::env::var("OCPP_INTEROP_TRACE")
            .is_ok_and(|v| v == "1")
            .then(|| label.clone());
        let trace = trace_label.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let event = serde_json::from_str::<Value>(&line)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({ "event": "output", "text": line }));
                if let Some(label) = &trace {
                    let _ = writeln!(std::io::stderr(), "[{label}] {event}");
                }
                if tx.send(event).is_err() {
                    break;
                }
            }
            let _ = tx.send(json!({ "event": "exited" }));
        });
        let tail = Arc::new(Mutex::new(String::new()));
        let sink = tail.clone();
        let trace = trace_label.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(label) = &trace {
                    let _ = writeln!(std::io::stderr(), "[{label} stderr] {line}");
                }
                let mut t = sink.lock().unwrap_or_else(|e| e.into_inner());
                t.push_str(&line);
                t.push('\n');
                if t.len() > 16_384 {
                    let cut = t.len() - 8_192;
                    let cut = (cut..t.len()).find(|i| t.is_char_boundary(*i)).unwrap_or(0);
                    t.drain(..cut);
                }
            }
        });
        Some(Peer {
            label,
            child,
            stdin,
            events,
            backlog: VecDeque::new(),
            stderr: tail,
            next_id: 0,
            sends_refused: 0,
        })
    }

    /// Fails the test: `<peer> <version> <role>: <action>: <message>`, with the peer's stderr.
    pub fn fail(&self, action: &str, message: impl std::fmt::Display) -> ! {
        let tail = self.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        let tail = if tail.trim().is_empty() {
            String::new()
        } else {
            format!("\n--- {} stderr (tail) ---\n{tail}", self.label)
        };
        panic!("{}: {action}: {message}{tail}", self.label)
    }

    async fn send(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        if let Err(e) = self.stdin.write_all(line.as_bytes()).await {
            self.fail("(command)", format!("peer's stdin closed: {e}"));
        }
        let _ = self.stdin.flush().await;
    }

    /// From now on the peer answers incoming `action` with `payload`.
    pub async fn answer(&mut self, action: &str, payload: Value) {
        self.send(json!({ "cmd": "answer", "action": action, "payload": payload }))
            .await;
    }

    /// The peer sends CALL `action`; its answer, or the error (`{"code", "description",
    /// "remote"}`) when the other side answered a CALLERROR or the peer refused the answer.
    pub async fn call(&mut self, action: &str, payload: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "cmd": "call", "id": id, "action": action, "payload": payload }))
            .await;
        let what = format!("the result of its {action}");
        let result = self
            .wait(action, &what, |e| e["event"] == "result" && e["id"] == id)
            .await;
        if result["ok"] == true {
            Ok(result["response"].clone())
        } else {
            Err(result["error"].clone())
        }
    }

    /// The next event that satisfies `pred` (events seen before and not taken wait in a
    /// backlog, in order). `action` and `what` name it in the failure on timeout.
    pub async fn wait(&mut self, action: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).expect("index");
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(e)) => e,
                Ok(None) => self.fail(action, format!("peer gone while waiting for {what}")),
                Err(_) => self.fail(action, format!("no {what} within {WAIT:?}")),
            };
            match event["event"].as_str() {
                Some("fatal") => self.fail(action, format!("peer failed: {}", event["error"])),
                Some("exited") => {
                    self.fail(action, format!("peer exited while waiting for {what}"))
                }
                // OCPP 2.1 SEND frames (message type 6): neither peer takes them
                // (interop/README.md); they stay unanswered, the connection lives on.
                Some("bad_message")
                    if event["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("[6,")) =>
                {
                    self.sends_refused += 1;
                    continue;
                }
                Some("bad_message") => self.fail(
                    action,
                    format!(
                        "the peer could not process a frame from us: {} ({})",
                        event["message"], event["error"]
                    ),
                ),
                Some("strict_validation_failure") => {
                    // ocpp-rpc refused a message against its schemas; the call or answer it
                    // belongs to fails on its own, this says why.
                    let _ = writeln!(std::io::stderr(), "{}: {event}", self.label);
                }
                _ => {}
            }
            if pred(&event) {
                return event;
            }
            self.backlog.push_back(event);
        }
    }

    /// Waits for the event named `name` (e.g. `connected`, `listening`).
    pub async fn event(&mut self, name: &str) -> Value {
        let what = format!("{name:?} event");
        self.wait("(start)", &what, |e| e["event"] == name).await
    }

    /// The payload of the next CALL `action` the peer received that satisfies `pred`.
    pub async fn incoming(&mut self, action: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let what = format!("incoming {action} (as expected)");
        let e = self
            .wait(action, &what, |e| {
                e["event"] == "incoming" && e["action"] == action && pred(&e["payload"])
            })
            .await;
        e["payload"].clone()
    }

    /// The answer the peer gave to the next CALL `action` it received: `Ok(payload)` or
    /// `Err(error)`.
    pub async fn answered(&mut self, action: &str) -> Result<Value, Value> {
        let what = format!("its answer to {action}");
        let e = self
            .wait(action, &what, |e| {
                e["event"] == "answered" && e["action"] == action
            })
            .await;
        if e.get("response").is_some() {
            Ok(e["response"].clone())
        } else {
            Err(e["error"].clone())
        }
    }

    /// Drops every event seen so far and not taken.
    pub fn forget(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            if e["event"] == "fatal" {
                self.fail("(any)", format!("peer failed: {}", e["error"]));
            }
        }
        self.backlog.clear();
    }

    /// Asks the peer to close its connection and exit; kills it after 5 s.
    pub async fn quit(mut self) {
        self.send(json!({ "cmd": "quit" })).await;
        let _ = self.stdin.shutdown().await;
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
        }
    }
}
