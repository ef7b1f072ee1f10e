//! `GET /auth/.well-known/jwks.json`: the public keys that verify our tokens.

use gatehouse_core::App;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, _req: &Request) -> Result<Response<Body>, Reject> {
    let mut resp = http::json(StatusCode::OK, &app.tokens.jwks());
    // Public and slow-changing: caches may keep it briefly (unlike every other response).
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(resp)
}
