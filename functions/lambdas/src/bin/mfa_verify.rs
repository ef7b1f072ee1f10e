//! Lambda function `mfa_verify`.

use gatehouse_functions::{boot, handlers::mfa_verify};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(mfa_verify::handler).await
}
