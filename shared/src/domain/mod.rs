//! Domain types: parsed once at the edge, trusted everywhere after (parse, don't validate).

mod email;
mod user;

pub use email::Email;
pub use user::{CodePurpose, Group, Password, User, UserId, Username};
