//! The dev server's mailer: prints every email with its link, keeps it for `GET /_dev/emails`,
//! then hands it to the real mailer (SES at the emulator, or the capture mailer). Also the
//! preview of each kind of email, rendered with sample data and never sent.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gatehouse_core::mail;
use gatehouse_core::ports::{EmailKind, MailError, Mailer, OutgoingEmail};
use gatehouse_core::Settings;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

/// How many emails are kept.
const KEEP: usize = 1000;

pub struct Mailbox {
    inner: Arc<dyn Mailer>,
    kept: Mutex<Vec<OutgoingEmail>>,
}

impl Mailbox {
    pub fn new(inner: Arc<dyn Mailer>) -> Self {
        Self { inner, kept: Mutex::new(Vec::new()) }
    }

    /// `GET /_dev/emails[?to=address]`: newest last.
    pub fn listing(&self, query: Option<&str>) -> Response<Body> {
        let to = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|kv| kv.strip_prefix("to="))
            .map(|v| v.replace("%40", "@").to_ascii_lowercase());
        let kept = self.kept.lock().map(|k| k.clone()).unwrap_or_default();
        let items: Vec<_> = kept
            .iter()
            .filter(|e| to.as_deref().is_none_or(|t| e.to.eq_ignore_ascii_case(t)))
            .map(|e| {
                json!({"to": e.to, "subject": e.subject, "link": e.link, "text": e.text, "html": e.html, "kind": format!("{:?}", e.kind)})
            })
            .collect();
        gatehouse_functions::http::json(StatusCode::OK, &json!(items))
    }
}

/// `GET /_dev/emails/preview/{kind}`: the email of that kind rendered for a sample user, with the
/// team's templates (`EMAIL_TEMPLATES_DIR`) where it has them, nothing sent. `kind` is
/// `activation`, `password_reset` ... (or `Activation`, as the listing names it); without one,
/// the kinds and the template files loaded. `?lang=fr` renders it in that language (as for an
/// account whose language it is).
pub fn preview(settings: &Settings, kind: Option<&str>, query: Option<&str>) -> Response<Body> {
    let lang = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("lang="))
        .and_then(|l| gatehouse_core::i18n::known(l));
    let name = |k: EmailKind| format!("{k:?}");
    let wanted = kind.map(|k| k.trim_matches('/').replace('_', "").to_ascii_lowercase()).filter(|k| !k.is_empty());
    let Some(wanted) = wanted else {
        let kinds: Vec<String> = mail::KINDS.iter().map(|k| snake(&name(*k))).collect();
        let files: Vec<_> = settings
            .email_templates
            .files()
            .into_iter()
            .map(|(file, blocks)| json!({"file": file, "blocks": blocks}))
            .collect();
        return gatehouse_functions::http::json(StatusCode::OK, &json!({"kinds": kinds, "templates": files}));
    };
    match mail::KINDS.iter().find(|k| name(**k).to_ascii_lowercase() == wanted) {
        Some(kind) => {
            let m = mail::preview_in(settings, *kind, lang);
            let language = lang.unwrap_or(settings.language_code);
            let body = json!({"kind": name(*kind), "language": language, "subject": m.subject, "text": m.text, "html": m.html, "link": m.link});
            gatehouse_functions::http::json(StatusCode::OK, &body)
        }
        None => {
            let kinds: Vec<String> = mail::KINDS.iter().map(|k| snake(&name(*k))).collect();
            let body =
                json!({"detail": format!("no such email kind; kinds: {}", kinds.join(", ")), "code": "not_found"});
            gatehouse_functions::http::json(StatusCode::NOT_FOUND, &body)
        }
    }
}

/// `PasswordReset` → `password_reset`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[async_trait]
impl Mailer for Mailbox {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        self.inner.send(email).await?;
        println!("\n── email to {} ── {}", email.to, email.subject);
        if let Some(link) = &email.link {
            println!("   link: {link}");
        }
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() >= KEEP {
                kept.remove(0);
            }
            kept.push(email.clone());
        }
        Ok(())
    }
}
