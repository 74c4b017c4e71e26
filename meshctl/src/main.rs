//! `meshctl`: the proxyless mesh's command line tool.
//!
//! - `meshctl validate DIR...` checks a config folder: a summary per resource kind and the
//!   warnings when it is valid (exit 0), every error as `file:line: ...` when not (exit 1).
//! - `meshctl routes DIR [--host HOST] [--json]` prints the route table the mesh compiles from
//!   the folder: per host and gateway, each route's match, destinations, timeout, retries,
//!   mirror and fault.
//! - `meshctl dashboard --listen ADDR (--prometheus URL | --scrape URL...) [--config DIR]`
//!   serves a live page of the mesh: service graph, routes with weights and observed shares,
//!   ejected endpoints, each app's config generation ([`meshctl::dashboard`]).
//!
//! Usage errors exit with 2 (clap's convention). See `docs/meshctl.md`.
#![forbid(unsafe_code)]

mod routes;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Check and inspect proxyless-mesh config folders (Istio YAML).
#[derive(Debug, Parser)]
#[command(name = "meshctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate config folders or files: exit 0 when valid, 1 with every error otherwise.
    Validate {
        /// Folders (read recursively) or files of manifests.
        #[arg(required = true, value_name = "DIR")]
        paths: Vec<PathBuf>,
    },
    /// Print the compiled route table of a config folder.
    Routes {
        /// A folder (read recursively) or file of manifests.
        #[arg(value_name = "DIR")]
        path: PathBuf,
        /// Only routes for this host (short name, FQDN, or a host a wildcard covers).
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
        /// Print JSON instead of a text table.
        #[arg(long)]
        json: bool,
    },
    /// Serve a live page of the mesh: service graph, routes, ejections, config state.
    Dashboard(meshctl::dashboard::DashboardArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { paths } => validate::run(&paths),
        Command::Routes { path, host, json } => routes::run(&path, host.as_deref(), json),
        Command::Dashboard(args) => meshctl::dashboard::run(&args),
    }
}
