//! `GET/POST /auth/admin/groups/` (staff).

use gatehouse_core::services::{auth, groups};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    if req.method() == Method::POST {
        let group = groups::create(app, &caller, &http::form(req)?).await?;
        return Ok(http::json(StatusCode::CREATED, &http::group_body(&group)));
    }
    let list: Vec<Value> = groups::list(app, &caller).await?.iter().map(http::group_body).collect();
    Ok(http::json(StatusCode::OK, &Value::Array(list)))
}
