//! Shared library of the example binaries (backend API, store, simulator), filled by later work.

#![forbid(unsafe_code)]
