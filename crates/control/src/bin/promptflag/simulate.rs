//! `promptflag simulate`: the binary's glue (progress bar, printing) over `simulate`.

use anyhow::Result;

use crate::Output;
use crate::args::{HiArgs, SimulateArgs};

/// Runs the simulation.
pub fn run(_hi: &HiArgs, _args: &SimulateArgs) -> Result<Output> {
    anyhow::bail!("not yet")
}
