//! Every binary is the boot of the handler it is named after, and nothing else (a main that ran
//! another function's handler would pass every handler test). Being an integration test of this
//! package, it also has cargo build the binaries (target/debug/<function>) with the test run's
//! features: the deploy rehearsal (tools/infra/test_rehearsal.py) starts those.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// What `src/bin/<function>.rs` holds. A current-thread runtime: Lambda gives a function one
/// event at a time and the hash runs on the blocking pool either way, and not starting a worker
/// thread per core takes about 60,000 instructions (7 %) off every cold start (counted by hand
/// with callgrind on `jwt_verify`: 908 k before, 847 k after).
fn main_of(function: &str) -> String {
    format!(
        "//! Lambda function `{function}`.\n\
         \n\
         use gatehouse_functions::{{boot, handlers::{function}}};\n\
         \n\
         #[tokio::main(flavor = \"current_thread\")]\n\
         async fn main() -> Result<(), lambda_http::Error> {{\n    \
             boot::run({function}::handler).await\n\
         }}\n"
    )
}

#[test]
fn every_main_boots_its_own_handler() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("rs"), "{} is not a binary", path.display());
        let function = path.file_stem().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, main_of(function), "{} is not the boot of handlers::{function}", path.display());
        seen += 1;
    }
    assert!(seen > 0, "no binaries in {}", dir.display());
    // One of them, as cargo built it for this test.
    assert!(Path::new(env!("CARGO_BIN_EXE_jwt_create")).exists());
}
