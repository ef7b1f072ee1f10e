//! `POST /auth/users/activation/`

use gatehouse_core::services::activation;
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    activation::activate(app, &http::form(req)?).await?;
    Ok(http::no_content())
}
