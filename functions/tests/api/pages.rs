//! The account pages (`pages` function) and the opt-in refresh-token cookie (`JWT_COOKIE`) they
//! sign in with. What the pages do in a browser is tested in a real one: tools/browser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{dispatch, request, spawn_app, PASSWORD};
use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::Body;
use serde_json::{json, Value};

/// A page: status, headers and the HTML.
async fn page(t: &common::TestApp, path: &str, lang: &str) -> (StatusCode, HeaderMap, String) {
    let resp = dispatch(&t.app, request("GET", path, &[("accept-language", lang)], Body::Empty)).await;
    let text = String::from_utf8_lossy(resp.body().as_ref()).into_owned();
    (resp.status(), resp.headers().clone(), text)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

const PAGES: [&str; 8] = [
    "/login",
    "/account/",
    "/register",
    "/password/reset/",
    "/activate/MQ/abc-def",
    "/password/reset/confirm/MQ/abc-def/",
    "/email/change/confirm/MQ/abc-def",
    "/login/",
];

#[tokio::test]
async fn every_page_renders_in_every_language_under_strict_headers() {
    let t = spawn_app(&[]);
    for lang in ["en", "fr-FR"] {
        for path in PAGES {
            let (status, h, html) = page(&t, path, lang).await;
            assert_eq!(status, StatusCode::OK, "{path} {lang}: {html}");
            assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
            let csp = header(&h, "content-security-policy");
            for part in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
                assert!(csp.contains(part), "{path}: {csp}");
            }
            assert!(!csp.contains("unsafe") && !csp.contains("http"), "{path}: {csp}");
            assert_eq!(header(&h, "referrer-policy"), "no-referrer");
            assert_eq!(header(&h, "cache-control"), "no-store");
            assert_eq!(header(&h, "x-content-type-options"), "nosniff");
            let code = &lang[..2];
            assert_eq!(header(&h, "content-language"), code);
            assert!(html.starts_with("<!doctype html>"), "{path}");
            assert!(html.contains(&format!("<html lang=\"{code}\"")), "{path} {lang}");
            // Nothing inline for the CSP to refuse: no inline script, style or handler.
            assert!(!html.contains(" style=") && !html.contains("<style") && !html.contains(" onclick="), "{path}");
            for script in html.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap();
                assert!(tag.contains(" src=") || tag.contains("type=\"application/json\""), "{path}: <script{tag}>");
            }
        }
    }
}

#[tokio::test]
async fn a_link_page_puts_its_uid_and_token_in_the_page_escaped() {
    let t = spawn_app(&[]);
    let (status, _, html) = page(&t, "/activate/%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E/tok-en", "en").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("\"><script>alert(1)"), "{html}");
    assert!(html.contains("tok-en"));
}

#[tokio::test]
async fn opening_an_emailed_link_spends_nothing_until_the_click() {
    let t = spawn_app(&[]);
    let (uid, token) = t.register("ada@example.com").await;
    // A mail scanner fetches the link, twice.
    for _ in 0..2 {
        let (status, _, html) = page(&t, &format!("/activate/{uid}/{token}"), "en").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(&token));
    }
    assert!(!t.user("ada@example.com").await.is_active);
    // The click (the page's script posting the link's parts) activates.
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(t.user("ada@example.com").await.is_active);
}

#[tokio::test]
async fn assets_the_theme_and_the_root() {
    let t = spawn_app(&[("BRAND_ACCENT_COLOR", "#FDE047"), ("BRAND_LOGO_URL", "https://cdn.example.com/logo.svg")]);
    let (status, h, js) = page(&t, "/pages/app.js", "en").await;
    assert_eq!((status, header(&h, "content-type")), (StatusCode::OK, "text/javascript; charset=utf-8"));
    assert_eq!(js, gatehouse_functions::pages::SCRIPT);
    let (status, h, _) = page(&t, "/pages/app.css", "en").await;
    assert_eq!((status, header(&h, "content-type")), (StatusCode::OK, "text/css; charset=utf-8"));
    // A light accent gets dark text on it; a dark one white.
    let (_, _, theme) = page(&t, "/pages/theme.css", "en").await;
    assert_eq!(theme, ":root { --accent: #fde047; --on-accent: #111111; }\n");
    assert_eq!(gatehouse_functions::pages::theme("#1d4ed8"), ":root { --accent: #1d4ed8; --on-accent: #ffffff; }\n");
    let (status, _, _) = page(&t, "/pages/../Cargo.toml", "en").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = page(&t, "/pages/app.json", "en").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The logo's origin, and only it, joins img-src.
    let (_, h, html) = page(&t, "/login", "en").await;
    assert!(header(&h, "content-security-policy").contains("img-src 'self' data: https://cdn.example.com;"));
    assert!(html.contains("https://cdn.example.com/logo.svg"));
    let (status, h, _) = page(&t, "/", "en").await;
    assert_eq!((status, header(&h, "location")), (StatusCode::FOUND, "/account"));
}

#[test]
fn branding_settings_are_checked_at_start() {
    let try_with = |k: &str, v: &str| {
        let mut vars: std::collections::HashMap<String, String> = [
            ("EMAIL_FROM", "no-reply@gatehouse.test"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SIGNING_KEY", "test-secret-test-secret-test-secret!"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.insert(k.to_owned(), v.to_owned());
        gatehouse_core::config::Settings::from_map(&vars).map_err(|e| e.to_string())
    };
    for bad in ["http://cdn.example.com/x.png", "//evil.example/x.png", "javascript:alert(1)", "/a\"b"] {
        assert!(try_with("BRAND_LOGO_URL", bad).unwrap_err().contains("BRAND_LOGO_URL"), "{bad}");
    }
    assert_eq!(
        try_with("BRAND_LOGO_URL", "/static/logo.png").unwrap().brand_logo_url.as_deref(),
        Some("/static/logo.png")
    );
    for bad in ["red", "#12345", "#ggg", "1d4ed8"] {
        assert!(try_with("BRAND_ACCENT_COLOR", bad).unwrap_err().contains("BRAND_ACCENT_COLOR"), "{bad}");
    }
    assert_eq!(try_with("BRAND_ACCENT_COLOR", "#ABC").unwrap().brand_accent_color, "#aabbcc");
    assert!(try_with("JWT_COOKIE", "maybe").unwrap_err().contains("JWT_COOKIE"));
    assert!(!try_with("SITE_NAME", "x").unwrap().jwt_cookie, "off by default");
}

// ------------------------------------------------------------------ the refresh cookie

const COOKIE: (&str, &str) = ("x-gatehouse-cookie", "1");

/// A JSON POST with extra headers.
async fn post(t: &common::TestApp, path: &str, body: Value, headers: &[(&str, &str)]) -> common::Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    t.raw("POST", path, &all, Body::Text(body.to_string())).await
}

/// The refresh token a response set as the cookie, and the cookie's attributes.
fn set_cookie(r: &common::Reply) -> (String, String) {
    let all: Vec<&str> = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(all.len(), 1, "{all:?}");
    let (pair, attributes) = all[0].split_once("; ").unwrap();
    (pair.strip_prefix("gatehouse_refresh=").unwrap().to_owned(), attributes.to_owned())
}

async fn sign_in(t: &common::TestApp, headers: &[(&str, &str)]) -> common::Reply {
    post(t, "/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD}), headers).await
}

#[tokio::test]
async fn without_the_setting_or_the_header_nothing_changes_for_djoser_clients() {
    for (settings, headers) in [(&[][..], &[COOKIE][..]), (&[("JWT_COOKIE", "true")][..], &[][..])] {
        let t = spawn_app(settings);
        t.active_user("ada@example.com").await;
        let r = sign_in(&t, headers).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body["refresh"].is_string() && r.headers.get("set-cookie").is_none(), "{settings:?} {headers:?}");
        // A cookie sent anyway is not read: the body's field is required as ever.
        let cookie = format!("gatehouse_refresh={}", r.body["refresh"].as_str().unwrap());
        let mut h = vec![("cookie", cookie.as_str())];
        h.extend_from_slice(headers);
        let r = post(&t, "/auth/jwt/refresh/", json!({}), &h).await;
        if settings.is_empty() {
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
            assert_eq!(r.body, json!({"refresh": ["This field is required."]}));
        } else {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "a cookie without the header: {}", r.body);
        }
    }
}

#[tokio::test]
async fn the_refresh_token_lives_in_an_http_only_cookie_and_rotates_there() {
    let t = spawn_app(&[("JWT_COOKIE", "true")]);
    t.active_user("ada@example.com").await;
    let r = sign_in(&t, &[COOKIE]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.as_object().unwrap().keys().collect::<Vec<_>>(), vec!["access"], "no refresh in the body");
    let (first, attributes) = set_cookie(&r);
    assert_eq!(attributes, "Path=/auth/jwt; Max-Age=86400; HttpOnly; Secure; SameSite=Strict");

    let cookie = format!("theme=dark; gatehouse_refresh={first}");
    let r = post(&t, "/auth/jwt/refresh/", json!({}), &[COOKIE, ("cookie", cookie.as_str())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["access"].is_string() && r.body.get("refresh").is_none());
    let (second, _) = set_cookie(&r);
    assert_ne!(first, second, "rotated");

    // The replaced token replayed past the grace window ends the session, cookie or not.
    t.clock.advance(2);
    let replay = post(&t, "/auth/jwt/refresh/", json!({}), &[COOKIE, ("cookie", cookie.as_str())]).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    let cookie = format!("gatehouse_refresh={second}");
    let r = post(&t, "/auth/jwt/refresh/", json!({}), &[COOKIE, ("cookie", cookie.as_str())]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the whole session was revoked");
}

#[tokio::test]
async fn a_cookie_without_the_header_is_refused_as_cross_site() {
    let t = spawn_app(&[("JWT_COOKIE", "true")]);
    t.active_user("ada@example.com").await;
    let (token, _) = set_cookie(&sign_in(&t, &[COOKIE]).await);
    let cookie = format!("gatehouse_refresh={token}");
    // What a cross-site form can send: the cookie (were SameSite to fail), a form body, no header.
    for path in ["/auth/jwt/refresh/", "/auth/jwt/blacklist/"] {
        let r = t
            .raw(
                "POST",
                path,
                &[("content-type", "application/x-www-form-urlencoded"), ("cookie", cookie.as_str())],
                Body::Text(String::new()),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
        assert_eq!(r.body["code"], "csrf_failed");
        assert!(r.headers.get("set-cookie").is_none());
    }
    // Nothing happened: the token still refreshes, with the header.
    let r = post(&t, "/auth/jwt/refresh/", json!({}), &[COOKIE, ("cookie", cookie.as_str())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn logout_reads_the_cookie_revokes_the_session_and_removes_the_cookie() {
    let t = spawn_app(&[("JWT_COOKIE", "true")]);
    t.active_user("ada@example.com").await;
    let (token, _) = set_cookie(&sign_in(&t, &[COOKIE]).await);
    let cookie = format!("gatehouse_refresh={token}");
    let r = post(&t, "/auth/jwt/blacklist/", json!({}), &[COOKIE, ("cookie", cookie.as_str())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (value, attributes) = set_cookie(&r);
    assert_eq!(
        (value.as_str(), attributes.as_str()),
        ("", "Path=/auth/jwt; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
    );
    let r = post(&t, "/auth/jwt/refresh/", json!({"refresh": token}), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

#[tokio::test]
async fn activation_with_login_after_activation_signs_in_through_the_cookie() {
    let t = spawn_app(&[("JWT_COOKIE", "true"), ("LOGIN_AFTER_ACTIVATION", "true")]);
    let (uid, token) = t.register("ada@example.com").await;
    let r = post(&t, "/auth/users/activation/", json!({"uid": uid, "token": token}), &[COOKIE]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("refresh").is_none());
    let (refresh, _) = set_cookie(&r);
    let r = post(&t, "/auth/jwt/refresh/", json!({"refresh": refresh}), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "the cookie holds a working refresh token: {}", r.body);
}

#[tokio::test]
async fn without_a_frontend_the_emailed_links_land_on_the_api_own_pages() {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let t = spawn_app(&[("FRONTEND_DOMAIN", "")]);
    let api = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com";
    // A request as API Gateway hands it over, with the domain it came to.
    let at_api = |method: &str, path: &str, body: Body| {
        let mut ctx = lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
        ctx.http.source_ip = Some(common::IP.to_owned());
        ctx.domain_name = Some(api.to_owned());
        lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(body)
            .unwrap()
            .with_request_context(RequestContext::ApiGatewayV2(ctx))
    };
    let register = json!({"email": "ada@example.com", "password": PASSWORD}).to_string();
    assert_eq!(
        dispatch(&t.app, at_api("POST", "/auth/users/", Body::Text(register))).await.status(),
        StatusCode::CREATED
    );
    let link = t.mail.last_to("ada@example.com").and_then(|m| m.link).unwrap();
    assert!(link.starts_with(&format!("https://{api}/activate/")), "{link}");
    // The page it opens is served by the same API, passkeys on for the API's own origin.
    let path = link.strip_prefix(&format!("https://{api}")).unwrap();
    let resp = dispatch(&t.app, at_api("GET", path, Body::Empty)).await;
    let html = String::from_utf8_lossy(resp.body().as_ref()).into_owned();
    assert_eq!(resp.status(), StatusCode::OK, "{html}");
    assert!(html.contains("\"passkeys\": true"), "{html}");
    let r =
        common::reply(dispatch(&t.app, at_api("POST", "/auth/webauthn/login/options/", Body::Text("{}".into()))).await);
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["publicKey"]["rpId"], api);
}

#[tokio::test]
async fn ending_every_session_or_the_account_removes_the_cookie() {
    let t = spawn_app(&[("JWT_COOKIE", "true")]);
    t.active_user("ada@example.com").await;
    let access = sign_in(&t, &[COOKIE]).await.body["access"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let r = t.raw("DELETE", "/auth/sessions/", &[COOKIE, ("authorization", bearer.as_str())], Body::Empty).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(set_cookie(&r), (String::new(), "Path=/auth/jwt; Max-Age=0; HttpOnly; Secure; SameSite=Strict".into()));
    // Without the header (a djoser client), nothing about cookies.
    t.clock.advance(1);
    let access = sign_in(&t, &[]).await.body["access"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let r = t.raw("DELETE", "/auth/sessions/", &[("authorization", bearer.as_str())], Body::Empty).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.headers.get("set-cookie").is_none());

    t.clock.advance(1);
    let access = sign_in(&t, &[COOKIE]).await.body["access"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let r = t
        .raw(
            "DELETE",
            "/auth/users/me/",
            &[COOKIE, ("authorization", bearer.as_str()), ("content-type", "application/json")],
            Body::Text(json!({"current_password": PASSWORD}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(set_cookie(&r).1, "Path=/auth/jwt; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
}

#[tokio::test]
async fn the_retype_settings_add_the_second_password_field() {
    let retype = [
        ("USER_CREATE_PASSWORD_RETYPE", "true"),
        ("SET_PASSWORD_RETYPE", "true"),
        ("PASSWORD_RESET_CONFIRM_RETYPE", "true"),
    ];
    for (settings, shown) in [(&retype[..], true), (&[][..], false)] {
        let t = spawn_app(settings);
        for (path, field) in [
            ("/register", "re_password"),
            ("/account", "re_new_password"),
            ("/password/reset/confirm/MQ/x", "re_new_password"),
        ] {
            for lang in ["en", "fr"] {
                let (status, _, html) = page(&t, path, lang).await;
                assert_eq!(status, StatusCode::OK, "{html}");
                assert_eq!(html.contains(&format!("<label for=\"{field}\">")), shown, "{path} {lang}");
                assert_eq!(html.contains(&format!("id=\"{field}\" name=\"{field}\"")), shown, "{path} {lang}");
            }
        }
    }
}

// ------------------------------------------------------------------ sign-in providers

/// The page config the script reads (`#page-config`).
fn page_config(html: &str) -> Value {
    let start = html.find("<script type=\"application/json\" id=\"page-config\">").expect("a page config");
    let rest = &html[start..];
    let json = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(json).unwrap()
}

const PROVIDERS: &str = r#"{
    "github": {"client_id": "gh-client"},
    "corp": {"type": "oidc", "issuer": "https://id.example.com", "client_id": "gatehouse", "label": "Corp <b>SSO</b> & \"Co\""}
}"#;

#[tokio::test]
async fn the_login_page_has_a_button_per_configured_provider_and_none_without() {
    let t = spawn_app(&[]);
    for path in ["/login", "/account"] {
        let (status, _, html) = page(&t, path, "en").await;
        assert_eq!(status, StatusCode::OK);
        assert!(!html.contains("provider-login") && !html.contains("identities-section"), "{path}: {html}");
        assert_eq!(page_config(&html)["providers"], json!([]));
    }

    let t = spawn_app(&[("SOCIAL_PROVIDERS", PROVIDERS)]);
    for (lang, continue_with) in [("en", "Continue with"), ("fr", "Continuer avec")] {
        // /account signed out shows the same sign-in, and lists the linked providers signed in.
        for path in ["/login", "/account", "/login/"] {
            let (status, _, html) = page(&t, path, lang).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            // In the order of the settings (by name), each with its label, escaped.
            let config = page_config(&html);
            assert_eq!(
                config["providers"],
                json!([{"name": "corp", "label": "Corp <b>SSO</b> & \"Co\""}, {"name": "github", "label": "GitHub"}])
            );
            let corp = html.find("id=\"login-with-corp\"").expect("corp's button");
            let github = html.find("id=\"login-with-github\"").expect("github's button");
            assert!(corp < github, "{path}");
            assert!(html.contains(&format!("{continue_with} GitHub</button>")), "{path} {lang}");
            assert!(
                html.contains(&format!("{continue_with} Corp &lt;b&gt;SSO&lt;&#x2f;b&gt; &amp; &quot;Co&quot;")),
                "{html}"
            );
            assert!(html.contains("data-provider=\"corp\""));
            assert!(!html.contains("<b>") && !html.contains("SSO</b>"), "the label is never markup: {path}");
            assert!(html.contains("id=\"identities-section\""), "{path}");
            assert!(config.get("callback").is_none());
        }
    }
    // The other pages have no sign-in.
    let (_, _, html) = page(&t, "/register", "en").await;
    assert!(!html.contains("provider-login"));
}

/// A form POST to a page, as a provider's form_post makes the browser send it.
async fn post_form(t: &common::TestApp, path: &str, body: &str) -> (StatusCode, HeaderMap, String) {
    let req = request(
        "POST",
        path,
        &[("content-type", "application/x-www-form-urlencoded"), ("accept-language", "en")],
        Body::Text(body.to_owned()),
    );
    let resp = dispatch(&t.app, req).await;
    let text = String::from_utf8_lossy(resp.body().as_ref()).into_owned();
    (resp.status(), resp.headers().clone(), text)
}

#[tokio::test]
async fn a_provider_answer_posted_to_login_reaches_the_page_config_and_nothing_else() {
    let t = spawn_app(&[("SOCIAL_PROVIDERS", PROVIDERS)]);
    let (_, get_headers, _) = page(&t, "/login", "en").await;
    let user = r#"{"name":{"firstName":"Ada","lastName":"Lovelace"},"email":"ada@example.com"}"#;
    let body = format!(
        "code=c0de-7f3a%2Bq&state=st4te-91c2.mac&user={}&extra=dropped&redirect_uri=https%3A%2F%2Fevil.example",
        url::form_urlencoded::byte_serialize(user.as_bytes()).collect::<String>()
    );
    for path in ["/login", "/login/"] {
        let (status, h, html) = post_form(&t, path, &body).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        // The same strict headers as the page opened with GET.
        for name in [
            "content-type",
            "content-security-policy",
            "referrer-policy",
            "cache-control",
            "x-content-type-options",
            "x-frame-options",
            "cross-origin-opener-policy",
        ] {
            assert_eq!(header(&h, name), header(&get_headers, name), "{name}");
        }
        assert!(h.get("location").is_none() && h.get("set-cookie").is_none());
        assert_eq!(
            page_config(&html)["callback"],
            json!({"code": "c0de-7f3a+q", "state": "st4te-91c2.mac", "user": user}),
            "only the fields the script reads"
        );
        // Once each, in the page config: not in a link, a form, an attribute or a header.
        for secret in ["c0de-7f3a", "st4te-91c2"] {
            assert_eq!(html.matches(secret).count(), 1, "{secret}: {html}");
            let at = html.find(secret).unwrap();
            let config = html.find("id=\"page-config\">").unwrap();
            assert!(at > config && at < config + html[config..].find("</script>").unwrap());
            assert!(!h.values().any(|v| v.to_str().unwrap_or("").contains(secret)));
        }
        assert!(!html.contains("evil.example") && !html.contains("dropped"));
        // Still no inline script, style or handler.
        for script in html.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap();
            assert!(tag.contains(" src=") || tag.contains("type=\"application/json\""), "<script{tag}>");
        }
    }

    // The provider's refusal (a cancelled sign-in) comes the same way.
    let (status, _, html) = post_form(&t, "/login", "error=user_cancelled_authorize&state=st4te-91c2.mac").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page_config(&html)["callback"], json!({"error": "user_cancelled_authorize", "state": "st4te-91c2.mac"}));

    // Markup in a posted value stays data: the script element cannot be closed from it.
    let (status, _, html) =
        post_form(&t, "/login", "code=%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=%3C!--").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<script>alert(1)") && !html.contains("<!--"), "{html}");
    assert_eq!(page_config(&html)["callback"], json!({"code": "</script><script>alert(1)</script>", "state": "<!--"}));

    // Nothing posted: the plain sign-in page.
    let (status, _, html) = post_form(&t, "/login", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page_config(&html).get("callback").is_none());

    // Only /login takes a POST.
    for path in ["/account", "/register", "/"] {
        let (status, _, _) = post_form(&t, path, "code=x&state=y").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
}
