//! Integration tests of the `counties` function: its handler called directly, with the
//! committed tenant data in memory and API Gateway events from fixtures.

mod routes;
mod support;
