//! demo: the whole article on one machine. Starts the gateway, service1, service2 (v1 and v2),
//! service3 and a demo JWT issuer on free loopback ports, in this process, then runs each of the
//! article's scenarios (routing, JWT, mirroring, the 90/10 split, a canary moved while traffic
//! flows, A/B by header hash, retries) and prints what it expected and what it saw. Exits
//! non-zero if any scenario misses.
//!
//! Run: `cargo run --release -p mesh-examples --bin demo`
//! (`-- routing split` runs only those; `-- --serve` keeps the set-up running and prints curl
//! commands to try by hand).

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use mesh_examples::lab::{Lab, LabOptions};
use mesh_examples::scenarios::{self, Progress};

/// Runs the article's scenarios end to end.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Keep the article's set-up (with JWT) running and print commands to try; Ctrl-C stops.
    #[arg(long)]
    serve: bool,
    /// Scenarios to run (default: all): routing, jwt, mirror, split, canary, ab-header-hash, retries.
    names: Vec<String>,
}

/// Prints progress on stderr: a bar redrawn in place on a terminal; elsewhere (a log file, CI)
/// one plain line per quarter of each step, so the output stays readable.
struct Printer {
    terminal: bool,
}

impl Printer {
    fn new() -> Self {
        use std::io::IsTerminal as _;
        Self {
            terminal: std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for Printer {
    fn tick(&self, label: &str, done: usize, total: usize) {
        if !self.terminal {
            // One line when a quarter boundary is crossed (and at the end).
            let quarter = |n: usize| (n * 4).checked_div(total).unwrap_or(4);
            if done >= total || (done > 0 && quarter(done) != quarter(done - 1)) {
                eprintln!("    {label:<12} {done}/{total}");
            }
            return;
        }
        let width = 30;
        let filled = (done * width)
            .checked_div(total)
            .unwrap_or(width)
            .min(width);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r    {label:<12} [{}{}] {done}/{total}",
            "#".repeat(filled),
            ".".repeat(width - filled)
        );
        if done >= total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }

    fn phase(&self, text: &str) {
        eprintln!("  … {text}");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let _tracing = mesh_examples::run::init_tracing_at("warn");
    let cli = Cli::parse();
    if cli.serve {
        return serve().await;
    }
    let all = scenarios::all();
    let chosen: Vec<_> = all
        .iter()
        .filter(|(n, _)| cli.names.is_empty() || cli.names.iter().any(|c| c == n))
        .collect();
    if chosen.is_empty() {
        eprintln!(
            "demo: no scenario named {:?}; known: {:?}",
            cli.names,
            all.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
        return ExitCode::FAILURE;
    }
    let progress: Arc<dyn Progress> = Arc::new(Printer::new());
    let started = Instant::now();
    let mut missed = 0;
    for (name, run) in chosen.iter().copied() {
        println!("\n== {name}");
        match run(progress.clone()).await {
            Ok(o) => {
                println!("   expected: {}", o.expected);
                println!("   observed: {}", o.observed);
                println!("   {}", if o.passed { "PASS" } else { "MISS" });
                missed += usize::from(!o.passed);
            }
            Err(e) => {
                println!("   could not run: {e}");
                println!("   MISS");
                missed += 1;
            }
        }
    }
    println!(
        "\n{} of {} scenarios passed in {:.1} s",
        chosen.len() - missed,
        chosen.len(),
        started.elapsed().as_secs_f64()
    );
    if missed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn serve() -> ExitCode {
    let lab = match Lab::start("jwt", LabOptions::default()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = lab
        .issuer()
        .mint("alice", "mesh-demo", std::time::Duration::from_secs(3600))
        .unwrap_or_default();
    let gw = lab.gateway.addr;
    println!(
        "The article's set-up is running (config folder {}, watched: edit it live).",
        lab.config_dir().display()
    );
    println!(
        "  gateway   http://{gw}      admin http://{}/metrics",
        lab.gateway.admin
    );
    println!(
        "  service1  http://{}  admin http://{}/metrics",
        lab.service1.addr, lab.service1.admin
    );
    println!(
        "  service2  v1 http://{}  v2 http://{}",
        lab.service2_v1.addr, lab.service2_v2.addr
    );
    println!("  service3  http://{}", lab.service3.addr);
    // The mesh page, scraping every app's admin port (port 15100 when free).
    let admins: Vec<String> = [
        &lab.gateway,
        &lab.service1,
        &lab.service2_v1,
        &lab.service2_v2,
        &lab.service3,
    ]
    .iter()
    .map(|s| format!("http://{}", s.admin))
    .collect();
    let options = meshctl::dashboard::Options {
        config: Some(lab.config_dir().to_owned()),
        ..meshctl::dashboard::Options::new(meshctl::dashboard::Source::Scrape(admins.clone()))
    };
    let preferred = std::net::SocketAddr::from(([127, 0, 0, 1], 15100));
    let dashboard = match meshctl::dashboard::Dashboard::bind(preferred, options.clone()).await {
        Ok(d) => Some(d),
        Err(_) => meshctl::dashboard::Dashboard::bind(([127, 0, 0, 1], 0).into(), options)
            .await
            .map_err(|e| eprintln!("demo: the dashboard did not start: {e}"))
            .ok(),
    };
    if let Some(d) = &dashboard {
        println!(
            "  dashboard http://{}/  (the mesh page, live)",
            d.local_addr()
        );
    }
    println!(
        "            same as: meshctl dashboard --config {} --scrape {}",
        lab.config_dir().display(),
        admins.join(" --scrape ")
    );
    println!(
        "  issuer    http://{}/.well-known/jwks.json  (tokens: /token?sub=NAME)",
        lab.issuer_addr()
    );
    println!("\nTry:");
    println!("  curl -i http://{gw}/service1/hello                       # 401: no token");
    println!(
        "  TOKEN=$(curl -s http://{}/token?sub=alice)",
        lab.issuer_addr()
    );
    println!("  curl -s -H \"authorization: Bearer $TOKEN\" http://{gw}/service1/hello");
    println!("  curl -s -H \"authorization: Bearer {token}\" http://{gw}/service2/hello");
    println!(
        "  cp examples/scenarios/split/06-virtualservice-split.yaml {}/   # 90/10 split, live",
        lab.config_dir().display()
    );
    println!("\nCtrl-C stops.");
    mesh_examples::run::os_signal().await;
    if let Some(d) = dashboard {
        d.shutdown().await;
    }
    lab.stop().await;
    ExitCode::SUCCESS
}
