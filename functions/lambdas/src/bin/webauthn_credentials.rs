//! Lambda function `webauthn_credentials`.

use gatehouse_functions::{boot, handlers::webauthn_credentials};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(webauthn_credentials::handler).await
}
