//! A mailer that records what would have been sent (tests), and can be told to fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{MailError, Mailer, OutgoingEmail};

#[derive(Default)]
pub struct CaptureMailer {
    sent: Mutex<Vec<OutgoingEmail>>,
    fail: AtomicBool,
}

impl CaptureMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every email sent so far, oldest first.
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The newest email sent to `to`.
    pub fn last_to(&self, to: &str) -> Option<OutgoingEmail> {
        self.sent().into_iter().rev().find(|e| e.to.eq_ignore_ascii_case(to))
    }

    /// Makes every later send fail (or succeed again).
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }
}

#[async_trait]
impl Mailer for CaptureMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(MailError("capture mailer told to fail".into()));
        }
        self.sent.lock().map_err(|_| MailError("capture lock poisoned".into()))?.push(email.clone());
        Ok(())
    }
}
