//! Lambda function `webauthn_register_options`.

use gatehouse_functions::{boot, handlers::webauthn_register_options};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(webauthn_register_options::handler).await
}
