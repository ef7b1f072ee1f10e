//! `GET /auth/admin/audit/`: the audit trail, newest first (`auth.view_auditentry`).

use gatehouse_core::services::audit::{self, AuditQuery};
use gatehouse_core::services::auth;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let q = AuditQuery {
        limit: http::query(req, "limit"),
        cursor: http::query(req, "cursor"),
        user: http::query(req, "user"),
        actor: http::query(req, "actor"),
        event: http::query(req, "event"),
        since: http::query(req, "since"),
    };
    let page = audit::list(app, &caller, &q).await?;
    let results: Vec<_> = page.entries.iter().map(http::audit_entry_body).collect();
    Ok(http::json(StatusCode::OK, &json!({"results": results, "next": page.next})))
}
