//! Test hosts in network namespaces this test creates itself: two namespaces joined by a veth
//! pair, addresses on that link only, and helpers to cut the link or add latency (tc netem).
//! Everything is removed on drop. Needs root and iproute2; callers skip with a message when the
//! kernel refuses.

use std::fs::File;
use std::net::Ipv4Addr;
use std::process::Command;

/// Runs a command, returning its stderr as the error.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two hosts, `a` and `b`, each in its own namespace, linked by a veth pair.
pub(crate) struct Hosts {
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) dev_a: String,
    pub(crate) dev_b: String,
    pub(crate) addr_a: Ipv4Addr,
    pub(crate) addr_b: Ipv4Addr,
}

impl Hosts {
    /// Creates the namespaces and the link. The addresses are link-local and exist only inside
    /// the two namespaces: no traffic can leave them.
    pub(crate) fn create(tag: &str) -> Result<Self, String> {
        let id = std::process::id() % 100_000;
        let hosts = Hosts {
            a: format!("mesh-{tag}-a-{id}"),
            b: format!("mesh-{tag}-b-{id}"),
            dev_a: format!("mva{id}"),
            dev_b: format!("mvb{id}"),
            addr_a: Ipv4Addr::new(169, 254, 77, 1),
            addr_b: Ipv4Addr::new(169, 254, 77, 2),
        };
        run("ip", &["netns", "add", &hosts.a])?;
        // From here on, Drop cleans up whatever was made.
        run("ip", &["netns", "add", &hosts.b])?;
        run(
            "ip",
            &[
                "link",
                "add",
                &hosts.dev_a,
                "type",
                "veth",
                "peer",
                "name",
                &hosts.dev_b,
            ],
        )?;
        run("ip", &["link", "set", &hosts.dev_a, "netns", &hosts.a])?;
        run("ip", &["link", "set", &hosts.dev_b, "netns", &hosts.b])?;
        for (ns, dev, addr) in [
            (&hosts.a, &hosts.dev_a, hosts.addr_a),
            (&hosts.b, &hosts.dev_b, hosts.addr_b),
        ] {
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev],
            )?;
            run("ip", &["-n", ns, "link", "set", dev, "up"])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    /// Moves the calling thread into namespace `ns` (sockets it opens from now on live there).
    pub(crate) fn enter(ns: &str) -> Result<(), String> {
        let f =
            File::open(format!("/run/netns/{ns}")).map_err(|e| format!("open netns {ns}: {e}"))?;
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {ns}: {e}"))
    }

    /// Cuts the link (both ends down): a partition.
    pub(crate) fn partition(&self) -> Result<(), String> {
        run("ip", &["-n", &self.a, "link", "set", &self.dev_a, "down"])?;
        run("ip", &["-n", &self.b, "link", "set", &self.dev_b, "down"])
    }

    /// Restores the link.
    pub(crate) fn heal(&self) -> Result<(), String> {
        run("ip", &["-n", &self.a, "link", "set", &self.dev_a, "up"])?;
        run("ip", &["-n", &self.b, "link", "set", &self.dev_b, "up"])
    }

    /// Adds `ms` of latency on a's side of the link with tc netem; `Err` when the kernel has no
    /// netem (then the caller skips that part with the message).
    pub(crate) fn add_latency(&self, ms: u32) -> Result<(), String> {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.a,
                "tc",
                "qdisc",
                "replace",
                "dev",
                &self.dev_a,
                "root",
                "netem",
                "delay",
                &format!("{ms}ms"),
            ],
        )
    }

    /// Removes added latency.
    pub(crate) fn clear_latency(&self) -> Result<(), String> {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.a,
                "tc",
                "qdisc",
                "del",
                "dev",
                &self.dev_a,
                "root",
            ],
        )
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        let _ = run("ip", &["netns", "del", &self.a]);
        let _ = run("ip", &["netns", "del", &self.b]);
    }
}
