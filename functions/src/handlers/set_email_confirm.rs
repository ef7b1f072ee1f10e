//! `POST /auth/users/set_email_confirm/`

use gatehouse_core::services::email_change;
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    email_change::set_email_confirm(app, &http::form(req)?, &http::client_info(req)).await?;
    Ok(http::no_content())
}
