//! `carbon-ops-agent`: the daemon. Wiring only; see `carbon_ops::daemon`.

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match carbon_ops::daemon::parse_args(std::env::args().collect()) {
        Ok(a) => a,
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(ce) => ce.exit(),
            Err(e) => {
                eprintln!("carbon-ops-agent: {e:#}");
                std::process::exit(2);
            }
        },
    };
    if let Err(e) = carbon_ops::daemon::run(args) {
        eprintln!("carbon-ops-agent: {e:#}");
        std::process::exit(1);
    }
}
