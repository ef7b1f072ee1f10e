//! Lambda function `webauthn_register`.

use gatehouse_functions::{boot, handlers::webauthn_register};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(webauthn_register::handler).await
}
