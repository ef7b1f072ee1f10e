//! Lambda function `webauthn_credentials`.

use gatehouse_functions::{boot, handlers::webauthn_credentials};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(webauthn_credentials::handler).await
}
