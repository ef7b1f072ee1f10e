//! Lambda function `admin_permissions`.

use gatehouse_functions::{boot, handlers::admin_permissions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(admin_permissions::handler).await
}
