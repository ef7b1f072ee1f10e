//! Domain types: parsed once at the edge, trusted everywhere after (parse, don't validate).

mod audit;
mod email;
mod identity;
mod mfa;
mod permission;
mod user;

pub use audit::{AuditEntry, AuditPosition, AuditStream, DAY};
pub use email::Email;
pub use identity::Identity;
pub use mfa::{Challenge, ChallengeKind, Mfa, PasskeyRecord, RecoveryCodes, TotpFactor};
pub use permission::Permission;
pub use user::{CodePurpose, Group, Password, User, UserId, Username};
