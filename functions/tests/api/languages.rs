//! Languages: `Accept-Language` picks the language of a response's messages (field names and
//! codes never change), the language of registration is stored on the account and every email
//! to it is written in it, the user may change it, and `LANGUAGE_CODE` is the default.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{reply, request, settings, spawn_app, TestApp, PASSWORD};
use gatehouse_core::ports::EmailKind;
use lambda_http::http::StatusCode;
use lambda_http::Body;
use serde_json::{json, Value};

/// A JSON request with `Accept-Language: lang` (and a bearer token).
async fn call_in(
    t: &TestApp,
    lang: &str,
    method: &str,
    path: &str,
    body: Value,
    bearer: Option<&str>,
) -> common::Reply {
    let auth = bearer.map(|b| format!("Bearer {b}"));
    let mut headers = vec![("content-type", "application/json"), ("accept-language", lang)];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    reply(common::dispatch(&t.app, request(method, path, &headers, Body::Text(body.to_string()))).await)
}

fn header<'a>(r: &'a common::Reply, name: &str) -> Vec<&'a str> {
    r.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

#[tokio::test]
async fn field_errors_speak_the_callers_language_and_keep_their_fields_and_codes() {
    let t = spawn_app(&[]);
    let body = json!({"email": "not-an-address", "password": "1234"});
    let r = call_in(&t, "fr-CA,fr;q=0.9,en;q=0.5", "POST", "/auth/users/", body.clone(), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({
            "email": ["Saisissez une adresse e-mail valide."],
            "password": [
                "Ce mot de passe est trop court. Il doit contenir au minimum 8 caractères.",
                "Ce mot de passe est trop courant.",
                "Ce mot de passe est entièrement numérique."
            ]
        })
    );
    assert_eq!(header(&r, "content-language"), ["fr"]);
    assert!(header(&r, "vary").contains(&"Accept-Language"), "{:?}", r.headers);
    // The same request in English, and in a language Gatehouse does not speak: English.
    for lang in ["en-GB", "de-DE, *;q=0.1"] {
        let r = call_in(&t, lang, "POST", "/auth/users/", body.clone(), None).await;
        assert_eq!(r.body["email"], json!(["Enter a valid email address."]), "{lang}");
        assert_eq!(header(&r, "content-language"), ["en"], "{lang}");
    }
    // `detail` translated, `code` kept: frontends match on codes.
    let r =
        call_in(&t, "fr", "POST", "/auth/jwt/create/", json!({"email": "x@example.com", "password": "wrong"}), None)
            .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.body,
        json!({"detail": "Aucun compte actif n’a été trouvé avec les identifiants fournis", "code": "no_active_account"})
    );
    // Edge errors too, with their dynamic part carried over.
    let req = request(
        "POST",
        "/auth/users/",
        &[("content-type", "text/plain"), ("accept-language", "fr")],
        Body::Text("x".into()),
    );
    let r = reply(common::dispatch(&t.app, req).await);
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.body["detail"], "Type de média « text/plain » non supporté dans la requête.");
    let r = call_in(&t, "fr", "GET", "/auth/nowhere/", json!({}), None).await;
    assert_eq!(r.body, json!({"detail": "Pas trouvé.", "code": "not_found"}));
}

#[tokio::test]
async fn the_language_of_registration_is_kept_for_every_later_email() {
    let t = spawn_app(&[]);
    let r = call_in(&t, "fr", "POST", "/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD}), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(t.user("ada@example.com").await.language.as_deref(), Some("fr"));
    let m = t.last_mail("ada@example.com");
    assert_eq!(m.kind, EmailKind::Activation);
    assert_eq!(m.subject, "Activez votre compte Gatehouse");
    assert!(m.text.starts_with("Bonjour ada@example.com,\n\nBienvenue sur Gatehouse."), "{}", m.text);
    assert!(m.text.contains(m.link.as_deref().unwrap()), "the link is still in it: {}", m.text);
    assert!(m.html.contains(">Activer mon compte</a>"), "{}", m.html);
    assert!(!m.text.contains("[[") && !m.html.contains("[["), "no marker is left");
    // A later email, asked for in another language (or none): still the account's language.
    let r = t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let m = t.last_mail("ada@example.com");
    assert_eq!(m.kind, EmailKind::PasswordReset);
    assert_eq!(m.subject, "Réinitialisez votre mot de passe Gatehouse");
    // English registration: English emails, nothing stored (LANGUAGE_CODE decides).
    t.register("bob@example.com").await;
    assert_eq!(t.user("bob@example.com").await.language, None);
    assert_eq!(t.last_mail("bob@example.com").subject, "Activate your Gatehouse account");
}

#[tokio::test]
async fn a_user_changes_their_language_and_only_to_one_gatehouse_speaks() {
    let t = spawn_app(&[("PROFILE_UPDATED_EMAIL", "true")]);
    let (access, _) = t.active_user("ada@example.com").await;
    let me = t.call("GET", "/auth/users/me/", None, Some(&access)).await;
    assert_eq!(me.body["language"], Value::Null);
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"language": "xx"})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, json!({"language": ["\"xx\" is not a valid choice."]}));
    let r = call_in(&t, "fr", "PATCH", "/auth/users/me/", json!({"language": "xx"}), Some(&access)).await;
    assert_eq!(r.body, json!({"language": ["« xx » n’est pas un choix valide."]}));
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"language": "FR"})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["language"], "fr");
    // The notice of that very change is already in French, and names the field.
    let m = t.last_mail("ada@example.com");
    assert_eq!(m.kind, EmailKind::ProfileUpdated);
    assert_eq!(m.subject, "Votre profil Gatehouse a été modifié");
    assert!(m.text.contains("vient d’être modifié : language."), "{}", m.text);
    // "" goes back to LANGUAGE_CODE.
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"language": ""})), Some(&access)).await;
    assert_eq!(r.body["language"], Value::Null);
    assert_eq!(t.user("ada@example.com").await.language, None);
}

#[tokio::test]
async fn language_code_is_the_default_of_responses_and_emails() {
    let t = spawn_app(&[("LANGUAGE_CODE", "fr")]);
    let r = t.post("/auth/users/", json!({"email": "ada@example.com"})).await;
    assert_eq!(r.body, json!({"password": ["Ce champ est obligatoire."]}));
    assert_eq!(header(&r, "content-language"), ["fr"]);
    let r = call_in(&t, "en", "POST", "/auth/users/", json!({"email": "ada@example.com"}), None).await;
    assert_eq!(r.body, json!({"password": ["This field is required."]}));
    // An account with no language stored gets LANGUAGE_CODE's emails.
    t.register("bob@example.com").await;
    assert_eq!(t.user("bob@example.com").await.language, None, "a default is not a choice: nothing stored");
    assert_eq!(t.last_mail("bob@example.com").subject, "Activez votre compte Gatehouse");
    // Anything Gatehouse does not speak refuses the start, naming the variable.
    for bad in ["xx", "english", "fr;q=1"] {
        let mut vars = std::collections::HashMap::new();
        for (k, v) in [
            ("EMAIL_FROM", "no-reply@gatehouse.test"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SIGNING_KEY", "test-secret-test-secret-test-secret!"),
            ("LANGUAGE_CODE", bad),
        ] {
            vars.insert(k.to_owned(), v.to_owned());
        }
        let e = gatehouse_core::Settings::from_map(&vars).unwrap_err();
        assert!(e.to_string().contains("LANGUAGE_CODE"), "{bad}: {e}");
    }
    let _ = settings(&[("LANGUAGE_CODE", "en")]);
}

#[tokio::test]
async fn an_admin_creating_a_user_gives_it_no_language_of_their_own() {
    let t = spawn_app(&[]);
    t.active_user("root@example.com").await;
    t.make_superuser("root@example.com").await;
    let (root, _) = t.login("root@example.com").await;
    let body = json!({"email": "new@example.com", "password": PASSWORD});
    let r = call_in(&t, "fr", "POST", "/auth/admin/users/", body, Some(&root)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(t.user("new@example.com").await.language, None);
    assert_eq!(t.last_mail("new@example.com").subject, "Activate your Gatehouse account");
    // Unless the admin names one.
    let body = json!({"email": "nouveau@example.com", "password": PASSWORD, "language": "fr"});
    let r = t.call("POST", "/auth/admin/users/", Some(body), Some(&root)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(t.user("nouveau@example.com").await.language.as_deref(), Some("fr"));
    assert_eq!(t.last_mail("nouveau@example.com").subject, "Activez votre compte Gatehouse");
}

#[tokio::test]
async fn every_builtin_email_is_fully_translated() {
    use gatehouse_core::mail::{preview, KINDS};
    let s = settings(&[("LANGUAGE_CODE", "fr")]);
    let en = settings(&[]);
    for kind in KINDS {
        let fr = preview(&s, kind);
        let english = preview(&en, kind);
        for (part, fr_text, en_text) in [
            ("subject", &fr.subject, &english.subject),
            ("text", &fr.text, &english.text),
            ("html", &fr.html, &english.html),
        ] {
            assert!(!fr_text.contains("[[") && !fr_text.contains("]]"), "{kind:?} {part}: {fr_text}");
            assert!(!en_text.contains("[["), "{kind:?} {part}: {en_text}");
            // No English paragraph is left in the French email.
            for english_line in ["Hello ", "The link works once", "team"] {
                assert!(!fr_text.contains(english_line), "{kind:?} {part} keeps {english_line:?}: {fr_text}");
            }
        }
        assert!(fr.text.contains("L’équipe Gatehouse"), "{kind:?}: {}", fr.text);
    }
}

#[tokio::test]
async fn the_language_is_stored_and_cleared_in_dynamodb() {
    let t = common::spawn_app_dynamo(&[("SEND_ACTIVATION_EMAIL", "false")]).await;
    let body = json!({"email": "ada@example.com", "password": PASSWORD});
    let r = call_in(&t, "fr-FR", "POST", "/auth/users/", body, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(t.user("ada@example.com").await.language.as_deref(), Some("fr"));
    let (access, _) = t.login("ada@example.com").await;
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"language": "en"})), Some(&access)).await;
    assert_eq!(r.body["language"], "en", "{}", r.body);
    assert_eq!(t.user("ada@example.com").await.language.as_deref(), Some("en"));
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"language": ""})), Some(&access)).await;
    assert_eq!(r.body["language"], Value::Null, "{}", r.body);
    assert_eq!(t.user("ada@example.com").await.language, None);
}
