//! `POST /auth/users/`

use gatehouse_core::services::register;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let user = register::register(app, &http::form(req)?, &http::client_info(req)).await?;
    Ok(http::json(StatusCode::CREATED, &http::created_user_body(&user)))
}
