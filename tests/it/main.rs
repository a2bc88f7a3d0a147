//! The whole product on the local emulator: the Represent stack built as deploy builds it, deployed
//! by the deployer's real SDK clients, invoked per tenant, redeployed, replaced and destroyed.

mod credentials;
mod deploy;
mod faults;
mod gateway;
mod lake;
mod support;
mod watch;
