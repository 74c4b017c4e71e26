//! The retry loop's [`Replay`] out of line, in a box kept per thread between calls.

use super::Replay;
use crate::spare::{self, Spares};

/// Boxes for [`Replay`] kept per thread: as many as calls usually finish on one thread between
/// two starts.
const MAX_SPARE_REPLAYS: usize = 8;

thread_local! {
    static SPARE_REPLAYS: Spares<Box<Option<Replay>>> = const { Spares::new() };
}

/// The loop's [`Replay`], out of line in a box that, once the loop ends and the replay is
/// dropped, goes back to a per-thread store for the next call's loop ([`spare`]): no
/// allocation per call on the usual path.
pub(super) struct ReplayBox {
    /// `Some` (holding a replay) from [`ReplayBox::new`] until the drop.
    slot: Option<Box<Option<Replay>>>,
}

impl ReplayBox {
    pub(super) fn new(replay: Replay) -> Self {
        let slot = match spare::take(&SPARE_REPLAYS) {
            Some(mut slot) => {
                *slot = Some(replay);
                slot
            }
            None => Box::new(Some(replay)),
        };
        Self { slot: Some(slot) }
    }
}

impl std::ops::Deref for ReplayBox {
    type Target = Replay;

    fn deref(&self) -> &Replay {
        #[allow(clippy::expect_used)]
        self.slot
            .as_deref()
            .and_then(Option::as_ref)
            .expect("invariant: a ReplayBox holds its replay until it is dropped")
    }
}

impl std::ops::DerefMut for ReplayBox {
    fn deref_mut(&mut self) -> &mut Replay {
        #[allow(clippy::expect_used)]
        self.slot
            .as_deref_mut()
            .and_then(Option::as_mut)
            .expect("invariant: a ReplayBox holds its replay until it is dropped")
    }
}

impl Drop for ReplayBox {
    fn drop(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            // The replay itself goes now (its guards released, its headers' vector kept).
            *slot = None;
            spare::keep(&SPARE_REPLAYS, slot, MAX_SPARE_REPLAYS);
        }
    }
}

/// How many replay boxes this thread keeps.
#[cfg(test)]
pub(in crate::retry) fn spare_replays() -> usize {
    spare::count(&SPARE_REPLAYS)
}
