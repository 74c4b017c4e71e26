//! An in-process lab: the gateway, service1, service2 v1 and v2, service3 and the demo JWT
//! issuer, all on free loopback ports in one process, sharing a config folder in a temp dir.
//!
//! The demo and the end-to-end tests both run the article's scenarios in a lab, so they check
//! the same thing. A scenario's config is one of the folders under `examples/scenarios/`, with
//! the ServiceEntries rewritten for the lab's ports and the issuer's address filled in.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::app::Faults;
use crate::gateway::{GatewaySpec, start_gateway};
use crate::issuer::{Issuer, IssuerError};
use crate::mesh::{StartError, load_config};
use crate::run::{ServiceSpec, Shutdown, Started, bind, spawn_serve, start_service};

/// The folder holding one config folder per article scenario.
pub const SCENARIOS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

/// The issuer address written in the shipped config files (replaced by the lab's).
const SHIPPED_ISSUER: &str = "http://127.0.0.1:9090";

/// Time allowed for one request in the lab.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The lab could not start or change.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// An app did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The issuer did not start.
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    /// Reading or writing the config folder failed.
    #[error("config folder {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The apps did not pick up a config change in time.
    #[error("the apps did not reload {0} within 10 s")]
    Reload(String),
}

/// How to start the lab's apps.
#[derive(Clone, Copy, Debug, Default)]
pub struct LabOptions {
    /// Faults of service2 v1.
    pub v1_faults: Faults,
    /// Faults of service2 v2.
    pub v2_faults: Faults,
    /// Every app gets a workload certificate from a throwaway CA (`--certs`), and the
    /// registry labels every endpoint for auto-mTLS with its service account.
    pub mtls: bool,
    /// Faults (and latency) of service3.
    pub service3_faults: Faults,
}

/// One answer seen by the lab's client.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Status (0 when there was no answer).
    pub status: u16,
    /// The JSON body, when it was JSON.
    pub json: Option<Value>,
    /// Why there was no answer.
    pub error: Option<String>,
}

impl Reply {
    /// The version of service2 that answered under service1 (`upstream.version`).
    pub fn upstream_version(&self) -> Option<&str> {
        self.json
            .as_ref()?
            .get("upstream")?
            .get("version")?
            .as_str()
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The running lab.
pub struct Lab {
    dir: tempfile::TempDir,
    shutdown: Shutdown,
    ports: Ports,
    issuer: Arc<Issuer>,
    /// The gateway.
    pub gateway: Started,
    /// service1.
    pub service1: Started,
    /// service2 v1.
    pub service2_v1: Started,
    /// service2 v2.
    pub service2_v2: Started,
    /// service3.
    pub service3: Started,
    client: Client<HttpConnector, Empty<Bytes>>,
}

#[derive(Clone, Copy, Debug)]
struct Ports {
    s1: SocketAddr,
    s2a: SocketAddr,
    s2b: SocketAddr,
    s3: SocketAddr,
    issuer: SocketAddr,
    mtls: bool,
}

async fn any_port() -> Result<TcpListener, StartError> {
    bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

fn local(l: &TcpListener) -> Result<SocketAddr, StartError> {
    l.local_addr().map_err(|source| StartError::Bind {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    })
}

impl Lab {
    /// Starts every app with the config of `scenario` (a folder name under `examples/scenarios`).
    pub async fn start(scenario: &str, options: LabOptions) -> Result<Self, LabError> {
        let dir = tempfile::Builder::new()
            .prefix("mesh-lab-")
            .tempdir()
            .map_err(|source| LabError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let (l_s1, l_s2a, l_s2b, l_s3, l_gw, l_iss) = (
            any_port().await?,
            any_port().await?,
            any_port().await?,
            any_port().await?,
            any_port().await?,
            any_port().await?,
        );
        let ports = Ports {
            s1: local(&l_s1)?,
            s2a: local(&l_s2a)?,
            s2b: local(&l_s2b)?,
            s3: local(&l_s3)?,
            issuer: local(&l_iss)?,
            mtls: options.mtls,
        };
        let issuer = Arc::new(Issuer::generate(format!("http://{}", ports.issuer))?);
        let shutdown = Shutdown::new();
        spawn_serve(l_iss, crate::issuer::app(issuer.clone()), &shutdown);
        write_scenario(dir.path(), scenario, &ports)?;
        let config = dir.path().to_owned();
        let certs = if options.mtls {
            Some(crate::lab_tls::write_certs(dir.path()).map_err(io_err(dir.path()))?)
        } else {
            None
        };
        let identity = |name: &str| crate::mesh::Identity {
            certs: certs.as_ref().map(|c| c.join(name)),
            ..crate::mesh::Identity::default()
        };
        let spec = |name: &str, version: &str, faults: Faults| ServiceSpec {
            name: name.to_owned(),
            version: version.to_owned(),
            faults,
            plain: false,
            config: config.clone(),
            identity: identity(name),
        };
        let service3 = start_service(
            &spec("service3", "v1", options.service3_faults),
            l_s3,
            any_port().await?,
            &shutdown,
        )?;
        let service2_v1 = start_service(
            &spec("service2", "v1", options.v1_faults),
            l_s2a,
            any_port().await?,
            &shutdown,
        )?;
        let service2_v2 = start_service(
            &spec("service2", "v2", options.v2_faults),
            l_s2b,
            any_port().await?,
            &shutdown,
        )?;
        let service1 = start_service(
            &spec("service1", "v1", Faults::default()),
            l_s1,
            any_port().await?,
            &shutdown,
        )?;
        let gateway = start_gateway(
            &GatewaySpec {
                gateway: None,
                config,
                identity: identity("gateway"),
            },
            l_gw,
            any_port().await?,
            &shutdown,
        )?;
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        Ok(Self {
            dir,
            shutdown,
            ports,
            issuer,
            gateway,
            service1,
            service2_v1,
            service2_v2,
            service3,
            client,
        })
    }

    /// The config folder the apps watch.
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The demo issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The issuer's address.
    pub fn issuer_addr(&self) -> SocketAddr {
        self.ports.issuer
    }

    /// Replaces the config folder's files with those of `scenario` (each file written whole,
    /// then renamed into place).
    pub fn apply(&self, scenario: &str) -> Result<(), LabError> {
        write_scenario(self.dir.path(), scenario, &self.ports)
    }

    /// Writes one file into the config folder (whole, then renamed into place).
    pub fn write_file(&self, name: &str, text: &str) -> Result<(), LabError> {
        write_atomic(&self.dir.path().join(name), text)
    }

    /// Waits (up to 10 s) until every app runs the config the folder holds now.
    pub async fn wait_reloaded(&self) -> Result<(), LabError> {
        let want = load_config(self.dir.path()).map(|c| format!("{c:?}"))?;
        let apps = [
            &self.gateway,
            &self.service1,
            &self.service2_v1,
            &self.service2_v2,
            &self.service3,
        ];
        for _ in 0..200 {
            if apps.iter().all(|a| {
                a.mesh
                    .as_ref()
                    .is_none_or(|m| format!("{:?}", m.config()) == want)
            }) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(LabError::Reload(self.dir.path().display().to_string()))
    }

    /// `GET path` at the gateway with `headers`.
    pub async fn get(&self, path: &str, headers: &[(&str, String)]) -> Reply {
        get(&self.client, self.gateway.addr, path, headers).await
    }

    /// Stops every app, letting in-flight requests finish.
    pub async fn stop(self) {
        self.shutdown.trigger();
        for s in [
            self.gateway,
            self.service1,
            self.service2_v1,
            self.service2_v2,
            self.service3,
        ] {
            for t in s.tasks {
                let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
            }
        }
    }
}

/// `GET http://{addr}{path}` with `headers`, bounded by a timeout.
pub async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
) -> Reply {
    let fail = |e: String| Reply {
        status: 0,
        json: None,
        error: Some(e),
    };
    let mut b = http::Request::get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let req = match b.body(Empty::new()) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let res = match tokio::time::timeout(REQUEST_TIMEOUT, client.request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(e.to_string()),
        Err(_) => return fail("timed out".to_owned()),
    };
    let status = res.status().as_u16();
    match tokio::time::timeout(REQUEST_TIMEOUT, res.into_body().collect()).await {
        Ok(Ok(body)) => Reply {
            status,
            json: serde_json::from_slice(&body.to_bytes()).ok(),
            error: None,
        },
        Ok(Err(e)) => Reply {
            status,
            json: None,
            error: Some(e.to_string()),
        },
        Err(_) => Reply {
            status,
            json: None,
            error: Some("body timed out".to_owned()),
        },
    }
}

/// A ServiceEntry (STATIC, port 80 named `http`, `location: MESH_INTERNAL`) for `host`, one
/// endpoint per `(address, version)`, each labelled `app: host` and `version`, followed by `---`.
/// The lab, the bench, the in-process hop and the reliability tests all write their registry
/// with it.
pub fn service_entry(host: &str, endpoints: &[(SocketAddr, &str)]) -> String {
    let mut out = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {host}}}\nspec:\n  hosts: [{host}]\n  location: MESH_INTERNAL\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  endpoints:\n"
    );
    for (addr, version) in endpoints {
        let _ = write!(
            out,
            "  - address: {}\n    ports: {{http: {}}}\n    labels: {{app: {host}, version: {version}}}\n",
            addr.ip(),
            addr.port()
        );
    }
    out.push_str("---\n");
    out
}

/// The ServiceEntries of the lab's apps.
fn registry_yaml(p: &Ports) -> String {
    let mut out = String::from("# Written by the lab: the apps' loopback addresses.\n");
    out.push_str(&service_entry("service1", &[(p.s1, "v1")]));
    out.push_str(&service_entry("service2", &[(p.s2a, "v1"), (p.s2b, "v2")]));
    out.push_str(&service_entry("service3", &[(p.s3, "v1")]));
    if p.mtls {
        out = crate::lab_tls::with_auto_mtls(&out);
    }
    out
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), LabError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Makes `dir` hold exactly the files of `scenario`, for the lab's `ports`.
fn write_scenario(dir: &Path, scenario: &str, ports: &Ports) -> Result<(), LabError> {
    let src = Path::new(SCENARIOS_DIR).join(scenario);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&src).map_err(io_err(&src))? {
        let entry = entry.map_err(io_err(&src))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".yaml") {
            continue;
        }
        let text = if name == "00-registry.yaml" {
            registry_yaml(ports)
        } else {
            let path = entry.path();
            std::fs::read_to_string(&path)
                .map_err(io_err(&path))?
                .replace(SHIPPED_ISSUER, &format!("http://{}", ports.issuer))
        };
        let dst = dir.join(&name);
        // Skip files that would not change, so the watchers see only real changes.
        if std::fs::read_to_string(&dst).ok().as_deref() != Some(text.as_str()) {
            write_atomic(&dst, &text)?;
        }
        names.push(name);
    }
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !names.contains(&name) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}
