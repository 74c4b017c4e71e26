//! The changed documents of a load parsed and compiled on several threads.
//!
//! Each changed piece of a file (see [`super::cache`]) is read, parsed and compiled alone, so the
//! pieces are cut into contiguous chunks, one per thread (`std::thread::scope`), and the results
//! are put back in the order of the pieces: the load then goes on as if it had parsed them one
//! after the other (diagnostics in file order, then line order; the checks across resources over
//! the whole set). Below [`MIN_PARALLEL`] changed pieces, or with one thread, the caller's thread
//! does it all: a thread costs more than the parse of a few documents.

/// The fewest changed pieces (documents) worth spreading over threads.
pub(crate) const MIN_PARALLEL: usize = 8;

/// How many threads parse: `configured`, or when 0 the machine's available parallelism.
pub(crate) fn threads(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// `f` applied to every item, the results in the items' order, on up to `threads` threads
/// (the caller's among them) when there are at least [`MIN_PARALLEL`] items.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < MIN_PARALLEL {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads.min(items.len()));
    let f = &f;
    std::thread::scope(|s| {
        let mut chunks = items.chunks(chunk);
        let first = chunks.next().unwrap_or(&[]);
        let spawned: Vec<_> = chunks
            .map(|c| {
                let handle = std::thread::Builder::new()
                    .name("mesh-config-parse".to_owned())
                    .spawn_scoped(s, move || c.iter().map(f).collect::<Vec<R>>());
                // a thread that cannot start leaves its chunk to the caller
                (c, handle.ok())
            })
            .collect();
        let mut out: Vec<R> = first.iter().map(f).collect();
        for (c, handle) in spawned {
            match handle.map(std::thread::ScopedJoinHandle::join) {
                Some(Ok(results)) => out.extend(results),
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                None => out.extend(c.iter().map(f)),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests;
