//! Authenticating a request by its access token, with the session and revocation checked.

use crate::domain::{User, UserId};
use crate::ports::Session;
use crate::tokens::{Claims, TokenType};

use super::{App, ServiceError};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    pub session: Session,
    pub claims: Claims,
}

/// Checks an access token and that its user is active, its session live and the token not issued
/// before a "log out everywhere". One store round trip.
pub async fn authenticate(app: &App, token: Option<&str>) -> Result<Caller, ServiceError> {
    let token = token.ok_or(ServiceError::NotAuthenticated)?;
    let now = app.now();
    let claims = app.tokens.verify(token, TokenType::Access, now).await?;
    let id = UserId::parse(&claims.user_id).ok_or(ServiceError::TokenNotValid)?;
    let (user, session) = app.store.get_user_and_session(&id, &claims.sid, now).await?;
    let user = user.ok_or(ServiceError::TokenNotValid)?;
    let session = session.ok_or(ServiceError::TokenNotValid)?;
    if claims.iat < user.tokens_valid_after {
        return Err(ServiceError::TokenNotValid);
    }
    if !user.is_active {
        return Err(ServiceError::UserInactive);
    }
    Ok(Caller { user, session, claims })
}
