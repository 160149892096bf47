//! Every charger-initiated action of every version reaches the handler (whose defaults
//! answer with a schema-valid response) or gets the specified refusal (`NotSupported` where
//! the answer needs a decision). Requests are random valid payloads (ocpp-types' proptest
//! strategies); answers are checked against the official response schemas.

use std::sync::Arc;

use ocpp_central::testing::Harness;
use ocpp_central::{HandleV16, HandleV201, HandleV21, Handler};
use ocpp_types::{MessageKind, Version};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::Value;

struct Defaults;
impl Handler for Defaults {}
impl HandleV16 for Defaults {}
impl HandleV201 for Defaults {}
impl HandleV21 for Defaults {}

fn check<T: ocpp_types::Request + proptest::arbitrary::Arbitrary>(
    version: Version,
    runner: &mut TestRunner,
    not_supported: &mut Vec<&'static str>,
) {
    for round in 0..4 {
        let value = proptest::arbitrary::any::<T>()
            .new_tree(runner)
            .unwrap()
            .current();
        let mut h = Harness::new(version);
        h.respond_with_handler(Arc::new(Defaults));
        let payload = serde_json::to_string(&value).unwrap();
        let out = h.charger_sends(&format!(r#"[2,"x","{}",{payload}]"#, T::ACTION));
        assert_eq!(out.len(), 1, "{} {}", version, T::ACTION);
        let frame: Value = serde_json::from_str(&out[0]).unwrap();
        match frame[0].as_u64() {
            Some(3) => {
                let verdict =
                    ocpp_schemas::validate(version, T::ACTION, MessageKind::Response, &frame[2])
                        .unwrap();
                assert!(
                    verdict.is_ok(),
                    "{version} {} answer {} invalid: {verdict:?}",
                    T::ACTION,
                    out[0]
                );
            }
            Some(4) => {
                assert_eq!(
                    frame[2],
                    "NotSupported",
                    "{version} {}: {}",
                    T::ACTION,
                    out[0]
                );
                if round == 0 {
                    not_supported.push(T::ACTION);
                }
            }
            _ => panic!("{version} {}: {}", T::ACTION, out[0]),
        }
    }
}

#[test]
fn every_v16_charger_action_is_answered() {
    let mut runner = TestRunner::deterministic();
    let mut ns = Vec::new();
    check::<ocpp_types::v16::AuthorizeRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::BootNotificationRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::DataTransferRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::HeartbeatRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::MeterValuesRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::StartTransactionRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::StatusNotificationRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::StopTransactionRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::DiagnosticsStatusNotificationRequest>(
        Version::V16,
        &mut runner,
        &mut ns,
    );
    check::<ocpp_types::v16::FirmwareStatusNotificationRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::LogStatusNotificationRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::SecurityEventNotificationRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::SignCertificateRequest>(Version::V16, &mut runner, &mut ns);
    check::<ocpp_types::v16::SignedFirmwareStatusNotificationRequest>(
        Version::V16,
        &mut runner,
        &mut ns,
    );
    // What needs a decision of the application (14 actions in all).
    println!("v16 NotSupported by default: {ns:?}");
    assert!(
        !ns.contains(&"BootNotification")
            && !ns.contains(&"Heartbeat")
            && !ns.contains(&"Authorize")
    );
}

#[test]
fn every_v201_charger_action_is_answered() {
    let mut runner = TestRunner::deterministic();
    let mut ns = Vec::new();
    check::<ocpp_types::v201::SecurityEventNotificationRequest>(
        Version::V201,
        &mut runner,
        &mut ns,
    );
    check::<ocpp_types::v201::SignCertificateRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::BootNotificationRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::NotifyReportRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::AuthorizeRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::TransactionEventRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::HeartbeatRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::StatusNotificationRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::ReservationStatusUpdateRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::MeterValuesRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::ClearedChargingLimitRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::NotifyChargingLimitRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::NotifyEVChargingNeedsRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::NotifyEVChargingScheduleRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::ReportChargingProfilesRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::FirmwareStatusNotificationRequest>(
        Version::V201,
        &mut runner,
        &mut ns,
    );
    check::<ocpp_types::v201::PublishFirmwareStatusNotificationRequest>(
        Version::V201,
        &mut runner,
        &mut ns,
    );
    check::<ocpp_types::v201::Get15118EVCertificateRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::GetCertificateStatusRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::LogStatusNotificationRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::NotifyCustomerInformationRequest>(
        Version::V201,
        &mut runner,
        &mut ns,
    );
    check::<ocpp_types::v201::NotifyEventRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::NotifyMonitoringReportRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::NotifyDisplayMessagesRequest>(Version::V201, &mut runner, &mut ns);
    check::<ocpp_types::v201::DataTransferRequest>(Version::V201, &mut runner, &mut ns);
    // What needs a decision of the application (25 actions in all).
    println!("v201 NotSupported by default: {ns:?}");
    assert!(
        !ns.contains(&"BootNotification")
            && !ns.contains(&"Heartbeat")
            && !ns.contains(&"Authorize")
    );
}

#[test]
fn every_v21_charger_action_is_answered() {
    let mut runner = TestRunner::deterministic();
    let mut ns = Vec::new();
    check::<ocpp_types::v21::SecurityEventNotificationRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::SignCertificateRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::BootNotificationRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyReportRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::AuthorizeRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::VatNumberValidationRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::TransactionEventRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::HeartbeatRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::StatusNotificationRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::ReservationStatusUpdateRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::MeterValuesRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::ClearedChargingLimitRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyChargingLimitRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyEVChargingNeedsRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyEVChargingScheduleRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyPriorityChargingRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::PullDynamicScheduleUpdateRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::ReportChargingProfilesRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::FirmwareStatusNotificationRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::PublishFirmwareStatusNotificationRequest>(
        Version::V21,
        &mut runner,
        &mut ns,
    );
    check::<ocpp_types::v21::Get15118EVCertificateRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::GetCertificateChainStatusRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::GetCertificateStatusRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::ClosePeriodicEventStreamRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::LogStatusNotificationRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyCustomerInformationRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyEventRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyMonitoringReportRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::OpenPeriodicEventStreamRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyDisplayMessagesRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::DataTransferRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyDERAlarmRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifyDERStartStopRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::ReportDERControlRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::BatterySwapRequest>(Version::V21, &mut runner, &mut ns);
    check::<ocpp_types::v21::NotifySettlementRequest>(Version::V21, &mut runner, &mut ns);
    // What needs a decision of the application (36 actions in all).
    println!("v21 NotSupported by default: {ns:?}");
    assert!(
        !ns.contains(&"BootNotification")
            && !ns.contains(&"Heartbeat")
            && !ns.contains(&"Authorize")
    );
}
