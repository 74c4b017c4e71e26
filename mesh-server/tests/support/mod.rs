//! What the integration tests share.

pub mod test_keys;
