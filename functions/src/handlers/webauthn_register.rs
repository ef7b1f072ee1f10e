//! `POST /auth/webauthn/register/`: a new passkey of the caller.

use gatehouse_core::services::{auth, passkeys};
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let passkey = passkeys::register(app, &caller, &http::form(req)?).await?;
    Ok(http::json(StatusCode::CREATED, &passkeys::body(&passkey)))
}
