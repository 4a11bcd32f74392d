//! HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 7616, RFC 8760), as pure functions.
//! The server side: challenges, the parsing of an Authorization header and its verification
//! against stored HA1 values; passwords reach it only through [`ha1`], which is how credentials
//! are made before they are stored. The client side, for loket's own requests to a trunk:
//! [`Challenge`] reads a WWW-Authenticate or Proxy-Authenticate header and answers it with the
//! trunk's password, through the same hashing.
//!
//! Nonces are stateless: the issue time and an HMAC of it under a per-process secret. Checking one
//! needs no table, so a flood of challenges costs no memory; a nonce older than its lifetime is
//! answered with `stale=true`. The price is that an Authorization captured on the wire can be
//! replayed until its nonce expires (nonce counts are not remembered); the lifetime bounds that.
//!
//! Only `qop=auth` is accepted: every challenge offers it, and without it (RFC 2069) the client's
//! nonce plays no part, which makes precomputed answers possible.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// RFC 8760 §2.4: the strongest first, so that a client taking the first challenge it
    /// understands picks SHA-256 when it can.
    pub const OFFERED: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    /// `None` for the `-sess` variants and anything else loket does not verify.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        [Algorithm::Md5, Algorithm::Sha256].into_iter().find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// `H(username:realm:password)` in lower-case hex: what is stored instead of the password.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{username}:{realm}:{password}"))
}

/// A user's stored HA1 values for the realm, one per algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHa1 {
    pub md5: String,
    pub sha256: String,
}

impl StoredHa1 {
    pub fn from_password(username: &str, realm: &str, password: &str) -> StoredHa1 {
        StoredHa1 {
            md5: ha1(Algorithm::Md5, username, realm, password),
            sha256: ha1(Algorithm::Sha256, username, realm, password),
        }
    }

    fn for_algorithm(&self, algorithm: Algorithm) -> &str {
        match algorithm {
            Algorithm::Md5 => &self.md5,
            Algorithm::Sha256 => &self.sha256,
        }
    }
}

/// The parameters of a `Digest` Authorization header (RFC 7616 §3.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    /// `None`: MD5 (RFC 7616 §3.3).
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("not a Digest authorization")]
    NotDigest,
    #[error("malformed parameter list")]
    Malformed,
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("parameter {0} given twice")]
    Duplicate(&'static str),
    #[error("unsupported {0}")]
    Unsupported(&'static str),
}

/// The longest parameter value accepted; real ones are under 100 characters, and the entry point
/// already bounds the header, so this only keeps one field from carrying the whole message.
const MAX_VALUE: usize = 1_024;

impl Credentials {
    /// Parses an Authorization (or Proxy-Authorization) header value.
    pub fn parse(value: &str) -> Result<Credentials, ParseError> {
        let mut values: [Option<String>; PARAMS.len()] = Default::default();
        for (name, param) in parameters(value)? {
            // opaque, userhash and extensions are not used by loket's challenges.
            if let Some(index) = PARAMS.iter().position(|known| known.eq_ignore_ascii_case(name))
                && values[index].replace(param).is_some()
            {
                return Err(ParseError::Duplicate(PARAMS[index]));
            }
        }
        let [username, realm, nonce, uri, response, algorithm, qop, nc, cnonce] = values;
        let required = |value: Option<String>, index: usize| value.ok_or(ParseError::Missing(PARAMS[index]));
        Ok(Credentials {
            username: required(username, 0)?,
            realm: required(realm, 1)?,
            nonce: required(nonce, 2)?,
            uri: required(uri, 3)?,
            response: required(response, 4)?,
            algorithm,
            qop,
            nc,
            cnonce,
        })
    }
}

/// The parameters loket reads, the five required ones first.
const PARAMS: [&str; 9] = ["username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce"];

/// The parameters (name, value) of a `Digest` header value, in order.
fn parameters(value: &str) -> Result<Vec<(&str, String)>, ParseError> {
    let value = value.trim_start();
    // Folded lines (RFC 3261 §7.3.1) may survive in a value.
    let scheme_len = value.find(|c: char| c.is_ascii_whitespace()).ok_or(ParseError::NotDigest)?;
    if !value[..scheme_len].eq_ignore_ascii_case("Digest") {
        return Err(ParseError::NotDigest);
    }
    let mut parameters = Vec::new();
    let mut rest = &value[scheme_len..];
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            return Ok(parameters);
        }
        let (name, after_name) = rest.split_once('=').ok_or(ParseError::Malformed)?;
        let (param, after_value) = parse_value(after_name.trim_start())?;
        rest = after_value.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if !(rest.is_empty() || rest.starts_with(',')) {
            return Err(ParseError::Malformed);
        }
        parameters.push((name.trim(), param));
    }
}

/// A token or a quoted string (with `\` escapes) at the start of `text`; the rest after it.
fn parse_value(text: &str) -> Result<(String, &str), ParseError> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                '"' => return Ok((value, &quoted[index + 1..])),
                '\\' => value.push(chars.next().ok_or(ParseError::Malformed)?.1),
                c => value.push(c),
            }
            if value.len() > MAX_VALUE {
                return Err(ParseError::Malformed);
            }
        }
        Err(ParseError::Malformed)
    } else {
        let end = text.find([',', ' ', '\t']).unwrap_or(text.len());
        if end == 0 || end > MAX_VALUE {
            return Err(ParseError::Malformed);
        }
        Ok((text[..end].to_owned(), &text[end..]))
    }
}

/// Why credentials were refused; the edge logs it and counts it as a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refused {
    #[error("realm is not ours")]
    WrongRealm,
    #[error("uri does not match the Request-URI")]
    WrongUri,
    #[error("nonce was not issued here")]
    ForeignNonce,
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    #[error("qop=auth with nc and cnonce is required")]
    QopRequired,
    #[error("wrong response (password)")]
    WrongResponse,
}

/// The outcome of [`DigestAuth::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// The response was right for an expired nonce: challenge again with `stale=true`, and do not
    /// count it as a failure (RFC 7616 §3.3: the client knows the password).
    Stale,
    Refused(Refused),
}

/// Issues challenges and verifies answers for one realm.
#[derive(Clone)]
pub struct DigestAuth {
    realm: String,
    secret: [u8; 32],
    nonce_lifetime: Duration,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestAuth")
            .field("realm", &self.realm)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

/// Hex digits of the issue time (seconds, 64 bits) at the start of a nonce.
const NONCE_TIME_LEN: usize = 16;
/// Hex digits of the HMAC that follow: 128 bits are plenty against forgery.
const NONCE_TAG_LEN: usize = 32;

impl DigestAuth {
    /// `secret` is per process (random at start), so a restart invalidates outstanding nonces;
    /// clients then get one more challenge. `algorithms` are offered in this order (normally
    /// [`Algorithm::OFFERED`]) and only they are accepted: some clients (SIPp 3.6, older desk
    /// phones) answer only the first challenge and fail on SHA-256, so the order is configurable.
    pub fn new(
        realm: impl Into<String>,
        secret: [u8; 32],
        nonce_lifetime: Duration,
        algorithms: &[Algorithm],
    ) -> DigestAuth {
        DigestAuth { realm: realm.into(), secret, nonce_lifetime, algorithms: algorithms.to_vec() }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The WWW-Authenticate values of a 401, one per configured algorithm, in order.
    pub fn challenges(&self, now: SystemTime, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        let stale = if stale { ", stale=true" } else { "" };
        self.algorithms
            .iter()
            .map(|algorithm| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    self.realm,
                    algorithm.name()
                )
            })
            .collect()
    }

    fn nonce(&self, now: SystemTime) -> String {
        let issued = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        format!("{issued:016x}{}", self.tag(issued))
    }

    fn tag(&self, issued: u64) -> String {
        // HMAC-SHA256 accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("any key length");
        mac.update(&issued.to_be_bytes());
        mac.update(self.realm.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..NONCE_TAG_LEN / 2])
    }

    /// `Some(expired)` for a nonce issued here, `None` for anything else.
    fn nonce_expired(&self, nonce: &str, now: SystemTime) -> Option<bool> {
        if nonce.len() != NONCE_TIME_LEN + NONCE_TAG_LEN || !nonce.is_ascii() {
            return None;
        }
        let (time, tag) = nonce.split_at(NONCE_TIME_LEN);
        let issued = u64::from_str_radix(time, 16).ok()?;
        if !constant_time_eq(tag.as_bytes(), self.tag(issued).as_bytes()) {
            return None;
        }
        let issued = UNIX_EPOCH + Duration::from_secs(issued);
        Some(now.duration_since(issued).is_ok_and(|age| age > self.nonce_lifetime))
    }

    /// Checks `credentials` sent with a request of `method` to `request_uri` against the user's
    /// stored HA1 values. The caller has looked the user up by `credentials.username`.
    /// `uri_matches` decides whether the digest's `uri` names the Request-URI (RFC 3261 §22.4
    /// leaves the comparison to URI equality, which the caller's URI type knows).
    pub fn verify(
        &self,
        now: SystemTime,
        method: &str,
        credentials: &Credentials,
        stored: &StoredHa1,
        uri_matches: bool,
    ) -> Verdict {
        if credentials.realm != self.realm {
            return Verdict::Refused(Refused::WrongRealm);
        }
        if !uri_matches {
            return Verdict::Refused(Refused::WrongUri);
        }
        let Some(expired) = self.nonce_expired(&credentials.nonce, now) else {
            return Verdict::Refused(Refused::ForeignNonce);
        };
        let algorithm = match credentials.algorithm.as_deref() {
            None => Some(Algorithm::Md5),
            Some(name) => Algorithm::from_name(name),
        };
        let Some(algorithm) = algorithm.filter(|algorithm| self.algorithms.contains(algorithm)) else {
            return Verdict::Refused(Refused::UnsupportedAlgorithm);
        };
        let (Some("auth"), Some(nc), Some(cnonce)) =
            (credentials.qop.as_deref(), credentials.nc.as_deref(), credentials.cnonce.as_deref())
        else {
            return Verdict::Refused(Refused::QopRequired);
        };
        if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) || cnonce.is_empty() {
            return Verdict::Refused(Refused::QopRequired);
        }
        let answer = Answer { nonce: &credentials.nonce, nc, cnonce, method, uri: &credentials.uri };
        let expected = answer.response(algorithm, stored.for_algorithm(algorithm));
        if !constant_time_eq(expected.as_bytes(), credentials.response.to_ascii_lowercase().as_bytes()) {
            Verdict::Refused(Refused::WrongResponse)
        } else if expired {
            Verdict::Stale
        } else {
            Verdict::Valid
        }
    }
}

/// What a `qop=auth` response digests besides HA1 (RFC 7616 §3.4.1).
pub(crate) struct Answer<'a> {
    pub nonce: &'a str,
    pub nc: &'a str,
    pub cnonce: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
}

impl Answer<'_> {
    pub(crate) fn response(&self, algorithm: Algorithm, ha1: &str) -> String {
        let ha2 = ha2(algorithm, self.method, self.uri);
        algorithm.hash(&format!("{ha1}:{}:{}:{}:auth:{ha2}", self.nonce, self.nc, self.cnonce))
    }
}

fn ha2(algorithm: Algorithm, method: &str, uri: &str) -> String {
    algorithm.hash(&format!("{method}:{uri}"))
}

/// A `Digest` challenge of a 401's WWW-Authenticate or a 407's Proxy-Authenticate (RFC 7616
/// §3.3), as the client answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: Algorithm,
    /// The server offers `qop=auth`; without any qop the response is RFC 2069's, with neither
    /// nonce count nor client nonce.
    pub qop: bool,
    /// Echoed unchanged in the answer.
    pub opaque: Option<String>,
    /// The server refused an answer only because its nonce had expired.
    pub stale: bool,
}

impl Challenge {
    /// Parses a WWW-Authenticate or Proxy-Authenticate value. A challenge loket cannot answer is
    /// [`ParseError::Unsupported`]: an algorithm other than MD5 and SHA-256 (the `-sess`
    /// variants, SHA-512-256), or a qop list without `auth` (`auth-int` alone).
    pub fn parse(value: &str) -> Result<Challenge, ParseError> {
        let (mut realm, mut nonce, mut algorithm, mut qop, mut opaque, mut stale) =
            (None, None, Algorithm::Md5, None, None, false);
        for (name, param) in parameters(value)? {
            // Values go back into loket's own header lines.
            if param.chars().any(char::is_control) {
                return Err(ParseError::Malformed);
            }
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(param),
                "nonce" => nonce = Some(param),
                "algorithm" => algorithm = Algorithm::from_name(&param).ok_or(ParseError::Unsupported("algorithm"))?,
                "qop" => qop = Some(param),
                "opaque" => opaque = Some(param),
                "stale" => stale = param.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        let qop = match qop {
            Some(options) if options.split(',').any(|option| option.trim().eq_ignore_ascii_case("auth")) => true,
            Some(_) => return Err(ParseError::Unsupported("qop")),
            None => false,
        };
        Ok(Challenge {
            realm: realm.ok_or(ParseError::Missing("realm"))?,
            nonce: nonce.ok_or(ParseError::Missing("nonce"))?,
            algorithm,
            qop,
            opaque,
            stale,
        })
    }

    /// The Authorization (or Proxy-Authorization) value that answers this challenge for a
    /// request of `method` to `uri`: the `nc`-th use of its nonce, with `cnonce`, which the
    /// caller draws at random for each answer (RFC 7616 §3.4).
    pub fn answer(&self, username: &str, password: &str, method: &str, uri: &str, cnonce: &str, nc: u32) -> String {
        let ha1 = ha1(self.algorithm, username, &self.realm, password);
        let mut value = format!(
            "Digest username={}, realm={}, nonce={}, uri={}",
            quoted(username),
            quoted(&self.realm),
            quoted(&self.nonce),
            quoted(uri)
        );
        if self.qop {
            let nc = format!("{nc:08x}");
            let answer = Answer { nonce: &self.nonce, nc: &nc, cnonce, method, uri };
            let response = answer.response(self.algorithm, &ha1);
            let _ = write!(value, ", response=\"{response}\", algorithm={}", self.algorithm.name());
            let _ = write!(value, ", qop=auth, nc={nc}, cnonce={}", quoted(cnonce));
        } else {
            let response = self.algorithm.hash(&format!("{ha1}:{}:{}", self.nonce, ha2(self.algorithm, method, uri)));
            let _ = write!(value, ", response=\"{response}\", algorithm={}", self.algorithm.name());
        }
        if let Some(opaque) = &self.opaque {
            let _ = write!(value, ", opaque={}", quoted(opaque));
        }
        value
    }
}

/// A quoted-string (RFC 7230 §3.2.6): `"` and `\` escaped.
fn quoted(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Compares without an early exit, so the time taken says nothing about how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
