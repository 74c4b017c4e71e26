//! Trace sampling: the decision for a trace that starts here, taken from the trace id so that
//! every replica decides the same for the same trace.

/// Istio's default trace sampling ratio (1%), used for traces that start here.
pub const DEFAULT_SAMPLE_RATIO: f64 = 0.01;

/// Whether a new trace with `trace_id` is sampled at `ratio` (decided from the id, so every
/// replica decides the same for the same trace).
pub fn sample(trace_id: u128, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    let low = trace_id as u64;
    (low as f64) < ratio * (u64::MAX as f64)
}
