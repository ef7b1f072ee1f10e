//! Lambda function `admin_users_mfa`.

use gatehouse_functions::{boot, handlers::admin_users_mfa};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(admin_users_mfa::handler).await
}
