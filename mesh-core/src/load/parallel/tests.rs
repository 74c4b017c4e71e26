use super::*;

#[test]
fn map_keeps_the_order_of_the_items_on_every_thread_count() {
    let items: Vec<usize> = (0..101).collect();
    let serial: Vec<usize> = items.iter().map(|i| i * 3).collect();
    for threads in [0, 1, 2, 3, 7, 64, 200] {
        let threads = if threads == 0 {
            super::threads(0)
        } else {
            threads
        };
        assert_eq!(map(&items, threads, |i| i * 3), serial, "{threads} threads");
    }
}

#[test]
fn map_runs_few_items_on_the_callers_thread() {
    let me = std::thread::current().id();
    let items = vec![(); MIN_PARALLEL - 1];
    let ids = map(&items, 4, |()| std::thread::current().id());
    assert!(ids.iter().all(|id| *id == me));
    let items = vec![(); MIN_PARALLEL * 4];
    let ids = map(&items, 4, |()| std::thread::current().id());
    assert!(
        ids.iter().any(|id| *id != me),
        "many items use other threads"
    );
    assert_eq!(ids[0], me, "the first chunk stays on the caller's thread");
}

#[test]
fn map_passes_a_panic_on() {
    let items: Vec<usize> = (0..64).collect();
    let caught = std::panic::catch_unwind(|| map(&items, 4, |i| assert_ne!(*i, 50)));
    assert!(caught.is_err());
}
