//! Envoy's response flags, set by the layer that decided an outcome and read by the metrics of
//! both sides (`response_flags` label).

/// Response extension: Envoy-style response flags set by the layers that decided the outcome
/// (`UO`, `UH`, `URX`, `UT`, `UF`, `FI`, `DI`, ...), joined with `,` for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseFlags {
    flags: Vec<&'static str>,
}

impl ResponseFlags {
    /// Adds a flag once.
    pub fn insert(&mut self, flag: &'static str) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
    }

    /// The flags, in the order set.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.flags.iter().copied()
    }

    /// `-` when empty (as Istio reports), else the flags joined with `,`.
    pub fn to_label(&self) -> String {
        if self.flags.is_empty() {
            "-".to_owned()
        } else {
            self.flags.join(",")
        }
    }
}
