//! Discovery registry.
