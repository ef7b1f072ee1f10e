//! `DELETE /auth/users/me/identities/{provider}/`: unlinks a sign-in provider from the caller's
//! account, unless it is the last way left to sign in (a sensitive step: a recent sign-in, or the
//! password and second factor).

use gatehouse_core::services::{auth, social};
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let form = http::form(req)?;
    social::unlink(app, &caller, &http::client_info(req), &form, &http::path_param(req, "provider")).await?;
    Ok(http::no_content())
}
