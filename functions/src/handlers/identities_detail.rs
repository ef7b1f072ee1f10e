//! `DELETE /auth/users/me/identities/{provider}/`: unlinks a sign-in provider from the caller's
//! account, unless it is the last way left to sign in.

use gatehouse_core::services::{auth, social};
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    social::unlink(app, &caller, &http::path_param(req, "provider")).await?;
    Ok(http::no_content())
}
