//! `POST /auth/users/activation/`

use gatehouse_core::services::activation;
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http;

super::entry_point!();

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let form = match http::form(&req) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    http::respond(activation::activate(app, &form).await, |()| {
        http::no_content()
    })
}
