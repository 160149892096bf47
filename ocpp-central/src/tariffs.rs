//! OCPP 2.1 tariffs from the central system (functional block I, use cases I07 to I12):
//! typed commands on [`ChargerHandle`] and what a charger reports about the cost it
//! computed itself.
//!
//! | command | 1.6 / 2.0.1 | 2.1 |
//! |---|---|---|
//! | [`set_default_tariff`](ChargerHandle::set_default_tariff) | refused | SetDefaultTariff |
//! | [`get_tariffs`](ChargerHandle::get_tariffs) | refused | GetTariffs |
//! | [`clear_tariffs`](ChargerHandle::clear_tariffs) | refused | ClearTariffs |
//! | [`change_transaction_tariff`](ChargerHandle::change_transaction_tariff) | refused | ChangeTransactionTariff |
//!
//! Every command is refused before anything is sent ([`CallError::Refused`]) when the
//! charger does not speak 2.1, and a tariff is checked with
//! [`ocpp_types::tariff::Tariff::new`] (at most [`MAX_ELEMENTS`] price elements, valid
//! conditions, no negative price) before it goes out. The answers are the typed 2.1
//! responses, whose status the caller reads (`TooManyElements`, `ConditionNotSupported`,
//! `DuplicateTariffId`, `TxNotFound`, `NoCurrencyChange`, ...).
//!
//! A 2.1 TransactionEvent that carries `costDetails` (the station computed the cost
//! locally, use case I05) or names the tariff it uses (`transactionInfo.tariffId`) is
//! projected into [`Event::TariffCost`]; the running cost the central system itself
//! computes goes back in the TransactionEvent answer's `totalCost` (see
//! [`crate::display`]).
//!
//! [`Event::TariffCost`]: crate::Event::TariffCost

use ocpp_types::tariff::{Tariff, MAX_ELEMENTS};
use ocpp_types::v21::{
    ChangeTransactionTariffRequest, ChangeTransactionTariffResponse, ClearTariffsRequest,
    ClearTariffsResponse, CostDetailsType, GetTariffsRequest, GetTariffsResponse,
    SetDefaultTariffRequest, SetDefaultTariffResponse, TariffType, TransactionEventEnumType,
};
use ocpp_types::{BoundedString, Version};

use crate::handler::ChargerHandle;
use crate::message::AnyRequest;
use crate::session::CallError;

/// What a 2.1 TransactionEvent says about its tariff and cost.
#[derive(Debug, Clone, PartialEq)]
pub struct CostReport {
    /// The transaction.
    pub transaction_id: String,
    /// `Started`, `Updated` or `Ended`.
    pub event_type: TransactionEventEnumType,
    /// The tariff the station applies (`transactionInfo.tariffId`).
    pub tariff_id: Option<String>,
    /// The cost the station computed (`costDetails`).
    pub cost_details: Option<CostDetailsType>,
}

/// The cost report of a 2.1 TransactionEvent, when it carries `costDetails` or a
/// `tariffId`.
pub fn cost_report(request: &AnyRequest) -> Option<CostReport> {
    match request {
        #[cfg(feature = "v21")]
        AnyRequest::V21(ocpp_types::v21::AnyRequest::TransactionEvent(q)) => {
            let tariff_id = q
                .transaction_info
                .tariff_id
                .as_ref()
                .map(|t| t.as_str().to_owned());
            if tariff_id.is_none() && q.cost_details.is_none() {
                return None;
            }
            Some(CostReport {
                transaction_id: q.transaction_info.transaction_id.as_str().to_owned(),
                event_type: q.event_type,
                tariff_id,
                cost_details: q.cost_details.clone(),
            })
        }
        _ => None,
    }
}

fn v21_only(h: &ChargerHandle, what: &str) -> Result<(), CallError> {
    if h.version() == Version::V21 {
        Ok(())
    } else {
        Err(CallError::Refused(format!(
            "{what} is OCPP 2.1 only; the charger speaks {}",
            h.version()
        )))
    }
}

fn check(what: &str, tariff: &TariffType) -> Result<(), CallError> {
    Tariff::new(tariff, MAX_ELEMENTS)
        .map(|_| ())
        .map_err(|e| CallError::Refused(format!("{what}: {e}")))
}

impl ChargerHandle {
    /// SetDefaultTariff (I07): `tariff` becomes the default of `evse_id` (0: every EVSE).
    pub async fn set_default_tariff(
        &self,
        evse_id: i32,
        tariff: &TariffType,
    ) -> Result<SetDefaultTariffResponse, CallError> {
        v21_only(self, "SetDefaultTariff")?;
        check("SetDefaultTariff", tariff)?;
        if evse_id < 0 {
            return Err(CallError::Refused(format!(
                "SetDefaultTariff: evseId {evse_id} is negative"
            )));
        }
        self.call(SetDefaultTariffRequest::new(evse_id, tariff.clone()))
            .await
    }

    /// GetTariffs (I10): the tariffs in force on `evse_id` (0: all).
    pub async fn get_tariffs(&self, evse_id: i32) -> Result<GetTariffsResponse, CallError> {
        v21_only(self, "GetTariffs")?;
        if evse_id < 0 {
            return Err(CallError::Refused(format!(
                "GetTariffs: evseId {evse_id} is negative"
            )));
        }
        self.call(GetTariffsRequest::new(evse_id)).await
    }

    /// ClearTariffs (I11): the tariffs `tariff_ids` (all when `None`), on `evse_id` (every
    /// EVSE when `None`).
    pub async fn clear_tariffs(
        &self,
        tariff_ids: Option<&[String]>,
        evse_id: Option<i32>,
    ) -> Result<ClearTariffsResponse, CallError> {
        v21_only(self, "ClearTariffs")?;
        let ids = match tariff_ids {
            None => None,
            Some([]) => {
                return Err(CallError::Refused(
                    "ClearTariffs: an empty list of tariff ids".into(),
                ))
            }
            Some(ids) => Some(
                ids.iter()
                    .map(|i| {
                        BoundedString::new(i.clone())
                            .map_err(|e| CallError::Refused(format!("ClearTariffs: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let mut q = ClearTariffsRequest::new();
        q.tariff_ids = ids;
        q.evse_id = evse_id;
        self.call(q).await
    }

    /// ChangeTransactionTariff (I12): `tariff` applies to the ongoing transaction
    /// `transaction_id` from now on (same currency).
    pub async fn change_transaction_tariff(
        &self,
        transaction_id: &str,
        tariff: &TariffType,
    ) -> Result<ChangeTransactionTariffResponse, CallError> {
        v21_only(self, "ChangeTransactionTariff")?;
        check("ChangeTransactionTariff", tariff)?;
        let id = BoundedString::new(transaction_id.to_owned())
            .map_err(|e| CallError::Refused(format!("ChangeTransactionTariff: {e}")))?;
        self.call(ChangeTransactionTariffRequest::new(tariff.clone(), id))
            .await
    }
}
