//! `POST /auth/users/resend_activation/`

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
    http::respond(activation::resend(app, &form).await, |()| {
        http::no_content()
    })
}
