//! `GET /auth/admin/permissions/` (staff): every permission named by any group.

use gatehouse_core::services::{auth, groups};
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    Ok(http::json(StatusCode::OK, &json!(groups::permissions(app, &caller).await?)))
}
