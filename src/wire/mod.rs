//! The PostgreSQL protocol layer every pgvshard server shares.

pub mod backend;
pub mod datetime;
pub mod error;
pub mod frontend;
pub mod guc;
pub mod session;
pub mod sqlstate;
pub mod types;
pub mod value;
