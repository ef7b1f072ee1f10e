//! `GET /login`, `/account`, `/register`, `/password/reset`, the three emailed-link pages
//! (`/activate/{uid}/{token}`, `/password/reset/confirm/{uid}/{token}`,
//! `/email/change/confirm/{uid}/{token}`), their assets under `/pages/`, and `/` (to `/account`).
//! Opening a page changes nothing: every action is the page's script posting to the API after
//! a click. `POST /login` is a sign-in provider's answer posted back (`form_post`): the login page
//! again, with what was posted in its page config for the script to finish the sign-in with.

use gatehouse_core::App;
use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};
use crate::pages::{self, Link, Page, Posted};
use crate::routes;

super::entry_point!();

/// The page a path names (without its trailing slash).
fn page_of(path: &str) -> Option<Page> {
    Some(match path {
        "/login" => Page::Login,
        "/account" => Page::Account,
        "/register" => Page::Register,
        "/password/reset" => Page::Reset,
        p if p.starts_with("/activate/") => Page::Activate,
        p if p.starts_with("/password/reset/confirm/") => Page::ResetConfirm,
        p if p.starts_with("/email/change/confirm/") => Page::EmailConfirm,
        _ => return None,
    })
}

/// Headers every page and asset carries: no inline script or style, no framing, no referrer (the
/// path of an emailed link holds its token), never cached.
fn secured(app: &App, status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if let Ok(v) = HeaderValue::from_str(&pages::content_security_policy(&app.settings)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// The fields a provider posts back to `/login` that the script reads; anything else is dropped.
const POSTED_FIELDS: [&str; 4] = ["code", "state", "user", "error"];

/// What a provider posted to `/login` (a form body, as Apple sends it): its text fields.
fn posted(req: &Request) -> Result<Posted, Reject> {
    let form = http::form(req)?;
    Ok(POSTED_FIELDS
        .into_iter()
        .filter_map(|k| form.0.get(k).and_then(|v| v.as_str()).map(|v| (k, v.to_owned())))
        .collect())
}

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let path = routes::canonical(req.uri().path());
    if path == "/" {
        let mut resp = secured(app, StatusCode::FOUND, "text/plain; charset=utf-8", String::new());
        resp.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/account"));
        return Ok(resp);
    }
    if let Some(asset) = path.strip_prefix("/pages/") {
        return Ok(match asset {
            "app.js" => secured(app, StatusCode::OK, "text/javascript; charset=utf-8", pages::SCRIPT.to_owned()),
            "app.css" => secured(app, StatusCode::OK, "text/css; charset=utf-8", pages::STYLES.to_owned()),
            "theme.css" => {
                secured(app, StatusCode::OK, "text/css; charset=utf-8", pages::theme(&app.settings.brand_accent_color))
            }
            _ => http::not_found(),
        });
    }
    let Some(page) = page_of(path) else { return Ok(http::not_found()) };
    let answer = match (req.method(), page) {
        (&Method::POST, Page::Login) => Some(posted(req)?),
        (&Method::POST, _) => return Ok(http::method_not_allowed(req.method().as_str(), &["GET"])),
        _ => None,
    };
    let (uid, token) = (http::path_param(req, "uid"), http::path_param(req, "token"));
    let link = page.takes_link().then_some(Link { uid: &uid, token: &token });
    let lang = http::language(app, req).code;
    match pages::render(&app.settings, page, lang, link, answer.as_ref()) {
        Ok(html) => Ok(secured(app, StatusCode::OK, "text/html; charset=utf-8", html)),
        Err(why) => {
            tracing::error!(page = page.name(), error = %why, "page failed to render");
            Ok(http::detail(StatusCode::INTERNAL_SERVER_ERROR, "A server error occurred.", "error"))
        }
    }
}
