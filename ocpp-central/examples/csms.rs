//! A minimal central system: answers Authorize itself (1.6 and 2.0.1; every other action and
//! 2.1 get the default answers) and logs what its chargers do, transactions included. Charger
//! `CP001` may connect with password `s3cret` (security profile 1, Basic auth).
//!
//! Run: `cargo run -p ocpp-central --example csms -- [listen address, default 127.0.0.1:9000]`
//! and point a charger at `ws://127.0.0.1:9000/ocpp` (it connects to `.../ocpp/CP001`), e.g.
//! `OCPP_CHARGER_PASSWORD=s3cret cargo run -p ocpp-charger --example charger -- ws://127.0.0.1:9000/ocpp`.

use std::sync::Arc;

use ocpp_central::ocpp_types::{v16, v201};
use ocpp_central::{async_trait, Auth, CallFailure, ChargerHandle, Event, Server, ServerConfig};
use ocpp_central::{Defaults, HandleV16, HandleV201, Handler};

struct Csms;

/// Your decision: here, tokens that start with `VIP` or are `04A2B3C4`.
fn allowed(id_token: &str) -> bool {
    id_token.starts_with("VIP") || id_token == "04A2B3C4"
}

#[async_trait]
impl Handler for Csms {
    // Version-neutral events: the same code for 1.6, 2.0.1 and 2.1 chargers.
    async fn on_event(&self, cp: &ChargerHandle, event: &Event) {
        let id = cp.identity();
        match event {
            Event::Connected { version, .. } => println!("{id}: connected, OCPP {version}"),
            Event::Booted { info, state, .. } => {
                println!("{id}: booted ({} {}): {state:?}", info.vendor, info.model)
            }
            Event::Heartbeat { at } => println!("{id}: heartbeat at {at}"),
            Event::StatusChanged {
                connector, status, ..
            } => println!("{id}: EVSE {} is {status:?}", connector.evse),
            Event::Authorized {
                id_token, status, ..
            } => println!("{id}: token {id_token} {}", status.as_str()),
            Event::TransactionStarted {
                transaction: tx, ..
            } => {
                println!(
                    "{id}: transaction {} started on EVSE {}",
                    tx.id, tx.connector.evse
                )
            }
            Event::TransactionUpdated {
                transaction: tx, ..
            } => {
                println!("{id}: transaction {}: {} Wh so far", tx.id, tx.energy_wh)
            }
            Event::TransactionEnded {
                transaction: tx, ..
            } => println!(
                "{id}: transaction {} ended ({}), {} Wh",
                tx.id,
                tx.stop_reason.as_deref().unwrap_or("no reason"),
                tx.energy_wh
            ),
            Event::Disconnected { reason } => println!("{id}: disconnected {reason:?}"),
            _ => {}
        }
    }

    // The versions whose actions this application answers itself.
    fn v16(&self) -> Option<&dyn HandleV16> {
        Some(self)
    }

    fn v201(&self) -> Option<&dyn HandleV201> {
        Some(self)
    }
}

#[async_trait]
impl HandleV16 for Csms {
    async fn authorize(
        &self,
        _: &ChargerHandle,
        req: v16::AuthorizeRequest,
    ) -> Result<v16::AuthorizeResponse, CallFailure> {
        let status = if allowed(req.id_tag.as_str()) {
            v16::AuthorizationStatus::Accepted
        } else {
            v16::AuthorizationStatus::Invalid
        };
        Ok(v16::AuthorizeResponse::new(v16::IdTagInfo::new(status)))
    }
}

#[async_trait]
impl HandleV201 for Csms {
    async fn authorize(
        &self,
        _: &ChargerHandle,
        req: v201::AuthorizeRequest,
    ) -> Result<v201::AuthorizeResponse, CallFailure> {
        let status = if allowed(req.id_token.id_token.as_str()) {
            v201::AuthorizationStatusEnumType::Accepted
        } else {
            v201::AuthorizationStatusEnumType::Invalid
        };
        Ok(v201::AuthorizeResponse::new(v201::IdTokenInfoType::new(
            status,
        )))
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    // Security profile 1: Basic auth, user = identity (`Auth::AllowAnyone` must be spelled out).
    let config = ServerConfig::new(Auth::passwords([("CP001", "s3cret")]))
        // Heartbeats every 10 s instead of the default 300 s, to watch them arrive.
        .defaults(Defaults {
            heartbeat_interval: 10,
            ..Defaults::default()
        });
    let server = Server::new(config, Arc::new(Csms));
    println!("listening on ws://{addr}/<any path>/<identity>");
    server.bind_and_serve(addr).await
}
