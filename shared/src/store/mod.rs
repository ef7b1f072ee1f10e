//! Store implementations: DynamoDB (the real one) and memory (tests and the embedded dev mode).

pub mod doctor;
pub mod dynamo;
pub mod faulty;
pub mod memory;

pub use dynamo::DynamoStore;
#[cfg(feature = "test-support")]
pub use faulty::Scheduler;
pub use faulty::{Faults, FaultyStore, Op};
pub use memory::MemoryStore;
