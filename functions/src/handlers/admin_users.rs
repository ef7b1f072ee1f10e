//! `GET/POST /auth/admin/users/`: list accounts with filters (`auth.view_user`), create one
//! (`auth.add_user`).

use gatehouse_core::services::admin_users::{self, AdminListQuery};
use gatehouse_core::services::auth;
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    if req.method() == Method::POST {
        let user = admin_users::create(app, &caller, &http::form(req)?).await?;
        return Ok(http::json(StatusCode::CREATED, &http::admin_user_body(&user)));
    }
    let q = AdminListQuery {
        limit: http::query(req, "limit"),
        cursor: http::query(req, "cursor"),
        email: http::query(req, "email"),
        is_active: http::query(req, "is_active"),
        is_staff: http::query(req, "is_staff"),
        group: http::query(req, "group"),
    };
    let mut page = admin_users::list(app, &caller, &q).await?;
    http::admin_shown(app, &mut page.users).await?;
    let results: Vec<_> = page.users.iter().map(http::admin_user_body).collect();
    Ok(http::json(StatusCode::OK, &json!({"results": results, "next": page.next})))
}
