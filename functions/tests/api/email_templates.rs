//! `EMAIL_TEMPLATES_DIR`: a team's djoser-style email templates (here `examples/djoser-email/`)
//! replace the built-in ones part by part, with the real link, uid and token; user data is escaped
//! in the HTML part only; a kind without a file keeps the built-in template; a subject stays on
//! one line whatever the user's name holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{spawn_app, TestApp, PASSWORD};
use gatehouse_core::ports::EmailKind;
use gatehouse_core::Settings;
use lambda_http::http::StatusCode;
use serde_json::json;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/djoser-email");

fn app(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("EMAIL_TEMPLATES_DIR", DIR)];
    vars.extend_from_slice(extra);
    spawn_app(&vars)
}

async fn register(t: &TestApp, email: &str, first_name: &str) -> (String, String) {
    let body = json!({"email": email, "password": PASSWORD, "first_name": first_name});
    let r = t.post("/auth/users/", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    t.link_parts(email)
}

#[tokio::test]
async fn the_activation_email_is_the_overrides_with_the_real_link_uid_and_token() {
    let t = app(&[]);
    let (uid, token) = register(&t, "ada@example.com", "Ada").await;
    let m = t.last_mail("ada@example.com");
    assert_eq!(m.kind, EmailKind::Activation);
    let link = format!("https://app.example.com/activate/{uid}/{token}");
    assert_eq!(m.link.as_deref(), Some(link.as_str()));
    assert_eq!(m.subject, "Ada, confirm your Gatehouse sign-up");
    assert!(
        m.text.starts_with(
            "Hi Ada,\n\nThanks for signing up to Gatehouse. One step is left: confirm that this address is yours.\n"
        ),
        "{}",
        m.text
    );
    assert!(m.text.contains(&format!("Confirm your account here:\n{link}\n")), "{}", m.text);
    assert!(m.text.contains(&format!("Your account number is {uid}; your one-time key is {token}.")), "{}", m.text);
    assert!(m.text.ends_with("Cheers, the Gatehouse crew"), "{}", m.text);
    assert!(m.html.starts_with("<p>Hi Ada,</p>"), "{}", m.html);
    assert!(m.html.contains(&format!("<a href=\"{link}\">Confirm my account</a>")), "{}", m.html);
    // The link works as any other.
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

#[tokio::test]
async fn the_password_reset_email_is_the_overrides_too() {
    let t = app(&[]);
    t.active_user("ada@example.com").await;
    let r = t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let m = t.last_mail("ada@example.com");
    assert_eq!(m.kind, EmailKind::PasswordReset);
    assert_eq!(m.subject, "A new password for Gatehouse");
    let link = m.link.clone().unwrap();
    assert!(link.starts_with("https://app.example.com/password/reset/confirm/"), "{link}");
    assert!(m.text.contains(&format!("Choose it on this page:\n{link}\n")), "{}", m.text);
    assert!(m.html.contains(&format!("<a href=\"{link}\">Choose a new password</a>")), "{}", m.html);
}

#[tokio::test]
async fn markup_in_a_name_is_escaped_in_html_and_kept_in_text() {
    let t = app(&[]);
    register(&t, "ada@example.com", "<b>Ada</b>").await;
    let m = t.last_mail("ada@example.com");
    assert!(m.html.starts_with("<p>Hi &lt;b&gt;Ada&lt;&#x2f;b&gt;,</p>"), "{}", m.html);
    assert!(!m.html.contains("<b>"), "{}", m.html);
    assert!(m.text.starts_with("Hi <b>Ada</b>,\n"), "{}", m.text);
    assert_eq!(m.subject, "<b>Ada</b>, confirm your Gatehouse sign-up", "a subject is text, not HTML");
}

#[tokio::test]
async fn a_kind_without_an_override_keeps_the_built_in_template() {
    let t = app(&[("SEND_CONFIRMATION_EMAIL", "true")]);
    let (uid, token) = register(&t, "ada@example.com", "Ada").await;
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let m = t.last_mail("ada@example.com");
    assert_eq!(m.kind, EmailKind::Confirmation);
    assert_eq!(m.subject, "Your Gatehouse account is active");
    assert!(m.text.starts_with("Hello Ada,"), "{}", m.text);
    assert!(m.html.contains("Hello Ada,"), "{}", m.html);
}

#[tokio::test]
async fn a_name_with_a_newline_leaves_the_subject_on_one_line() {
    let t = app(&[]);
    register(&t, "ada@example.com", "Ada\r\nBcc: evil@example.net").await;
    let m = t.last_mail("ada@example.com");
    assert_eq!(m.subject, "Ada Bcc: evil@example.net, confirm your Gatehouse sign-up");
    assert!(!m.subject.chars().any(char::is_control), "{:?}", m.subject);
}

#[test]
fn a_broken_folder_is_refused_at_start_naming_the_setting() {
    let base = [
        ("EMAIL_FROM", "no-reply@gatehouse.test"),
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SIGNING_KEY", "test-secret-test-secret-test-secret!"),
    ];
    let dir = std::env::temp_dir().join(format!("gatehouse-email-templates-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("email")).unwrap();
    std::fs::write(dir.join("email/activation.html"), "{% block subject %}\n{{ nope }}{% endblock %}").unwrap();
    let mut vars: std::collections::HashMap<String, String> =
        base.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    vars.insert("EMAIL_TEMPLATES_DIR".into(), dir.display().to_string());
    let e = Settings::from_map(&vars).err().unwrap();
    assert_eq!(e.var, "EMAIL_TEMPLATES_DIR");
    assert!(e.reason.starts_with("email/activation.html line 2: `nope`"), "{}", e.reason);
    std::fs::remove_dir_all(&dir).unwrap();
    // The example folder itself loads.
    vars.insert("EMAIL_TEMPLATES_DIR".into(), DIR.into());
    let s = Settings::from_map(&vars).unwrap();
    let files: Vec<&str> = s.email_templates.files().into_iter().map(|(f, _)| f).collect();
    assert_eq!(files, ["email/activation.html", "email/password_reset.html"]);
}
