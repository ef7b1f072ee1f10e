//! `GET/PUT/PATCH/DELETE /auth/admin/permissions/{codename}/` (`auth.view_permission`,
//! `auth.change_permission`, `auth.delete_permission`).

use gatehouse_core::services::{auth, permissions};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let codename = http::path_param(req, "codename");
    let permission = match *req.method() {
        Method::DELETE => {
            permissions::delete(app, &caller, &codename).await?;
            return Ok(http::no_content());
        }
        Method::PUT => permissions::update(app, &caller, &codename, &http::form(req)?, false).await?,
        Method::PATCH => permissions::update(app, &caller, &codename, &http::form(req)?, true).await?,
        _ => permissions::get(app, &caller, &codename).await?,
    };
    Ok(http::json(StatusCode::OK, &http::permission_body(&permission)))
}
