//! A central system commanded from the terminal: it accepts charger `CP001` (password
//! `s3cret`), answers its requests with the defaults, and sends it the version-neutral
//! commands of `ChargerHandle` (remote start and stop, reset, unlock, trigger), which pick
//! the right message for the charger's OCPP version (1.6, 2.0.1 or 2.1).
//!
//! Run: `cargo run -p ocpp-central --example commands -- [listen address, default 127.0.0.1:9000]`,
//! connect a charger (`OCPP_CHARGER_PASSWORD=s3cret cargo run -p ocpp-charger --example charger --
//! ws://127.0.0.1:9000/ocpp`), then type one command per line:
//!
//! ```text
//! list                        connected chargers and their transactions
//! start CP001 VIP-1 [evse]    remote start for id token VIP-1
//! stop CP001 <transaction>    remote stop
//! reset CP001 [hard]          reset (graceful unless hard)
//! unlock CP001 <evse>         unlock a connector
//! trigger CP001 <message>     e.g. StatusNotification, Heartbeat, MeterValues
//! ```

use std::sync::Arc;

use ocpp_central::{Auth, ChargerHandle, Handler, ResetKind, Server, ServerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

/// No handler methods: every charger request gets the default answer.
struct Csms;
impl Handler for Csms {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let config = ServerConfig::new(Auth::passwords([("CP001", "s3cret")]));
    let server = Server::new(config, Arc::new(Csms)).start(TcpListener::bind(&addr).await?)?;
    // The registry of connected chargers: share it with your API or scheduler.
    let chargers = server.chargers().clone();
    println!(
        "listening on ws://{addr}/<any path>/<identity>; type `list`, `start CP001 VIP-1`, ..."
    );

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["list"] => {
                for cp in chargers.list() {
                    let transactions: Vec<&String> = cp.transactions.keys().collect();
                    let (id, version, boot) = (&cp.identity, cp.version, cp.boot);
                    println!("{id}: OCPP {version}, {boot:?}, transactions {transactions:?}");
                }
            }
            [command, identity, args @ ..] => match chargers.get(identity) {
                Some(cp) => run(&cp, command, args).await,
                None => println!("{identity} is not connected"),
            },
            _ => println!("unknown command {line:?}"),
        }
    }
    // End of input: close every connection and stop.
    server.shutdown().await?;
    Ok(())
}

/// Sends one command and prints the charger's answer. It waits for the answer (or the call
/// timeout); spawn a task per command to keep the terminal free meanwhile.
async fn run(cp: &ChargerHandle, command: &str, args: &[&str]) {
    let answer = match (command, args) {
        ("start", [token]) => cp.remote_start(None, token).await,
        ("start", [token, evse]) => cp.remote_start(evse.parse().ok(), token).await,
        ("stop", [transaction]) => cp.remote_stop(transaction).await,
        ("reset", []) => cp.reset(ResetKind::Graceful, None).await,
        ("reset", ["hard"]) => cp.reset(ResetKind::Immediate, None).await,
        ("unlock", [evse]) => match evse.parse() {
            Ok(evse) => cp.unlock_connector(evse, None).await,
            Err(_) => return println!("not an EVSE number: {evse}"),
        },
        ("trigger", [message]) => cp.trigger_message(message, None).await,
        _ => return println!("unknown command {command} {args:?}"),
    };
    match answer {
        Ok(answer) => println!("{}: {command}: {}", cp.identity(), answer.status),
        Err(e) => println!("{}: {command} failed: {e}", cp.identity()),
    }
}
