//! Lambda function `mfa_recovery_codes`.

use gatehouse_functions::{boot, handlers::mfa_recovery_codes};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(mfa_recovery_codes::handler).await
}
