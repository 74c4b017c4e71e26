//! Hot reload.
