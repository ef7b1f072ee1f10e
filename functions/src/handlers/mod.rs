//! One module per function: Request -> service call -> Response. Each exposes `handler`, the
//! boxed entry point used by its binary, the route table and the dev server.

pub mod activation;
pub mod admin_audit;
pub mod admin_groups;
pub mod admin_groups_detail;
pub mod admin_permissions;
pub mod admin_permissions_detail;
pub mod admin_users;
pub mod admin_users_detail;
pub mod admin_users_mfa;
pub mod fallback;
pub mod identities;
pub mod identities_detail;
pub mod jwks;
pub mod jwt_blacklist;
pub mod jwt_create;
pub mod jwt_refresh;
pub mod jwt_verify;
pub mod mfa_recovery_codes;
pub mod mfa_totp;
pub mod mfa_totp_confirm;
pub mod mfa_verify;
pub mod pages;
pub mod register;
pub mod resend_activation;
pub mod reset_password;
pub mod reset_password_confirm;
pub mod sessions;
pub mod sessions_detail;
pub mod set_email;
pub mod set_email_confirm;
pub mod set_password;
pub mod social;
pub mod users;
pub mod users_detail;
pub mod users_me;
pub mod users_me_has;
pub mod webauthn_credentials;
pub mod webauthn_credentials_detail;
pub mod webauthn_login;
pub mod webauthn_login_options;
pub mod webauthn_register;
pub mod webauthn_register_options;

/// Declares `handle` and `handler` around the module's
/// `async fn run(&App, &Request) -> Result<Response<Body>, Reject>`.
macro_rules! entry_point {
    () => {
        /// Answers one request; never fails (every error becomes its DRF-shaped response).
        pub async fn handle(
            app: &gatehouse_core::App,
            req: lambda_http::Request,
        ) -> lambda_http::Response<lambda_http::Body> {
            let origin = crate::http::audit_origin(&req);
            let lang = crate::http::language(app, &req);
            let domain = crate::http::api_domain(&req);
            let outcome = gatehouse_core::site::within(domain, gatehouse_core::i18n::within(lang, run(app, &req)));
            crate::http::localize(
                crate::http::reply(gatehouse_core::services::audit::within(origin, outcome).await),
                lang,
            )
        }

        /// Boxed entry point (binary, route table, dev server).
        pub fn handler(
            app: std::sync::Arc<gatehouse_core::App>,
            req: lambda_http::Request,
        ) -> crate::routes::HandlerFuture {
            Box::pin(async move { handle(&app, req).await })
        }
    };
}
pub(crate) use entry_point;
