//! `GET/PUT/PATCH/DELETE /auth/admin/groups/{name}/` (staff).

use gatehouse_core::services::{auth, groups};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let name = http::path_param(req, "name");
    let group = match *req.method() {
        Method::DELETE => {
            groups::delete(app, &caller, &name).await?;
            return Ok(http::no_content());
        }
        Method::PUT => groups::update(app, &caller, &name, &http::form(req)?, false).await?,
        Method::PATCH => groups::update(app, &caller, &name, &http::form(req)?, true).await?,
        _ => groups::get(app, &caller, &name).await?,
    };
    Ok(http::json(StatusCode::OK, &http::group_body(&group)))
}
