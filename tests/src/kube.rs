//! A cluster on loopback for the `--kube` end-to-end tests: mesh-kube's test API server holding
//! the article's Services, Pods (with `status.podIP` a loopback address such as `127.0.0.11`),
//! EndpointSlices and Istio resources, and the example apps started in `--kube` mode against
//! it, each listening on its Pod's IP at port 8080 as in a cluster.
// Test-harness code: a failed set-up step panics the test that asked for it.
#![allow(clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_examples::gateway::GatewaySpec;
use mesh_examples::kube::{
    KubeTarget, start_kube_gateway, start_kube_gateway_ports, start_kube_service,
};
use mesh_examples::run::{ServiceSpec, Shutdown, Started};
use mesh_kube::testing::{TestApiServer, mesh_types};
use serde_json::{Value, json};

/// The port every app listens on, at its Pod's IP (the EndpointSlices' port).
pub const POD_PORT: u16 = 8080;

/// Safety bound against a hang; never an assertion on how long things take.
pub const BOUND: Duration = Duration::from_secs(20);

/// One answer: status (0 when there was none) and body.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status, 0 without an answer.
    pub status: u16,
    /// The body as text (the error without an answer).
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `upstream.version` of service1's answer: the service2 that answered.
    pub fn upstream_version(&self) -> Option<String> {
        self.json()
            .get("upstream")?
            .get("version")?
            .as_str()
            .map(str::to_owned)
    }
}

/// The API server and the apps started against it.
pub struct Cluster {
    /// The test API server.
    pub server: TestApiServer,
    /// Stops every app.
    pub shutdown: Shutdown,
    /// The first two octets after 127 of this test's pod IPs (`127.<net>.<n>`).
    net: u8,
    http: Http,
}

/// A plain HTTP/1 client (what a user's curl would be).
#[derive(Clone)]
pub struct Http(Client<HttpConnector, Empty<Bytes>>);

impl Default for Http {
    fn default() -> Self {
        Self(Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
    }
}

impl Http {
    /// `GET http://<addr><path>`, bounded.
    pub async fn get(&self, addr: SocketAddr, path: &str) -> Answer {
        let req = http::Request::get(format!("http://{addr}{path}"))
            .body(Empty::new())
            .expect("request");
        match tokio::time::timeout(Duration::from_secs(5), self.0.request(req)).await {
            Ok(Ok(res)) => {
                let status = res.status().as_u16();
                let body = match res.into_body().collect().await {
                    Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                    Err(e) => e.to_string(),
                };
                Answer { status, body }
            }
            Ok(Err(e)) => Answer {
                status: 0,
                body: e.to_string(),
            },
            Err(_) => Answer {
                status: 0,
                body: "timed out".to_owned(),
            },
        }
    }
}

/// One of the article's app Pods: its name, the app it runs and its pod IP number.
#[derive(Debug, Clone, Copy)]
pub struct AppPod {
    /// The Pod's name.
    pub pod: &'static str,
    /// The example app it runs (`service1`, `service2`, `service3`).
    pub app: &'static str,
    /// Its pod IP number (see [`Cluster::ip`]).
    pub n: u8,
}

/// service1's Pod.
pub const SERVICE1: AppPod = AppPod {
    pod: "service1-a",
    app: "service1",
    n: 11,
};
/// service2 v1's Pod.
pub const SERVICE2_V1: AppPod = AppPod {
    pod: "service2-v1-a",
    app: "service2",
    n: 12,
};
/// service2 v2's Pod.
pub const SERVICE2_V2: AppPod = AppPod {
    pod: "service2-v2-a",
    app: "service2",
    n: 13,
};
/// service3's Pod.
pub const SERVICE3: AppPod = AppPod {
    pod: "service3-a",
    app: "service3",
    n: 14,
};

impl Cluster {
    /// A test API server serving Istio's and Linkerd's kinds; pod IPs of this cluster are
    /// `127.<net>.0.<n>` (give each test its own `net` so tests can run at once).
    pub async fn start(net: u8) -> Self {
        let server = TestApiServer::start().await.expect("test api server");
        for t in mesh_types() {
            server.register(t);
        }
        Self {
            server,
            shutdown: Shutdown::new(),
            net,
            http: Http::default(),
        }
    }

    /// The pod IP number `n` of this cluster.
    pub fn ip(&self, n: u8) -> IpAddr {
        IpAddr::from([127, self.net, 0, n])
    }

    /// Creates or replaces `object`.
    pub fn apply(&self, object: Value) {
        if let Err(e) = self.server.apply(object.clone()) {
            panic!("apply {object}: {e}");
        }
    }

    /// A Service `name` in `ns` selecting `app: name`, port 80 named `http`.
    pub fn service(&self, ns: &str, name: &str) {
        self.apply(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": POD_PORT}]}}));
    }

    /// A Pod `name` in `ns` of Deployment `deployment`, with `labels`, at pod IP number `n`.
    pub fn pod(&self, ns: &str, name: &str, deployment: &str, labels: Value, n: u8) {
        let mut labels = labels;
        if let Some(map) = labels.as_object_mut() {
            map.insert("pod-template-hash".into(), json!("5d9c7"));
        }
        self.apply(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": format!("{deployment}-5d9c7"), "uid": format!("rs-{deployment}"), "controller": true}]},
            "spec": {"serviceAccountName": deployment, "containers": [{"name": "app", "image": "mesh-examples"}]},
            "status": {"podIP": self.ip(n).to_string(), "phase": "Running"}}));
    }

    /// The EndpointSlice `<svc>-1` of Service `svc` in `ns`: `(pod name, pod IP number, ready)`.
    pub fn slice(&self, ns: &str, svc: &str, endpoints: &[(&str, u8, bool)]) {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(pod, n, ready)| {
                json!({"addresses": [self.ip(*n).to_string()],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}})
            })
            .collect();
        self.apply(
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{svc}-1"), "namespace": ns,
                "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": POD_PORT, "protocol": "TCP"}],
            "endpoints": endpoints}),
        );
    }

    /// The article's workloads in `ns`: Services service1-3, Pods `service1` (n=11),
    /// `service2-v1` (12), `service2-v2` (13), `service3` (14) and their slices.
    pub fn article(&self, ns: &str) {
        for svc in ["service1", "service2", "service3"] {
            self.service(ns, svc);
        }
        self.pod(
            ns,
            "service1-a",
            "service1",
            json!({"app": "service1", "version": "v1"}),
            11,
        );
        self.pod(
            ns,
            "service2-v1-a",
            "service2-v1",
            json!({"app": "service2", "version": "v1"}),
            12,
        );
        self.pod(
            ns,
            "service2-v2-a",
            "service2-v2",
            json!({"app": "service2", "version": "v2"}),
            13,
        );
        self.pod(
            ns,
            "service3-a",
            "service3",
            json!({"app": "service3", "version": "v1"}),
            14,
        );
        self.slice(ns, "service1", &[("service1-a", 11, true)]);
        self.slice(
            ns,
            "service2",
            &[("service2-v1-a", 12, true), ("service2-v2-a", 13, true)],
        );
        self.slice(ns, "service3", &[("service3-a", 14, true)]);
    }

    /// The article's gateway Pod in `istio-system` (n=10, labels `istio: ingressgateway`), its
    /// Gateway `http-gateway` and prefix VirtualService in `ns`.
    pub fn article_gateway(&self, ns: &str) {
        self.pod(
            "istio-system",
            "istio-ingressgateway-a",
            "istio-ingressgateway",
            json!({"app": "istio-ingressgateway", "istio": "ingressgateway"}),
            10,
        );
        self.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": "http-gateway", "namespace": ns},
            "spec": {"selector": {"istio": "ingressgateway"},
                "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}));
        self.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "sssm-virtual-services", "namespace": ns},
            "spec": {"hosts": ["*"], "gateways": ["http-gateway"], "http": [
                {"match": [{"uri": {"prefix": "/service1"}}], "route": [{"destination": {"host": "service1", "port": {"number": 80}}}]},
                {"match": [{"uri": {"prefix": "/service2"}}], "route": [{"destination": {"host": "service2", "port": {"number": 80}}}]}]}}));
    }

    /// The DestinationRule of service2's subsets v1 and v2 in `ns`.
    pub fn subsets(&self, ns: &str) {
        self.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "service2", "namespace": ns},
            "spec": {"host": "service2", "subsets": [
                {"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}}));
    }

    /// service2's VirtualService in `ns`: `weights` (v1, v2).
    pub fn split(&self, ns: &str, v1: u32, v2: u32) {
        self.apply(
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "service2", "namespace": ns},
            "spec": {"hosts": ["service2"], "http": [{"route": [
                {"destination": {"host": "service2", "subset": "v1"}, "weight": v1},
                {"destination": {"host": "service2", "subset": "v2"}, "weight": v2}]}]}}),
        );
    }

    /// Starts app `app` (service1, service2, service3) in `--kube` mode as Pod `pod` of `ns`,
    /// listening on pod IP number `n`, port 8080.
    pub async fn start_service(&self, ns: &str, pod: &str, app: &str, n: u8) -> Started {
        let spec = ServiceSpec {
            name: app.to_owned(),
            version: "v1".to_owned(),
            faults: Default::default(),
            plain: false,
            config: std::path::PathBuf::new(),
            identity: Default::default(),
        };
        let listener = self.bind(n).await;
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("admin listener");
        match start_kube_service(
            &spec,
            &self.target(ns, pod),
            listener,
            admin,
            &self.shutdown,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => panic!("{app} ({ns}/{pod}) did not start: {e}"),
        }
    }

    /// Starts each of `pods` with [`Cluster::start_service`] and waits until all are ready.
    pub async fn start_ready<const N: usize>(&self, ns: &str, pods: [AppPod; N]) -> [Started; N] {
        let mut started = Vec::with_capacity(N);
        for p in pods {
            started.push(self.start_service(ns, p.pod, p.app, p.n).await);
        }
        for app in &started {
            self.ready(app).await;
        }
        match started.try_into() {
            Ok(all) => all,
            Err(_) => unreachable!("one app started per pod"),
        }
    }

    /// Starts the gateway in `--kube` mode as Pod `istio-system/istio-ingressgateway-a` on pod
    /// IP number 10.
    pub async fn start_gateway(&self) -> Started {
        self.start_gateway_pod("istio-system", "istio-ingressgateway-a", 10)
            .await
    }

    /// Starts the gateway in `--kube` mode as Pod `ns/pod` on pod IP number `n`.
    pub async fn start_gateway_pod(&self, ns: &str, pod: &str, n: u8) -> Started {
        let spec = GatewaySpec {
            gateway: None,
            config: std::path::PathBuf::new(),
            identity: Default::default(),
        };
        let listener = self.bind(n).await;
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("admin listener");
        let target = self.target(ns, pod);
        match start_kube_gateway(&spec, &target, listener, admin, &self.shutdown).await {
            Ok(s) => s,
            Err(e) => panic!("gateway did not start: {e}"),
        }
    }

    /// Starts the gateway in `--kube` mode as Pod `istio-system/istio-ingressgateway-a` on pod
    /// IP number 10: `--listen` at port 8080, and each `(N, port)` of `ports` as
    /// `--listen-port N=<pod IP>:port`.
    pub async fn start_gateway_ports(&self, ports: &[(u16, u16)]) -> Started {
        let spec = GatewaySpec {
            gateway: None,
            config: std::path::PathBuf::new(),
            identity: Default::default(),
        };
        let listener = self.bind(10).await;
        let mut listeners = Vec::new();
        for (number, port) in ports {
            let addr = SocketAddr::new(self.ip(10), *port);
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => listeners.push((*number, l)),
                Err(e) => panic!("cannot listen on {addr}: {e}"),
            }
        }
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("admin listener");
        let target = self.target("istio-system", "istio-ingressgateway-a");
        match start_kube_gateway_ports(&spec, &target, listener, listeners, admin, &self.shutdown)
            .await
        {
            Ok(s) => s,
            Err(e) => panic!("gateway did not start: {e}"),
        }
    }

    /// Where Pod `ns/pod` finds the API server and itself.
    pub fn target(&self, ns: &str, pod: &str) -> KubeTarget {
        KubeTarget {
            client: self.server.client().expect("kube client"),
            namespace: ns.to_owned(),
            pod: pod.to_owned(),
        }
    }

    async fn bind(&self, n: u8) -> tokio::net::TcpListener {
        let addr = SocketAddr::new(self.ip(n), POD_PORT);
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => panic!("cannot listen on pod address {addr}: {e}"),
        }
    }

    /// `GET http://<addr><path>`, bounded.
    pub async fn get(&self, addr: SocketAddr, path: &str) -> Answer {
        self.http.get(addr, path).await
    }

    /// A client for requests from another task.
    pub fn http(&self) -> Http {
        self.http.clone()
    }

    /// Polls `GET addr path` until `done` holds for the answer (panics with the last answer
    /// after [`BOUND`]).
    pub async fn until(
        &self,
        addr: SocketAddr,
        path: &str,
        what: &str,
        done: impl Fn(&Answer) -> bool,
    ) -> Answer {
        let start = Instant::now();
        loop {
            let a = self.get(addr, path).await;
            if done(&a) {
                return a;
            }
            if start.elapsed() > BOUND {
                panic!("{what}: still {} {} after {BOUND:?}", a.status, a.body);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls `/config_dump` at `admin` until `done` holds for its text; returns it as JSON.
    pub async fn config_until(&self, admin: SocketAddr, done: impl Fn(&str) -> bool) -> Value {
        self.until(admin, "/config_dump", "config applied", |a| done(&a.body))
            .await
            .json()
    }

    /// Waits until the app's `/healthz` answers 200.
    pub async fn ready(&self, app: &Started) {
        self.until(app.admin, "/healthz", "ready", |a| a.status == 200)
            .await;
    }
}
