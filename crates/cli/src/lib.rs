//! promptflag-cli's library half: the simulation engine behind `promptflag simulate`, shared by
//! the binary and the tests that drive it. It prints nothing; the binary in `main.rs` parses
//! arguments, prints and maps errors to exit codes.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod simulation;
