//! `POST /auth/webauthn/register/options/`: creation options for a new passkey.

use gatehouse_core::services::{auth, passkeys};
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let options = passkeys::register_options(app, &caller, &http::client_info(req), &http::form(req)?).await?;
    Ok(http::json(StatusCode::OK, &options))
}
