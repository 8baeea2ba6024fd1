//! A private scratch directory for a test or a bench run, removed on drop.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// `<temp dir>/keel-<what>-<pid>`, emptied when made and removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("keel-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_empty_and_removed_on_drop() {
        let path = {
            let s = Scratch::new("scratch-test").unwrap_or_else(|e| panic!("{e:#}"));
            std::fs::write(s.0.join("f"), "x").unwrap_or_else(|e| panic!("{e}"));
            assert!(s.0.join("f").exists());
            s.0.clone()
        };
        assert!(!path.exists());
    }
}
