//! Parsing requests and shaping responses the way DRF / djoser / simplejwt do.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_core::domain::User;
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
        ServiceError::NotFound => not_found(),
        ServiceError::Throttled(secs) => {
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
        }
    }
}

/// The response for a handler's outcome.
pub fn reply(outcome: Result<Response<Body>, Reject>) -> Response<Body> {
    outcome.unwrap_or_else(|r| r.response())
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

/// `application/x-www-form-urlencoded` pairs, decoded as the WHATWG URL standard says (`+` is a
/// space, `%XX` a byte, a `%` not followed by two hex digits is itself, empty pieces are skipped),
/// except that text which does not decode to UTF-8 is refused (`None`) instead of being replaced
/// with U+FFFD: a password must never silently become another one.
fn parse_urlencoded(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    fn decode(raw: &[u8]) -> Option<String> {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while let Some(&b) = raw.get(i) {
            let hex = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(byte)) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                    out.push(byte);
                    i += 3;
                }
                (b'+', _) => {
                    out.push(b' ');
                    i += 1;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).ok()
    }
    bytes
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(at) => (&piece[..at], &piece[at + 1..]),
                None => (piece, &[][..]),
            };
            Some((decode(name)?, decode(value)?))
        })
        .collect()
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

/// A query-string parameter (the last one of that name).
pub fn query(req: &Request, name: &str) -> Option<String> {
    let raw = req.uri().query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
        .ok()?
        .into_iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
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
    })
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
