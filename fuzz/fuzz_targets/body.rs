//! Request bodies through `gatehouse_functions::http::form`, the function every handler uses.
//!
//! The first byte picks the Content-Type, the rest is the body. Properties: the outcome is the one
//! the contract names (413 over 16 KiB, 415 for other media types, JSON parsed exactly as
//! serde_json parses it and only objects accepted, form bodies as serde_urlencoded decodes them
//! with the last of repeated keys winning, or refused when they are not UTF-8), every rejection is a 4xx DRF-shaped body, and reading the fields DRF-style agrees
//! with what was parsed.
#![no_main]

use gatehouse_core::domain::{Email, Password};
use gatehouse_core::services::{FieldErrors, Form};
use gatehouse_functions::http::{form, Reject, MAX_BODY};
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Body, Request};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const MEDIA_TYPES: [Option<&str>; 8] = [
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json; charset=utf-8"),
    Some("APPLICATION/X-WWW-FORM-URLENCODED ; charset=latin-1"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=x"),
    Some(""),
    None,
];

#[derive(PartialEq)]
enum Kind {
    Json,
    UrlEncoded,
    Other,
}

fn kind(media: Option<&str>) -> Kind {
    let essence = media.map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Kind::Json,
        Some("application/x-www-form-urlencoded") => Kind::UrlEncoded,
        _ => Kind::Other,
    }
}

/// The JSON object the body holds, by serde_json directly.
fn json_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The pairs of a form body as serde_urlencoded reads them (invalid UTF-8 becomes U+FFFD).
fn lossy_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).expect("lossy decoding never fails")
}

/// The fields those pairs make, the last value of a repeated key winning (Django's QueryDict).
fn fields(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.clone(), Value::String(v.clone()));
    }
    map
}

fn check_rejection(r: &Reject) {
    let resp = r.response();
    let status = resp.status().as_u16();
    assert!((400..500).contains(&status), "edge rejection {r:?} answered {status}");
    let body: Value = serde_json::from_slice(resp.body().as_ref()).expect("rejections are JSON");
    let obj = body.as_object().expect("rejections are JSON objects");
    let detail_shaped = obj.len() == 2
        && obj.get("detail").is_some_and(|d| d.as_str().is_some_and(|d| !d.is_empty()))
        && obj.get("code").is_some_and(|c| c.as_str().is_some_and(|c| !c.is_empty()));
    // At least one field, each with at least one non-empty message: `{}` names no error at all.
    let field_shaped = !obj.is_empty()
        && obj.iter().all(|(k, v)| {
            !k.is_empty()
                && v.as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(|m| m.as_str().is_some_and(|m| !m.is_empty())))
        });
    assert!(detail_shaped || field_shaped, "not DRF-shaped: {body}");
}

/// Reads fields the way the services do; none of it may panic, and it must agree with the map.
fn read_fields(f: &Form) {
    for field in ["email", "password", "first_name", "username", "uid", "token", "refresh"] {
        let mut errors = FieldErrors::default();
        let got = f.required(field, &mut errors);
        match f.0.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() && !s.contains('\0') => {
                assert_eq!(got.as_deref(), Some(s.as_str()))
            }
            Some(Value::Number(n)) => assert_eq!(got, Some(n.to_string())),
            _ => {
                assert!(got.is_none());
                assert!(errors.has(field), "{field}: no error recorded for {:?}", f.0.get(field));
            }
        }
        if got.is_some() {
            assert!(errors.is_empty());
        }
        let mut errors = FieldErrors::default();
        if let Some(s) = f.optional(field, 150, &mut errors) {
            assert!(s.chars().count() <= 150);
        }
    }
    if let Ok(e) = f.email("email") {
        assert_eq!(Email::parse(e.as_str()).ok().as_ref(), Some(&e));
    }
    if let Some(Value::String(p)) = f.0.get("password") {
        if let Ok(parsed) = Password::parse(p.clone()) {
            assert_eq!(parsed.expose(), p, "passwords are kept exactly as sent");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let media = MEDIA_TYPES[usize::from(selector) % MEDIA_TYPES.len()];
    let mut builder = lambda_http::http::Request::builder().method("POST").uri("/auth/users/");
    if let Some(m) = media {
        builder = builder.header(CONTENT_TYPE, m);
    }
    let req: Request = builder.body(Body::Binary(body.to_vec())).expect("a valid request");
    let kind = kind(media);
    let outcome = form(&req);
    if let Err(r) = &outcome {
        check_rejection(r);
    }
    if body.len() > MAX_BODY {
        assert!(matches!(outcome, Err(Reject::TooLarge)), "{} bytes not refused with 413", body.len());
        return;
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        assert!(matches!(&outcome, Ok(f) if f.0.is_empty()), "a blank body is an empty form");
        return;
    }
    match (&kind, &outcome) {
        (Kind::Other, Err(Reject::UnsupportedMediaType(_))) => return,
        (Kind::Other, other) => panic!("media type {media:?} not refused with 415: {other:?}"),
        (_, Err(Reject::UnsupportedMediaType(_) | Reject::TooLarge)) => panic!("{media:?}: wrong rejection"),
        _ => {}
    }
    if kind == Kind::UrlEncoded {
        let pairs = lossy_pairs(body);
        match &outcome {
            Ok(f) => {
                assert_eq!(f.0, fields(&pairs), "fields differ from serde_urlencoded's");
                read_fields(f);
            }
            Err(Reject::Parse(msg)) => {
                assert_eq!(msg, "Form parse error - malformed form data.");
                // Refused only when decoding is lossy (not UTF-8), never silently altered.
                let replaced = pairs.iter().any(|(k, v)| k.contains('\u{fffd}') || v.contains('\u{fffd}'));
                assert!(replaced, "a form body that decodes to UTF-8 was refused");
            }
            Err(r) => panic!("form body refused with {r:?}"),
        }
        return;
    }
    match (&outcome, json_object(body)) {
        (Ok(f), Some(map)) => {
            assert_eq!(f.0, map, "fields differ from serde_json's");
            read_fields(f);
        }
        (Err(Reject::Parse(msg)), None) => {
            assert!(msg.starts_with("JSON parse error - "), "{msg}");
            assert!(serde_json::from_slice::<Value>(body).is_err());
        }
        (Err(Reject::NotAnObject(_)), None) => {
            assert!(serde_json::from_slice::<Value>(body).is_ok_and(|v| !v.is_object()));
        }
        (Ok(_), None) => panic!("{media:?}: accepted a body serde_json refuses"),
        (Err(r), expected) => panic!("{media:?}: refused ({r:?}) a body that parses to {expected:?}"),
    }
});
