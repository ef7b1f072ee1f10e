//! Lambda function `mfa_totp_confirm`.

use gatehouse_functions::{boot, handlers::mfa_totp_confirm};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(mfa_totp_confirm::handler).await
}
