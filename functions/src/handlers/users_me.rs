//! `GET/PUT/PATCH /auth/users/me/`

use gatehouse_core::services::{auth, me};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let method = req.method();
    if method != Method::GET && method != Method::PUT && method != Method::PATCH {
        return Ok(http::method_not_allowed(method.as_str(), &["GET", "PUT", "PATCH"]));
    }
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    if method == Method::GET {
        return Ok(http::json(StatusCode::OK, &http::user_body(&caller.user)));
    }
    let user = me::update(app, &caller, &http::form(req)?).await?;
    Ok(http::json(StatusCode::OK, &http::user_body(&user)))
}
