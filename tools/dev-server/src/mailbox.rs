//! The dev server's mailer: prints every email with its link, keeps it for `GET /_dev/emails`,
//! then hands it to the real mailer (SES at the emulator, or the capture mailer).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gatehouse_core::ports::{MailError, Mailer, OutgoingEmail};
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
            .map(|e| json!({"to": e.to, "subject": e.subject, "link": e.link, "text": e.text, "kind": format!("{:?}", e.kind)}))
            .collect();
        gatehouse_functions::http::json(StatusCode::OK, &json!(items))
    }
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
