//! A mailer that fails on command, for fault-injection tests: it wraps another mailer (the
//! capture mailer, or SES at the emulator) and, when armed, answers a send with a [`MailError`]
//! as SES would for a rejected message, a throttled account or a request that timed out. Never
//! sleeps: a "timeout" is only the error a timed-out request ends with.
//!
//! Every attempt is recorded with its outcome, so a test can tell what was tried from what was
//! delivered.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ports::{MailError, Mailer, OutgoingEmail};

/// How an armed send fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailFault {
    /// SES refused the message (`MessageRejected`): the send is final, nothing went out.
    Rejected,
    /// The request timed out: nothing is known to have gone out.
    TimedOut,
    /// SES throttled the account (`TooManyRequestsException`).
    Throttled,
}

impl MailFault {
    fn error(self) -> MailError {
        MailError(
            match self {
                MailFault::Rejected => "injected fault: SendEmail: MessageRejected: Email address is not verified",
                MailFault::TimedOut => "injected fault: SendEmail: operation timed out",
                MailFault::Throttled => "injected fault: SendEmail: TooManyRequestsException",
            }
            .into(),
        )
    }
}

/// One send as the wrapper saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub email: OutgoingEmail,
    /// `None` when it was passed on to the inner mailer.
    pub fault: Option<MailFault>,
    /// Whether the inner mailer accepted it.
    pub delivered: bool,
}

#[derive(Clone, Copy, Debug)]
struct Armed {
    fault: MailFault,
    /// Sends still let through before failing starts.
    skip: u64,
    /// Failures left; `None`: until healed.
    remaining: Option<u64>,
}

#[derive(Default)]
struct State {
    armed: Option<Armed>,
    attempts: Vec<Attempt>,
}

/// The handle arming a [`FaultyMailer`]; cheap to clone, shared with the test.
#[derive(Clone, Default)]
pub struct MailFaults {
    state: Arc<Mutex<State>>,
}

impl MailFaults {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next `n` sends fail with `fault`; later ones pass.
    pub fn fail_next(&self, fault: MailFault, n: u64) {
        self.lock().armed = (n > 0).then_some(Armed { fault, skip: 0, remaining: Some(n) });
    }

    /// The next `k` sends pass, every later one fails with `fault` until [`MailFaults::heal`].
    pub fn fail_after(&self, fault: MailFault, k: u64) {
        self.lock().armed = Some(Armed { fault, skip: k, remaining: None });
    }

    /// Every send fails with `fault` until [`MailFaults::heal`].
    pub fn fail_all(&self, fault: MailFault) {
        self.fail_after(fault, 0);
    }

    /// Sends pass again.
    pub fn heal(&self) {
        self.lock().armed = None;
    }

    /// Every send tried so far, oldest first.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.lock().attempts.clone()
    }

    /// The sends this wrapper failed, oldest first.
    pub fn failed(&self) -> Vec<OutgoingEmail> {
        self.lock().attempts.iter().filter(|a| a.fault.is_some()).map(|a| a.email.clone()).collect()
    }

    /// The sends passed on to the inner mailer, oldest first.
    pub fn passed(&self) -> Vec<OutgoingEmail> {
        self.lock().attempts.iter().filter(|a| a.fault.is_none()).map(|a| a.email.clone()).collect()
    }

    /// The sends the inner mailer accepted, oldest first.
    pub fn delivered(&self) -> Vec<OutgoingEmail> {
        self.lock().attempts.iter().filter(|a| a.delivered).map(|a| a.email.clone()).collect()
    }

    fn mark_delivered(&self, index: usize) {
        if let Some(a) = self.lock().attempts.get_mut(index) {
            a.delivered = true;
        }
    }

    /// Records the attempt and decides its fate: its index, and the fault to answer with.
    fn decide(&self, email: &OutgoingEmail) -> (usize, Option<MailFault>) {
        let mut s = self.lock();
        let fault = match s.armed.as_mut() {
            None => None,
            Some(armed) if armed.skip > 0 => {
                armed.skip -= 1;
                None
            }
            Some(armed) => {
                if let Some(left) = armed.remaining.as_mut() {
                    *left = left.saturating_sub(1);
                }
                Some(armed.fault)
            }
        };
        if s.armed.is_some_and(|a| a.remaining == Some(0)) {
            s.armed = None;
        }
        s.attempts.push(Attempt { email: email.clone(), fault, delivered: false });
        (s.attempts.len() - 1, fault)
    }
}

impl fmt::Debug for MailFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("MailFaults").field("armed", &s.armed).field("attempts", &s.attempts.len()).finish()
    }
}

/// A [`Mailer`] failing on command; see the module documentation.
pub struct FaultyMailer<M: ?Sized> {
    inner: Arc<M>,
    faults: MailFaults,
}

impl<M: Mailer + ?Sized> FaultyMailer<M> {
    /// Wraps `inner`; returns the mailer and the handle arming its faults.
    pub fn new(inner: Arc<M>) -> (Self, MailFaults) {
        let faults = MailFaults::default();
        (Self { inner, faults: faults.clone() }, faults)
    }

    pub fn faults(&self) -> &MailFaults {
        &self.faults
    }
}

#[async_trait]
impl<M: Mailer + ?Sized> Mailer for FaultyMailer<M> {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let (index, fault) = self.faults.decide(email);
        if let Some(fault) = fault {
            return Err(fault.error());
        }
        self.inner.send(email).await?;
        self.faults.mark_delivered(index);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::mail::CaptureMailer;
    use crate::ports::EmailKind;

    fn email(to: &str) -> OutgoingEmail {
        OutgoingEmail {
            kind: EmailKind::Activation,
            to: to.into(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            link: None,
        }
    }

    #[tokio::test]
    async fn armed_sends_fail_and_never_reach_the_inner_mailer() {
        let capture = Arc::new(CaptureMailer::new());
        let (mailer, faults) = FaultyMailer::new(capture.clone());
        faults.fail_next(MailFault::Rejected, 2);
        assert!(mailer.send(&email("a@example.com")).await.unwrap_err().0.contains("MessageRejected"));
        assert!(mailer.send(&email("b@example.com")).await.is_err());
        mailer.send(&email("c@example.com")).await.unwrap();
        assert_eq!(capture.sent().len(), 1);
        assert_eq!(faults.failed().len(), 2);
        assert_eq!(faults.passed()[0].to, "c@example.com");
        assert_eq!(faults.delivered(), faults.passed());
        faults.fail_all(MailFault::TimedOut);
        for _ in 0..3 {
            assert!(mailer.send(&email("d@example.com")).await.unwrap_err().0.contains("timed out"));
        }
        faults.heal();
        mailer.send(&email("e@example.com")).await.unwrap();
        assert_eq!(capture.sent().len(), 2);
        assert_eq!(faults.attempts().len(), 7);
        faults.fail_after(MailFault::Throttled, 1);
        mailer.send(&email("f@example.com")).await.unwrap();
        assert!(mailer.send(&email("g@example.com")).await.unwrap_err().0.contains("TooManyRequests"));
        assert_eq!(capture.sent().len(), 3);
    }
}
