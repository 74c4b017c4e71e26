//! The library behind `meshctl`: the [`dashboard`] (`meshctl dashboard`), usable from other
//! programs (the demo starts it in-process).
#![forbid(unsafe_code)]

pub mod dashboard;
