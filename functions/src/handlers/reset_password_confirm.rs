//! `POST /auth/users/reset_password_confirm/`

use gatehouse_core::services::passwords;
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    passwords::reset_password_confirm(app, &http::form(req)?, &http::client_info(req)).await?;
    Ok(http::no_content())
}
