//! Lambda function `admin_users`.

use gatehouse_functions::{boot, handlers::admin_users};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(admin_users::handler).await
}
