//! `POST /auth/mfa/verify/`: the second step of a sign-in.

use gatehouse_core::services::mfa;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::cookie;
use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let pair = mfa::verify(app, &http::form(req)?, &http::client_info(req)).await?;
    Ok(cookie::tokens(app, req, StatusCode::OK, &pair))
}
