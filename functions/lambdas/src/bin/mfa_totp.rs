//! Lambda function `mfa_totp`.

use gatehouse_functions::{boot, handlers::mfa_totp};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(mfa_totp::handler).await
}
