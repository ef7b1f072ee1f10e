//! Second factors as stored: a user's TOTP factor and recovery codes (see `crate::mfa` for the
//! secrets and codes themselves).

use std::collections::BTreeSet;

use super::UserId;

/// A user's TOTP factor (`USER#<id>` / `MFA#TOTP`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpFactor {
    pub user_id: UserId,
    /// The secret sealed by `mfa::seal` (never the secret itself).
    pub sealed_secret: String,
    /// False while the enrolment waits for its first code; it then expires at `expires_at`.
    pub confirmed: bool,
    pub created_at: i64,
    /// The last step a code was accepted for: a step is accepted once (no replay in its window).
    pub last_step: Option<u64>,
    /// Only while pending.
    pub expires_at: Option<i64>,
}

impl TotpFactor {
    /// Whether the item is still there for `now` (a pending enrolment expires; DynamoDB's TTL
    /// removes it later).
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// A user's recovery codes (`USER#<id>` / `MFA#RECOVERY`): the MACs of those not yet spent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryCodes {
    pub user_id: Option<UserId>,
    pub macs: BTreeSet<String>,
    pub created_at: i64,
}

/// A user's second factors, as one read returns them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mfa {
    /// The TOTP factor, pending or confirmed (a pending one past its expiry is `None`).
    pub totp: Option<TotpFactor>,
    /// The recovery codes left (empty without a confirmed factor).
    pub recovery: RecoveryCodes,
}
