//! The integration tests of the functions crate, in one binary (one link instead of one per
//! suite): a module per suite, sharing one harness (`common`). `cargo nextest run -p
//! gatehouse-functions --test api <suite>::` runs one suite.

mod common;

mod admin_users;
mod audit;
mod deactivation;
mod django_hashes;
mod dynamo_faults;
mod dynamo_flow;
mod email_templates;
mod faults;
mod flow;
mod groups;
mod hostile;
mod languages;
mod lifecycle;
mod logs;
mod mfa;
mod openapi;
mod pages;
mod passkey_harness;
mod passkeys;
mod permissions;
mod profile_notice;
mod races;
mod route_table;
mod sessions;
mod social;
mod template;
mod throttle;
