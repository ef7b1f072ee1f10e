//! Parsing requests and shaping responses the way DRF / djoser / simplejwt do.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_core::domain::User;
use gatehouse_core::i18n;
use gatehouse_core::services::{iso8601, ClientInfo, Form, ServiceError, TokenPair};
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Map, Value};

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// A JSON response; every response carries `Cache-Control: no-store` (tokens and personal data
/// must never sit in a cache).
pub fn json(status: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn no_content() -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn detail(status: StatusCode, detail: &str, code: &str) -> Response<Body> {
    json(status, &json!({"detail": detail, "code": code}))
}

pub fn not_found() -> Response<Body> {
    detail(StatusCode::NOT_FOUND, "Not found.", "not_found")
}

/// 405 with the methods the path does accept.
pub fn method_not_allowed(method: &str, allowed: &[&str]) -> Response<Body> {
    let mut resp =
        detail(StatusCode::METHOD_NOT_ALLOWED, &format!("Method \"{method}\" not allowed."), "method_not_allowed");
    let mut allow: Vec<&str> = allowed.to_vec();
    allow.push("OPTIONS");
    if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// The response for a failed action. Server-side failures are logged here, once, and answered
/// without any internal detail.
pub fn error(e: &ServiceError) -> Response<Body> {
    match e {
        ServiceError::Invalid(fields) => json(StatusCode::BAD_REQUEST, &json!(fields.0)),
        ServiceError::NotAuthenticated => {
            let mut r =
                detail(StatusCode::UNAUTHORIZED, "Authentication credentials were not provided.", "not_authenticated");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"api\""));
            r
        }
        ServiceError::TokenNotValid => {
            let mut r = detail(StatusCode::UNAUTHORIZED, "Given token not valid for any token type", "token_not_valid");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"api\""));
            r
        }
        ServiceError::UserInactive => detail(StatusCode::UNAUTHORIZED, "User is inactive", "user_inactive"),
        ServiceError::NoActiveAccount => {
            detail(StatusCode::UNAUTHORIZED, "No active account found with the given credentials", "no_active_account")
        }
        ServiceError::Forbidden { code, detail: d } => detail(StatusCode::FORBIDDEN, d, code),
        ServiceError::Unauthorized { code, detail: d } => detail(StatusCode::UNAUTHORIZED, d, code),
        ServiceError::MfaRequired { mfa_token, methods, webauthn } => {
            let mut body = json!({
                "detail": gatehouse_core::services::mfa::MFA_REQUIRED_DETAIL,
                "code": "mfa_required",
                "mfa_token": mfa_token,
                "methods": methods,
            });
            if let Some(options) = webauthn {
                body["webauthn"] = options.clone();
            }
            json(StatusCode::UNAUTHORIZED, &body)
        }
        ServiceError::NotFound => not_found(),
        ServiceError::Throttled(secs) | ServiceError::Congested(secs) => {
            let mut r = detail(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Request was throttled. Expected available in {secs} seconds."),
                "throttled",
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        ServiceError::Unavailable(reason) => {
            tracing::error!(outcome = "unavailable", reason = %reason);
            let mut r = detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable, try again soon.",
                "service_unavailable",
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        ServiceError::Internal(reason) => {
            tracing::error!(outcome = "internal_error", reason = %reason);
            detail(StatusCode::INTERNAL_SERVER_ERROR, "A server error occurred.", "error")
        }
    }
}

/// Why a request was turned away: by the edge itself, or by the action.
#[derive(Debug)]
pub enum Reject {
    Service(ServiceError),
    TooLarge,
    UnsupportedMediaType(String),
    Parse(String),
    NotAnObject(&'static str),
    BadAuthorizationHeader,
    BadBasicHeader,
    /// The refresh cookie came without the header that proves the request is not cross-site.
    Csrf,
}

impl From<ServiceError> for Reject {
    fn from(e: ServiceError) -> Self {
        Self::Service(e)
    }
}

impl Reject {
    pub fn response(&self) -> Response<Body> {
        match self {
            Self::Service(e) => error(e),
            Self::TooLarge => detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large.", "payload_too_large"),
            Self::UnsupportedMediaType(m) => detail(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("Unsupported media type \"{}\" in request.", m.escape_default()),
                "unsupported_media_type",
            ),
            Self::Parse(msg) => detail(StatusCode::BAD_REQUEST, msg, "parse_error"),
            Self::NotAnObject(kind) => json(
                StatusCode::BAD_REQUEST,
                &json!({"non_field_errors": [format!("Invalid data. Expected a dictionary, but got {kind}.")]}),
            ),
            Self::BadAuthorizationHeader => detail(
                StatusCode::UNAUTHORIZED,
                "Authorization header must contain two space-delimited values",
                "bad_authorization_header",
            ),
            Self::BadBasicHeader => detail(
                StatusCode::UNAUTHORIZED,
                "Invalid basic header. Credentials not correctly base64 encoded.",
                "authentication_failed",
            ),
            Self::Csrf => {
                detail(StatusCode::FORBIDDEN, "CSRF Failed: the X-Gatehouse-Cookie header is missing.", "csrf_failed")
            }
        }
    }
}

/// The response for a handler's outcome.
pub fn reply(outcome: Result<Response<Body>, Reject>) -> Response<Body> {
    outcome.unwrap_or_else(|r| r.response())
}

/// The language of the request's messages: the best of `Accept-Language` Gatehouse speaks, or
/// `LANGUAGE_CODE` (see README "Languages").
pub fn language(app: &gatehouse_core::App, req: &Request) -> i18n::Language {
    let asked = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    match asked.and_then(i18n::negotiate) {
        Some(code) => i18n::Language { code, asked: true },
        None => i18n::Language { code: app.settings.language_code, asked: false },
    }
}

/// The response in `lang`, as Django's LocaleMiddleware leaves it: `Content-Language` and
/// `Vary: Accept-Language` on every response, and the messages of an error body translated
/// (field names and `code`s stay as they are: frontends match on them).
pub fn localize(mut resp: Response<Body>, lang: i18n::Language) -> Response<Body> {
    if lang.code != i18n::SOURCE && resp.status().as_u16() >= 400 {
        let translated = match resp.body() {
            Body::Text(text) => serde_json::from_str::<Value>(text).ok().map(|mut body| {
                i18n::translate_body(&mut body, lang.code);
                body.to_string()
            }),
            _ => None,
        };
        if let Some(text) = translated {
            *resp.body_mut() = Body::Text(text);
        }
    }
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(lang.code) {
        h.insert(header::CONTENT_LANGUAGE, v);
    }
    h.append(header::VARY, HeaderValue::from_static("Accept-Language"));
    resp
}

fn media_type(req: &Request) -> Option<String> {
    let raw = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// The body's fields: a JSON object or `application/x-www-form-urlencoded`.
pub fn form(req: &Request) -> Result<Form, Reject> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY {
        return Err(Reject::TooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Form::default());
    }
    match media_type(req).as_deref() {
        Some("application/json") => parse_json(bytes),
        Some("application/x-www-form-urlencoded") => match parse_urlencoded(bytes) {
            // A repeated key: the last value wins, as with Django's QueryDict.
            Some(pairs) => Ok(Form(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())),
            None => Err(Reject::Parse("Form parse error - malformed form data.".into())),
        },
        other => Err(Reject::UnsupportedMediaType(other.unwrap_or("").to_owned())),
    }
}

/// What a `+` stands for in the text being decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plus {
    /// `application/x-www-form-urlencoded` (form bodies and query strings): `+` is a space.
    Space,
    /// A path segment: `+` is itself.
    Literal,
}

/// The edge's one percent-decoder: form bodies, query strings and the router's path parameters
/// all go through it.
///
/// Strict about what it decodes: only a `%` followed by exactly two ASCII hex digits (upper or
/// lower case) is an escape, and becomes that byte. Nothing else is ever decoded: not `%+1` or
/// `%-1` (a sign is not a hex digit), not `% 1`, `%zz`, nor a `%1` or `%` cut off by the end.
///
/// Lenient about what it keeps, deliberately: a `%` that does not start such an escape is kept as
/// itself and decoding goes on after it (`%+1` in a form body or query is `% 1`, the `+` being a
/// space there; in a path it stays `%+1`), instead of refusing the request. That is what djoser's
/// Django does: `QueryDict` reads form bodies and query strings with Python's `parse_qsl`, which
/// turns `+` into spaces and then `unquote`s, leaving malformed escapes as they are; it is also
/// the WHATWG URL standard's form decoding, which serde_urlencoded (the fuzz target's oracle for
/// form bodies) follows, and what the router always did with path parameters. Refusing them would
/// turn away requests djoser answers (a query `?email=50%`, a form field `50% off`).
///
/// The result is bytes: whether they must be UTF-8 is the caller's decision, as before. Form
/// bodies that do not decode to UTF-8 are refused (400 `parse_error`: a password must never
/// silently become another one); query strings and path parameters get U+FFFD instead.
pub fn percent_decode(raw: &[u8], plus: Plus) -> Vec<u8> {
    // The decoding itself is the `percent-encoding` crate's (servo's, which `url` is built on):
    // it decodes `%` + two hex digits and keeps anything else as it is, exactly the rule above.
    // A `+` becomes a space first, so that an escaped `%2B` still decodes to `+`.
    let spaced;
    let raw = match plus {
        Plus::Space if raw.contains(&b'+') => {
            spaced = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect::<Vec<u8>>();
            &spaced[..]
        }
        _ => raw,
    };
    percent_encoding::percent_decode(raw).collect()
}

/// `application/x-www-form-urlencoded` pairs as the WHATWG URL standard (and Django's
/// `QueryDict`) reads them: split at `&`, empty pieces skipped, the name ending at the first `=`,
/// both decoded by [`percent_decode`] with `+` a space. Text stays bytes here; the callers decide
/// what invalid UTF-8 means.
fn urlencoded_pairs(bytes: &[u8]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    bytes.split(|&b| b == b'&').filter(|piece| !piece.is_empty()).map(|piece| {
        let (name, value) = match piece.iter().position(|&b| b == b'=') {
            Some(at) => (&piece[..at], &piece[at + 1..]),
            None => (piece, &[][..]),
        };
        (percent_decode(name, Plus::Space), percent_decode(value, Plus::Space))
    })
}

/// The pairs of a form body, refused (`None`) when they do not decode to UTF-8, instead of being
/// replaced with U+FFFD: a password must never silently become another one.
fn parse_urlencoded(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    urlencoded_pairs(bytes).map(|(k, v)| Some((String::from_utf8(k).ok()?, String::from_utf8(v).ok()?))).collect()
}

fn parse_json(bytes: &[u8]) -> Result<Form, Reject> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Reject::Parse(format!("JSON parse error - {e}")))?;
    match value {
        Value::Object(map) => Ok(Form(map)),
        Value::Array(_) => Err(Reject::NotAnObject("list")),
        Value::String(_) => Err(Reject::NotAnObject("str")),
        Value::Number(_) => Err(Reject::NotAnObject("number")),
        Value::Bool(_) => Err(Reject::NotAnObject("bool")),
        Value::Null => Err(Reject::NotAnObject("null")),
    }
}

/// The credential in `Authorization: Bearer <token>` (or `JWT <token>`, as simplejwt allows).
/// `Ok(None)` when there is no such header or it names another scheme.
pub fn bearer(req: &Request) -> Result<Option<&str>, Reject> {
    let Some(raw) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Ok(raw) = raw.to_str() else {
        return Ok(None);
    };
    let mut parts = raw.split_ascii_whitespace();
    let scheme = parts.next().unwrap_or("");
    if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("jwt") {
        return Ok(None);
    }
    match (parts.next(), parts.next()) {
        (Some(token), None) => Ok(Some(token)),
        _ => Err(Reject::BadAuthorizationHeader),
    }
}

/// `Authorization: Basic base64(login:password)`, if present.
pub fn basic(req: &Request) -> Result<Option<(String, String)>, Reject> {
    let Some(raw) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some((scheme, rest)) = raw.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || Reject::BadBasicHeader;
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (login, password) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((login.to_owned(), password.to_owned())))
}

/// A query-string parameter (the last one of that name), decoded as a form body is but with
/// invalid UTF-8 replaced by U+FFFD (as Django does with a query string).
pub fn query(req: &Request, name: &str) -> Option<String> {
    let raw = req.uri().query()?;
    urlencoded_pairs(raw.as_bytes())
        .filter(|(k, _)| String::from_utf8_lossy(k) == name)
        .last()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

/// The caller's user agent and source IP (from the API Gateway request context).
pub fn client_info(req: &Request) -> ClientInfo {
    let ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    };
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    ClientInfo { user_agent, ip }
}

/// The domain the request came to, as API Gateway reports it (`requestContext.domainName`).
pub fn api_domain(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        _ => None,
    }
}

/// Where the request came from, for the audit entries it records.
pub fn audit_origin(req: &Request) -> gatehouse_core::services::audit::Origin {
    let ClientInfo { ip, user_agent } = client_info(req);
    gatehouse_core::services::audit::Origin { ip, user_agent, via: "api" }
}

/// An audit entry as `GET /auth/admin/audit/` shows it.
pub fn audit_entry_body(e: &gatehouse_core::domain::AuditEntry) -> Value {
    json!({
        "id": e.id,
        "at": iso8601(e.at),
        "event": e.event,
        "actor": e.actor.as_ref().map(|a| a.as_str()),
        "target": e.target.as_ref().map(|t| t.as_str()),
        "object": e.object,
        "changes": if e.changes.is_null() { json!({}) } else { e.changes.clone() },
        "ip": e.ip,
        "user_agent": e.user_agent,
        "via": e.via,
    })
}

/// The user as `GET /auth/users/me/` shows it.
pub fn user_body(u: &User) -> Value {
    json!({
        "id": u.id.as_str(),
        "email": u.email.as_str(),
        "username": u.username.as_ref().map(|n| n.as_str()).unwrap_or(""),
        "first_name": u.first_name,
        "last_name": u.last_name,
        "is_active": u.is_active,
        "is_staff": u.is_staff,
        "date_joined": iso8601(u.date_joined),
        "last_login": u.last_login.map(iso8601),
        "groups": u.groups,
        "language": u.language,
        "mfa_enabled": u.mfa_enabled,
        "mfa_methods": gatehouse_core::services::mfa::methods(u),
    })
}

/// The user as the admin API (`/auth/admin/users/`) shows it: the user object of
/// `GET /auth/users/me/` and `is_superuser`.
pub fn admin_user_body(u: &User) -> Value {
    let mut body = user_body(u);
    if let Value::Object(fields) = &mut body {
        fields.insert("is_superuser".into(), Value::Bool(u.is_superuser));
        fields.insert("user_permissions".into(), json!(u.user_permissions.keys().collect::<Vec<_>>()));
    }
    body
}

/// `users` as the admin API shows them: only the groups they are members of now, and only their
/// own grants that still count.
pub async fn admin_shown(app: &gatehouse_core::App, users: &mut [User]) -> Result<(), Reject> {
    gatehouse_core::services::groups::current_memberships(app, users).await?;
    gatehouse_core::services::permissions::current_grants(app, users).await?;
    Ok(())
}

/// `user` as the API shows it: with only the groups it is a member of now (see
/// `services::groups::current_memberships`).
pub async fn shown(app: &gatehouse_core::App, mut user: User) -> Result<User, Reject> {
    gatehouse_core::services::groups::current_memberships(app, std::slice::from_mut(&mut user)).await?;
    Ok(user)
}

/// A group as the admin API shows it.
pub fn group_body(g: &gatehouse_core::domain::Group) -> Value {
    json!({"name": g.name, "description": g.description, "permissions": g.permissions})
}

/// A registry entry as the admin API shows it; `builtin` ones are never changed or deleted.
pub fn permission_body(p: &gatehouse_core::domain::Permission) -> Value {
    json!({
        "codename": p.codename,
        "name": p.name,
        "description": p.description,
        "builtin": gatehouse_core::domain::Permission::is_builtin(&p.codename),
    })
}

/// A `{param}` of the route, as API Gateway delivers it: already percent-decoded (the dev server's
/// router decodes it the same way). It is not decoded again: a group named `50%41` arrives as
/// `50%41` and stays so.
pub fn path_param(req: &Request, name: &str) -> String {
    req.path_parameters_ref().and_then(|p| p.first(name)).unwrap_or_default().to_owned()
}

/// The user as registration returns it.
pub fn created_user_body(u: &User) -> Value {
    json!({
        "id": u.id.as_str(),
        "email": u.email.as_str(),
        "username": u.username.as_ref().map(|n| n.as_str()).unwrap_or(""),
        "first_name": u.first_name,
        "last_name": u.last_name,
    })
}

pub fn tokens_body(pair: &TokenPair) -> Value {
    let mut body = Map::new();
    body.insert("access".into(), Value::String(pair.access.clone()));
    if let Some(r) = &pair.refresh {
        body.insert("refresh".into(), Value::String(r.clone()));
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{find, Match};
    use lambda_http::http::header::CONTENT_TYPE;

    /// (raw, decoded with `+` a space (forms, queries), decoded with `+` itself (paths))
    const TABLE: &[(&[u8], &[u8], &[u8])] = &[
        (b"", b"", b""),
        (b"plain", b"plain", b"plain"),
        // Valid escapes, upper- and lower-case hex.
        (b"%41%4a%4A%7e%7E", b"AJJ~~", b"AJJ~~"),
        (b"%00%2F%2b%25", b"\0/+%", b"\0/+%"),
        (b"50%2541", b"50%41", b"50%41"),
        // A sign is not a hex digit: never decoded, kept as it is (Django: `% 1` in a form).
        (b"%+1", b"% 1", b"%+1"),
        (b"a%+1b", b"a% 1b", b"a%+1b"),
        (b"%-1", b"%-1", b"%-1"),
        (b"%+f%+F%-0", b"% f% F%-0", b"%+f%+F%-0"),
        (b"% 1", b"% 1", b"% 1"),
        (b"%1", b"%1", b"%1"),
        (b"x%1", b"x%1", b"x%1"),
        (b"%", b"%", b"%"),
        (b"100%", b"100%", b"100%"),
        (b"%zz", b"%zz", b"%zz"),
        (b"%4g%g4%0x", b"%4g%g4%0x", b"%4g%g4%0x"),
        (b"%%41", b"%A", b"%A"),
        (b"%4%41", b"%4A", b"%4A"),
        (b"%%%", b"%%%", b"%%%"),
        // A `%` before a multi-byte character: kept, and the character not cut.
        (b"%\xc3\xa9", b"%\xc3\xa9", b"%\xc3\xa9"),
        (b"%4\xc3\xa9", b"%4\xc3\xa9", b"%4\xc3\xa9"),
        // Multi-byte UTF-8, escaped or not.
        (b"caf%C3%A9", "café".as_bytes(), "café".as_bytes()),
        (b"caf%c3%a9", "café".as_bytes(), "café".as_bytes()),
        (b"caf\xc3\xa9", "café".as_bytes(), "café".as_bytes()),
        (b"%E2%82%AC%F0%9F%94%91", "€🔑".as_bytes(), "€🔑".as_bytes()),
        // Invalid UTF-8 comes out as the bytes it is: the callers decide.
        (b"%FF", b"\xff", b"\xff"),
        (b"%C0%80", b"\xc0\x80", b"\xc0\x80"),
        (b"%ED%A0%80", b"\xed\xa0\x80", b"\xed\xa0\x80"),
        (b"%C3", b"\xc3", b"\xc3"),
        // `+` is a space in forms and queries, itself in paths; `%2B` is `+` everywhere.
        (b"a+b++", b"a b  ", b"a+b++"),
        (b"a%2Bb", b"a+b", b"a+b"),
        (b"%20+", b"  ", b" +"),
    ];

    #[test]
    fn percent_decode_decodes_only_percent_and_two_hex_digits() {
        for &(raw, form, path) in TABLE {
            let shown = String::from_utf8_lossy(raw);
            assert_eq!(percent_decode(raw, Plus::Space), form, "{shown:?} (+ a space)");
            assert_eq!(percent_decode(raw, Plus::Literal), path, "{shown:?} (+ itself)");
        }
    }

    #[test]
    fn form_decoding_agrees_with_serde_urlencoded_on_the_table() {
        for &(raw, form, _) in TABLE {
            let shown = String::from_utf8_lossy(raw);
            let pair = [b"k=".as_slice(), raw].concat();
            let oracle = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&pair).unwrap_or_default();
            // The table says what the oracle (and Python's `parse_qsl`) says...
            assert_eq!(oracle, vec![("k".to_owned(), String::from_utf8_lossy(form).into_owned())], "{shown:?}");
            // ...and so does the decoder, as the query string reads it.
            let ours: Vec<(String, String)> = urlencoded_pairs(&pair)
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), String::from_utf8_lossy(&v).into_owned()))
                .collect();
            assert_eq!(ours, oracle, "{shown:?}");
        }
    }

    fn form_request(body: &[u8]) -> Request {
        let req = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/auth/users/")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::Binary(body.to_vec()));
        req.unwrap()
    }

    #[test]
    fn each_caller_keeps_its_rules_for_plus_and_invalid_utf8() {
        // Form bodies: `+` a space, malformed escapes kept, not UTF-8 refused.
        let f = form(&form_request(b"a=%+1&b=50%&c=x+y%2Bz&%+1=k&d=caf%C3%A9")).unwrap();
        let field = |k: &str| f.0.get(k).and_then(Value::as_str).map(str::to_owned);
        assert_eq!(field("a").as_deref(), Some("% 1"));
        assert_eq!(field("b").as_deref(), Some("50%"));
        assert_eq!(field("c").as_deref(), Some("x y+z"));
        assert_eq!(field("% 1").as_deref(), Some("k"));
        assert_eq!(field("d").as_deref(), Some("café"));
        for body in [&b"a=%FF"[..], b"a=%C3", b"%FF=a", b"a=\xff", b"a=%+1&b=%ED%A0%80"] {
            match form(&form_request(body)) {
                Err(r @ Reject::Parse(_)) => {
                    assert_eq!(r.response().status(), StatusCode::BAD_REQUEST);
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        // Query strings: `+` a space, malformed escapes kept, not UTF-8 replaced with U+FFFD.
        let req = lambda_http::http::Request::builder()
            .uri("/auth/users/?a=%+1&b=%-1&c=%FF&d=x+y&e=%&a=last%2B&f=%1")
            .body(Body::Empty)
            .unwrap();
        let req = Request::from(req);
        let q = |name: &str| query(&req, name);
        assert_eq!(q("a").as_deref(), Some("last+"), "the last of a repeated name");
        assert_eq!(q("b").as_deref(), Some("%-1"));
        assert_eq!(q("c").as_deref(), Some("\u{fffd}"));
        assert_eq!(q("d").as_deref(), Some("x y"));
        assert_eq!(q("e").as_deref(), Some("%"));
        assert_eq!(q("f").as_deref(), Some("%1"));
        assert_eq!(q("missing"), None);
        let req = Request::from(lambda_http::http::Request::builder().uri("/x?k=%+1").body(Body::Empty).unwrap());
        assert_eq!(query(&req, "k").as_deref(), Some("% 1"));
        // Path parameters (decoded once by the router): `+` itself, not UTF-8 replaced.
        for (segment, want) in [
            ("%+1", "%+1"),
            ("%-1", "%-1"),
            ("a+b", "a+b"),
            ("a%2Bb", "a+b"),
            ("%FF", "\u{fffd}"),
            ("caf%c3%a9", "café"),
            ("%1", "%1"),
            ("x%", "x%"),
        ] {
            match find("GET", &format!("/auth/admin/groups/{segment}")) {
                Match::Found(_, params) => assert_eq!(params, vec![("name", want.to_owned())], "{segment}"),
                _ => panic!("{segment} not routed"),
            }
        }
    }
}
