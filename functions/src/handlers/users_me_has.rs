//! `GET /auth/users/me/has_group/{group}/` and `GET /auth/users/me/has_permission/{perm}/`.

use gatehouse_core::services::{auth, groups};
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    if req.uri().path().contains("/has_group/") {
        let has = groups::has_group(app, &caller, &http::path_param(req, "group")).await?;
        return Ok(http::json(StatusCode::OK, &json!({"has_group": has})));
    }
    let has = groups::has_permission(app, &caller, &http::path_param(req, "perm")).await?;
    Ok(http::json(StatusCode::OK, &json!({"has_permission": has})))
}
