//! The Represent stack as a library, so the workspace's integration tests deploy exactly what
//! `cargo xtask deploy` deploys.

pub mod stack;
