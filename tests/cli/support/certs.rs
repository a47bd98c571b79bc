//! Certificates made at test time with rcgen (ring, EC P-256), so no key material is committed
//! and nothing expires in the repository.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, date_time_ymd,
};
use tempfile::TempDir;

/// PEM files in a temp dir that lives as long as this value:
///
/// | file | what |
/// |---|---|
/// | `ca.pem` | the test CA that signed everything below |
/// | `server.pem`, `server.key` | server cert for DNS `localhost` and IP `127.0.0.1` |
/// | `client.pem`, `client.key` | client cert (extended key usage clientAuth) |
/// | `expired.pem`, `expired.key` | like `server.pem`, valid only during 2020 |
/// | `wrong-name.pem`, `wrong-name.key` | server cert for DNS `example.invalid` only |
/// | `other-ca.pem` | an unrelated CA that signed none of these |
pub struct Certs {
    dir: TempDir,
}

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Certs {
    pub fn generate() -> Certs {
        let dir = tempfile::Builder::new()
            .prefix("smq-certs-")
            .tempdir()
            .expect("creating a temp dir for test certificates");
        let certs = Certs { dir };

        let ca = new_ca("smq test CA");
        certs.write("ca.pem", &ca.cert.pem());
        certs.write("other-ca.pem", &new_ca("smq unrelated CA").cert.pem());

        let server_names = ["localhost", "127.0.0.1"];
        let server = ExtendedKeyUsagePurpose::ServerAuth;
        let client = ExtendedKeyUsagePurpose::ClientAuth;
        certs.leaf("server", &ca, &server_names, server.clone(), |_| {});
        certs.leaf("client", &ca, &[], client, |_| {});
        certs.leaf("expired", &ca, &server_names, server.clone(), |p| {
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2021, 1, 1);
        });
        certs.leaf("wrong-name", &ca, &["example.invalid"], server, |_| {});
        certs
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Any file above by name, e.g. `certs.path("ca.pem")`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }
    pub fn other_ca(&self) -> PathBuf {
        self.path("other-ca.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.path("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.path("server.key")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.path("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.path("client.key")
    }
    pub fn expired_cert(&self) -> PathBuf {
        self.path("expired.pem")
    }
    pub fn expired_key(&self) -> PathBuf {
        self.path("expired.key")
    }
    pub fn wrong_name_cert(&self) -> PathBuf {
        self.path("wrong-name.pem")
    }
    pub fn wrong_name_key(&self) -> PathBuf {
        self.path("wrong-name.key")
    }

    /// Writes `NAME.pem` and `NAME.key`: a cert signed by `ca` for `sans`.
    fn leaf(
        &self,
        name: &str,
        ca: &Ca,
        sans: &[&str],
        usage: ExtendedKeyUsagePurpose,
        adjust: impl FnOnce(&mut CertificateParams),
    ) {
        let sans: Vec<String> = sans.iter().map(ToString::to_string).collect();
        let mut params = CertificateParams::new(sans).expect("valid SAN list");
        params.distinguished_name = common_name(&format!("smq test {name}"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        adjust(&mut params);
        let key = new_key();
        let cert = params
            .signed_by(&key, &ca.cert, &ca.key)
            .expect("signing a test certificate");
        self.write(&format!("{name}.pem"), &cert.pem());
        self.write(&format!("{name}.key"), &key.serialize_pem());
    }

    fn write(&self, name: &str, pem: &str) {
        let path = self.path(name);
        fs::write(&path, pem).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = new_key();
    let cert = params.self_signed(&key).expect("self-signing a test CA");
    Ca { cert, key }
}

fn new_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("generating an EC P-256 key")
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}
