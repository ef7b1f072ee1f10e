//! `POST /auth/jwt/refresh/`

use gatehouse_core::services::refresh;
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
    http::respond(refresh::refresh(app, &form).await, |pair| {
        http::json(StatusCode::OK, &http::tokens_body(&pair))
    })
}
