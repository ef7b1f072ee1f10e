//! `Email::parse`: what it accepts is a plain ASCII address within the RFC 5321 limits, the local
//! part is kept as typed, only the domain is lower-cased for display, and normalisation (the
//! uniqueness key) is idempotent and case-insensitive. The request path (`Form::email`) agrees.
#![no_main]

use gatehouse_core::domain::Email;
use gatehouse_core::services::{Form, ServiceError};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const INVALID: &str = "Enter a valid email address.";
/// RFC 5321's path limit, as Django's EmailField has it.
const MAX_EMAIL_LEN: usize = 254;

fn check_accepted(raw: &str, e: &Email) {
    let shown = e.as_str();
    let key = e.normalised();
    assert!(shown.len() <= MAX_EMAIL_LEN, "{shown:?} is too long");
    assert!(shown.is_ascii() && !shown.chars().any(|c| c.is_ascii_control() || c.is_ascii_whitespace()), "{shown:?}");
    assert_eq!(shown.matches('@').count(), 1, "{shown:?}");
    let (local, domain) = shown.split_once('@').expect("one @");
    assert!(!local.is_empty() && local.len() <= 64, "{shown:?}: local part length");
    assert!(domain.contains('.') && domain.len() <= 253, "{shown:?}: domain");
    assert_eq!(domain, domain.to_ascii_lowercase(), "the domain is shown lower-cased");
    // The local part is kept exactly as typed (surrounding whitespace aside).
    assert!(raw.trim().starts_with(&format!("{local}@")), "{raw:?} shown as {shown:?}");
    assert_eq!(key, shown.to_ascii_lowercase());
    // Idempotent: parsing what we show or what we key on gives the same address again.
    let again = Email::parse(shown).expect("the shown form parses");
    assert_eq!(&again, e);
    let from_key = Email::parse(key).expect("the normalised form parses");
    assert_eq!(from_key.normalised(), key);
    assert_eq!(from_key.as_str(), key);
    // Case-insensitive uniqueness: any casing of the input maps to the same key.
    for variant in [raw.to_ascii_uppercase(), raw.to_ascii_lowercase()] {
        let v = Email::parse(&variant).expect("a recased address parses");
        assert_eq!(v.normalised(), key, "{variant:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let parsed = Email::parse(&raw);
    match &parsed {
        Ok(e) => check_accepted(&raw, e),
        Err(msg) => assert_eq!(*msg, INVALID),
    }
    // Through the request path: a required field, then the same parser.
    let mut map = Map::new();
    map.insert("email".to_owned(), Value::String(raw.clone().into_owned()));
    let via_form = Form(map).email("email");
    match (&parsed, via_form) {
        (Ok(e), Ok(f)) => assert_eq!(e, &f),
        (Err(_), Err(ServiceError::Invalid(fields))) => {
            let msgs = fields.0.get("email").expect("an email error");
            assert_eq!(msgs.len(), 1);
            let expected = if raw.contains('\0') {
                "Null characters are not allowed."
            } else if raw.trim().is_empty() {
                "This field may not be blank."
            } else {
                INVALID
            };
            assert_eq!(msgs[0], expected);
        }
        (p, f) => panic!("Email::parse gave {p:?} but the form gave {f:?}"),
    }
});
