//! The in-process figures: one hop of the chain without sockets (`examples/hop_cost.rs` over
//! `mesh_examples::hop`), its allocations per request, and, when valgrind is installed, its
//! instructions per request counted by callgrind (independent of machine load).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one hop costs in one process, mesh and bare.
#[derive(Clone, Debug, Default)]
pub(crate) struct HopCost {
    pub mesh_allocs: f64,
    pub bare_allocs: f64,
    pub mesh_bytes: f64,
    pub bare_bytes: f64,
    /// Instructions per request (mesh, bare), when valgrind ran.
    pub instructions: Option<(u64, u64)>,
}

/// Where `hop_cost` is built next to `bench`.
pub(crate) fn hop_cost_bin(bin: &Path) -> PathBuf {
    bin.join("examples").join("hop_cost")
}

fn field(json: &serde_json::Value, name: &str) -> Result<f64, String> {
    json.get(name)
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| format!("hop_cost printed no {name}"))
}

/// Runs `hop_cost` (allocations) and, if valgrind is there, callgrind over it (instructions).
pub(crate) fn measure(bin: &Path) -> Result<HopCost, String> {
    let exe = hop_cost_bin(bin);
    let out = Command::new(&exe)
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("hop_cost printed no JSON: {e}"))?;
    let mut cost = HopCost {
        mesh_allocs: field(&json, "mesh_allocs_per_request")?,
        bare_allocs: field(&json, "bare_allocs_per_request")?,
        mesh_bytes: field(&json, "mesh_bytes_per_request")?,
        bare_bytes: field(&json, "bare_bytes_per_request")?,
        instructions: None,
    };
    if Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        match (instructions(&exe, "mesh"), instructions(&exe, "bare")) {
            (Ok(m), Ok(b)) => cost.instructions = Some((m, b)),
            (Err(e), _) | (_, Err(e)) => eprintln!("callgrind count skipped: {e}"),
        }
    } else {
        eprintln!(
            "valgrind not found: instructions per request skipped (apt-get install -y valgrind)"
        );
    }
    Ok(cost)
}

/// Instructions per request of `mode`: runs 200 and 1200 requests under callgrind and divides
/// the difference by 1000, so start-up cancels out.
fn instructions(exe: &Path, mode: &str) -> Result<u64, String> {
    let total = |n: u32| -> Result<u64, String> {
        let file = std::env::temp_dir().join(format!(
            "mesh-bench-callgrind-{}-{mode}-{n}",
            std::process::id()
        ));
        let status = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", file.display()))
            .arg(exe)
            .args(["run", mode, &n.to_string()])
            .output()
            .map_err(|e| format!("valgrind: {e}"))?;
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()));
        let _ = std::fs::remove_file(&file);
        if !status.status.success() {
            return Err(format!(
                "hop_cost under callgrind failed: {}",
                String::from_utf8_lossy(&status.stderr)
            ));
        }
        text?
            .lines()
            .find_map(|l| {
                l.strip_prefix("summary:")
                    .or_else(|| l.strip_prefix("totals:"))
            })
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| "no instruction total in callgrind's output".to_owned())
    };
    let (a, b) = (total(200)?, total(1200)?);
    Ok(b.saturating_sub(a) / 1000)
}
