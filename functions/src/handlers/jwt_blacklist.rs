//! `POST /auth/jwt/blacklist/`: logout on this device.

use gatehouse_core::services::sessions;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::cookie;
use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    sessions::blacklist(app, &cookie::refresh_form(app, req)?).await?;
    Ok(cookie::cleared(app, req, http::json(StatusCode::OK, &json!({}))))
}
