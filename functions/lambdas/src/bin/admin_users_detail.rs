//! Lambda function `admin_users_detail`.

use gatehouse_functions::{boot, handlers::admin_users_detail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(admin_users_detail::handler).await
}
