//! `POST /auth/users/`

use gatehouse_core::services::register;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http;

super::entry_point!();

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let form = match http::form(&req) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    http::respond(register::register(app, &form).await, |user| {
        http::json(StatusCode::CREATED, &http::created_user_body(&user))
    })
}
