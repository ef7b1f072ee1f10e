//! Lambda function `webauthn_credentials_detail`.

use gatehouse_functions::{boot, handlers::webauthn_credentials_detail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(webauthn_credentials_detail::handler).await
}
