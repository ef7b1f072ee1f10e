#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! authctl end to end: the built binary against the local emulator
//! (`GATEHOUSE_TEST_DYNAMODB_ENDPOINT`, set by `make test`), one table per test, checked through
//! the core crate's store. One test binary: a module per suite over one harness.

mod commands;
mod common;
mod django;
mod doctor;
mod permissions;
