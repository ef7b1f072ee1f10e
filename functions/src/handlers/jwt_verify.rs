//! `POST /auth/jwt/verify/`

use gatehouse_core::services::refresh;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    refresh::verify(app, &http::form(req)?).await?;
    Ok(http::json(StatusCode::OK, &json!({})))
}
