use super::*;

const REALM: &str = "loket.test";
const SECRET: [u8; 32] = [7; 32];

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn auth() -> DigestAuth {
    DigestAuth::new(REALM, SECRET, Duration::from_secs(300), &Algorithm::OFFERED)
}

fn nonce_of(challenge: &str) -> String {
    let start = challenge.find("nonce=\"").unwrap() + 7;
    challenge[start..start + challenge[start..].find('"').unwrap()].to_owned()
}

/// What a client that knows `password` sends, answering a challenge issued at `issued`.
fn answer(algorithm: Algorithm, password: &str, issued: u64) -> Credentials {
    let nonce = nonce_of(&auth().challenges(at(issued), false)[0]);
    let ha1 = ha1(algorithm, "agent", REALM, password);
    let answer =
        Answer { nonce: &nonce, nc: "00000001", cnonce: "0a4f113b", method: "REGISTER", uri: "sip:loket.test" };
    Credentials {
        username: "agent".into(),
        realm: REALM.into(),
        response: answer.response(algorithm, &ha1),
        nonce,
        uri: "sip:loket.test".into(),
        algorithm: Some(algorithm.name().into()),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some("0a4f113b".into()),
    }
}

fn stored() -> StoredHa1 {
    StoredHa1::from_password("agent", REALM, "secret")
}

#[test]
fn rfc_2617_md5_vector() {
    // RFC 2617 §3.5.
    let ha1 = ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
    let answer = Answer {
        nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        nc: "00000001",
        cnonce: "0a4f113b",
        method: "GET",
        uri: "/dir/index.html",
    };
    assert_eq!(answer.response(Algorithm::Md5, &ha1), "6629fae49393a05397450978507c4ef1");
}

#[test]
fn rfc_7616_md5_and_sha256_vectors() {
    // RFC 7616 §3.9.1.
    let answer = Answer {
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        nc: "00000001",
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        method: "GET",
        uri: "/dir/index.html",
    };
    let md5 = ha1(Algorithm::Md5, "Mufasa", "http-auth@example.org", "Circle of Life");
    assert_eq!(answer.response(Algorithm::Md5, &md5), "8ca523f5e9506fed4657c9700eebdbec");
    let sha256 = ha1(Algorithm::Sha256, "Mufasa", "http-auth@example.org", "Circle of Life");
    assert_eq!(
        answer.response(Algorithm::Sha256, &sha256),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn challenges_offer_sha256_first_then_md5_with_one_nonce() {
    let challenges = auth().challenges(at(1_000), false);
    assert_eq!(challenges.len(), 2);
    assert!(challenges[0].contains("algorithm=SHA-256"), "{}", challenges[0]);
    assert!(challenges[1].contains("algorithm=MD5"), "{}", challenges[1]);
    for challenge in &challenges {
        assert!(challenge.starts_with("Digest realm=\"loket.test\", nonce=\""), "{challenge}");
        assert!(challenge.contains("qop=\"auth\"") && !challenge.contains("stale"), "{challenge}");
    }
    assert_eq!(nonce_of(&challenges[0]), nonce_of(&challenges[1]));
    assert!(auth().challenges(at(1_000), true)[0].ends_with(", stale=true"));
}

#[test]
fn only_the_configured_algorithms_are_offered_and_accepted() {
    let md5_only = DigestAuth::new(REALM, SECRET, Duration::from_secs(300), &[Algorithm::Md5]);
    let challenges = md5_only.challenges(at(1_000), false);
    assert_eq!(challenges.len(), 1);
    assert!(challenges[0].contains("algorithm=MD5"));
    let sha256 = answer(Algorithm::Sha256, "secret", 1_000);
    let verdict = md5_only.verify(at(1_100), "REGISTER", &sha256, &stored(), true);
    assert_eq!(verdict, Verdict::Refused(Refused::UnsupportedAlgorithm));
    let md5 = answer(Algorithm::Md5, "secret", 1_000);
    assert_eq!(md5_only.verify(at(1_100), "REGISTER", &md5, &stored(), true), Verdict::Valid);
    assert_eq!(Algorithm::from_name("sha-256"), Some(Algorithm::Sha256));
    assert_eq!(Algorithm::from_name("MD5-sess"), None);
}

#[test]
fn a_right_answer_is_valid_for_both_algorithms() {
    for algorithm in Algorithm::OFFERED {
        let credentials = answer(algorithm, "secret", 1_000);
        assert_eq!(auth().verify(at(1_100), "REGISTER", &credentials, &stored(), true), Verdict::Valid);
    }
    // No algorithm parameter means MD5.
    let credentials = Credentials { algorithm: None, ..answer(Algorithm::Md5, "secret", 1_000) };
    assert_eq!(auth().verify(at(1_100), "REGISTER", &credentials, &stored(), true), Verdict::Valid);
}

#[test]
fn a_wrong_password_is_refused() {
    for algorithm in Algorithm::OFFERED {
        let credentials = answer(algorithm, "guess", 1_000);
        let verdict = auth().verify(at(1_100), "REGISTER", &credentials, &stored(), true);
        assert_eq!(verdict, Verdict::Refused(Refused::WrongResponse));
    }
}

#[test]
fn an_expired_nonce_is_stale_only_with_the_right_password() {
    let credentials = answer(Algorithm::Sha256, "secret", 1_000);
    assert_eq!(auth().verify(at(1_300), "REGISTER", &credentials, &stored(), true), Verdict::Valid);
    assert_eq!(auth().verify(at(1_301), "REGISTER", &credentials, &stored(), true), Verdict::Stale);
    let wrong = answer(Algorithm::Sha256, "guess", 1_000);
    let verdict = auth().verify(at(1_301), "REGISTER", &wrong, &stored(), true);
    assert_eq!(verdict, Verdict::Refused(Refused::WrongResponse));
}

#[test]
fn nonces_from_elsewhere_or_tampered_are_refused() {
    let mut credentials = answer(Algorithm::Md5, "secret", 1_000);
    let other_process = DigestAuth::new(REALM, [8; 32], Duration::from_secs(300), &Algorithm::OFFERED);
    let verdict = other_process.verify(at(1_100), "REGISTER", &credentials, &stored(), true);
    assert_eq!(verdict, Verdict::Refused(Refused::ForeignNonce));
    // Moving the issue time forward to escape expiry breaks the HMAC.
    credentials.nonce.replace_range(..16, &format!("{:016x}", 5_000));
    let verdict = auth().verify(at(5_100), "REGISTER", &credentials, &stored(), true);
    assert_eq!(verdict, Verdict::Refused(Refused::ForeignNonce));
    for nonce in ["", "abc", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "é"] {
        let credentials = Credentials { nonce: nonce.into(), ..answer(Algorithm::Md5, "secret", 1_000) };
        let verdict = auth().verify(at(1_100), "REGISTER", &credentials, &stored(), true);
        assert_eq!(verdict, Verdict::Refused(Refused::ForeignNonce), "{nonce}");
    }
}

#[test]
fn wrong_realm_uri_method_algorithm_or_missing_qop_are_refused() {
    let good = answer(Algorithm::Md5, "secret", 1_000);
    let verify = |credentials: &Credentials, method: &str, uri_matches: bool| {
        auth().verify(at(1_100), method, credentials, &stored(), uri_matches)
    };
    let wrong_realm = Credentials { realm: "elsewhere".into(), ..good.clone() };
    assert_eq!(verify(&wrong_realm, "REGISTER", true), Verdict::Refused(Refused::WrongRealm));
    assert_eq!(verify(&good, "REGISTER", false), Verdict::Refused(Refused::WrongUri));
    // The method is part of the digest: a REGISTER's answer does not authorise an INVITE.
    assert_eq!(verify(&good, "INVITE", true), Verdict::Refused(Refused::WrongResponse));
    let sess = Credentials { algorithm: Some("MD5-sess".into()), ..good.clone() };
    assert_eq!(verify(&sess, "REGISTER", true), Verdict::Refused(Refused::UnsupportedAlgorithm));
    for broken in [
        Credentials { qop: None, ..good.clone() },
        Credentials { qop: Some("auth-int".into()), ..good.clone() },
        Credentials { nc: None, ..good.clone() },
        Credentials { nc: Some("1".into()), ..good.clone() },
        Credentials { cnonce: None, ..good.clone() },
        Credentials { cnonce: Some(String::new()), ..good.clone() },
    ] {
        assert_eq!(verify(&broken, "REGISTER", true), Verdict::Refused(Refused::QopRequired), "{broken:?}");
    }
}

#[test]
fn authorization_headers_parse() {
    let value = "Digest username=\"agent\",realm=\"loket.test\", nonce=\"abc\", uri=\"sip:loket.test\",\r\n \
                 response=\"0123\", algorithm=SHA-256, cnonce=\"x,y\", opaque=\"\", qop=auth, nc=00000001";
    let credentials = Credentials::parse(value).unwrap();
    assert_eq!(credentials.username, "agent");
    assert_eq!(credentials.uri, "sip:loket.test");
    assert_eq!(credentials.algorithm.as_deref(), Some("SHA-256"));
    assert_eq!(credentials.cnonce.as_deref(), Some("x,y"));
    assert_eq!(credentials.qop.as_deref(), Some("auth"));
    assert_eq!(credentials.nc.as_deref(), Some("00000001"));
    let escaped = Credentials::parse(r#"digest username="a\"b", realm="r", nonce="n", uri="u", response="x""#);
    assert_eq!(escaped.unwrap().username, "a\"b");
}

#[test]
fn bad_authorization_headers_are_errors_not_panics() {
    let cases = [
        ("", ParseError::NotDigest),
        ("Basic dXNlcjpwYXNz", ParseError::NotDigest),
        ("Digest", ParseError::NotDigest),
        ("Digest username=\"a\"", ParseError::Missing("realm")),
        ("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\"", ParseError::Missing("response")),
        ("Digest username=\"a\", username=\"b\"", ParseError::Duplicate("username")),
        ("Digest username=\"unterminated", ParseError::Malformed),
        ("Digest username", ParseError::Malformed),
        ("Digest username=", ParseError::Malformed),
        ("Digest username=\"a\" realm=\"r\"", ParseError::Malformed),
        ("Digest username=\"a\\", ParseError::Malformed),
    ];
    for (value, error) in cases {
        assert_eq!(Credentials::parse(value), Err(error), "{value}");
    }
    let huge = format!("Digest username=\"{}\"", "a".repeat(5_000));
    assert_eq!(Credentials::parse(&huge), Err(ParseError::Malformed));
    // Multi-byte characters around the delimiters.
    for value in ["Digest ü=\"é\"", "Digest username=é,", "Digest \u{a0}=\"\""] {
        let _ = Credentials::parse(value);
    }
}

/// RFC 7616 §3.9.1: the server's challenge (with `auth-int` offered too) and the client's answer,
/// for both algorithms, with the RFC's client nonce.
#[test]
fn the_client_answers_the_rfc_7616_challenge() {
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    for (algorithm, response) in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ] {
        let value = format!(
            "Digest\r\n realm=\"http-auth@example.org\",\r\n qop=\"auth, auth-int\",\r\n algorithm={algorithm},\r\n \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        );
        let challenge = Challenge::parse(&value).unwrap();
        assert!(challenge.qop && !challenge.stale);
        let authorization = challenge.answer("Mufasa", "Circle of Life", "GET", "/dir/index.html", CNONCE, 1);
        let sent = Credentials::parse(&authorization).unwrap();
        assert_eq!(
            sent,
            Credentials {
                username: "Mufasa".into(),
                realm: "http-auth@example.org".into(),
                nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
                uri: "/dir/index.html".into(),
                response: response.into(),
                algorithm: Some(algorithm.into()),
                qop: Some("auth".into()),
                nc: Some("00000001".into()),
                cnonce: Some(CNONCE.into()),
            }
        );
        assert!(
            authorization.ends_with(", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""),
            "{authorization}"
        );
    }
}

/// Without a qop the response is RFC 2069's: H(HA1:nonce:HA2), with no nc or cnonce sent.
#[test]
fn the_client_answers_a_challenge_without_qop() {
    let challenge =
        Challenge::parse("Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"").unwrap();
    assert_eq!((challenge.algorithm, challenge.qop, challenge.opaque.as_deref()), (Algorithm::Md5, false, None));
    let authorization = challenge.answer("Mufasa", "Circle Of Life", "GET", "/dir/index.html", "unused", 1);
    let sent = Credentials::parse(&authorization).unwrap();
    // Computed independently (Python's hashlib).
    assert_eq!(sent.response, "670fd8c2df070c60b045671b8b24ff02");
    assert_eq!((sent.qop, sent.nc, sent.cnonce), (None, None, None));
}

/// loket's client answers loket's server: both algorithms, and the nonce count of a reused nonce.
#[test]
fn the_client_answer_passes_the_server_check() {
    for (index, algorithm) in Algorithm::OFFERED.into_iter().enumerate() {
        let challenge = Challenge::parse(&auth().challenges(at(1_000), false)[index]).unwrap();
        assert_eq!(challenge.algorithm, algorithm);
        let authorization = challenge.answer("agent", "secret", "INVITE", "sip:+3225550100@loket.test", "c0ffee", 2);
        let credentials = Credentials::parse(&authorization).unwrap();
        assert_eq!(credentials.nc.as_deref(), Some("00000002"));
        assert_eq!(auth().verify(at(1_100), "INVITE", &credentials, &stored(), true), Verdict::Valid);
        let wrong = Credentials::parse(&challenge.answer("agent", "guess", "INVITE", "sip:x", "c0ffee", 1)).unwrap();
        assert_eq!(
            auth().verify(at(1_100), "INVITE", &wrong, &stored(), true),
            Verdict::Refused(Refused::WrongResponse)
        );
    }
    let stale = Challenge::parse(&auth().challenges(at(1_000), true)[0]).unwrap();
    assert!(stale.stale);
}

/// Quotes in the client's values are escaped, so that they cannot end a parameter early.
#[test]
fn the_client_escapes_its_values() {
    let challenge = Challenge::parse(r#"Digest realm="a\"b", nonce="n""#).unwrap();
    assert_eq!(challenge.realm, "a\"b");
    let authorization = challenge.answer("us\"er", "p", "INVITE", "sip:x", "c", 1);
    let sent = Credentials::parse(&authorization).unwrap();
    assert_eq!((sent.username.as_str(), sent.realm.as_str()), ("us\"er", "a\"b"));
}

#[test]
fn challenges_loket_cannot_answer_are_errors_not_panics() {
    let cases = [
        ("Basic realm=\"r\"", ParseError::NotDigest),
        ("Digest nonce=\"n\"", ParseError::Missing("realm")),
        ("Digest realm=\"r\"", ParseError::Missing("nonce")),
        ("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess", ParseError::Unsupported("algorithm")),
        ("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256", ParseError::Unsupported("algorithm")),
        ("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"", ParseError::Unsupported("qop")),
        ("Digest realm=\"r\", nonce=\"n\r\nVia: x\"", ParseError::Malformed),
        ("Digest realm=\"r\", nonce", ParseError::Malformed),
    ];
    for (value, error) in cases {
        assert_eq!(Challenge::parse(value), Err(error), "{value}");
    }
}
