//! The caller's identity from its client certificate: the first SPIFFE
//! URI among its subject alternative names, else its first DNS name, else
//! its subject's common name.

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The identity a client certificate presents, if any can be read.
pub fn of_certificate(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let names: Vec<GeneralName<'_>> = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| san.value.general_names.clone())
        .unwrap_or_default();
    let uri = names.iter().find_map(|n| match n {
        GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(uri.to_string()),
        _ => None,
    });
    let dns = || {
        names.iter().find_map(|n| match n {
            GeneralName::DNSName(name) => Some(name.to_string()),
            _ => None,
        })
    };
    let common_name = || {
        parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string)
    };
    uri.or_else(dns).or_else(common_name)
}

/// The identity of the caller of `request`: its client certificate's.
pub fn of_request<T>(request: &tonic::Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    certs.first().and_then(of_certificate)
}
