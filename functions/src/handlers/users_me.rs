//! `GET/PUT/PATCH/DELETE /auth/users/me/`

use gatehouse_core::services::{auth, me, passkeys, users};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::cookie;
use crate::http::{self, Reject};

super::entry_point!();

const METHODS: [&str; 4] = ["GET", "PUT", "PATCH", "DELETE"];

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let method = req.method().clone();
    if !METHODS.contains(&method.as_str()) {
        return Ok(http::method_not_allowed(method.as_str(), &METHODS));
    }
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let user = match method {
        Method::DELETE => {
            users::delete_me(app, &caller, &http::client_info(req), &http::form(req)?).await?;
            // Its sessions are gone: a browser's refresh cookie goes too.
            return Ok(cookie::cleared(app, req, http::no_content()));
        }
        Method::GET => caller.user,
        // Owner rights whoever calls: is_active, is_staff and groups are read-only here.
        _ => me::update(app, &caller.user, &http::form(req)?, me::Editor::Owner).await?,
    };
    let mut body = http::user_body(&http::shown(app, user.clone()).await?);
    // The owner's own view says whether the second step also takes a passkey.
    body["mfa_methods"] = serde_json::json!(passkeys::second_step_methods(app, &user).await?);
    Ok(http::json(StatusCode::OK, &body))
}
