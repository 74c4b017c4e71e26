//! Per-thread stores of spare allocations, for values the request path makes and drops on
//! every call: a vector cleared or a box emptied goes back to its thread's store when its user
//! is done, and the next call on that thread takes it instead of asking the allocator.
//!
//! A store is bounded (a burst of calls in flight must not pin its memory for ever), a value
//! dropped on another thread than the one it came from simply joins that thread's store, and on
//! a thread's teardown (or a re-entrant use) values are made and dropped as usual.
//!
//! Written here rather than taken from a pool crate: the stores need no locking, no shared
//! state and no `unsafe` (a pool of boxes of `Option<T>` keeps their memory safely), which is
//! less than what general object pools bring.

use std::cell::RefCell;
use std::thread::LocalKey;

/// One thread's spare values of a kind; declared in a `thread_local!`.
#[derive(Debug)]
pub(crate) struct Spares<T> {
    items: RefCell<Vec<T>>,
}

impl<T> Spares<T> {
    /// An empty store.
    pub(crate) const fn new() -> Self {
        Self {
            items: RefCell::new(Vec::new()),
        }
    }
}

/// A spare value from this thread's `store`, if it has one.
pub(crate) fn take<T: 'static>(store: &'static LocalKey<Spares<T>>) -> Option<T> {
    store
        .try_with(|spares| spares.items.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
}

/// Keeps `item` in this thread's `store` unless it holds `max` values already; the value is
/// then dropped (outside the store's borrow).
pub(crate) fn keep<T: 'static>(store: &'static LocalKey<Spares<T>>, item: T, max: usize) {
    let refused = store.try_with(|spares| match spares.items.try_borrow_mut() {
        Ok(mut items) if items.len() < max => {
            items.push(item);
            None
        }
        _ => Some(item),
    });
    drop(refused);
}

/// How many values this thread's `store` holds.
#[cfg(test)]
pub(crate) fn count<T: 'static>(store: &'static LocalKey<Spares<T>>) -> usize {
    store
        .try_with(|spares| spares.items.borrow().len())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static STORE: Spares<Vec<u8>> = const { Spares::new() };
    }

    #[test]
    fn values_are_kept_up_to_the_bound_and_taken_back_last_first() {
        std::thread::spawn(|| {
            assert_eq!(take(&STORE), None);
            for i in 0..5u8 {
                keep(&STORE, vec![i], 3);
            }
            assert_eq!(count(&STORE), 3);
            assert_eq!(take(&STORE), Some(vec![2]));
            assert_eq!(take(&STORE), Some(vec![1]));
            assert_eq!(take(&STORE), Some(vec![0]));
            assert_eq!(take(&STORE), None);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn each_thread_has_its_own_store() {
        keep(&STORE, vec![7], 3);
        let other = std::thread::spawn(|| take(&STORE)).join().unwrap();
        assert_eq!(other, None);
        assert_eq!(take(&STORE), Some(vec![7]));
    }
}
