//! `carbon-ops`: the client CLI. Wiring only; see `carbon_ops::cli`.

use clap::Parser;

fn main() {
    let cli = carbon_ops::cli::Cli::parse();
    match carbon_ops::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("carbon-ops: {e:#}");
            std::process::exit(1);
        }
    }
}
