//! `GET /auth/sessions/` (the caller's sessions) and `DELETE /auth/sessions/` (log out everywhere).

use gatehouse_core::services::{auth, iso8601, sessions};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::cookie;
use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    if req.method() == Method::DELETE {
        sessions::revoke_all(app, &caller).await?;
        // Every session ended: a browser's refresh cookie goes too.
        return Ok(cookie::cleared(app, req, http::no_content()));
    }
    let list: Vec<_> = sessions::list(app, &caller)
        .await?
        .into_iter()
        .map(|(s, current)| {
            json!({
                "id": s.id,
                "created_at": iso8601(s.created_at),
                "last_used_at": iso8601(s.last_used_at),
                "user_agent": s.user_agent,
                "ip": s.ip,
                "current": current,
            })
        })
        .collect();
    Ok(http::json(StatusCode::OK, &json!(list)))
}
