//! The HTTP agent a registry client uses: the TLS roots (the platform's,
//! or only a registry's own CA file) and a timeout on every phase.

use std::path::Path;
use std::time::Duration;

use ureq::Agent;

use super::error::FetchError;

pub fn agent(ca_file: Option<&Path>, timeout: Duration) -> Result<Agent, FetchError> {
    let mut tls =
        ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier);
    if let Some(ca) = ca_file {
        let pem =
            std::fs::read(ca).map_err(|e| FetchError::Invalid(format!("{}: {e}", ca.display())))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(FetchError::Invalid(format!(
                "{}: no certificate in it",
                ca.display()
            )));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    // Each request sets its own global timeout (its Deadline's limit);
    // this one is for any that would not. Connecting, sending the request
    // and receiving the headers each get the timeout even when a blob's
    // body gets far more.
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_per_write(Some(timeout))
        .tls_config(tls.build())
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .into())
}
