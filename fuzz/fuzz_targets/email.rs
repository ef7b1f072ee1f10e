//! `Email::parse`: it accepts exactly the plain ASCII addresses within the RFC 5321 limits (a
//! model of that grammar, written apart from the parser, decides every input both ways: a valid
//! address refused fails as surely as an invalid one accepted), the local part is kept as typed,
//! only the domain is lower-cased for display, and normalisation (the uniqueness key) is
//! idempotent and case-insensitive. The request path (`Form::email`) agrees. Each input also
//! spells a valid address of its own (`valid_address`), which must be accepted: random bytes
//! seldom make one.
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

/// `atext` of RFC 5322: what a dot-atom's atoms are made of.
const ATEXT: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The grammar the parser implements, as a model: after trimming surrounding whitespace, at most
/// 254 bytes; a local part that is a dot-atom (atoms of `atext` joined by single dots) of at most
/// 64 bytes; one `@`; a domain of at most 253 bytes and at least two labels, each 1 to 63
/// letters, digits and hyphens, neither starting nor ending with a hyphen, the last of them two
/// or more letters.
fn model_accepts(raw: &str) -> bool {
    let s = raw.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| ALNUM.contains(&b) || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let labels: Vec<&str> = domain.split('.').collect();
    (1..=254).contains(&s.len())
        && (1..=64).contains(&local.len())
        && local.split('.').all(|atom| !atom.is_empty() && atom.bytes().all(|b| ATEXT.contains(&b)))
        && domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| label_ok(l))
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| ALPHA.contains(&b)))
}

/// Draws from the fuzzer's bytes (zeros once they run out).
struct Draw<'a>(std::slice::Iter<'a, u8>);

impl Draw<'_> {
    fn byte(&mut self) -> usize {
        usize::from(self.0.next().copied().unwrap_or(0))
    }
    /// 1..=max
    fn len(&mut self, max: usize) -> usize {
        1 + self.byte() % max
    }
    fn pick(&mut self, set: &[u8]) -> char {
        char::from(set[self.byte() % set.len()])
    }
}

/// A valid address spelled from `data`: a dot-atom local part of up to four atoms (at most 63
/// bytes), up to two labels of up to 63 characters (hyphens inside), a TLD of 2 to 12 letters,
/// any casing, sometimes wrapped in whitespace. At most 63 + 1 + 2 * 64 + 12 = 204 bytes.
fn valid_address(data: &[u8]) -> String {
    let mut d = Draw(data.iter());
    let mut address = String::new();
    let pad = [" ", "\t", "\r\n", ""][d.byte() % 4];
    address.push_str(pad);
    for atom in 0..d.len(4) {
        if atom > 0 {
            address.push('.');
        }
        for _ in 0..d.len(15) {
            address.push(d.pick(ATEXT));
        }
    }
    address.push('@');
    for _ in 0..d.len(2) {
        let n = d.len(63);
        for i in 0..n {
            let inner = i > 0 && i < n - 1;
            address.push(if inner && d.byte() % 5 == 0 { '-' } else { d.pick(ALNUM) });
        }
        address.push('.');
    }
    for _ in 0..=d.len(11) {
        address.push(d.pick(ALPHA));
    }
    address.push_str(pad);
    address
}

fuzz_target!(|data: &[u8]| {
    // A valid address, always: it must be accepted, by the parser and by the request path.
    let valid = valid_address(data);
    assert!(model_accepts(&valid), "the generator made an invalid address: {valid:?}");
    let accepted = Email::parse(&valid).unwrap_or_else(|m| panic!("a valid address {valid:?} was refused: {m}"));
    check_accepted(&valid, &accepted);
    let mut map = Map::new();
    map.insert("email".to_owned(), Value::String(valid.clone()));
    assert_eq!(Form(map).email("email").ok().as_ref(), Some(&accepted), "the form refused {valid:?}");

    let raw = String::from_utf8_lossy(data);
    let parsed = Email::parse(&raw);
    match &parsed {
        Ok(e) => {
            assert!(model_accepts(&raw), "an address outside the grammar was accepted: {raw:?}");
            check_accepted(&raw, e)
        }
        Err(msg) => {
            assert!(!model_accepts(&raw), "a valid address was refused: {raw:?}");
            assert_eq!(*msg, INVALID)
        }
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
