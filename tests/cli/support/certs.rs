//! Certificates made at test time with rcgen (ring, EC P-256), so no key material is committed
//! and nothing expires in the repository.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, date_time_ymd,
};
use tempfile::TempDir;

/// PEM files in a temp dir that lives as long as this value:
///
/// | file | what |
/// |---|---|
/// | `ca.pem`, `ca.key` | the test CA that signed everything below |
/// | `server.pem`, `server.key` | server cert for DNS `localhost` and IP `127.0.0.1` |
/// | `client.pem`, `client.key` | client cert (extended key usage clientAuth) |
/// | `expired.pem`, `expired.key` | like `server.pem`, valid only during 2020 |
/// | `not-yet.pem`, `not-yet.key` | like `server.pem`, valid from 2100 |
/// | `wrong-name.pem`, `wrong-name.key` | server cert for DNS `example.invalid` only |
/// | `no-name.pem`, `no-name.key` | server cert with a CN but no subjectAltName |
/// | `self-ca.pem`, `self-ca.key` | a self-signed CA cert for `localhost` and `127.0.0.1`, used as a server's |
/// | `other-ca.pem` | an unrelated CA that signed none of the above |
/// | `other-client.pem`, `other-client.key` | client cert signed by `other-ca.pem` |
///
/// [`Certs::openssl`] adds what rcgen cannot make.
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
        certs.write("ca.key", &ca.key.serialize_pem());
        let other_ca = new_ca("smq unrelated CA");
        certs.write("other-ca.pem", &other_ca.cert.pem());

        let server_names = ["localhost", "127.0.0.1"];
        let server = ExtendedKeyUsagePurpose::ServerAuth;
        let client = ExtendedKeyUsagePurpose::ClientAuth;
        certs.leaf("server", &ca, &server_names, server.clone(), |_| {});
        certs.leaf("client", &ca, &[], client.clone(), |_| {});
        certs.leaf("other-client", &other_ca, &[], client, |_| {});
        certs.leaf("expired", &ca, &server_names, server.clone(), |p| {
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2021, 1, 1);
        });
        certs.leaf("not-yet", &ca, &server_names, server.clone(), |p| {
            p.not_before = date_time_ymd(2100, 1, 1);
            p.not_after = date_time_ymd(2101, 1, 1);
        });
        certs.leaf(
            "wrong-name",
            &ca,
            &["example.invalid"],
            server.clone(),
            |_| {},
        );
        certs.leaf("no-name", &ca, &[], server, |_| {});

        let mut params = CertificateParams::new(server_names.map(String::from).to_vec())
            .expect("valid SAN list");
        params.distinguished_name = common_name("localhost");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = new_key();
        let cert = params
            .self_signed(&key)
            .expect("self-signing a CA for a server");
        certs.write("self-ca.pem", &cert.pem());
        certs.write("self-ca.key", &key.serialize_pem());
        certs
    }

    /// With the openssl command, what rcgen cannot make:
    ///
    /// | file | what |
    /// |---|---|
    /// | `v1-server.pem` | X.509 version 1 cert for CN `localhost`, key `server.key`, signed by `ca.pem` |
    /// | `v1-self.pem` | X.509 version 1 self-signed cert for CN `localhost`, key `server.key` |
    /// | `v1-root-chain.pem` | `server.pem`'s twin signed by `v1-ca.pem`, then that CA: X.509 version 1, self-signed, CN `smq v1 CA` |
    /// | `v1-chain.pem` | `server.pem`'s twin signed by `v1-intermediate.pem`, then that intermediate: X.509 version 1, CN `smq v1 intermediate`, signed by `ca.pem` |
    /// | `client-encrypted.key` | `client.key` as PKCS#8, encrypted with AES-256 and the password `secret` |
    /// | `client-legacy.key` | `client.key` in OpenSSL's old encrypted PEM (Proc-Type: 4,ENCRYPTED), password `secret` |
    ///
    /// False, after saying so on stderr, if there is no openssl on the PATH: the caller skips
    /// its test. CI installs openssl (.ci/run).
    pub fn openssl(&self) -> bool {
        let found = Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            // Straight to stderr, which the test harness does not capture: a skip shows.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: no `openssl` command on the PATH (apt-get install openssl)"
            );
            return false;
        }
        let dir = self.dir();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .expect("running openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "v1.csr",
        ]);
        // No -extfile: openssl writes version 1.
        let v1 = [
            "x509",
            "-req",
            "-in",
            "v1.csr",
            "-days",
            "30",
            "-set_serial",
            "7",
        ];
        run(&[
            &v1[..],
            &["-CA", "ca.pem", "-CAkey", "ca.key", "-out", "v1-server.pem"],
        ]
        .concat());
        run(&[&v1[..], &["-signkey", "server.key", "-out", "v1-self.pem"]].concat());
        run(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "v1-intermediate.key",
            "-subj",
            "/CN=smq v1 intermediate",
            "-out",
            "v1-intermediate.csr",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "v1-intermediate.csr",
            "-days",
            "30",
            "-set_serial",
            "8",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-out",
            "v1-intermediate.pem",
        ]);
        fs::write(
            dir.join("v3.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("writing an openssl extension file");
        run(&[
            "x509",
            "-req",
            "-in",
            "v1.csr",
            "-days",
            "30",
            "-set_serial",
            "9",
            "-CA",
            "v1-intermediate.pem",
            "-CAkey",
            "v1-intermediate.key",
            "-extfile",
            "v3.ext",
            "-out",
            "v3-by-v1.pem",
        ]);
        self.write(
            "v1-chain.pem",
            &self.concat(&["v3-by-v1.pem", "v1-intermediate.pem"]),
        );
        run(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "v1-ca.key",
            "-subj",
            "/CN=smq v1 CA",
            "-out",
            "v1-ca.csr",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "v1-ca.csr",
            "-days",
            "30",
            "-signkey",
            "v1-ca.key",
            "-out",
            "v1-ca.pem",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "v1.csr",
            "-days",
            "30",
            "-set_serial",
            "10",
            "-CA",
            "v1-ca.pem",
            "-CAkey",
            "v1-ca.key",
            "-extfile",
            "v3.ext",
            "-out",
            "v3-by-v1-ca.pem",
        ]);
        self.write(
            "v1-root-chain.pem",
            &self.concat(&["v3-by-v1-ca.pem", "v1-ca.pem"]),
        );
        for file in [
            "v1-server.pem",
            "v1-self.pem",
            "v1-intermediate.pem",
            "v1-ca.pem",
        ] {
            let text = Command::new("openssl")
                .args(["x509", "-noout", "-text", "-in", file])
                .current_dir(dir)
                .output()
                .expect("running openssl x509 -text");
            assert!(
                String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
                "this openssl did not make {file} version 1"
            );
        }
        run(&[
            "pkey",
            "-in",
            "client.key",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "client-encrypted.key",
        ]);
        // OpenSSL's old PEM encryption: `BEGIN EC PRIVATE KEY` with Proc-Type and DEK-Info.
        run(&[
            "ec",
            "-in",
            "client.key",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "client-legacy.key",
        ]);
        true
    }

    /// Certificates another program wrote into `dir` under the same names (`smq certs`).
    pub fn from_dir(dir: TempDir) -> Certs {
        Certs { dir }
    }

    /// The mosquitto-tls(7) recipe, as a new user follows it, in `recipe/` (RSA keys; every
    /// passphrase is `secret`):
    ///
    /// | file | what |
    /// |---|---|
    /// | `ca.pem`, `ca.key` | `openssl req -new -x509` CA (version 3); its key from `genrsa -des3` |
    /// | `server.crt`, `server.key` | `openssl x509 -req` without `-extfile`: X.509 version 1, CN `localhost` |
    /// | `client.crt`, `client.key` | the same for a client, CN `recipe client`; the key from `genrsa -des3`, encrypted |
    ///
    /// Needs the openssl command: call after [`Certs::openssl`] said it is there.
    pub fn mosquitto_recipe(&self) -> PathBuf {
        let dir = self.path("recipe");
        fs::create_dir_all(&dir).expect("creating recipe/");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .output()
                .expect("running openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let pass = ["-passout", "pass:secret"];
        let ca = [
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-passin",
            "pass:secret",
        ];
        run(&[&["genrsa", "-des3", "-out", "ca.key"][..], &pass, &["2048"]].concat());
        run(&[
            "req",
            "-new",
            "-x509",
            "-days",
            "1826",
            "-key",
            "ca.key",
            "-passin",
            "pass:secret",
            "-subj",
            "/CN=recipe CA",
            "-out",
            "ca.pem",
        ]);
        run(&["genrsa", "-out", "server.key", "2048"]);
        run(&[
            "req",
            "-out",
            "server.csr",
            "-key",
            "server.key",
            "-new",
            "-subj",
            "/CN=localhost",
        ]);
        run(&[
            &["x509", "-req", "-in", "server.csr"][..],
            &ca,
            &["-CAcreateserial", "-out", "server.crt", "-days", "360"],
        ]
        .concat());
        run(&[
            &["genrsa", "-des3", "-out", "client.key"][..],
            &pass,
            &["2048"],
        ]
        .concat());
        run(&[
            "req",
            "-out",
            "client.csr",
            "-key",
            "client.key",
            "-passin",
            "pass:secret",
            "-new",
            "-subj",
            "/CN=recipe client",
        ]);
        run(&[
            &["x509", "-req", "-in", "client.csr"][..],
            &ca,
            &["-CAcreateserial", "-out", "client.crt", "-days", "360"],
        ]
        .concat());
        dir
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

    fn concat(&self, names: &[&str]) -> String {
        names
            .iter()
            .map(|n| {
                let path = self.path(n);
                fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
            })
            .collect()
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
