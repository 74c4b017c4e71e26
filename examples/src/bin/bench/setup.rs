//! The three set-ups of the benchmark, each a chain client → service1 → service2 → service3 on
//! loopback: the apps `--plain` (bare hyper), the apps with the mesh, and the plain apps with two
//! nginx hops per call (the sidecar model, Istio's path; Envoy is not installable here).

use std::fmt;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesh_examples::hop::BENCH_POLICY;
use mesh_examples::lab::service_entry;

use crate::procfs;

/// Which set-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--plain` apps calling each other directly.
    Plain,
    /// The apps with every mesh layer on the happy path.
    Mesh,
    /// `--plain` apps, each behind an nginx "sidecar" with an inbound and an outbound listener.
    Sidecar,
    /// The mesh apps with `--certs`: auto-mutual TLS between them, STRICT ([`crate::mtls`]).
    MeshMtls,
    /// `--plain --certs` apps: bare hyper over mutual TLS with plain rustls (the TLS baseline).
    PlainTls,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Plain => "plain",
            Kind::Mesh => "mesh",
            Kind::Sidecar => "sidecar",
            Kind::MeshMtls => "mesh-mtls",
            Kind::PlainTls => "plain-tls",
        })
    }
}

/// What a started process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// One of the example services.
    App,
    /// An nginx sidecar.
    Proxy,
}

/// A process this benchmark started (and will stop, by its PID).
pub(crate) struct Proc {
    pub name: String,
    pub role: Role,
    child: Child,
}

impl Proc {
    /// The PIDs whose CPU and memory count for this process (nginx: master and workers).
    pub(crate) fn pids(&self) -> Vec<u32> {
        let pid = self.child.id();
        let mut pids = vec![pid];
        pids.extend(procfs::children(pid));
        pids
    }

    /// CPU microseconds used so far.
    pub(crate) fn cpu_micros(&self) -> f64 {
        self.pids().into_iter().filter_map(procfs::cpu_micros).sum()
    }

    /// Resident memory in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        self.pids().into_iter().filter_map(procfs::rss_kib).sum()
    }
}

/// A running set-up.
pub(crate) struct Running {
    pub kind: Kind,
    /// Where the load generator sends (service1, or its sidecar).
    pub entry: SocketAddr,
    pub procs: Vec<Proc>,
    /// The apps' admin addresses.
    pub admins: Vec<SocketAddr>,
    dir: PathBuf,
}

impl Running {
    /// CPU microseconds used so far by every process of the set-up.
    pub(crate) fn cpu_micros(&self) -> f64 {
        self.procs.iter().map(Proc::cpu_micros).sum()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(p.child.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for p in &mut self.procs {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A free loopback port (bound, then released for the child to take).
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_listening(port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!(
        "{what} did not listen on 127.0.0.1:{port} within 20 s"
    ))
}

fn nginx_conf(dir: &Path, name: &str, listeners: &[(u16, u16)]) -> Result<PathBuf, String> {
    let tmp = dir.join(format!("nginx-{name}"));
    fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let t = tmp.display();
    let mut conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {t}/nginx.pid;\nerror_log {t}/error.log warn;\n\
         events {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {t}/body;\n  \
         proxy_temp_path {t}/proxy;\n  fastcgi_temp_path {t}/fastcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n"
    );
    for (i, (listen, upstream)) in listeners.iter().enumerate() {
        conf.push_str(&format!(
            "  upstream up{i} {{ server 127.0.0.1:{upstream}; keepalive 128; }}\n  server {{\n    listen 127.0.0.1:{listen};\n    \
             location / {{ proxy_pass http://up{i}; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host $host; }}\n  }}\n"
        ));
    }
    conf.push_str("}\n");
    let path = tmp.join("nginx.conf");
    fs::write(&path, conf).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// Starts one set-up; `bin` is the folder holding the release binaries.
pub(crate) fn start(kind: Kind, bin: &Path) -> Result<Running, String> {
    let io = |e: std::io::Error| e.to_string();
    let dir = std::env::temp_dir().join(format!("mesh-bench-{}-{kind}", std::process::id()));
    let cfg = dir.join("config");
    fs::create_dir_all(&cfg).map_err(io)?;
    let [s1, s2, s3] = [
        free_port().map_err(io)?,
        free_port().map_err(io)?,
        free_port().map_err(io)?,
    ];
    let mut running = Running {
        kind,
        entry: SocketAddr::from(([127, 0, 0, 1], s1)),
        procs: Vec::new(),
        admins: Vec::new(),
        dir: dir.clone(),
    };

    // Where each caller reaches its callee: directly, or through its own outbound sidecar.
    let (to_s2, to_s3) = if kind == Kind::Sidecar {
        let ports: Vec<u16> = (0..5)
            .map(|_| free_port())
            .collect::<Result<_, _>>()
            .map_err(io)?;
        let (in1, out1, in2, out2, in3) = (ports[0], ports[1], ports[2], ports[3], ports[4]);
        // Each service gets one nginx with an inbound listener (to the app) and an outbound one
        // (to the next service's inbound listener): two proxy hops per call, as with Envoy.
        for (name, listeners) in [
            ("service1", vec![(in1, s1), (out1, in2)]),
            ("service2", vec![(in2, s2), (out2, in3)]),
            ("service3", vec![(in3, s3)]),
        ] {
            let conf = nginx_conf(&dir, name, &listeners)?;
            let child = Command::new("nginx")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("starting nginx (apt-get install nginx): {e}"))?;
            running.procs.push(Proc {
                name: format!("nginx-{name}"),
                role: Role::Proxy,
                child,
            });
            wait_listening(listeners[0].0, "nginx")?;
        }
        running.entry = SocketAddr::from(([127, 0, 0, 1], in1));
        (out1, out2)
    } else {
        (s2, s3)
    };
    let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let mut registry = service_entry("service1", &[(local(s1), "v1")]);
    registry.push_str(&service_entry("service2", &[(local(to_s2), "v1")]));
    registry.push_str(&service_entry("service3", &[(local(to_s3), "v1")]));
    let certs = match kind {
        Kind::MeshMtls | Kind::PlainTls => Some(crate::mtls::prepare(&dir, &cfg, &mut registry)?),
        _ => None,
    };
    fs::write(cfg.join("00-registry.yaml"), registry).map_err(io)?;
    if matches!(kind, Kind::Mesh | Kind::MeshMtls) {
        fs::write(cfg.join("10-policy.yaml"), BENCH_POLICY).map_err(io)?;
    }

    for (name, port, extra) in [
        ("service3", s3, vec![]),
        ("service2", s2, vec!["--version", "v1"]),
        ("service1", s1, vec![]),
    ] {
        let admin = free_port().map_err(io)?;
        let mut cmd = Command::new(bin.join(name));
        cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
        cmd.arg("--admin").arg(format!("127.0.0.1:{admin}"));
        cmd.arg("--config").arg(&cfg);
        cmd.args(&extra);
        if let Some(certs) = &certs {
            cmd.arg("--certs").arg(certs.join(name));
        }
        if !matches!(kind, Kind::Mesh | Kind::MeshMtls) {
            cmd.arg("--plain");
        }
        let log = fs::File::create(dir.join(format!("{name}.log"))).map_err(io)?;
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.join(name).display()))?;
        running.procs.push(Proc {
            name: name.to_owned(),
            role: Role::App,
            child,
        });
        running
            .admins
            .push(SocketAddr::from(([127, 0, 0, 1], admin)));
        wait_listening(port, name)?;
    }
    Ok(running)
}
