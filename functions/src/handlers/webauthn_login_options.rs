//! `POST /auth/webauthn/login/options/`: request options for a passwordless passkey sign-in.

use gatehouse_core::services::passkeys;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    // The body is optional (`{}`), but when given it must parse.
    http::form(req)?;
    let (mut options, token) = passkeys::login_options(app, &http::client_info(req)).await?;
    options["login_token"] = serde_json::Value::String(token);
    Ok(http::json(StatusCode::OK, &options))
}
