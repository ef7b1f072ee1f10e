//! Emails: our own templates (text + HTML), the SES v2 mailer and the capture mailer.

pub mod capture;
pub mod ses;

use crate::config::Settings;
use crate::domain::User;
use crate::ports::{EmailKind, OutgoingEmail};

pub use capture::CaptureMailer;
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
    }
}

/// The link of an emailed action: `{protocol}://{domain}/{url}` with `uid` and `token` filled in.
pub fn action_link(settings: &Settings, url_pattern: &str, uid: &str, token: &str) -> String {
    let url = url_pattern.replace("{uid}", uid).replace("{token}", token);
    format!(
        "{}://{}/{}",
        settings.protocol,
        settings.frontend_domain,
        url.trim_start_matches('/')
    )
}

/// Renders an email of `kind` to `user`, with an optional action link.
pub fn render(settings: &Settings, kind: EmailKind, user: &User, link: Option<String>) -> OutgoingEmail {
    let t = template(kind);
    let name = if user.first_name.is_empty() {
        user.email.to_string()
    } else {
        user.first_name.clone()
    };
    let vars: [(&str, &str); 5] = [
        ("site_name", &settings.site_name),
        ("protocol", &settings.protocol),
        ("domain", &settings.frontend_domain),
        ("name", &name),
        ("link", link.as_deref().unwrap_or("")),
    ];
    let fill = |s: &str, escape: bool| {
        vars.iter().fold(s.to_owned(), |acc, (k, v)| {
            acc.replace(
                &format!("{{{k}}}"),
                &if escape { html_escape(v) } else { (*v).to_owned() },
            )
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
        link,
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}
