//! A throw-away certificate authority for TLS tests and benchmarks: a CA,
//! a server certificate for `127.0.0.1`/`localhost`, and a client
//! certificate, as PEM files in a temporary directory.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// PEM files of one CA and the certificates it signed.
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as files.
pub struct CertFiles {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8).
    pub key: PathBuf,
}

impl TestPki {
    /// Generates the CA, the server certificate and the client certificate.
    pub fn generate() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "cutover test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        std::fs::write(dir.path().join("ca.pem"), ca.pem())?;

        let leaves = [
            (
                "server",
                vec!["127.0.0.1".to_string(), "localhost".to_string()],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            ("client", vec![], ExtendedKeyUsagePurpose::ClientAuth),
        ];
        for (name, names, usage) in leaves {
            let mut params = CertificateParams::new(names)?;
            params
                .distinguished_name
                .push(DnType::CommonName, format!("cutover test {name}"));
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &ca)?;
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem())?;
            std::fs::write(
                dir.path().join(format!("{name}-key.pem")),
                key.serialize_pem(),
            )?;
        }
        Ok(TestPki { dir, ca })
    }

    /// Copies the CA, server and client files into `dir` (created if
    /// missing): `ca.pem`, `server.pem`, `server-key.pem`, `client.pem`,
    /// `client-key.pem`.
    pub fn write_to(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for name in [
            "ca.pem",
            "server.pem",
            "server-key.pem",
            "client.pem",
            "client-key.pem",
        ] {
            std::fs::copy(self.dir.path().join(name), dir.join(name))?;
        }
        Ok(())
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate (for `127.0.0.1` and `localhost`).
    pub fn server(&self) -> CertFiles {
        self.files("server")
    }

    /// The client's certificate.
    pub fn client(&self) -> CertFiles {
        self.files("client")
    }

    /// A client certificate `name` whose identity is the SPIFFE URI `uri`
    /// (its only subject alternative name).
    pub fn client_with_uri(&self, name: &str, uri: &str) -> anyhow::Result<CertFiles> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("cutover test {name}"));
        params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        std::fs::write(self.dir.path().join(format!("{name}.pem")), cert.pem())?;
        std::fs::write(
            self.dir.path().join(format!("{name}-key.pem")),
            key.serialize_pem(),
        )?;
        Ok(self.files(name))
    }

    /// A client certificate of this CA that expired (valid through 2020
    /// only).
    pub fn expired_client(&self) -> anyhow::Result<CertFiles> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "cutover test expired client");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        std::fs::write(self.dir.path().join("expired.pem"), cert.pem())?;
        std::fs::write(self.dir.path().join("expired-key.pem"), key.serialize_pem())?;
        Ok(self.files("expired"))
    }

    fn files(&self, name: &str) -> CertFiles {
        CertFiles {
            cert: self.dir.path().join(format!("{name}.pem")),
            key: self.dir.path().join(format!("{name}-key.pem")),
        }
    }
}
