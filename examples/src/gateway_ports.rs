//! The gateway's listeners and their TLS, kept current: shared by the folder gateway
//! ([`crate::gateway::start_gateway_ports`]) and the `--kube` one.
//!
//! Each listener (`--listen`, each `--listen-port N=ADDR`) is a [`PortSlot`]: the Gateway port it
//! serves ([`PortKey`]) and what a new connection gets now ([`PortMode`]: plaintext, TLS with the
//! port's servers, or refused while TLS is configured but no certificate could be read). A
//! [`GatewayTlsSet`] re-reads every slot's inputs — the selected Gateway's `servers[].tls`, the
//! `serverCertificate`/`privateKey`/`caCertificates` files, the `credentialName` Secrets — every
//! [`REFRESH`], and rebuilds a slot's TLS only when they changed. A change that does not build (a
//! half-written file, a key that is not the certificate's, a garbage Secret) keeps the last good
//! servers; the error is logged once and shown in `/config_dump` (`gateway_tls`). New handshakes
//! take the new servers; open connections keep theirs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use mesh_core::policy::GatewayPolicy;
use mesh_tls::gateway::GatewayTls;
use serde_json::{Value, json};

use crate::gateway_tls::{CredentialPem, ServerInputs, build_port_tls, port_inputs};
use crate::run::Shutdown;

/// How often the certificate files, Secrets and the selected Gateway are looked at again.
pub const REFRESH: Duration = Duration::from_millis(250);

/// Which Gateway port a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortKey {
    /// `--listen`: the Gateway's first server port, whichever the Gateway in force says.
    First,
    /// `--listen-port N=ADDR`: the servers of port number N.
    Number(u16),
}

impl PortKey {
    /// The port number this key means under `gateway` (`None`: it has no servers).
    pub fn resolve(self, gateway: &GatewayPolicy) -> Option<u16> {
        match self {
            Self::First => gateway.servers.first().map(|s| s.port),
            Self::Number(n) => Some(n),
        }
    }
}

/// What a new connection on a listener gets.
#[derive(Clone, Debug)]
pub enum PortMode {
    /// Plain HTTP (HTTP/1.1 or h2c prior knowledge).
    Plain,
    /// TLS with these servers (chosen by SNI).
    Tls(Arc<GatewayTls>),
    /// Closed at once: TLS is configured but nothing could be built yet (why).
    Refused(String),
}

/// Resolves `credentialName` (a Kubernetes TLS Secret) to PEM: the `--kube` gateway's Secrets.
pub trait Credentials: Send + Sync {
    /// The PEM of Secret `name` (its last good value), or why there is none.
    fn read(&self, name: &str) -> Result<CredentialPem, String>;
    /// What `/config_dump` shows of the Secrets read (names, errors).
    fn view(&self) -> Value;
}

/// One listener: its Gateway port and what new connections get now.
pub struct PortSlot {
    key: PortKey,
    addr: SocketAddr,
    mode: ArcSwap<PortMode>,
    state: Mutex<SlotState>,
}

/// What the last refresh of a slot saw.
#[derive(Default)]
struct SlotState {
    gateway: Option<String>,
    port: Option<u16>,
    /// The inputs last built (or tried): `None` before the first refresh.
    inputs: Option<Vec<ServerInputs>>,
    /// Why the current inputs are not in force (the last good servers stay), if they are not.
    error: Option<String>,
}

impl PortSlot {
    fn new(key: PortKey, addr: SocketAddr) -> Self {
        Self {
            key,
            addr,
            mode: ArcSwap::from_pointee(PortMode::Plain),
            state: Mutex::new(SlotState::default()),
        }
    }

    /// The Gateway port this listener serves.
    pub fn key(&self) -> PortKey {
        self.key
    }

    /// What a connection accepted now gets.
    pub fn mode(&self) -> Arc<PortMode> {
        self.mode.load_full()
    }

    /// Re-reads the slot's inputs under `gateway` and swaps in what they build, if they changed.
    /// Returns the error of this refresh, if it found one.
    fn refresh(
        &self,
        gateway: Option<&GatewayPolicy>,
        credentials: Option<&dyn Credentials>,
    ) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let port = gateway.and_then(|g| self.key.resolve(g));
        let (Some(gateway), Some(port)) = (gateway, port) else {
            if !matches!(*self.mode(), PortMode::Plain) {
                self.mode.store(Arc::new(PortMode::Plain));
            }
            *state = SlotState::default();
            return None;
        };
        state.gateway = Some(format!(
            "{}/{}",
            gateway.origin.namespace, gateway.origin.name
        ));
        state.port = Some(port);
        let reader = credentials.map(|c| move |name: &str| c.read(name));
        let reader = reader
            .as_ref()
            .map(|r| r as &dyn Fn(&str) -> Result<CredentialPem, String>);
        let inputs = match port_inputs(gateway, port, reader) {
            Ok(inputs) => inputs,
            Err(error) => return self.failed(&mut state, error),
        };
        if state.inputs.as_ref() == Some(&inputs) {
            return state.error.clone();
        }
        let built = build_port_tls(&gateway.origin.name, &inputs);
        state.inputs = Some(inputs);
        match built {
            Ok(None) => {
                self.mode.store(Arc::new(PortMode::Plain));
                state.error = None;
                None
            }
            Ok(Some(tls)) => {
                let serials: Vec<&str> = tls
                    .servers()
                    .iter()
                    .map(|s| s.serial().unwrap_or("?"))
                    .collect();
                tracing::info!(listen = %self.addr, port, serials = ?serials,
                    "gateway TLS: certificates in force for new handshakes");
                self.mode.store(Arc::new(PortMode::Tls(Arc::new(tls))));
                state.error = None;
                None
            }
            Err(error) => self.failed(&mut state, error),
        }
    }

    /// Records `error`: the last good servers stay; without any, TLS connections are refused.
    fn failed(&self, state: &mut SlotState, error: String) -> Option<String> {
        if state.error.as_ref() != Some(&error) {
            let kept = matches!(*self.mode(), PortMode::Tls(_));
            tracing::warn!(listen = %self.addr, %error, last_good_kept = kept,
                "gateway TLS: certificates refused");
        }
        if !matches!(*self.mode(), PortMode::Tls(_)) {
            self.mode.store(Arc::new(PortMode::Refused(error.clone())));
        }
        state.error = Some(error.clone());
        Some(error)
    }

    fn view(&self) -> Value {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let key = match self.key {
            PortKey::First => json!("first"),
            PortKey::Number(n) => json!(n),
        };
        let (mode, servers) = match &*self.mode() {
            PortMode::Plain => ("plaintext", Vec::new()),
            PortMode::Tls(tls) => (
                "tls",
                tls.servers()
                    .iter()
                    .map(|s| json!({"hosts": s.hosts(), "serial": s.serial()}))
                    .collect(),
            ),
            PortMode::Refused(_) => ("refused", Vec::new()),
        };
        json!({
            "listen": self.addr.to_string(),
            "listener": key,
            "gateway": state.gateway,
            "port": state.port,
            "mode": mode,
            "servers": servers,
            "error": state.error,
            "last_good_kept": state.error.is_some() && mode == "tls",
        })
    }
}

/// The Gateway in force for the slots: fixed (a folder gateway) or selected anew each time
/// (the `--kube` gateway).
pub type GatewaySelect = Box<dyn Fn() -> Option<GatewayPolicy> + Send + Sync>;

/// The TLS of every listener of one gateway, kept current by [`GatewayTlsSet::spawn_refresh`].
pub struct GatewayTlsSet {
    select: GatewaySelect,
    credentials: Option<Arc<dyn Credentials>>,
    slots: Mutex<Vec<Arc<PortSlot>>>,
}

impl GatewayTlsSet {
    /// A set over the Gateway `select` gives, with `credentialName` read from `credentials`.
    pub fn new(select: GatewaySelect, credentials: Option<Arc<dyn Credentials>>) -> Self {
        Self {
            select,
            credentials,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// Adds the listener at `addr` serving `key`.
    pub fn add(&self, key: PortKey, addr: SocketAddr) -> Arc<PortSlot> {
        let slot = Arc::new(PortSlot::new(key, addr));
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&slot));
        slot
    }

    /// Re-reads every slot now; the errors found (the last good servers stay where there were).
    pub fn refresh(&self) -> Vec<String> {
        let gateway = (self.select)();
        let slots = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        slots
            .iter()
            .filter_map(|slot| slot.refresh(gateway.as_ref(), self.credentials.as_deref()))
            .collect()
    }

    /// Refreshes every [`REFRESH`] until `shutdown`. File reads run on the blocking pool.
    pub fn spawn_refresh(self: Arc<Self>, shutdown: &Shutdown) -> tokio::task::JoinHandle<()> {
        let stop = shutdown.wait();
        tokio::spawn(async move {
            tokio::pin!(stop);
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = &mut stop => break,
                }
                let set = Arc::clone(&self);
                if tokio::task::spawn_blocking(move || set.refresh())
                    .await
                    .is_err()
                {
                    tracing::error!("gateway TLS refresh panicked");
                }
            }
        })
    }

    /// The `gateway_tls` section of `/config_dump`: each listener's mode, servers (hosts and
    /// certificate serial), and the error keeping the last good servers, if any.
    pub fn view(&self) -> Value {
        let slots = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut view = json!({
            "listeners": slots.iter().map(|s| s.view()).collect::<Vec<_>>(),
        });
        if let (Some(credentials), Some(map)) = (&self.credentials, view.as_object_mut()) {
            map.insert("secrets".to_owned(), credentials.view());
        }
        view
    }
}

#[cfg(test)]
mod tests;
