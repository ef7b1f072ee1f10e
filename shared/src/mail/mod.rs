//! Emails: our own templates (text + HTML), the SES v2 mailer and the capture mailer.

pub mod capture;
pub mod faulty;
pub mod ses;

use crate::config::Settings;
use crate::domain::User;
use crate::ports::{EmailKind, OutgoingEmail};

pub use capture::CaptureMailer;
pub use faulty::{FaultyMailer, MailFault, MailFaults};
pub use ses::SesMailer;

struct Template {
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

fn template(kind: EmailKind) -> Template {
    match kind {
        EmailKind::Activation => Template {
            subject: "Activate your {site_name} account",
            text: include_str!("templates/activation.txt"),
            html: include_str!("templates/activation.html"),
        },
        EmailKind::Confirmation => Template {
            subject: "Your {site_name} account is active",
            text: include_str!("templates/confirmation.txt"),
            html: include_str!("templates/confirmation.html"),
        },
        EmailKind::PasswordReset => Template {
            subject: "Reset your {site_name} password",
            text: include_str!("templates/password_reset.txt"),
            html: include_str!("templates/password_reset.html"),
        },
        EmailKind::PasswordChanged => Template {
            subject: "Your {site_name} password was changed",
            text: include_str!("templates/password_changed.txt"),
            html: include_str!("templates/password_changed.html"),
        },
        EmailKind::EmailChange => Template {
            subject: "Confirm your new {site_name} email address",
            text: include_str!("templates/email_change.txt"),
            html: include_str!("templates/email_change.html"),
        },
        EmailKind::SessionReuse => Template {
            subject: "A {site_name} sign-in was ended for your safety",
            text: include_str!("templates/session_reuse.txt"),
            html: include_str!("templates/session_reuse.html"),
        },
        EmailKind::EmailChanged => Template {
            subject: "Your {site_name} email address is being changed",
            text: include_str!("templates/email_changed.txt"),
            html: include_str!("templates/email_changed.html"),
        },
    }
}

/// The link of an emailed action: `{protocol}://{domain}/{url}` with `uid` and `token` filled in.
pub fn action_link(settings: &Settings, url_pattern: &str, uid: &str, token: &str) -> String {
    let url = url_pattern.replace("{uid}", uid).replace("{token}", token);
    format!("{}://{}/{}", settings.protocol, settings.frontend_domain, url.trim_start_matches('/'))
}

/// What an email is about, beyond its kind and its user.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// The action link.
    pub link: Option<String>,
    /// The code to type, when codes are numeric.
    pub code: Option<String>,
    /// The other address of an email change (shown in the notices).
    pub other_address: Option<String>,
}

/// Renders an email of `kind` to `user`'s address.
pub fn render(settings: &Settings, kind: EmailKind, user: &User, extras: Extras) -> OutgoingEmail {
    let t = template(kind);
    let name = if user.first_name.is_empty() { user.email.to_string() } else { user.first_name.clone() };
    let code_line = extras.code.as_deref().map(|c| format!("Or type this code: {c}")).unwrap_or_default();
    let vars: [(&str, &str); 8] = [
        ("site_name", &settings.site_name),
        ("protocol", &settings.protocol),
        ("domain", &settings.frontend_domain),
        ("name", &name),
        ("link", extras.link.as_deref().unwrap_or("")),
        ("code_line", &code_line),
        ("email", user.email.as_str()),
        ("other_address", extras.other_address.as_deref().unwrap_or("")),
    ];
    let fill = |s: &str, escape: bool| {
        vars.iter().fold(s.to_owned(), |acc, (k, v)| {
            acc.replace(&format!("{{{k}}}"), &if escape { html_escape(v) } else { (*v).to_owned() })
        })
    };
    // Subjects are single-line: nothing that reaches one may inject a header.
    let subject: String = fill(t.subject, false).chars().filter(|c| !c.is_control()).collect();
    OutgoingEmail {
        kind,
        to: user.email.to_string(),
        subject,
        text: fill(t.text, false),
        html: fill(t.html, true),
        link: extras.link.clone(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}
