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

/// A passkey (a WebAuthn credential) of a user (`USER#<id>` / `WEBAUTHN#<credential id>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub user_id: UserId,
    /// The credential id, base64url without padding (what `rawId` says).
    pub id: String,
    /// The user's name for it ("Ada's phone").
    pub name: String,
    /// The credential as the WebAuthn library keeps it (public key, sign counter, flags): JSON.
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What a challenge is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeKind {
    /// The second step of a sign-in (`mfa_token`).
    Mfa,
    /// A passkey registration's challenge.
    WebauthnRegister,
    /// A passwordless passkey sign-in's challenge (`login_token`).
    WebauthnLogin,
    /// The second step of a sign-in whose first step was a provider's (`mfa_token`; the
    /// session's `amr` then says `fed`, not `pwd`).
    MfaFederated,
    /// A provider sign-in under way (`state`): the provider, the redirect URI, the PKCE verifier
    /// and the nonce it is bound to.
    OauthState,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mfa => "mfa",
            Self::WebauthnRegister => "webauthn_register",
            Self::WebauthnLogin => "webauthn_login",
            Self::MfaFederated => "mfa_federated",
            Self::OauthState => "oauth_state",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Mfa, Self::WebauthnRegister, Self::WebauthnLogin, Self::MfaFederated, Self::OauthState]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A short-lived, single-use challenge (`CHALLENGE#<id>` / `CHALLENGE`): an MFA sign-in step or a
/// WebAuthn ceremony. Wrong answers are counted before they are judged; the right one takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Random, unguessable: the token the client holds.
    pub id: String,
    pub kind: ChallengeKind,
    pub user_id: Option<UserId>,
    /// What the ceremony needs back (JSON text), e.g. the WebAuthn state.
    pub data: String,
    /// Answers tried so far.
    pub attempts: u32,
    pub expires_at: i64,
}
