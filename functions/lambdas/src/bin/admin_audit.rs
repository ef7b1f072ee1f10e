//! Lambda function `admin_audit`.

use gatehouse_functions::{boot, handlers::admin_audit};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(admin_audit::handler).await
}
