//! `cargo xtask boot`.

use anyhow::Result;

pub(crate) fn run(_args: Vec<String>) -> Result<()> {
    anyhow::bail!("not built yet")
}
