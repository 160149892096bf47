//! Without the feature `certificates`: the certificate messages get the refusal their
//! responses define ([`crate::app::refusal`]).

pub(crate) mod station {
    use std::time::Instant;

    use crate::app::{refusal, CallError, Context};
    use crate::station::{Station, StationEvent};

    pub(crate) fn on_sign_answer(station: &mut Station, status: &str) {
        station
            .events
            .push_back(StationEvent::SignCertificateAnswered {
                status: status.to_owned(),
            });
    }

    pub(crate) fn triggered_sign(station: &mut Station, now: Instant) {
        let _ = now;
        on_sign_answer(station, "NotSent: the feature certificates is off");
    }

    macro_rules! refused {
        ($($name:ident: $v:ident $Action:ident $Req:ident $Resp:ident;)*) => {
            $(
                pub(crate) fn $name(
                    ctx: &mut Context<'_>,
                    request: ocpp_types::$v::$Req,
                ) -> Result<ocpp_types::$v::$Resp, CallError> {
                    let _ = (ctx, request);
                    refusal(stringify!($Action))
                }
            )*
        };
    }

    refused! {
        install_certificate_v16: v16 InstallCertificate InstallCertificateRequest InstallCertificateResponse;
        install_certificate_v201: v201 InstallCertificate InstallCertificateRequest InstallCertificateResponse;
        install_certificate_v21: v21 InstallCertificate InstallCertificateRequest InstallCertificateResponse;
        get_installed_certificate_ids_v16: v16 GetInstalledCertificateIds GetInstalledCertificateIdsRequest GetInstalledCertificateIdsResponse;
        get_installed_certificate_ids_v201: v201 GetInstalledCertificateIds GetInstalledCertificateIdsRequest GetInstalledCertificateIdsResponse;
        get_installed_certificate_ids_v21: v21 GetInstalledCertificateIds GetInstalledCertificateIdsRequest GetInstalledCertificateIdsResponse;
        delete_certificate_v16: v16 DeleteCertificate DeleteCertificateRequest DeleteCertificateResponse;
        delete_certificate_v201: v201 DeleteCertificate DeleteCertificateRequest DeleteCertificateResponse;
        delete_certificate_v21: v21 DeleteCertificate DeleteCertificateRequest DeleteCertificateResponse;
        certificate_signed_v16: v16 CertificateSigned CertificateSignedRequest CertificateSignedResponse;
        certificate_signed_v201: v201 CertificateSigned CertificateSignedRequest CertificateSignedResponse;
        certificate_signed_v21: v21 CertificateSigned CertificateSignedRequest CertificateSignedResponse;
    }
}
