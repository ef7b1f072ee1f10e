//! `POST /auth/users/activation/`: 204, or 200 with a token pair under `LOGIN_AFTER_ACTIVATION`.

use gatehouse_core::services::activation;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::cookie;
use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    match activation::activate(app, &http::form(req)?, &http::client_info(req)).await? {
        Some(pair) => Ok(cookie::tokens(app, req, StatusCode::OK, &pair)),
        None => Ok(http::no_content()),
    }
}
