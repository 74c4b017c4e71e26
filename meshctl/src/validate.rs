//! `meshctl validate`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use mesh_core::load::load_paths;
use mesh_core::policy::{MeshConfig, Origin};

/// Loads `paths`; prints a summary and warnings (exit 0) or every error (exit 1).
pub(crate) fn run(paths: &[PathBuf]) -> ExitCode {
    match load_paths(paths) {
        Ok(loaded) => {
            for (kind, count) in summary(&loaded.config) {
                println!("{kind}: {count}");
            }
            for warning in &loaded.warnings {
                eprintln!("{warning}");
            }
            if loaded.warnings.is_empty() {
                println!("ok");
            } else {
                println!(
                    "ok ({} warning{})",
                    loaded.warnings.len(),
                    plural(loaded.warnings.len())
                );
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.errors {
                eprintln!("{error}");
            }
            eprintln!(
                "{} error{}: config refused",
                errors.errors.len(),
                plural(errors.errors.len())
            );
            ExitCode::FAILURE
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Resources per kind, counted once each by `(kind, namespace, name)`: the legacy
/// authentication Policy becomes several checked policies and still counts as one `Policy`.
pub(crate) fn summary(config: &MeshConfig) -> BTreeMap<String, usize> {
    let mut seen: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
    let origins = config
        .gateways
        .iter()
        .map(|g| &g.origin)
        .chain(config.virtual_services.iter().map(|v| &v.origin))
        .chain(config.destinations.values().map(|d| &d.origin))
        .chain(config.service_entries.iter().map(|s| &s.origin))
        .chain(config.authentication.iter().map(|a| &a.origin))
        .chain(config.authorization.iter().map(|a| &a.origin))
        .chain(config.rate_limits.iter().map(|r| &r.origin));
    let mut counts = BTreeMap::new();
    for Origin {
        kind,
        name,
        namespace,
        ..
    } in origins
    {
        if seen.insert((kind, namespace, name)) {
            *counts.entry(kind.clone()).or_insert(0) += 1;
        }
    }
    counts
}
