//! `GET/PUT/PATCH /auth/users/me/`

use gatehouse_core::services::{auth, me};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http;

super::entry_point!();

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let method = req.method().clone();
    if method != Method::GET && method != Method::PUT && method != Method::PATCH {
        return http::method_not_allowed(method.as_str(), &["GET", "PUT", "PATCH"]);
    }
    let token = match http::bearer(&req) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let caller = match auth::authenticate(app, token).await {
        Ok(c) => c,
        Err(e) => return http::error(&e),
    };
    if method == Method::GET {
        return http::json(StatusCode::OK, &http::user_body(&caller.user));
    }
    let form = match http::form(&req) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    http::respond(me::update(app, &caller, &form).await, |user| {
        http::json(StatusCode::OK, &http::user_body(&user))
    })
}
