//! The route table: which function serves which method and path. The dev server routes by it,
//! the `fallback` function answers 404/405 by it, and a test holds it equal to the HttpApi
//! events of `infra/template.yaml`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::{handlers, http};

pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
pub type Handler = fn(Arc<App>, Request) -> HandlerFuture;

/// One route: every path answers with and without its trailing slash.
pub struct Route {
    pub method: &'static str,
    /// Canonical path, without the trailing slash.
    pub path: &'static str,
    /// The Lambda binary (and SAM function) serving it.
    pub function: &'static str,
    pub handler: Handler,
}

macro_rules! route {
    ($method:literal, $path:literal, $module:ident) => {
        Route { method: $method, path: $path, function: stringify!($module), handler: handlers::$module::handler }
    };
}

pub static ROUTES: &[Route] = &[
    route!("POST", "/auth/users", register),
    route!("GET", "/auth/users", users),
    route!("POST", "/auth/users/activation", activation),
    route!("POST", "/auth/users/resend_activation", resend_activation),
    route!("GET", "/auth/users/me", users_me),
    route!("PUT", "/auth/users/me", users_me),
    route!("PATCH", "/auth/users/me", users_me),
    route!("DELETE", "/auth/users/me", users_me),
    route!("POST", "/auth/users/set_password", set_password),
    route!("POST", "/auth/users/reset_password", reset_password),
    route!("POST", "/auth/users/reset_password_confirm", reset_password_confirm),
    route!("POST", "/auth/users/set_email", set_email),
    route!("POST", "/auth/users/set_email_confirm", set_email_confirm),
    route!("GET", "/auth/users/{id}", users_detail),
    route!("PUT", "/auth/users/{id}", users_detail),
    route!("PATCH", "/auth/users/{id}", users_detail),
    route!("DELETE", "/auth/users/{id}", users_detail),
    route!("POST", "/auth/jwt/create", jwt_create),
    route!("POST", "/auth/jwt/refresh", jwt_refresh),
    route!("POST", "/auth/jwt/verify", jwt_verify),
    route!("POST", "/auth/jwt/blacklist", jwt_blacklist),
    route!("GET", "/auth/sessions", sessions),
    route!("DELETE", "/auth/sessions", sessions),
    route!("DELETE", "/auth/sessions/{id}", sessions_detail),
    route!("POST", "/auth/mfa/totp", mfa_totp),
    route!("DELETE", "/auth/mfa/totp", mfa_totp),
    route!("POST", "/auth/mfa/totp/confirm", mfa_totp_confirm),
    route!("POST", "/auth/mfa/recovery_codes", mfa_recovery_codes),
    route!("POST", "/auth/mfa/verify", mfa_verify),
    route!("POST", "/auth/webauthn/register/options", webauthn_register_options),
    route!("POST", "/auth/webauthn/register", webauthn_register),
    route!("GET", "/auth/webauthn/credentials", webauthn_credentials),
    route!("PATCH", "/auth/webauthn/credentials/{id}", webauthn_credentials_detail),
    route!("DELETE", "/auth/webauthn/credentials/{id}", webauthn_credentials_detail),
    route!("POST", "/auth/webauthn/login/options", webauthn_login_options),
    route!("POST", "/auth/webauthn/login", webauthn_login),
    route!("GET", "/auth/o/{provider}", social),
    route!("POST", "/auth/o/{provider}", social),
    route!("GET", "/auth/users/me/identities", identities),
    route!("DELETE", "/auth/users/me/identities/{provider}", identities_detail),
    route!("GET", "/auth/.well-known/jwks.json", jwks),
    route!("GET", "/auth/users/me/has_group/{group}", users_me_has),
    route!("GET", "/auth/users/me/has_permission/{perm}", users_me_has),
    route!("GET", "/auth/admin/groups", admin_groups),
    route!("POST", "/auth/admin/groups", admin_groups),
    route!("GET", "/auth/admin/groups/{name}", admin_groups_detail),
    route!("PUT", "/auth/admin/groups/{name}", admin_groups_detail),
    route!("PATCH", "/auth/admin/groups/{name}", admin_groups_detail),
    route!("DELETE", "/auth/admin/groups/{name}", admin_groups_detail),
    route!("GET", "/auth/admin/permissions", admin_permissions),
    route!("POST", "/auth/admin/permissions", admin_permissions),
    route!("GET", "/auth/admin/permissions/{codename}", admin_permissions_detail),
    route!("PUT", "/auth/admin/permissions/{codename}", admin_permissions_detail),
    route!("PATCH", "/auth/admin/permissions/{codename}", admin_permissions_detail),
    route!("DELETE", "/auth/admin/permissions/{codename}", admin_permissions_detail),
    route!("GET", "/auth/admin/users", admin_users),
    route!("POST", "/auth/admin/users", admin_users),
    route!("GET", "/auth/admin/users/{id}", admin_users_detail),
    route!("PUT", "/auth/admin/users/{id}", admin_users_detail),
    route!("PATCH", "/auth/admin/users/{id}", admin_users_detail),
    route!("DELETE", "/auth/admin/users/{id}", admin_users_detail),
    route!("DELETE", "/auth/admin/users/{id}/mfa", admin_users_mfa),
    route!("GET", "/auth/admin/audit", admin_audit),
    route!("GET", "/", pages),
    route!("GET", "/login", pages),
    route!("POST", "/login", pages),
    route!("GET", "/account", pages),
    route!("GET", "/register", pages),
    route!("GET", "/password/reset", pages),
    route!("GET", "/activate/{uid}/{token}", pages),
    route!("GET", "/password/reset/confirm/{uid}/{token}", pages),
    route!("GET", "/email/change/confirm/{uid}/{token}", pages),
    route!("GET", "/pages/{asset}", pages),
];

/// What the table says about a request.
pub enum Match {
    /// The route, and the values of its `{param}` segments.
    Found(&'static Route, Vec<(&'static str, String)>),
    /// The path exists, but not with this method: these are the methods it takes.
    WrongMethod(Vec<&'static str>),
    NotFound,
}

/// The parameters if `path` fits `pattern` (`{name}` matches one non-empty segment). Values are
/// percent-decoded once, as API Gateway decodes `pathParameters`.
fn fit(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(h)) if w.starts_with('{') && w.ends_with('}') && !h.is_empty() => {
                params.push((&w[1..w.len() - 1], percent_decode(h)));
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}

/// Looks a request up; a trailing slash is ignored. Literal paths win over `{param}` paths, as
/// in API Gateway.
pub fn find(method: &str, path: &str) -> Match {
    let path = canonical(path);
    let literal = |r: &&Route| !r.path.contains('{');
    for pass in [true, false] {
        let on_path: Vec<(&'static Route, Vec<(&'static str, String)>)> =
            ROUTES.iter().filter(|r| literal(r) == pass).filter_map(|r| fit(r.path, path).map(|p| (r, p))).collect();
        if on_path.is_empty() {
            continue;
        }
        return match on_path.iter().find(|(r, _)| r.method.eq_ignore_ascii_case(method)) {
            Some((r, params)) => Match::Found(r, params.clone()),
            None => Match::WrongMethod(on_path.iter().map(|(r, _)| r.method).collect()),
        };
    }
    Match::NotFound
}

/// Routes a request through the table as API Gateway would (the dev server and the tests):
/// path parameters filled in, unmatched requests answered by `fallback`.
pub async fn dispatch(app: Arc<App>, req: Request) -> Response<Body> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    match find(&method, &path) {
        Match::Found(route, params) => {
            let req = if params.is_empty() {
                req
            } else {
                let map: std::collections::HashMap<String, String> =
                    params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                lambda_http::RequestExt::with_path_parameters(req, map)
            };
            (route.handler)(app, req).await
        }
        _ => handlers::fallback::handle(&app, req).await,
    }
}

/// A path segment decoded once by [`http::percent_decode`] (`+` is itself in a path; a `%`
/// without two hex digits stays itself); bytes that do not form UTF-8 become U+FFFD.
fn percent_decode(raw: &str) -> String {
    String::from_utf8_lossy(&http::percent_decode(raw.as_bytes(), http::Plus::Literal)).into_owned()
}

/// The path without its trailing slash (the root stays `/`).
pub fn canonical(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_paths_win_and_params_are_extracted() {
        match find("GET", "/auth/users/me/") {
            Match::Found(r, p) => assert_eq!((r.function, p.len()), ("users_me", 0)),
            _ => panic!("me"),
        }
        match find("GET", "/auth/users/0192d7b0-0000-7000-8000-000000000001") {
            Match::Found(r, p) => {
                assert_eq!(r.function, "users_detail");
                assert_eq!(p, vec![("id", "0192d7b0-0000-7000-8000-000000000001".to_owned())]);
            }
            _ => panic!("detail"),
        }
        assert!(matches!(find("GET", "/auth/users/activation/"), Match::WrongMethod(m) if m == vec!["POST"]));
        assert!(matches!(find("GET", "/auth/users/a/b"), Match::NotFound));
        assert!(matches!(find("GET", "/auth/users/"), Match::Found(r, _) if r.function == "users"));
        assert!(matches!(find("GET", "/auth/users//"), Match::NotFound));
    }

    #[test]
    fn path_parameters_are_decoded_once_as_api_gateway_does() {
        let param = |path: &str| match find("GET", path) {
            Match::Found(_, p) => p[0].1.clone(),
            _ => panic!("{path} not routed"),
        };
        assert_eq!(param("/auth/admin/groups/50%2541"), "50%41");
        assert_eq!(param("/auth/admin/groups/caf%C3%A9/"), "café");
        assert_eq!(param("/auth/admin/groups/100%"), "100%");
        assert_eq!(param("/auth/admin/groups/a%2Fb"), "a/b");
        assert_eq!(param("/auth/admin/groups/%zz%4"), "%zz%4");
    }
}
