//! `GET/POST /auth/admin/permissions/`: the permission registry (`auth.view_permission`,
//! `auth.add_permission`).

use gatehouse_core::services::{auth, permissions};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    if req.method() == Method::POST {
        let permission = permissions::create(app, &caller, &http::form(req)?).await?;
        return Ok(http::json(StatusCode::CREATED, &http::permission_body(&permission)));
    }
    let list: Vec<Value> = permissions::list(app, &caller).await?.iter().map(http::permission_body).collect();
    Ok(http::json(StatusCode::OK, &Value::Array(list)))
}
