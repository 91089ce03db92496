//! `culturespa serve`: the API and the browser app.

use std::net::SocketAddr;
use std::path::PathBuf;

use culturespa::engine::DeviceKind;
use culturespa::server::{self, ServeOptions};

use super::Globals;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "CULTURESPA_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Where the database and run outputs live; created on first start.
    #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
    data_dir: PathBuf,
    /// The Trunk-built frontend.
    #[arg(long, env = "CULTURESPA_STATIC_DIR", default_value = "dist")]
    static_dir: PathBuf,
    /// The model of runs that name none (a catalogue name, a model in --models-dir, or a path).
    #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
    model: String,
    /// Where models run when a run names no device: cpu, cuda or cuda:N (a CUDA device needs a
    /// build with --features cuda).
    #[arg(long, env = "CULTURESPA_DEVICE", default_value = "cpu")]
    device: DeviceKind,
    /// Serve in open mode (no accounts) on an address other than loopback; without an account the
    /// server refuses such an address otherwise.
    #[arg(long)]
    open: bool,
    /// Mark session cookies `Secure` (the server is reached over HTTPS); behind a proxy that sends
    /// `X-Forwarded-Proto: https` they are anyway.
    #[arg(long, env = "CULTURESPA_SECURE_COOKIES")]
    secure_cookies: bool,
    /// A TOML file of remote OpenAI-compatible engines (vLLM, llama.cpp's server, ...) that runs
    /// started from the browser may use: `[[engine]]` tables of name, url, model, api_key_env.
    #[arg(long, env = "CULTURESPA_ENGINES")]
    engines: Option<PathBuf>,
}

pub async fn run(globals: &Globals, args: ServeArgs) -> anyhow::Result<()> {
    let remote_engines = match &args.engines {
        Some(file) => culturespa::remote::read_engines_file(file)?,
        None => Vec::new(),
    };
    server::serve(ServeOptions {
        addr: args.addr,
        data_dir: args.data_dir,
        wvs_data: globals.wvs_data.clone(),
        static_dir: Some(args.static_dir),
        models: globals.model_source(args.model)?.with_device(args.device).with_remote_engines(remote_engines),
        open: args.open,
        secure_cookies: args.secure_cookies,
    })
    .await
}
