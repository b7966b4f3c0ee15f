//! `aws-simulator`: serves the simulated services on 127.0.0.1.

use anyhow::Context;
use aws_simulator::{Simulator, config::SimConfig, router, world::Seed};
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Simulates WorkSpaces, WorkDocs, Directory Service Data and Directory Service locally")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "SIM_ADDR", default_value = "127.0.0.1:0")]
    addr: String,
    /// JSON seed: directories (with users) and bundles.
    #[arg(long, env = "SIM_SEED")]
    seed: Option<PathBuf>,
    /// JSON configuration (time factor, lifecycle delays, rate limits); defaults otherwise.
    #[arg(long, env = "SIM_CONFIG")]
    config: Option<PathBuf>,
    /// Where to write the bound address once listening.
    #[arg(long)]
    addr_file: Option<PathBuf>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    let args = Args::parse();
    let seed: Seed = args.seed.as_ref().map(read_json).transpose()?.unwrap_or_default();
    let config: SimConfig = args.config.as_ref().map(read_json).transpose()?.unwrap_or_default();
    let sim = Simulator::new(config, seed).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(&args.addr).await.with_context(|| format!("binding {}", args.addr))?;
    let addr = listener.local_addr()?;
    if let Some(path) = &args.addr_file {
        std::fs::write(path, addr.to_string()).with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(%addr, "aws-simulator listening");
    axum::serve(listener, router(sim)).with_graceful_shutdown(shared::telemetry::shutdown_signal()).await?;
    Ok(())
}
