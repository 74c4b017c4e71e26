use http::header::{ACCEPT, HOST, HeaderValue};

use super::*;

fn sample() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("service3"));
    headers.append(ACCEPT, HeaderValue::from_static("text/plain"));
    headers.append(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert("x-user", HeaderValue::from_static("ann"));
    headers
}

fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn a_copy_has_every_value_in_order_with_or_without_a_spare_map() {
    let original = sample();
    // Whatever the thread's store holds, the copy is the same.
    let fresh = copy_headers(&original);
    assert_eq!(pairs(&fresh), pairs(&original));
    recycle(fresh);
    let reused = copy_headers(&original);
    assert_eq!(pairs(&reused), pairs(&original));
    assert_eq!(reused.get_all(ACCEPT).iter().count(), 2);
}

#[test]
fn a_recycled_map_comes_back_empty_with_its_table() {
    // A thread of its own: the store starts empty.
    std::thread::spawn(|| {
        let mut big = HeaderMap::with_capacity(20);
        big.insert("x-left-over", HeaderValue::from_static("1"));
        let capacity = big.capacity();
        recycle(big);
        let copy = copy_headers(&sample());
        assert_eq!(copy.capacity(), capacity, "the spare map was reused");
        assert!(copy.get("x-left-over").is_none(), "and was cleared");
        assert_eq!(pairs(&copy), pairs(&sample()));
    })
    .join()
    .unwrap();
}

#[test]
fn oversized_or_empty_maps_are_not_kept_and_the_store_is_bounded() {
    std::thread::spawn(|| {
        recycle(HeaderMap::with_capacity(MAX_SPARE_CAPACITY * 4));
        recycle(HeaderMap::new());
        assert_eq!(SPARE.with(|s| s.borrow().len()), 0);
        for _ in 0..MAX_SPARE_MAPS + 3 {
            recycle(sample());
        }
        assert_eq!(SPARE.with(|s| s.borrow().len()), MAX_SPARE_MAPS);
    })
    .join()
    .unwrap();
}

#[test]
fn a_spare_map_too_small_for_the_head_is_not_used() {
    std::thread::spawn(|| {
        let mut many = HeaderMap::new();
        for i in 0..40 {
            many.insert(
                http::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        let small = HeaderMap::with_capacity(1);
        let small_capacity = small.capacity();
        assert!(small_capacity < many.keys_len());
        recycle(small);
        let copy = copy_headers(&many);
        assert_eq!(pairs(&copy), pairs(&many));
    })
    .join()
    .unwrap();
}
