//! Benchmarks live in `benches/benches/`; this library holds what they share with the tests:
//! the codec benchmark's messages ([`cases`]) and the plain serde mirrors ([`plain`]).

pub mod cases;
pub mod plain;
