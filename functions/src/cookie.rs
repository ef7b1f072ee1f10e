//! The opt-in refresh-token cookie for browsers (`JWT_COOKIE`, off by default).
//!
//! A request that sends [`HEADER`] (`X-Gatehouse-Cookie: 1`) to a route that issues tokens gets
//! the refresh token as an `HttpOnly; Secure; SameSite=Strict` cookie scoped to `/auth/jwt` (the
//! refresh and logout paths), and a body without `refresh`: page scripts never hold it. Refresh and
//! blacklist then read it from the cookie, but only from a request that also carries the header:
//! a cross-site form cannot set a header, and a cross-site script cannot send one without a CORS
//! preflight that names it. Clients that never send the header (every djoser client) see nothing
//! new, whether the setting is on or off.

use gatehouse_core::services::{Form, TokenPair};
use gatehouse_core::App;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::http::{self, Reject};

/// The request header that asks for the cookie transport and proves the request is not a
/// cross-site form.
pub const HEADER: &str = "x-gatehouse-cookie";
/// The cookie's name.
pub const NAME: &str = "gatehouse_refresh";
/// The cookie's path: refresh and blacklist (and create, which ignores it) live under it.
pub const PATH: &str = "/auth/jwt";

/// Whether the request sent the header (any transport).
fn asked(req: &Request) -> bool {
    req.headers().get(HEADER).is_some_and(|v| v.as_bytes() == b"1")
}

/// Whether this request uses the cookie transport: the setting is on and the header was sent.
pub fn in_use(app: &App, req: &Request) -> bool {
    app.settings.jwt_cookie && asked(req)
}

/// The refresh cookie's value, if the request carries one.
fn read(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == NAME)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value carrying `value` for `max_age` seconds (0 removes the cookie).
fn set_cookie(value: &str, max_age: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("{NAME}={value}; Path={PATH}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"))
        .ok()
}

/// The answer to a request that issued tokens: `{access, refresh}` as ever, or, with the cookie
/// transport, `{access}` and the refresh token in the cookie (left as it is when no new refresh
/// token was issued, as when rotation is off).
pub fn tokens(app: &App, req: &Request, status: StatusCode, pair: &TokenPair) -> Response<Body> {
    tokens_with(app, req, status, pair, serde_json::Map::new())
}

/// [`tokens`] with more fields in the body (`user` of a provider sign-in).
pub fn tokens_with(
    app: &App,
    req: &Request,
    status: StatusCode,
    pair: &TokenPair,
    more: serde_json::Map<String, serde_json::Value>,
) -> Response<Body> {
    let with = |mut body: serde_json::Value| {
        if let Some(map) = body.as_object_mut() {
            map.extend(more);
        }
        body
    };
    if !in_use(app, req) {
        return http::json(status, &with(http::tokens_body(pair)));
    }
    let mut resp = http::json(status, &with(json!({"access": pair.access})));
    if let Some(v) = pair.refresh.as_deref().and_then(|r| set_cookie(r, app.settings.refresh_token_lifetime.as_secs()))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The response with the cookie removed (after logout on this device).
pub fn cleared(app: &App, req: &Request, mut resp: Response<Body>) -> Response<Body> {
    if in_use(app, req) {
        if let Some(v) = set_cookie("", 0) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The body of a refresh or blacklist request, with `refresh` taken from the cookie when the
/// body has none. A cookie sent without the header is refused (403 `csrf_failed`) rather than
/// ignored, so a misbuilt client learns why at once.
pub fn refresh_form(app: &App, req: &Request) -> Result<Form, Reject> {
    let mut form = http::form(req)?;
    if form.contains("refresh") || !app.settings.jwt_cookie {
        return Ok(form);
    }
    let Some(value) = read(req) else { return Ok(form) };
    if !asked(req) {
        return Err(Reject::Csrf);
    }
    form.0.insert("refresh".into(), Value::String(value));
    Ok(form)
}
