//! Shared code of the Represent functions: request and response types, tenant handling.

pub mod direct;
pub mod registry;
pub mod tenant;
