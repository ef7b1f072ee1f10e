//! `GET /auth/users/me/identities/`: the sign-in providers linked to the caller's account.

use gatehouse_core::services::{auth, iso8601, social};
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let list: Vec<_> = social::list(app, &caller)
        .await?
        .into_iter()
        .map(|i| {
            json!({
                "provider": i.provider,
                "label": social::label(app, &i.provider),
                "email": i.email,
                "created_at": iso8601(i.created_at),
                "last_used_at": i.last_used_at.map(iso8601),
            })
        })
        .collect();
    Ok(http::json(StatusCode::OK, &json!(list)))
}
