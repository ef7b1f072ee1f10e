//! An account's link to a sign-in provider (social / OpenID Connect sign-in).

use super::UserId;

/// A provider's account linked to a Gatehouse account: `IDENTITY#<provider>#<subject>` /
/// `IDENTITY` (the claim: one account per provider subject) and `USER#<id>` /
/// `IDENTITY#<provider>` (the account's side: one link per provider per account), written and
/// removed together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The provider's name in `SOCIAL_PROVIDERS` (`google`, `github`, ...).
    pub provider: String,
    /// The provider's stable id of its account (`sub`; GitHub's numeric user id).
    pub subject: String,
    pub user_id: UserId,
    /// The address the provider gave when the link was made (shown in the list, never used to
    /// find an account).
    pub email: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}
