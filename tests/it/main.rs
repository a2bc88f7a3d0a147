//! The whole product on the local emulator: the Represent stack built by cargo-lambda, deployed
//! by the deployer's real SDK clients, invoked per tenant, redeployed, replaced and destroyed.

mod deploy;
mod support;
