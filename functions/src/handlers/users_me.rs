//! `GET/PUT/PATCH/DELETE /auth/users/me/`

use gatehouse_core::services::{auth, me, users};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

const METHODS: [&str; 4] = ["GET", "PUT", "PATCH", "DELETE"];

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let method = req.method().clone();
    if !METHODS.contains(&method.as_str()) {
        return Ok(http::method_not_allowed(method.as_str(), &METHODS));
    }
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    match method {
        Method::GET => Ok(http::json(StatusCode::OK, &http::user_body(&http::shown(app, caller.user).await?))),
        Method::DELETE => {
            users::delete_me(app, &caller, &http::client_info(req), &http::form(req)?).await?;
            Ok(http::no_content())
        }
        _ => {
            // Owner rights whoever calls: is_active, is_staff and groups are read-only here.
            let user = me::update(app, &caller.user, &http::form(req)?, me::Editor::Owner).await?;
            Ok(http::json(StatusCode::OK, &http::user_body(&http::shown(app, user).await?)))
        }
    }
}
