//! Just enough X.509, read from the DER, for the two places smq looks inside a certificate: the
//! client says which certificate a TLS error is about (`describe`: its version, subject and
//! issuer, whether it is a CA, the host names it lists; rustls rejects a version 1 certificate
//! before it reads any of this), and the broker takes the subject common name of a client's
//! certificate for mosquitto's `use_identity_as_username` (`subject_cn`). No X.509 parser is
//! among the dependencies. Anything unexpected gives `None`, never a panic.

/// What an error message says about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// 1, 2 or 3.
    pub version: u8,
    /// `CN=name`, else the organisation, else `an unnamed certificate`.
    pub subject: String,
    pub issuer: String,
    /// Issuer and subject are the same name: a self-signed certificate, or a root CA.
    pub self_issued: bool,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// subjectAltName DNS names and IP addresses, as written.
    pub names: Vec<String>,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const VERSION: u8 = 0xA0;
const EXTENSIONS: u8 = 0xA3;
const BOOLEAN: u8 = 0x01;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0A];
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11];
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;

pub fn describe(der: &[u8]) -> Option<Described> {
    let mut cert = Der(der).expect(SEQUENCE)?;
    let mut tbs = cert.expect(SEQUENCE)?;
    let version = if tbs.peek() == Some(VERSION) {
        let v = tbs.expect(VERSION)?.expect(0x02)?.0;
        *v.last()? + 1
    } else {
        1
    };
    tbs.any()?; // serial number
    tbs.expect(SEQUENCE)?; // signature algorithm
    let issuer = tbs.expect(SEQUENCE)?;
    tbs.expect(SEQUENCE)?; // validity
    let subject = tbs.expect(SEQUENCE)?;
    let mut is_ca = false;
    let mut names = Vec::new();
    while let Some((tag, value)) = tbs.any() {
        if tag == EXTENSIONS {
            read_extensions(Der(value).expect(SEQUENCE)?, &mut is_ca, &mut names)?;
        }
    }
    Some(Described {
        version,
        subject: name(subject),
        issuer: name(issuer),
        self_issued: issuer.0 == subject.0,
        is_ca,
        names,
    })
}

/// The first common name (OID 2.5.4.3) of a certificate's subject: Certificate →
/// tbsCertificate → [version], serial, signature, issuer, validity, subject → RDN sets →
/// (type, value).
pub fn subject_cn(cert: &[u8]) -> Option<String> {
    let mut tbs = Der(cert).expect(SEQUENCE)?.expect(SEQUENCE)?;
    let mut field = 0;
    let subject = loop {
        let (tag, content) = tbs.any()?;
        // The version is an optional [0] EXPLICIT field before the serial number.
        if tag == VERSION {
            continue;
        }
        if field == 4 {
            break content;
        }
        field += 1;
    };
    let mut rdns = Der(subject);
    while !rdns.is_empty() {
        let mut set = rdns.expect(SET)?;
        while !set.is_empty() {
            let (_, attribute) = set.any()?;
            let mut attribute = Der(attribute);
            let (tag, oid) = attribute.any()?;
            if tag == OID && oid == COMMON_NAME {
                let (tag, value) = attribute.any()?;
                return der_string(tag, value);
            }
        }
    }
    None
}

fn der_string(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String
        0x0C | 0x13 | 0x16 => String::from_utf8(value.to_vec()).ok(),
        // BMPString: UTF-16 big-endian
        0x1E if value.len() % 2 == 0 => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // TeletexString: in practice Latin-1
        0x14 => Some(value.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

fn read_extensions(mut list: Der<'_>, is_ca: &mut bool, names: &mut Vec<String>) -> Option<()> {
    while let Some(mut ext) = list.expect(SEQUENCE) {
        let id = ext.expect(OID)?.0;
        if ext.peek() == Some(BOOLEAN) {
            ext.any()?; // critical
        }
        let mut value = Der(ext.expect(OCTET_STRING)?.0);
        if id == BASIC_CONSTRAINTS {
            let mut constraints = value.expect(SEQUENCE)?;
            if constraints.peek() == Some(BOOLEAN) {
                *is_ca = constraints.expect(BOOLEAN)?.0 != [0];
            }
        } else if id == SUBJECT_ALT_NAME {
            let mut general = value.expect(SEQUENCE)?;
            while let Some((tag, v)) = general.any() {
                match (tag, v.len()) {
                    (DNS_NAME, _) => names.push(String::from_utf8_lossy(v).into_owned()),
                    (IP_ADDRESS, 4) => names.push(format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3])),
                    (IP_ADDRESS, 16) => {
                        let octets: [u8; 16] = v.try_into().ok()?;
                        names.push(std::net::Ipv6Addr::from(octets).to_string());
                    }
                    _ => {}
                }
            }
        }
    }
    Some(())
}

/// `CN=…` if the name has one, else `O=…`.
fn name(dn: Der<'_>) -> String {
    let mut found = (None, None);
    let mut rdns = dn;
    while let Some((_, set)) = rdns.any() {
        let mut set = Der(set);
        while let Some(mut attr) = set.expect(SEQUENCE) {
            let (Some(id), Some((_, value))) = (attr.expect(OID), attr.any()) else {
                continue;
            };
            let value = String::from_utf8_lossy(value).into_owned();
            if id.0 == COMMON_NAME {
                found.0.get_or_insert(value);
            } else if id.0 == ORGANIZATION {
                found.1.get_or_insert(value);
            }
        }
    }
    match found {
        (Some(cn), _) => format!("CN={cn}"),
        (None, Some(o)) => format!("O={o}"),
        (None, None) => "an unnamed certificate".into(),
    }
}

/// A DER reader over the contents of one constructed value.
#[derive(Clone, Copy)]
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next value: its tag and contents.
    fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7F);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        self.0 = rest;
        Some((tag, value))
    }

    /// The next value if it has `tag`, as a reader over its contents.
    fn expect(&mut self, tag: u8) -> Option<Der<'a>> {
        match self.any()? {
            (t, value) if t == tag => Some(Der(value)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn reads_a_v3_ca_and_a_leaf() {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::default();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "smq unit CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let got = describe(&der(&ca_cert.pem())).unwrap();
        assert_eq!((got.version, got.is_ca, got.self_issued), (3, true, true));
        assert_eq!(got.subject, "CN=smq unit CA");

        let key = rcgen::KeyPair::generate().unwrap();
        let mut leaf =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        leaf.distinguished_name = rcgen::DistinguishedName::new();
        leaf.distinguished_name
            .push(rcgen::DnType::OrganizationName, "smq");
        let leaf = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
        let got = describe(&der(&leaf.pem())).unwrap();
        assert_eq!(
            got,
            Described {
                version: 3,
                subject: "O=smq".into(),
                issuer: "CN=smq unit CA".into(),
                self_issued: false,
                is_ca: false,
                names: vec!["localhost".into(), "127.0.0.1".into()],
            }
        );
    }

    #[test]
    fn reads_a_v1_certificate() {
        // `openssl x509 -req -signkey` without -extfile: version 1, no extensions.
        let v1 = "-----BEGIN CERTIFICATE-----
MIIBGjCBwQIUOQC2CCgtrQPbLU0uG8BZVq9LUv0wCgYIKoZIzj0EAwIwEDEOMAwG
A1UEAwwFdjEgQ0EwHhcNMjYxMjA0MTkxMzIyWhcNMzYxMjAxMTkxMzIyWjAQMQ4w
DAYDVQQDDAV2MSBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABDApFmQBTNvo
+dqfLnLtSRq9Hre5A684gGBq/xk6YDRoY/Isa+183KxEQ7IOsVPrN5R1m3aktHrf
lNo3atdcURIwCgYIKoZIzj0EAwIDSAAwRQIhALuIXK99OMZL50X4tyVoUuipkjbh
IL7NKtQHbjv1w4b1AiBoMHUCDEbRJS7Liyv913tzp+sRk4tJXLb3nXfs3xIJTw==
-----END CERTIFICATE-----";
        let got = describe(&der(v1)).unwrap();
        assert_eq!((got.version, got.is_ca, got.self_issued), (1, false, true));
        assert_eq!(got.subject, "CN=v1 CA");
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(describe(b""), None);
        assert_eq!(describe(&[0x30, 0x83, 1]), None);
        assert_eq!(describe(&[0x30, 0x02, 0x30, 0x00]), None);
    }

    #[test]
    fn reads_the_subject_common_name() {
        // Signed by a CA with a name of its own: the issuer's CN comes first in the DER.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::default();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "listener test CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut client = rcgen::CertificateParams::new(Vec::new()).unwrap();
        client.distinguished_name = rcgen::DistinguishedName::new();
        client
            .distinguished_name
            .push(rcgen::DnType::CommonName, "phone-1 ünïcode");
        let client = client.signed_by(&key, &ca_cert, &ca_key).unwrap();
        let client_der = der(&client.pem());
        assert_eq!(subject_cn(&client_der).as_deref(), Some("phone-1 ünïcode"));
        let mut params = rcgen::CertificateParams::new(vec!["x".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "no CN here");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(subject_cn(cert.der()), None);
        for garbage in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x02\x01\x00",
        ] {
            assert_eq!(subject_cn(garbage), None);
        }
        for cut in 0..client_der.len() {
            // Never a panic on a truncated certificate.
            let _ = subject_cn(&client_der[..cut]);
        }
    }
}
