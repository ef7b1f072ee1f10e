//! The `Authorization` header through `http::bearer` and `http::basic`, as the handlers call them.
//!
//! Properties: only the Bearer/JWT schemes yield a token, and it is one whitespace-free word;
//! only the Basic scheme yields credentials, and they round-trip through base64; a header that is
//! not visible ASCII counts as absent; every rejection is a DRF-shaped 401, and the one simplejwt
//! gives (`bad_authorization_header` for a bearer scheme without exactly one token, DRF's basic
//! header message for a Basic one that does not decode). The bare scheme (`Bearer`, `Bearer `,
//! `JWT\t` ...), which random bytes seldom spell, is checked on every input: each input picks a
//! casing and the whitespace around it.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_functions::http::{basic, bearer, Reject};
use lambda_http::http::header::AUTHORIZATION;
use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn request(value: HeaderValue) -> Request {
    lambda_http::http::Request::builder()
        .method("GET")
        .uri("/auth/users/me/")
        .header(AUTHORIZATION, value)
        .body(Body::Empty)
        .expect("a valid request")
}

fn check_rejection(r: &Reject) {
    let resp = r.response();
    assert_eq!(resp.status().as_u16(), 401, "{r:?}");
    let body: Value = serde_json::from_slice(resp.body().as_ref()).expect("JSON");
    assert!(body["detail"].is_string() && body["code"].is_string(), "{body}");
}

/// simplejwt's refusal of a bearer header without exactly one token.
fn is_bad_bearer(r: &Reject) -> bool {
    let body: Value = serde_json::from_slice(r.response().body().as_ref()).expect("JSON");
    matches!(r, Reject::BadAuthorizationHeader)
        && body
            == serde_json::json!({
                "detail": "Authorization header must contain two space-delimited values",
                "code": "bad_authorization_header",
            })
}

/// A bearer scheme alone (no token), in the casing and with the whitespace `data` picks: refused
/// with simplejwt's 401, never taken for a token nor for an absent header.
fn check_bare_scheme(data: &[u8]) {
    let pick = |i: usize| usize::from(data.get(i).copied().unwrap_or(0));
    let scheme = ["Bearer", "bearer", "BEARER", "JWT", "jwt", "bEaReR"][pick(0) % 6];
    let before = ["", " ", "\t", "  "][pick(1) % 4];
    let after = ["", " ", "\t", "   ", " \t "][pick(2) % 5];
    let header = format!("{before}{scheme}{after}");
    let req = request(HeaderValue::from_str(&header).expect("visible ASCII"));
    match bearer(&req) {
        Err(r) => assert!(is_bad_bearer(&r), "{header:?} refused with {r:?}"),
        other => panic!("a bare scheme {header:?} was not refused: {other:?}"),
    }
    assert!(matches!(basic(&req), Ok(None)), "{header:?} read as Basic");
}

fuzz_target!(|data: &[u8]| {
    check_bare_scheme(data);
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let req = request(value);
    let as_text =
        std::str::from_utf8(data).ok().filter(|t| t.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)));
    let token = bearer(&req);
    let creds = basic(&req);
    if let Err(r) = &token {
        check_rejection(r);
    }
    if let Err(r) = &creds {
        check_rejection(r);
    }
    let Some(text) = as_text else {
        // Not visible ASCII: treated as no credentials at all.
        assert!(matches!(token, Ok(None)) && matches!(creds, Ok(None)), "non-ASCII header was used");
        return;
    };
    let first_word = text.split_ascii_whitespace().next().unwrap_or("");
    let is_bearer = first_word.eq_ignore_ascii_case("bearer") || first_word.eq_ignore_ascii_case("jwt");
    match &token {
        Ok(Some(t)) => {
            assert!(is_bearer, "{text:?} gave a bearer token");
            assert!(!t.is_empty() && !t.bytes().any(|b| b.is_ascii_whitespace()), "{t:?}");
            let words: Vec<&str> = text.split_ascii_whitespace().collect();
            assert_eq!(words, [first_word, *t], "{text:?}");
        }
        Ok(None) => assert!(!is_bearer, "{text:?}: a bearer header was ignored"),
        Err(r) => {
            assert!(is_bearer && text.split_ascii_whitespace().count() != 2, "{text:?}");
            assert!(is_bad_bearer(r), "{text:?} refused with {r:?}");
        }
    }
    // A bearer scheme with no token at all is refused, not taken as no header.
    if is_bearer && text.split_ascii_whitespace().count() == 1 {
        assert!(token.as_ref().is_err_and(is_bad_bearer), "bare {text:?} gave {token:?}");
    }
    match &creds {
        Ok(Some((login, password))) => {
            assert!(text.trim().get(..6).is_some_and(|s| s.eq_ignore_ascii_case("basic ")), "{text:?}");
            assert!(!is_bearer);
            assert!(!login.contains(':'), "the login ends at the first colon");
            // Round trip: encoding what was decoded yields the same credentials.
            let again = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(format!("{login}:{password}"))))
                .expect("base64 is a valid header value");
            let back = basic(&request(again)).expect("a canonical header is accepted").expect("credentials");
            assert_eq!((&back.0, &back.1), (login, password));
        }
        Ok(None) => {}
        Err(r) => {
            assert!(text.trim().get(..6).is_some_and(|s| s.eq_ignore_ascii_case("basic ")), "{text:?}");
            assert!(matches!(r, Reject::BadBasicHeader), "{text:?} refused with {r:?}");
        }
    }
    // Never both: a header has one scheme.
    assert!(!(matches!(token, Ok(Some(_))) && matches!(creds, Ok(Some(_)))));
});
