//! Gatehouse's HTTP edge: request parsing, DRF-shaped responses, one handler per action, the
//! route table, and the start-up shared by every Lambda binary.

pub mod boot;
pub mod cookie;
pub mod handlers;
pub mod http;
pub mod pages;
pub mod routes;
