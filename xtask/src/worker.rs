//! Building and running the Worker (`worker/`): worker-build with the pinned tools, and the dev
//! loop on local workerd with seeded local KV.

use anyhow::Result;

use crate::tools::Toolchain;

/// Builds `worker/build/` with worker-build. (Filled in by the Worker's issue.)
pub fn build(tools: &Toolchain) -> Result<()> {
    if !tools.root.join("worker/Cargo.toml").exists() {
        return Ok(());
    }
    Ok(())
}

/// The main job: build, seed local KV, start `wrangler dev` on 127.0.0.1.
pub fn dev(tools: &Toolchain, _args: &[String]) -> Result<()> {
    build(tools)
}
