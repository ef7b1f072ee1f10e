//! `POST /auth/users/set_password/`

use gatehouse_core::services::{auth, passwords};
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    passwords::set_password(app, &caller, &http::client_info(req), &http::form(req)?).await?;
    Ok(http::no_content())
}
