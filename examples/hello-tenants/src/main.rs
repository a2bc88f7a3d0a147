//! hello-tenants' command line: the deployer's whole `cargo xtask` for a one-function app.

use deployer::cli::App;
use deployer::stack::{App as Stack, Architecture, Function, Stage, Table};

fn main() -> std::process::ExitCode {
    let stack = Stack::new("hello")
        .table(Table::new("greetings"))
        .function(Function::new("hello").per_tenant())
        .stage(Stage::emulator("dev"))
        .stage(Stage::aws("prod").architecture(Architecture::X86_64));
    let app = App::new(env!("CARGO_MANIFEST_DIR"), stack).tenants(["blue", "green"]);
    deployer::cli::main(app.seed("greetings", greeting))
}

/// Each tenant's one record in the `greetings` table.
fn greeting(tenant: &str) -> deployer::cli::Result<deployer::seed::Records> {
    let greeting = format!(r#"{{"text":"Hello, {tenant}!"}}"#);
    Ok([("GREETING".into(), greeting)].into())
}
