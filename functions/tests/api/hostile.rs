//! Hostile input against the in-process app: oversized and deeply nested bodies, NUL and control
//! characters, invalid UTF-8, overlong emails and passwords, unicode passwords and addresses,
//! header injection through names, duplicate and repeated keys, wrong JSON types and broken
//! `Authorization` headers. Every refusal is a 4xx with a DRF-shaped body, never a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{spawn_app, Reply, TestApp, PASSWORD};
use gatehouse_core::ports::{EmailKind, OutgoingEmail};
use gatehouse_functions::http::MAX_BODY;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// A refusal: 4xx, and either `{"detail", "code"}` or field errors (lists of messages).
fn assert_refused(r: &Reply, what: &str) {
    assert!(r.status.is_client_error(), "{what}: expected a 4xx, got {} {}", r.status, r.body);
    let obj = r.body.as_object().unwrap_or_else(|| panic!("{what}: body is not an object: {}", r.body));
    let detail = obj.len() == 2 && obj["detail"].is_string() && obj.get("code").is_some_and(Value::is_string);
    let fields = !obj.is_empty()
        && obj.values().all(|v| v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)));
    assert!(detail || fields, "{what}: not DRF-shaped: {}", r.body);
}

fn assert_field_error(r: &Reply, field: &str, message: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
    let msgs = r.body[field].as_array().unwrap_or_else(|| panic!("no {field} error: {}", r.body));
    assert!(msgs.iter().any(|m| m == message), "{field}: {message:?} not in {}", r.body);
}

async fn post_bytes(t: &TestApp, path: &str, ct: (&str, &str), body: Vec<u8>) -> Reply {
    t.raw("POST", path, &[ct], Body::Binary(body)).await
}

/// Registers and activates `email` with `password`.
async fn active_with(t: &TestApp, email: &str, password: &str) {
    let r = t.post("/auth/users/", json!({"email": email, "password": password})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (uid, token) = t.link_parts(email);
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

async fn login_status(t: &TestApp, email: &str, password: &str) -> StatusCode {
    t.post("/auth/jwt/create/", json!({"email": email, "password": password})).await.status
}

const POST_ROUTES: [&str; 10] = [
    "/auth/users/",
    "/auth/users/activation/",
    "/auth/users/resend_activation/",
    "/auth/users/reset_password/",
    "/auth/users/reset_password_confirm/",
    "/auth/users/set_email_confirm/",
    "/auth/jwt/create/",
    "/auth/jwt/refresh/",
    "/auth/jwt/verify/",
    "/auth/jwt/blacklist/",
];

#[tokio::test]
async fn bodies_up_to_16_kib_are_read_and_larger_ones_are_413() {
    let t = spawn_app(&[]);
    let frame = json!({"email": "ada@example.com", "password": PASSWORD, "first_name": ""}).to_string();
    let pad = MAX_BODY - frame.len();
    let at_limit = frame.replace("\"first_name\":\"\"", &format!("\"first_name\":\"{}\"", "x".repeat(pad)));
    assert_eq!(at_limit.len(), MAX_BODY);
    // Exactly at the limit the body is parsed: the name is too long, a field error.
    let r = post_bytes(&t, "/auth/users/", JSON, at_limit.clone().into_bytes()).await;
    assert_field_error(&r, "first_name", "Ensure this field has no more than 150 characters.");
    let over = at_limit.replacen("\"x", "\"xx", 1);
    assert_eq!(over.len(), MAX_BODY + 1);
    for path in POST_ROUTES {
        let r = post_bytes(&t, path, JSON, over.clone().into_bytes()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(r.body, json!({"detail": "Request body is too large.", "code": "payload_too_large"}));
        let form = format!("email=a%40b.co&first_name={}", "y".repeat(MAX_BODY));
        let r = post_bytes(&t, path, FORM, form.into_bytes()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path} (form)");
    }
    // A 1 MiB password never reaches the hasher.
    let huge = json!({"email": "ada@example.com", "password": "p".repeat(1 << 20)}).to_string();
    for path in ["/auth/users/", "/auth/jwt/create/"] {
        let r = post_bytes(&t, path, JSON, huge.clone().into_bytes()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    assert!(t.mail.sent().is_empty());
}

#[tokio::test]
async fn deeply_nested_json_is_a_parse_error_not_a_crash() {
    let t = spawn_app(&[]);
    let arrays = "[".repeat(MAX_BODY);
    let closed = format!("{}{}", "[".repeat(MAX_BODY / 2), "]".repeat(MAX_BODY / 2));
    let objects = format!("{}1{}", "{\"a\":".repeat(2500), "}".repeat(2500));
    let in_a_field = format!("{{\"email\": {}{}}}", "[".repeat(6000), "]".repeat(6000));
    for path in POST_ROUTES {
        for body in [&arrays, &closed, &objects, &in_a_field] {
            let r = post_bytes(&t, path, JSON, body.clone().into_bytes()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
            assert_eq!(r.body["code"], "parse_error", "{path}: {}", r.body);
            assert!(r.body["detail"].as_str().unwrap().starts_with("JSON parse error - "), "{}", r.body);
        }
        // 100k brackets: refused on size before any parsing.
        let r = post_bytes(&t, path, JSON, "[".repeat(100_000).into_bytes()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
}

#[tokio::test]
async fn nul_characters_are_refused_in_every_string_field() {
    let t = spawn_app(&[]);
    let (access, refresh) = t.active_user("ada@example.com").await;
    let (uid, token) = {
        t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
        t.link_parts("ada@example.com")
    };
    let cases: Vec<(&str, &str, Value, Option<&str>)> = vec![
        (
            "POST",
            "/auth/users/",
            json!({"email": "new@example.com", "password": PASSWORD, "username": "new", "first_name": "N", "last_name": "L"}),
            None,
        ),
        ("POST", "/auth/users/activation/", json!({"uid": uid, "token": token}), None),
        ("POST", "/auth/users/resend_activation/", json!({"email": "ada@example.com"}), None),
        ("POST", "/auth/users/reset_password/", json!({"email": "ada@example.com"}), None),
        (
            "POST",
            "/auth/users/reset_password_confirm/",
            json!({"uid": uid, "token": token, "new_password": "another good passphrase"}),
            None,
        ),
        ("POST", "/auth/users/set_email_confirm/", json!({"uid": uid, "token": token}), None),
        ("POST", "/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD}), None),
        ("POST", "/auth/jwt/refresh/", json!({"refresh": refresh}), None),
        ("POST", "/auth/jwt/verify/", json!({"token": access}), None),
        ("PATCH", "/auth/users/me/", json!({"first_name": "Ada", "last_name": "L", "username": "ada"}), Some(&access)),
        (
            "POST",
            "/auth/users/set_password/",
            json!({"current_password": PASSWORD, "new_password": "another good passphrase"}),
            Some(&access),
        ),
        (
            "POST",
            "/auth/users/set_email/",
            json!({"current_password": PASSWORD, "new_email": "ada2@example.com"}),
            Some(&access),
        ),
    ];
    for (method, path, body, bearer) in &cases {
        for (field, value) in body.as_object().unwrap() {
            let original = value.as_str().unwrap();
            for bad in [format!("{original}\0"), format!("\0{original}"), "\0".to_owned()] {
                let mut b = body.clone();
                b[field] = json!(bad);
                let r = t.call(method, path, Some(b), *bearer).await;
                assert_refused(&r, &format!("{method} {path} {field}={bad:?}"));
            }
        }
    }
    // Where DRF's CharField speaks, it says what it says.
    let r = t.post("/auth/users/", json!({"email": "n@example.com", "password": PASSWORD, "first_name": "A\0"})).await;
    assert_eq!(r.body, json!({"first_name": ["Null characters are not allowed."]}));
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"last_name": "\0"})), Some(&access)).await;
    assert_eq!(r.body, json!({"last_name": ["Null characters are not allowed."]}));
    // Nothing of it was stored.
    let u = t.user("ada@example.com").await;
    assert!(!u.first_name.contains('\0') && !u.last_name.contains('\0'));
    assert!(t.mail.sent().iter().all(|m| !m.to.contains("new@")));
}

#[tokio::test]
async fn other_control_characters_never_cause_a_server_error_or_reach_a_subject() {
    let t = spawn_app(&[]);
    let controls = ["\u{1}", "\r\n", "\t", "\u{1b}[31m", "\u{7f}", "\u{85}", "\u{2028}", "\u{202e}"];
    for (i, c) in controls.iter().enumerate() {
        let email = format!("c{i}@example.com");
        for field in ["email", "password", "username", "first_name", "last_name"] {
            let mut b = json!({"email": email, "password": PASSWORD});
            let original = b[field].as_str().unwrap_or("name").to_owned();
            // Inside the value: surrounding whitespace of an address is trimmed, as Django does.
            let (head, tail) = original.split_at(original.len() / 2);
            b[field] = json!(format!("{head}{c}{tail}"));
            let r = t.post("/auth/users/", b).await;
            if r.status != StatusCode::CREATED {
                assert_refused(&r, &format!("{field} with {c:?}"));
            }
            if field == "email" || field == "username" {
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field} with {c:?}: {}", r.body);
            }
        }
    }
    for m in t.mail.sent() {
        assert!(!m.subject.chars().any(char::is_control), "{:?}", m.subject);
    }
}

/// The activation, confirmation and reset emails of an account registered with `first_name`
/// (kept as sent), as captured.
async fn emails_to_a_user_named(first_name: &str) -> Vec<OutgoingEmail> {
    let t = spawn_app(&[("SEND_CONFIRMATION_EMAIL", "true")]);
    let body = json!({"email": "ada@example.com", "password": PASSWORD, "first_name": first_name});
    let r = t.post("/auth/users/", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["first_name"], first_name, "names are kept as sent");
    let (uid, token) = t.link_parts("ada@example.com");
    t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let sent = t.mail.sent();
    let kinds: Vec<EmailKind> = sent.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [EmailKind::Activation, EmailKind::Confirmation, EmailKind::PasswordReset]);
    sent
}

#[tokio::test]
async fn header_injection_through_names_never_reaches_an_email_header() {
    let evil = "Ada\r\nBcc: evil@example.net\r\nSubject: pwned";
    for m in &emails_to_a_user_named(evil).await {
        assert_eq!(m.to, "ada@example.com");
        assert!(!m.subject.chars().any(char::is_control), "{:?}", m.subject);
        assert!(!m.subject.contains("Bcc") && !m.subject.contains("pwned"), "{:?}", m.subject);
        assert!(m.text.contains(&format!("Hello {evil},")), "the name is rendered, in the body only: {}", m.text);
    }
}

#[tokio::test]
async fn html_emails_escape_markup_and_quotes_in_names_and_text_emails_keep_them() {
    let name = r#"<b onclick="x()">Ada</b> & 'co'"#;
    let escaped = "&lt;b onclick=&quot;x()&quot;&gt;Ada&lt;/b&gt; &amp; &#x27;co&#x27;";
    for m in &emails_to_a_user_named(name).await {
        assert!(m.html.contains(&format!("<p>Hello {escaped},</p>")), "{:?}: {}", m.kind, m.html);
        assert!(
            !m.html.contains("<b ")
                && !m.html.contains("</b>")
                && !m.html.contains("\"x()\"")
                && !m.html.contains("'co'"),
            "{}",
            m.html
        );
        assert!(m.text.contains(&format!("Hello {name},")), "{:?}: text shows the name as typed: {}", m.kind, m.text);
        assert!(!m.text.contains("&lt;") && !m.text.contains("&amp;"), "{:?}: {}", m.kind, m.text);
    }
}

#[tokio::test]
async fn a_name_that_looks_like_a_placeholder_is_shown_as_typed() {
    let t = spawn_app(&[("CODE_FORMAT", "numeric")]);
    let name = "{link} {code_line} {email}";
    let r = t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD, "first_name": name})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let m = t.last_mail("ada@example.com");
    let link = m.link.clone().unwrap();
    for body in [&m.text, &m.html] {
        assert!(body.contains(&format!("Hello {name},")), "{body}");
        assert_eq!(body.matches("Or type this code:").count(), 1, "{body}");
    }
    assert_eq!(m.text.matches(link.as_str()).count(), 1, "the link only where the template puts it: {}", m.text);
    assert_eq!(m.html.matches(link.as_str()).count(), 2, "href and the address to paste: {}", m.html);
}

#[tokio::test]
async fn invalid_utf8_bodies_are_parse_errors() {
    let t = spawn_app(&[]);
    let json_bodies: [&[u8]; 5] = [
        b"{\"email\": \"a\xff@example.com\", \"password\": \"x\"}",
        b"{\"email\": \"ada@example.com\", \"password\": \"\xc0\x80\"}",
        b"{\"password\": \"\xed\xa0\x80\"}",
        b"{\"password\": \"\\ud800\"}",
        b"\xef\xbb\xbf{\"email\": \"ada@example.com\"}",
    ];
    for path in POST_ROUTES {
        for body in json_bodies {
            let r = post_bytes(&t, path, JSON, body.to_vec()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body:?}: {}", r.body);
            assert_eq!(r.body["code"], "parse_error", "{path} {body:?}");
        }
    }
    let form_bodies: [&[u8]; 4] = [
        b"email=ada%40example.com&password=pass%FFword",
        b"email=ada%40example.com&password=pass\xffword",
        b"email=a%C0%80%40example.com&password=x",
        b"em%FFail=ada%40example.com",
    ];
    for path in POST_ROUTES {
        for body in form_bodies {
            let r = post_bytes(&t, path, FORM, body.to_vec()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body:?}: {}", r.body);
            assert_eq!(
                r.body,
                json!({"detail": "Form parse error - malformed form data.", "code": "parse_error"}),
                "{path} {body:?}"
            );
        }
    }
    // Valid UTF-8 in a form, percent-encoded or not, is read as sent.
    let form = "email=ada%40example.com&password=p%C3%A4ss+w%C3%B6rd+%E2%82%AC%E2%82%AC";
    assert_eq!(post_bytes(&t, "/auth/users/", FORM, form.into()).await.status, StatusCode::CREATED);
    let (uid, token) = t.link_parts("ada@example.com");
    t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(login_status(&t, "ada@example.com", "päss wörd €€").await, StatusCode::OK);
    assert!(t.mail.sent().iter().all(|m| m.to == "ada@example.com"));
}

#[tokio::test]
async fn overlong_emails_are_field_errors() {
    let t = spawn_app(&[]);
    let domain = format!("{}.{}.{}.example.com", "d".repeat(63), "e".repeat(63), "f".repeat(49));
    let longest = format!("{}@{domain}", "a".repeat(64));
    assert_eq!(longest.len(), 254);
    let too_long = format!("{}@{domain}x", "a".repeat(64));
    let local_65 = format!("{}@example.com", "a".repeat(65));
    let label_64 = format!("a@{}.com", "b".repeat(64));
    let huge = format!("{}@example.com", "a".repeat(10_000));
    for bad in [&too_long, &local_65, &label_64, &huge] {
        let r = t.post("/auth/users/", json!({"email": bad, "password": PASSWORD})).await;
        assert_eq!(r.body, json!({"email": ["Enter a valid email address."]}), "{} chars", bad.len());
        for path in ["/auth/users/resend_activation/", "/auth/users/reset_password/"] {
            let r = t.post(path, json!({"email": bad})).await;
            assert_eq!(r.body, json!({"email": ["Enter a valid email address."]}), "{path}");
        }
        let r = t.post("/auth/jwt/create/", json!({"email": bad, "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["code"], "no_active_account");
    }
    let r = t.post("/auth/users/", json!({"email": longest, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED, "254 characters is the limit, not over it: {}", r.body);
    assert!(t.mail.sent().iter().all(|m| m.to == longest));
}

#[tokio::test]
async fn password_length_is_limited_in_bytes() {
    let t = spawn_app(&[]);
    // 4096 bytes is accepted and round-trips through login.
    let longest: String = "Tr0ub4dor&3-".repeat(342)[..4096].to_owned();
    active_with(&t, "ada@example.com", &longest).await;
    assert_eq!(login_status(&t, "ada@example.com", &longest).await, StatusCode::OK);
    assert_eq!(login_status(&t, "ada@example.com", &longest[..4095]).await, StatusCode::UNAUTHORIZED);
    let too_long = format!("{longest}x");
    let euros = "€".repeat(1366); // 1366 characters, 4098 bytes
    for bad in [&too_long, &euros] {
        let r = t.post("/auth/users/", json!({"email": "grace@example.com", "password": bad})).await;
        assert_field_error(&r, "password", "Ensure this field has no more than 4096 bytes.");
        let r = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": bad})).await;
        assert_field_error(&r, "password", "Ensure this field has no more than 4096 bytes.");
    }
    let r = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": longest})).await;
    let access = r.body["access"].as_str().unwrap().to_owned();
    let r = t
        .call(
            "POST",
            "/auth/users/set_password/",
            Some(json!({"current_password": longest, "new_password": too_long})),
            Some(&access),
        )
        .await;
    assert_field_error(&r, "new_password", "Ensure this field has no more than 4096 bytes.");
}

#[tokio::test]
async fn unicode_passwords_are_kept_exactly_as_sent() {
    let t = spawn_app(&[]);
    let nfc = "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e";
    let nfd = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e";
    assert_ne!(nfc, nfd);
    active_with(&t, "ada@example.com", nfc).await;
    active_with(&t, "grace@example.com", nfd).await;
    assert_eq!(login_status(&t, "ada@example.com", nfc).await, StatusCode::OK);
    assert_eq!(login_status(&t, "ada@example.com", nfd).await, StatusCode::UNAUTHORIZED);
    assert_eq!(login_status(&t, "grace@example.com", nfd).await, StatusCode::OK);
    assert_eq!(login_status(&t, "grace@example.com", nfc).await, StatusCode::UNAUTHORIZED);
    // Nor trimmed: surrounding spaces are part of the password.
    active_with(&t, "lin@example.com", " spaced out passphrase ").await;
    assert_eq!(login_status(&t, "lin@example.com", "spaced out passphrase").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login_status(&t, "lin@example.com", " spaced out passphrase ").await, StatusCode::OK);
}

#[tokio::test]
async fn emails_normalise_the_domain_only_and_are_unique_case_insensitively() {
    let t = spawn_app(&[]);
    let r = t.post("/auth/users/", json!({"email": "  Ada.Lovelace@EXAMPLE.Com ", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "Ada.Lovelace@example.com", "local part kept as typed, domain lower-cased");
    for dup in ["ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM", "Ada.Lovelace@example.com"] {
        let r = t.post("/auth/users/", json!({"email": dup, "password": PASSWORD})).await;
        assert_eq!(r.body, json!({"email": ["user with this email address already exists."]}), "{dup}");
    }
    let (uid, token) = t.link_parts("Ada.Lovelace@example.com");
    t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(login_status(&t, "ADA.LOVELACE@example.COM", PASSWORD).await, StatusCode::OK);
    // Internationalised addresses: ASCII (punycode) domains only, ASCII local parts only.
    for bad in
        ["ada@b\u{fc}cher.example", "\u{e4}da@example.com", "ada\u{ff20}example.com", "ada@example.\u{440}\u{444}"]
    {
        let r = t.post("/auth/users/", json!({"email": bad, "password": PASSWORD})).await;
        assert_eq!(r.body, json!({"email": ["Enter a valid email address."]}), "{bad}");
    }
    let r = t.post("/auth/users/", json!({"email": "ada@XN--BCHER-KVA.example", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "ada@xn--bcher-kva.example");
}

#[tokio::test]
async fn usernames_are_nfkc_normalised_so_a_compatibility_spelling_is_the_same_username() {
    const TAKEN: &str = "A user with that username already exists.";
    let t = spawn_app(&[]);
    let register = |email: &'static str, username: &'static str| {
        let t = &t;
        async move { t.post("/auth/users/", json!({"email": email, "password": PASSWORD, "username": username})).await }
    };
    let r = register("ada@example.com", "ada").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Full-width, full-width capitals, mixed: the same username, taken.
    for dup in ["\u{ff41}\u{ff44}\u{ff41}", "\u{ff21}\u{ff24}\u{ff21}", "A\u{ff44}a"] {
        assert_field_error(&register("dup@example.com", dup).await, "username", TAKEN);
    }
    // The stored (and answered) username is the normalised form.
    let r = register("fi@example.com", "\u{fb01}\u{ff4e}\u{ff0e}\u{2167}").await;
    assert_eq!((r.status, r.body["username"].clone()), (StatusCode::CREATED, json!("fin.VIII")), "{}", r.body);
    assert_eq!(t.user("fi@example.com").await.username.unwrap().as_str(), "fin.VIII");
    let r = register("zoe@example.com", "Zoe\u{308}").await;
    assert_eq!(r.body["username"], "Zo\u{eb}", "{}", r.body);
    assert_field_error(&register("zoe2@example.com", "zo\u{eb}").await, "username", TAKEN);
    // Validated once normalised: a full-width space is still a space.
    let r = register("space@example.com", "a\u{3000}b").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["username"][0].as_str().unwrap().starts_with("Enter a valid username."), "{}", r.body);

    // The same through PATCH /auth/users/me/.
    let (grace, _) = t.active_user("grace@example.com").await;
    for dup in ["\u{ff21}\u{ff44}\u{ff41}", "FIN\u{ff0e}viii"] {
        let r = t.call("PATCH", "/auth/users/me/", Some(json!({"username": dup})), Some(&grace)).await;
        assert_field_error(&r, "username", TAKEN);
    }
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"username": "\u{ff27}race"})), Some(&grace)).await;
    assert_eq!((r.status, r.body["username"].clone()), (StatusCode::OK, json!("Grace")), "{}", r.body);
    assert_eq!(t.user("grace@example.com").await.username.unwrap().as_str(), "Grace");
    assert_field_error(&register("grace2@example.com", "\u{ff47}race").await, "username", TAKEN);
}

#[tokio::test]
async fn duplicate_json_keys_and_repeated_form_keys_take_the_last_value() {
    let t = spawn_app(&[]);
    let body = format!(
        "{{\"email\": \"first@example.com\", \"password\": \"x\", \"email\": \"last@example.com\", \"password\": \"{PASSWORD}\"}}"
    );
    let r = post_bytes(&t, "/auth/users/", JSON, body.into_bytes()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "last@example.com");
    let form = format!(
        "email=first%40example.com&email=form%40example.com&password=x&password={}",
        PASSWORD.replace(' ', "+")
    );
    let r = post_bytes(&t, "/auth/users/", FORM, form.into_bytes()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "form@example.com");
    assert!(t.mail.last_to("first@example.com").is_none());
    let (uid, token) = t.link_parts("form@example.com");
    t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    let login = format!("{{\"email\": \"form@example.com\", \"password\": \"wrong\", \"password\": \"{PASSWORD}\"}}");
    assert_eq!(post_bytes(&t, "/auth/jwt/create/", JSON, login.into_bytes()).await.status, StatusCode::OK);
    let login = format!("{{\"email\": \"form@example.com\", \"password\": \"{PASSWORD}\", \"password\": \"wrong\"}}");
    assert_eq!(post_bytes(&t, "/auth/jwt/create/", JSON, login.into_bytes()).await.status, StatusCode::UNAUTHORIZED);
}

/// (method, path, a valid body, the string fields to spoil, bearer token)
type Case<'a> = (&'a str, &'a str, Value, &'a [&'a str], Option<&'a str>);

#[tokio::test]
async fn wrong_json_types_are_field_errors() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user("ada@example.com").await;
    let wrong = [json!(["ada@example.com"]), json!({"a": 1}), json!(true), json!(null)];
    let routes: [Case; 7] = [
        ("POST", "/auth/users/", json!({"email": "n@example.com", "password": PASSWORD}), &["email", "password"], None),
        ("POST", "/auth/users/activation/", json!({"uid": "u", "token": "t"}), &["uid", "token"], None),
        ("POST", "/auth/users/reset_password/", json!({"email": "ada@example.com"}), &["email"], None),
        (
            "POST",
            "/auth/jwt/create/",
            json!({"email": "ada@example.com", "password": PASSWORD}),
            &["email", "password"],
            None,
        ),
        ("POST", "/auth/jwt/refresh/", json!({"refresh": "x"}), &["refresh"], None),
        ("POST", "/auth/jwt/verify/", json!({"token": "x"}), &["token"], None),
        (
            "POST",
            "/auth/users/set_password/",
            json!({"current_password": PASSWORD, "new_password": "another good passphrase"}),
            &["current_password", "new_password"],
            Some(&access),
        ),
    ];
    for (method, path, body, fields, bearer) in routes {
        for field in fields {
            for w in &wrong {
                let mut b = body.clone();
                b[*field] = w.clone();
                let r = t.call(method, path, Some(b), bearer).await;
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {field}={w}: {}", r.body);
                assert_refused(&r, &format!("{path} {field}={w}"));
                assert!(r.body[*field].is_array(), "{path} {field}={w}: error not on the field: {}", r.body);
            }
        }
    }
    let r = t.post("/auth/users/", json!({"email": "n@example.com", "password": PASSWORD, "first_name": [1]})).await;
    assert_eq!(r.body, json!({"first_name": ["Not a valid string."]}));
    let r = t.post("/auth/users/", json!({"email": {"x": 1}, "password": null})).await;
    assert_eq!(r.body, json!({"email": ["Not a valid string."], "password": ["This field may not be null."]}));
    // Numbers are read as text, as DRF's CharField reads them.
    let r = t.post("/auth/users/", json!({"email": "n@example.com", "password": 12345678})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["password"].as_array().unwrap().iter().any(|m| m == "This password is entirely numeric."),
        "{}",
        r.body
    );
}

/// A request with raw header bytes (which `TestApp::raw` cannot send).
async fn with_authorization(t: &TestApp, method: &str, path: &str, value: &[u8]) -> Reply {
    let mut ctx = lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some("203.0.113.7".into());
    let req = lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", HeaderValue::from_bytes(value).unwrap())
        .body(Body::Empty)
        .unwrap()
        .with_request_context(RequestContext::ApiGatewayV2(ctx));
    common::reply(common::dispatch(&t.app, req).await)
}

#[tokio::test]
async fn broken_authorization_headers_are_401s() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user("ada@example.com").await;
    let huge = format!("Bearer {}", "a".repeat(60_000));
    let huge_jwt = format!("Bearer {}.{}.{}", "e".repeat(20_000), "e".repeat(20_000), "e".repeat(20_000));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (huge.into_bytes(), "token_not_valid"),
        (huge_jwt.into_bytes(), "token_not_valid"),
        (b"Bearer a b".to_vec(), "bad_authorization_header"),
        (b"Bearer".to_vec(), "bad_authorization_header"),
        (b"JWT    ".to_vec(), "bad_authorization_header"),
        (b"Bearer \xff\xfe".to_vec(), "not_authenticated"),
        (format!("Bearer {access}\u{e9}").into_bytes(), "not_authenticated"),
        (b"Basic YWRhQGV4YW1wbGUuY29tOng=".to_vec(), "not_authenticated"),
        (b"Digest abc".to_vec(), "not_authenticated"),
        (b"Bearer e30.e30.".to_vec(), "token_not_valid"),
        (b"Bearer ...".to_vec(), "token_not_valid"),
    ];
    for (value, code) in &cases {
        let r = with_authorization(&t, "GET", "/auth/users/me/", value).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}: {}", String::from_utf8_lossy(value), r.body);
        assert_eq!(r.body["code"], *code, "{}", String::from_utf8_lossy(&value[..value.len().min(40)]));
        assert_refused(&r, "authorization");
    }
    // Extra whitespace around and between the two words is tolerated, as simplejwt's split() does.
    for value in [format!("Bearer  {access}"), format!("  Bearer {access}  "), format!("Bearer\t{access}")] {
        let r = with_authorization(&t, "GET", "/auth/users/me/", value.as_bytes()).await;
        assert_eq!(r.status, StatusCode::OK, "{value:?}: {}", r.body);
    }
}

#[tokio::test]
async fn broken_basic_credentials_are_401s() {
    let t = spawn_app(&[]);
    t.active_user("ada@example.com").await;
    let b64 = |raw: &[u8]| STANDARD.encode(raw);
    let bad_b64: [&[u8]; 5] = [
        b"Basic !!!",
        b"Basic YWRh",                      // "ada": no colon
        b"Basic YWRhQGV4YW1wbGUuY29tOng",   // unpadded
        b"Basic YWRh QGV4YW1wbGUuY29tOng=", // a space inside
        b"basic =",
    ];
    for value in bad_b64 {
        let r = with_authorization(&t, "POST", "/auth/jwt/create/", value).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", String::from_utf8_lossy(value));
        assert_eq!(r.body["code"], "authentication_failed", "{}: {}", String::from_utf8_lossy(value), r.body);
    }
    let not_utf8 = format!("Basic {}", b64(b"ada@example.com:\xff\xfe"));
    let huge = format!("Basic {}", b64(format!("ada@example.com:{}", "p".repeat(40_000)).as_bytes()));
    let r = with_authorization(&t, "POST", "/auth/jwt/create/", not_utf8.as_bytes()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["code"], "authentication_failed", "{}", r.body);
    let r = with_authorization(&t, "POST", "/auth/jwt/create/", huge.as_bytes()).await;
    assert_field_error(&r, "password", "Ensure this field has no more than 4096 bytes.");
    // A scheme with nothing after it is no credentials at all.
    let r = with_authorization(&t, "POST", "/auth/jwt/create/", b"Basic ").await;
    assert_eq!(r.body, json!({"email": ["This field is required."], "password": ["This field is required."]}));
    // The password may hold colons: the login ends at the first one.
    let ok = format!("Basic  {} ", b64(format!("ada@example.com:{PASSWORD}").as_bytes()));
    let r = with_authorization(&t, "POST", "/auth/jwt/create/", ok.as_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let colon = format!("Basic {}", b64(format!("ada@example.com:{PASSWORD}:").as_bytes()));
    let r = with_authorization(&t, "POST", "/auth/jwt/create/", colon.as_bytes()).await;
    assert_eq!(r.body["code"], "no_active_account");
}

/// The `users` sample event with another raw query string, as API Gateway would pass it on.
fn users_event(raw_query: &str) -> lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest {
    let path = format!("{}/../events/users.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["rawQueryString"] = json!(raw_query);
    serde_json::from_value(event).unwrap()
}

#[test]
fn lambda_http_itself_panics_on_a_raw_quote_in_the_query_string() {
    // Why gatehouse_functions::boot::request exists: left to lambda_http, this event aborts the
    // Lambda container (panic = "abort"). If this test starts failing, lambda_http has learnt to
    // cope and the guard can go.
    let event = users_event("limit=1\"");
    let converted = std::panic::catch_unwind(|| {
        let _: lambda_http::Request = lambda_http::request::LambdaRequest::ApiGatewayV2(event).into();
    });
    assert!(converted.is_err(), "lambda_http no longer panics on a raw quote");
}

#[tokio::test]
async fn odd_query_strings_and_headers_from_api_gateway_get_a_400_or_an_answer_never_a_crash() {
    use gatehouse_functions::boot;
    let t = spawn_app(&[]);
    let (access, _) = t.active_user("ada@example.com").await;
    let bearer = format!("Bearer {access}");
    let answer = |mut event: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest| {
        event.headers.insert("authorization", HeaderValue::from_str(&bearer).unwrap());
        let app = t.app.clone();
        async move {
            let r = boot::invoke(event, None, |req| gatehouse_functions::handlers::users::handler(app, req)).await;
            let body: Value = serde_json::from_str(r.body.as_ref().map_or("null", |b| match b {
                Body::Text(s) => s.as_str(),
                _ => "null",
            }))
            .unwrap();
            (r.status_code, body)
        }
    };
    for raw in ["limit=1\"", "email=<script>", "limit=1>", "email=a b", "limit=1\"<> x%"] {
        let (status, body) = answer(users_event(raw)).await;
        assert_eq!((status, body), (400, json!({"detail": "Malformed query string.", "code": "parse_error"})), "{raw}");
    }
    // What the http crate accepts goes through: a lone %, a non-ASCII byte sequence, encoded junk.
    for raw in ["email=50%", "a={b}|c^d`", "email=%22%3C%3E", "limit=1&limit=2", "", "email=caf%C3%A9"] {
        let (status, body) = answer(users_event(raw)).await;
        assert_eq!(status, 200, "{raw}: {body}");
    }
    // A Host header or x-forwarded-proto that makes no URL: the API's domain name and https.
    let mut event = users_event("");
    event.headers.insert("host", HeaderValue::from_static("bad host:99999"));
    event.headers.insert("x-forwarded-proto", HeaderValue::from_static("no such scheme"));
    assert_eq!(answer(event).await.0, 200);
    // A base64 body that is not base64.
    let mut event = users_event("");
    event.is_base64_encoded = true;
    event.body = Some("***".into());
    assert_eq!(answer(event).await.0, 400);
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_overruns_its_deadline_answers_503_in_time() {
    use gatehouse_functions::boot;
    let started = tokio::time::Instant::now();
    let budget = Some(std::time::Duration::from_millis(9_500));
    let r = boot::invoke(users_event(""), budget, |_req| async {
        // A DynamoDB or SES call that never answers.
        tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
        gatehouse_functions::http::no_content()
    })
    .await;
    assert_eq!(started.elapsed(), std::time::Duration::from_millis(9_500));
    assert_eq!(r.status_code, 503);
    assert_eq!(r.headers["retry-after"], "1");
    let body = match r.body {
        Some(Body::Text(s)) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"detail": "Service temporarily unavailable, try again soon.", "code": "service_unavailable"})
    );
    // Within budget the handler's own answer goes out.
    let r = boot::invoke(users_event(""), budget, |_req| async { gatehouse_functions::http::no_content() }).await;
    assert_eq!(r.status_code, 204);
}

#[tokio::test]
async fn percent_plus_one_is_no_escape_in_a_form_body_a_query_string_or_a_path_parameter() {
    // `u8::from_str_radix("+1", 16)` is 1, but `%+1` is not an escape: it is kept as it is, as
    // Django keeps a malformed escape, `+` being a space in forms and queries and itself in paths.
    let t = spawn_app(&[]);
    let form = format!("email=ada%40example.com&password={}&first_name=a%+1b", PASSWORD.replace(' ', "+"));
    let r = post_bytes(&t, "/auth/users/", FORM, form.into_bytes()).await;
    assert_eq!((r.status, r.body["first_name"].clone()), (StatusCode::CREATED, json!("a% 1b")), "{}", r.body);
    assert_eq!(t.user("ada@example.com").await.first_name, "a% 1b");

    let (admin, _) = t.active_user("admin@example.com").await;
    t.make_staff_with("admin@example.com", &["auth.add_group", "auth.view_group"]).await;
    // The filter reads `% 1`, which is no address: nobody, not a byte 0x01 nor an error.
    let r = t.call("GET", "/auth/users/?email=%+1", None, Some(&admin)).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!({"results": [], "next": null})));
    let r = t.call("GET", "/auth/users/?email=%+1ada%40example.com", None, Some(&admin)).await;
    assert_eq!((r.status, r.body["results"].clone()), (StatusCode::OK, json!([])), "{}", r.body);
    // `% 1` is no number: the field error a bad limit gets.
    let r = t.call("GET", "/auth/users/?limit=%+1", None, Some(&admin)).await;
    assert_refused(&r, "limit=%+1");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["limit"].is_array(), "{}", r.body);

    // A group named `%+1` is found at `/groups/%+1`: the path parameter is `%+1`, exactly.
    let r = t.call("POST", "/auth/admin/groups/", Some(json!({"name": "%+1"})), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for path in ["/auth/admin/groups/%+1", "/auth/admin/groups/%+1/", "/auth/admin/groups/%25%2B1"] {
        let r = t.call("GET", path, None, Some(&admin)).await;
        assert_eq!((r.status, r.body["name"].clone()), (StatusCode::OK, json!("%+1")), "{path}: {}", r.body);
    }
    // A longer name is another group: a DRF-shaped 404, not a 500.
    let r = t.call("GET", "/auth/admin/groups/%+1x", None, Some(&admin)).await;
    assert_refused(&r, "/auth/admin/groups/%+1x");
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
