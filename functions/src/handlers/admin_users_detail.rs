//! `GET/PUT/PATCH/DELETE /auth/admin/users/{id}/` (`auth.view_user`, `auth.change_user`,
//! `auth.delete_user`).

use gatehouse_core::services::{admin_users, auth};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let id = http::path_param(req, "id");
    let mut user = match *req.method() {
        Method::DELETE => {
            admin_users::delete(app, &caller, &id).await?;
            return Ok(http::no_content());
        }
        Method::PUT | Method::PATCH => admin_users::update(app, &caller, &id, &http::form(req)?).await?,
        _ => admin_users::get(app, &caller, &id).await?,
    };
    http::admin_shown(app, std::slice::from_mut(&mut user)).await?;
    Ok(http::json(StatusCode::OK, &http::admin_user_body(&user)))
}
