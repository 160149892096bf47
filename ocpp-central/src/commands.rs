//! Version-neutral commands: [`ChargerHandle`] methods that pick the right message for the
//! charger's version, build it from the generated types, and answer in one shape
//! ([`Answer`]: the status word and the typed response), so an application (an HTTP API, a
//! scheduler) does not build per-version requests. For anything else,
//! [`ChargerHandle::call`] sends any typed request of the charger's version.
//!
//! | command | 1.6 | 2.0.1 / 2.1 |
//! |---|---|---|
//! | [`remote_start`](ChargerHandle::remote_start) | RemoteStartTransaction | RequestStartTransaction |
//! | [`remote_stop`](ChargerHandle::remote_stop) | RemoteStopTransaction | RequestStopTransaction |
//! | [`reset`](ChargerHandle::reset) | Reset Soft / Hard | Reset OnIdle / Immediate |
//! | [`change_availability`](ChargerHandle::change_availability) | ChangeAvailability | ChangeAvailability |
//! | [`unlock_connector`](ChargerHandle::unlock_connector) | UnlockConnector | UnlockConnector |
//! | [`trigger_message`](ChargerHandle::trigger_message) | TriggerMessage | TriggerMessage |
//! | [`clear_cache`](ChargerHandle::clear_cache) | ClearCache | ClearCache |
//! | [`get_variables`](ChargerHandle::get_variables) | GetConfiguration (keys = variable names) | GetVariables |
//! | [`set_variable`](ChargerHandle::set_variable) | ChangeConfiguration (key = variable name) | SetVariables |
//!
//! Arguments a version cannot carry are refused before anything is sent
//! ([`CallError::Refused`]): e.g. a 2.x transaction id that is not a 1.6 integer, a string
//! longer than the schema allows, a trigger the version does not define.

use std::str::FromStr;
use std::sync::atomic::{AtomicI32, Ordering};

use ocpp_types::{BoundedString, Version};

use crate::handler::ChargerHandle;
use crate::message::AnyResponse;
use crate::session::CallError;

/// A charger's answer to a version-neutral command.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The status word as the charger sent it (`Accepted`, `Rejected`, `Scheduled`,
    /// `Unlocked`, `RebootRequired`, ...).
    pub status: String,
    /// The typed response, in the charger's version.
    pub response: AnyResponse,
}

impl Answer {
    /// Whether the charger accepted (`Accepted`, `Unlocked` or `Scheduled`).
    pub fn is_accepted(&self) -> bool {
        matches!(self.status.as_str(), "Accepted" | "Unlocked" | "Scheduled")
    }
}

/// How to reset ([`ChargerHandle::reset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    /// Gracefully, once idle: 1.6 `Soft`, 2.x `OnIdle`.
    Graceful,
    /// At once, ending transactions: 1.6 `Hard`, 2.x `Immediate`.
    Immediate,
}

/// A variable to read ([`ChargerHandle::get_variables`]). On 1.6 only `variable` is used
/// (the configuration key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableRef {
    /// 2.x component name (e.g. `OCPPCommCtrlr`).
    pub component: String,
    /// 2.x component's EVSE, if any.
    pub evse: Option<i32>,
    /// The variable name (1.6: the configuration key, e.g. `HeartbeatInterval`).
    pub variable: String,
}

impl VariableRef {
    /// `variable` of `component`.
    pub fn new(component: impl Into<String>, variable: impl Into<String>) -> VariableRef {
        VariableRef {
            component: component.into(),
            evse: None,
            variable: variable.into(),
        }
    }
}

/// One value read ([`ChargerHandle::get_variables`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableValue {
    /// 2.x component name (1.6: empty).
    pub component: String,
    /// The variable name / configuration key.
    pub variable: String,
    /// The value, if the charger gave one.
    pub value: Option<String>,
    /// 2.x `attributeStatus` (`Accepted`, `UnknownVariable`, ...); 1.6 `Accepted`, or
    /// `UnknownKey` for keys the charger listed as unknown.
    pub status: String,
    /// (1.6) Whether the key is read-only.
    pub readonly: Option<bool>,
}

/// Remote start ids for 2.x RequestStartTransaction, unique in the process.
static REMOTE_START_IDS: AtomicI32 = AtomicI32::new(1);

fn bounded<const N: usize>(what: &str, s: &str) -> Result<BoundedString<N>, CallError> {
    BoundedString::new(s).map_err(|_| {
        CallError::Refused(format!(
            "{what} {s:?} is longer than the {N} characters the schema allows"
        ))
    })
}

fn word<T: FromStr>(version: Version, what: &str, s: &str) -> Result<T, CallError> {
    T::from_str(s).map_err(|_| CallError::Refused(format!("OCPP {version} has no {what} {s:?}")))
}

/// Sends the request `$q` through the handle `$h` and makes the charger's answer an
/// [`Answer`] by its `status`: for the per-version blocks, where `t` is the version's
/// generated module.
macro_rules! status_call {
    ($h:expr, $q:expr) => {{
        let r = $h.call($q).await?;
        Ok($crate::commands::Answer {
            status: r.status.as_str().to_owned(),
            response: $crate::message::AnyResponse::from(t::AnyResponse::from(r)),
        })
    }};
}
pub(crate) use status_call;

fn answer(status: &str, response: AnyResponse) -> Answer {
    Answer {
        status: status.to_owned(),
        response,
    }
}

pub(crate) fn unsupported(version: Version) -> CallError {
    CallError::Refused(format!("OCPP {version} is not enabled in this build"))
}

macro_rules! v2_commands {
    ($m:ident, $V:ident, $id_token:expr) => {
        mod $m {
            use super::*;
            use ocpp_types::$m as t;

            pub(super) async fn remote_start(
                h: &ChargerHandle,
                evse: Option<i32>,
                id_token: &str,
            ) -> Result<Answer, CallError> {
                let token = $id_token(id_token)?;
                let id = REMOTE_START_IDS.fetch_add(1, Ordering::Relaxed);
                let mut q = t::RequestStartTransactionRequest::new(token, id);
                q.evse_id = evse;
                status_call!(h, q)
            }

            pub(super) async fn remote_stop(
                h: &ChargerHandle,
                transaction_id: &str,
            ) -> Result<Answer, CallError> {
                let q = t::RequestStopTransactionRequest::new(bounded(
                    "transaction id",
                    transaction_id,
                )?);
                status_call!(h, q)
            }

            pub(super) async fn reset(
                h: &ChargerHandle,
                kind: ResetKind,
                evse: Option<i32>,
            ) -> Result<Answer, CallError> {
                let kind = match kind {
                    ResetKind::Graceful => "OnIdle",
                    ResetKind::Immediate => "Immediate",
                };
                let mut q = t::ResetRequest::new(word(h.version(), "reset type", kind)?);
                q.evse_id = evse;
                status_call!(h, q)
            }

            pub(super) async fn change_availability(
                h: &ChargerHandle,
                evse: Option<i32>,
                connector: Option<i32>,
                operative: bool,
            ) -> Result<Answer, CallError> {
                let status = if operative {
                    "Operative"
                } else {
                    "Inoperative"
                };
                let mut q = t::ChangeAvailabilityRequest::new(word(h.version(), "status", status)?);
                q.evse = evse.map(|id| {
                    let mut e = t::EVSEType::new(id);
                    e.connector_id = connector;
                    e
                });
                status_call!(h, q)
            }

            pub(super) async fn unlock_connector(
                h: &ChargerHandle,
                evse: i32,
                connector: Option<i32>,
            ) -> Result<Answer, CallError> {
                let q = t::UnlockConnectorRequest::new(evse, connector.unwrap_or(1));
                status_call!(h, q)
            }

            pub(super) async fn trigger_message(
                h: &ChargerHandle,
                message: &str,
                evse: Option<i32>,
            ) -> Result<Answer, CallError> {
                let mut q = t::TriggerMessageRequest::new(word(h.version(), "trigger", message)?);
                q.evse = evse.map(t::EVSEType::new);
                status_call!(h, q)
            }

            pub(super) async fn clear_cache(h: &ChargerHandle) -> Result<Answer, CallError> {
                let r = h.call(t::ClearCacheRequest::new()).await?;
                Ok(answer(
                    r.status.as_str(),
                    AnyResponse::from(t::AnyResponse::from(r)),
                ))
            }

            fn component(
                v: &VariableRef,
            ) -> Result<(t::ComponentType, t::VariableType), CallError> {
                let mut c = t::ComponentType::new(bounded("component", &v.component)?);
                c.evse = v.evse.map(t::EVSEType::new);
                let var = t::VariableType::new(bounded("variable", &v.variable)?);
                Ok((c, var))
            }

            pub(super) async fn get_variables(
                h: &ChargerHandle,
                vars: &[VariableRef],
            ) -> Result<Vec<VariableValue>, CallError> {
                let data = vars
                    .iter()
                    .map(|v| {
                        let (c, var) = component(v)?;
                        Ok(t::GetVariableDataType::new(c, var))
                    })
                    .collect::<Result<Vec<_>, CallError>>()?;
                let r = h.call(t::GetVariablesRequest::new(data)).await?;
                Ok(r.get_variable_result
                    .into_iter()
                    .map(|x| VariableValue {
                        component: x.component.name.as_str().to_owned(),
                        variable: x.variable.name.as_str().to_owned(),
                        value: x.attribute_value.map(|v| v.as_str().to_owned()),
                        status: x.attribute_status.as_str().to_owned(),
                        readonly: None,
                    })
                    .collect())
            }

            pub(super) async fn set_variable(
                h: &ChargerHandle,
                var: &VariableRef,
                value: &str,
            ) -> Result<Answer, CallError> {
                let (c, v) = component(var)?;
                let data = t::SetVariableDataType::new(bounded("value", value)?, c, v);
                let r = h.call(t::SetVariablesRequest::new(vec![data])).await?;
                let status = r
                    .set_variable_result
                    .first()
                    .map(|x| x.attribute_status.as_str().to_owned())
                    .unwrap_or_default();
                Ok(Answer {
                    status,
                    response: AnyResponse::from(t::AnyResponse::from(r)),
                })
            }
        }
    };
}

#[cfg(feature = "v201")]
v2_commands!(v201, V201, |token: &str| -> Result<
    ocpp_types::v201::IdTokenType,
    CallError,
> {
    Ok(ocpp_types::v201::IdTokenType::new(
        bounded("id token", token)?,
        ocpp_types::v201::IdTokenEnumType::Central,
    ))
});
#[cfg(feature = "v21")]
v2_commands!(v21, V21, |token: &str| -> Result<
    ocpp_types::v21::IdTokenType,
    CallError,
> {
    Ok(ocpp_types::v21::IdTokenType::new(
        bounded("id token", token)?,
        bounded("id token type", "Central")?,
    ))
});

#[cfg(feature = "v16")]
mod v16 {
    use super::*;
    use ocpp_types::v16 as t;

    pub(super) async fn remote_start(
        h: &ChargerHandle,
        evse: Option<i32>,
        id_token: &str,
    ) -> Result<Answer, CallError> {
        let mut q = t::RemoteStartTransactionRequest::new(bounded("id tag", id_token)?);
        q.connector_id = evse;
        status_call!(h, q)
    }

    pub(super) async fn remote_stop(
        h: &ChargerHandle,
        transaction_id: &str,
    ) -> Result<Answer, CallError> {
        let id: i32 = transaction_id.parse().map_err(|_| {
            CallError::Refused(format!(
                "1.6 transaction ids are 32-bit integers, not {transaction_id:?}"
            ))
        })?;
        let r = h.call(t::RemoteStopTransactionRequest::new(id)).await?;
        Ok(answer(
            r.status.as_str(),
            AnyResponse::from(t::AnyResponse::from(r)),
        ))
    }

    pub(super) async fn reset(h: &ChargerHandle, kind: ResetKind) -> Result<Answer, CallError> {
        let kind = match kind {
            ResetKind::Graceful => t::ResetType::Soft,
            ResetKind::Immediate => t::ResetType::Hard,
        };
        let r = h.call(t::ResetRequest::new(kind)).await?;
        Ok(answer(
            r.status.as_str(),
            AnyResponse::from(t::AnyResponse::from(r)),
        ))
    }

    pub(super) async fn change_availability(
        h: &ChargerHandle,
        evse: Option<i32>,
        operative: bool,
    ) -> Result<Answer, CallError> {
        let kind = if operative {
            t::AvailabilityType::Operative
        } else {
            t::AvailabilityType::Inoperative
        };
        let q = t::ChangeAvailabilityRequest::new(evse.unwrap_or(0), kind);
        status_call!(h, q)
    }

    pub(super) async fn unlock_connector(
        h: &ChargerHandle,
        evse: i32,
    ) -> Result<Answer, CallError> {
        let r = h.call(t::UnlockConnectorRequest::new(evse)).await?;
        Ok(answer(
            r.status.as_str(),
            AnyResponse::from(t::AnyResponse::from(r)),
        ))
    }

    pub(super) async fn trigger_message(
        h: &ChargerHandle,
        message: &str,
        evse: Option<i32>,
    ) -> Result<Answer, CallError> {
        let mut q = t::TriggerMessageRequest::new(word(Version::V16, "trigger", message)?);
        q.connector_id = evse;
        status_call!(h, q)
    }

    pub(super) async fn clear_cache(h: &ChargerHandle) -> Result<Answer, CallError> {
        let r = h.call(t::ClearCacheRequest::new()).await?;
        Ok(answer(
            r.status.as_str(),
            AnyResponse::from(t::AnyResponse::from(r)),
        ))
    }

    pub(super) async fn get_variables(
        h: &ChargerHandle,
        vars: &[VariableRef],
    ) -> Result<Vec<VariableValue>, CallError> {
        let mut q = t::GetConfigurationRequest::new();
        if !vars.is_empty() {
            q.key = Some(
                vars.iter()
                    .map(|v| bounded("key", &v.variable))
                    .collect::<Result<_, _>>()?,
            );
        }
        let r = h.call(q).await?;
        let known = r
            .configuration_key
            .into_iter()
            .flatten()
            .map(|k| VariableValue {
                component: String::new(),
                variable: k.key.as_str().to_owned(),
                value: k.value.map(|v| v.as_str().to_owned()),
                status: "Accepted".to_owned(),
                readonly: Some(k.readonly),
            });
        let unknown = r.unknown_key.into_iter().flatten().map(|k| VariableValue {
            component: String::new(),
            variable: k.as_str().to_owned(),
            value: None,
            status: "UnknownKey".to_owned(),
            readonly: None,
        });
        Ok(known.chain(unknown).collect())
    }

    pub(super) async fn set_variable(
        h: &ChargerHandle,
        var: &VariableRef,
        value: &str,
    ) -> Result<Answer, CallError> {
        let q = t::ChangeConfigurationRequest::new(
            bounded("key", &var.variable)?,
            bounded("value", value)?,
        );
        status_call!(h, q)
    }
}

/// The branch of the charger's version (a version not compiled in: refused).
macro_rules! by_version {
    ($h:expr, $v16:expr, $v201:expr, $v21:expr) => {
        match $h.version() {
            #[cfg(feature = "v16")]
            ::ocpp_types::Version::V16 => $v16,
            #[cfg(feature = "v201")]
            ::ocpp_types::Version::V201 => $v201,
            #[cfg(feature = "v21")]
            ::ocpp_types::Version::V21 => $v21,
            #[allow(unreachable_patterns)]
            other => Err($crate::commands::unsupported(other)),
        }
    };
}
pub(crate) use by_version;

impl ChargerHandle {
    /// Asks the charger to start a transaction for `id_token` on `evse` (any EVSE when
    /// `None`): 1.6 RemoteStartTransaction (`connectorId`, `idTag`), 2.x
    /// RequestStartTransaction (`evseId`, an `idToken` of type `Central`, a `remoteStartId`
    /// unique in this process).
    pub async fn remote_start(
        &self,
        evse: Option<i32>,
        id_token: &str,
    ) -> Result<Answer, CallError> {
        by_version!(
            self,
            v16::remote_start(self, evse, id_token).await,
            v201::remote_start(self, evse, id_token).await,
            v21::remote_start(self, evse, id_token).await
        )
    }

    /// Asks the charger to stop transaction `transaction_id` (1.6: a 32-bit integer).
    pub async fn remote_stop(&self, transaction_id: &str) -> Result<Answer, CallError> {
        by_version!(
            self,
            v16::remote_stop(self, transaction_id).await,
            v201::remote_stop(self, transaction_id).await,
            v21::remote_stop(self, transaction_id).await
        )
    }

    /// Resets the charger (2.x: only `evse` when given; 1.6 resets the whole charger and
    /// refuses an `evse`).
    pub async fn reset(&self, kind: ResetKind, evse: Option<i32>) -> Result<Answer, CallError> {
        by_version!(
            self,
            match evse {
                None => v16::reset(self, kind).await,
                Some(_) => Err(CallError::Refused(
                    "OCPP 1.6 resets the whole charger, not one EVSE".into()
                )),
            },
            v201::reset(self, kind, evse).await,
            v21::reset(self, kind, evse).await
        )
    }

    /// Makes the charger (`evse` `None`), an EVSE, or (2.x) one connector of it operative or
    /// inoperative. 1.6: `connectorId` = `evse` (0 for the charger); `connector` is ignored.
    pub async fn change_availability(
        &self,
        evse: Option<i32>,
        connector: Option<i32>,
        operative: bool,
    ) -> Result<Answer, CallError> {
        let _ = connector;
        by_version!(
            self,
            v16::change_availability(self, evse, operative).await,
            v201::change_availability(self, evse, connector, operative).await,
            v21::change_availability(self, evse, connector, operative).await
        )
    }

    /// Unlocks a connector: 1.6 `connectorId` = `evse`; 2.x `evseId` and `connectorId`
    /// (1 when `None`).
    pub async fn unlock_connector(
        &self,
        evse: i32,
        connector: Option<i32>,
    ) -> Result<Answer, CallError> {
        let _ = connector;
        by_version!(
            self,
            v16::unlock_connector(self, evse).await,
            v201::unlock_connector(self, evse, connector).await,
            v21::unlock_connector(self, evse, connector).await
        )
    }

    /// Asks the charger to send `message` (the version's trigger name: `BootNotification`,
    /// `Heartbeat`, `MeterValues`, `StatusNotification`, ...) now, for `evse` if given.
    pub async fn trigger_message(
        &self,
        message: &str,
        evse: Option<i32>,
    ) -> Result<Answer, CallError> {
        by_version!(
            self,
            v16::trigger_message(self, message, evse).await,
            v201::trigger_message(self, message, evse).await,
            v21::trigger_message(self, message, evse).await
        )
    }

    /// Clears the charger's authorization cache.
    pub async fn clear_cache(&self) -> Result<Answer, CallError> {
        by_version!(
            self,
            v16::clear_cache(self).await,
            v201::clear_cache(self).await,
            v21::clear_cache(self).await
        )
    }

    /// Reads variables: 1.6 GetConfiguration of the variable names (all keys when `vars` is
    /// empty), 2.x GetVariables (at least one needed).
    pub async fn get_variables(
        &self,
        vars: &[VariableRef],
    ) -> Result<Vec<VariableValue>, CallError> {
        by_version!(
            self,
            v16::get_variables(self, vars).await,
            v201::get_variables(self, vars).await,
            v21::get_variables(self, vars).await
        )
    }

    /// Sets one variable: 1.6 ChangeConfiguration (key = the variable name), 2.x
    /// SetVariables (the `Actual` attribute). The answer's status is 1.6's
    /// `ConfigurationStatus` or 2.x's `attributeStatus`.
    pub async fn set_variable(&self, var: &VariableRef, value: &str) -> Result<Answer, CallError> {
        by_version!(
            self,
            v16::set_variable(self, var, value).await,
            v201::set_variable(self, var, value).await,
            v21::set_variable(self, var, value).await
        )
    }
}
