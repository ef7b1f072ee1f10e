//! `GET /auth/users/?limit=&cursor=&email=`: staff see everyone, others themselves (`HIDE_USERS`).

use gatehouse_core::services::auth;
use gatehouse_core::services::users::{self, ListQuery};
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let q = ListQuery {
        limit: http::query(req, "limit"),
        cursor: http::query(req, "cursor"),
        email: http::query(req, "email"),
    };
    let mut page = users::list(app, &caller, &q).await?;
    gatehouse_core::services::groups::current_memberships(app, &mut page.users).await?;
    let results: Vec<_> = page.users.iter().map(http::user_body).collect();
    let next = page.next.map(|c| format!("/auth/users/?limit={}&cursor={c}", page.limit));
    Ok(http::json(StatusCode::OK, &json!({"results": results, "next": next})))
}
