//! Lambda function `webauthn_login`.

use gatehouse_functions::{boot, handlers::webauthn_login};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(webauthn_login::handler).await
}
