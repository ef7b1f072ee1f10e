//! `POST /auth/users/resend_activation/`

use gatehouse_core::services::activation;
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    activation::resend(app, &http::form(req)?, &http::client_info(req)).await?;
    Ok(http::no_content())
}
