//! Store implementations: DynamoDB (the real one, the only one the Lambda functions link), memory
//! (tests and the embedded dev mode, feature `dev`) and the fault-injecting wrapper (tests only,
//! feature `test-util`).

pub mod dynamo;
#[cfg(feature = "test-util")]
pub mod faulty;
#[cfg(feature = "dev")]
pub mod memory;

pub use dynamo::DynamoStore;
#[cfg(feature = "test-util")]
pub use faulty::{Faults, FaultyStore, Op, Scheduler};
#[cfg(feature = "dev")]
pub use memory::MemoryStore;
