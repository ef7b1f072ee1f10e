//! `POST /auth/mfa/totp/confirm/`: the first code turns two-step sign-in on.

use gatehouse_core::services::{auth, mfa};
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let codes = mfa::confirm(app, &caller, &http::client_info(req), &http::form(req)?).await?;
    Ok(http::json(StatusCode::OK, &json!({ "recovery_codes": codes })))
}
