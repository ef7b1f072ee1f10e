//! `POST /auth/jwt/blacklist/`: logout on this device.

use gatehouse_core::services::sessions;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    sessions::blacklist(app, &http::form(req)?).await?;
    Ok(http::json(StatusCode::OK, &json!({})))
}
