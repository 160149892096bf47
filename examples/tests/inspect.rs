//! Runs the `ocpp-inspect` binary on small logs and checks every output line.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ocpp-inspect");

fn run_stdin(args: &[&str], input: &str) -> (i32, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

const LOG_16: &str = concat!(
    r#"[2,"1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"Volt 22"}]"#,
    "\n",
    r#"[3,"1",{"status":"Accepted","currentTime":"2024-01-01T00:00:00Z","interval":300}]"#,
    "\n",
    r#"[3,"99",{}]"#,
    "\n",
    "not json\n",
    r#"[2,"2","Nope",{}]"#,
    "\n",
    r#"[2,"3","Heartbeat",{"x":1}]"#,
    "\n",
    "[2, \"4\", \"Heartbeat\",  {} ]\r\n",
    r#"[4,"4","NotSupported","no",{}]"#,
    "\n",
    r#"[7,"5"]"#,
    "\n",
    "\n",
    r#"[2,"6","StatusNotification",{"connectorId":4294967296,"errorCode":"NoError","status":"Available"}]"#,
    "\n",
    r#"[2,"7","Reset",{"type":"Hard"}]"#,
    "\n",
    r#"[3,"7",{"status":"Maybe"}]"#,
);

const EXPECTED_16: &[&str] = &[
    "ok\tBootNotification\t[2,\"1\",\"BootNotification\",{\"chargePointVendor\":\"ACME\",\"chargePointModel\":\"Volt 22\"}]",
    "ok\tBootNotification\t[3,\"1\",{\"status\":\"Accepted\",\"currentTime\":\"2024-01-01T00:00:00Z\",\"interval\":300}]",
    "error\tGenericError\tno earlier CALL with message id \"99\"",
    "error\tFormationViolation\tmessage is not valid JSON: expected ident at line 1 column 2",
    "error\tNotImplemented\t\"Nope\" is not an OCPP 1.6 action",
    "error\tFormationViolation\tAdditional properties are not allowed ('x' was unexpected)",
    "ok\tHeartbeat\t[2,\"4\",\"Heartbeat\",{}]",
    "ok\tHeartbeat\t[4,\"4\",\"NotSupported\",\"no\",{}]",
    "error\tNotSupported\tmessage type 7 is not supported",
    "error\tFormationViolation\tmessage is not valid JSON: EOF while parsing a value at line 1 column 0",
    "error\tTypeConstraintViolation\t/connectorId: 4294967296 is beyond the 32-bit range of an OCPP integer",
    "ok\tReset\t[2,\"7\",\"Reset\",{\"type\":\"Hard\"}]",
    "error\tPropertyConstraintViolation\t/status: \"Maybe\" is not one of \"Accepted\" or \"Rejected\"",
];

#[test]
fn a_mixed_1_6_log_gives_one_exact_line_per_input_line() {
    let (code, out) = run_stdin(&["--version", "1.6"], LOG_16);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, EXPECTED_16, "\n{out}");
}

#[test]
fn a_2_1_log_from_a_file_with_send_and_callresulterror() {
    let path = std::env::temp_dir().join(format!("ocpp-inspect-{}.log", std::process::id()));
    let log = concat!(
        r#"[2,"a","Heartbeat",{}]"#,
        "\n",
        r#"[3,"a",{"currentTime":"2024-01-01T00:00:00.000Z"}]"#,
        "\n",
        r#"[5,"a","FormatViolation","bad",{}]"#,
        "\n",
        r#"[6,"b","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2024-01-01T00:00:00Z","data":[{"t":1.50,"v":"x"}]}]"#,
        "\n",
        r#"[2,"c","BootNotification",{"reason":"PowerUp"}]"#,
        "\n",
        r#"[8,"d"]"#,
        "\n",
    );
    std::fs::write(&path, log).unwrap();
    let out = Command::new(BIN)
        .args(["--version", "2.1"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success());
    let out = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let expected = [
        "ok\tHeartbeat\t[2,\"a\",\"Heartbeat\",{}]",
        "ok\tHeartbeat\t[3,\"a\",{\"currentTime\":\"2024-01-01T00:00:00Z\"}]",
        "ok\tHeartbeat\t[5,\"a\",\"FormatViolation\",\"bad\",{}]",
        "ok\tNotifyPeriodicEventStream\t[6,\"b\",\"NotifyPeriodicEventStream\",{\"data\":[{\"t\":1.50,\"v\":\"x\"}],\"id\":1,\"pending\":0,\"basetime\":\"2024-01-01T00:00:00Z\"}]",
        "error\tOccurrenceConstraintViolation\t\"chargingStation\" is a required property",
        "error\tMessageTypeNotSupported\tmessage type 8 is not supported",
    ];
    assert_eq!(lines, expected, "\n{out}");
}

#[test]
fn bad_flags_and_missing_files_exit_non_zero() {
    let (code, out) = run_stdin(&["--version", "3.0"], "");
    assert_ne!(code, 0);
    assert!(out.is_empty());
    let (code, _) = run_stdin(&[], "");
    assert_ne!(code, 0);
    let (code, _) = run_stdin(&["--version", "1.6", "/nonexistent/ocpp.log"], "");
    assert_ne!(code, 0);
    // Empty input: no output, success.
    let (code, out) = run_stdin(&["--version", "2.0.1"], "");
    assert_eq!((code, out.as_str()), (0, ""));
}
