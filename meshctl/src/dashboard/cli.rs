//! `meshctl dashboard` flags and the command itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{Dashboard, Options, Source};

/// Flags of `meshctl dashboard`.
#[derive(Clone, Debug, clap::Args)]
pub struct DashboardArgs {
    /// Address to serve the page on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15100")]
    pub listen: SocketAddr,
    /// A Prometheus that scrapes the apps' admin ports (its base URL).
    #[arg(long, value_name = "URL", conflicts_with = "scrape")]
    pub prometheus: Option<String>,
    /// An app's admin base URL, scraped directly; repeat once per app.
    #[arg(long, value_name = "URL")]
    pub scrape: Vec<String>,
    /// A config folder for the routes panel (default: the first scraped app's /config_dump).
    #[arg(long, value_name = "DIR", conflicts_with = "kube")]
    pub config: Option<PathBuf>,
    /// Read the routes from the Kubernetes API server (the pod's service account, else
    /// $KUBECONFIG), as the apps in --kube mode do.
    #[arg(long)]
    pub kube: bool,
    /// Time between refreshes (`2s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    pub interval: Duration,
    /// Window the rates and p99 are computed over (`1m`, `30s`).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = duration)]
    pub window: Duration,
}

/// `500ms`, `2s`, `1.5s`, `1m`.
fn duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .ok_or_else(|| format!("`{s}`: a duration needs a unit (ms, s, m)"))?;
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}`: not a duration"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{s}`: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl DashboardArgs {
    /// The options these flags ask for, or the usage error.
    pub fn options(&self) -> Result<Options, String> {
        let source = match (&self.prometheus, self.scrape.is_empty()) {
            (Some(url), _) => Source::Prometheus(url.clone()),
            (None, false) => Source::Scrape(self.scrape.clone()),
            (None, true) => {
                return Err(
                    "give --prometheus URL, or --scrape URL once per app's admin port".to_owned(),
                );
            }
        };
        Ok(Options {
            config: self.config.clone(),
            kube: self.kube,
            interval: self.interval,
            window: self.window,
            ..Options::new(source)
        })
    }
}

/// Runs `meshctl dashboard` until Ctrl-C: exit 0, 1 when it cannot listen, 2 on a usage error.
pub fn run(args: &DashboardArgs) -> ExitCode {
    let options = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("meshctl dashboard: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("meshctl dashboard: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let dashboard = match Dashboard::bind(args.listen, options).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("meshctl dashboard: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "dashboard on http://{}/ (Ctrl-C stops)",
            dashboard.local_addr()
        );
        let _ = tokio::signal::ctrl_c().await;
        dashboard.shutdown().await;
        ExitCode::SUCCESS
    })
}
