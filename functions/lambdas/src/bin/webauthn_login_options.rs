//! Lambda function `webauthn_login_options`.

use gatehouse_functions::{boot, handlers::webauthn_login_options};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(webauthn_login_options::handler).await
}
