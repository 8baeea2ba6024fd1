//! The appliance config (`/etc/keel/appliance.toml`, source `configs/appliance.toml`).
//!
//! Parsing takes the text and a display path and never reads files itself, so the same
//! code serves PID 1, `keel check` and the image build.

use serde::Deserialize;
use std::fmt;

/// Where the appliance config lives in the image.
pub const DEFAULT_PATH: &str = "/etc/keel/appliance.toml";

/// The whole appliance config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApplianceConfig {
    #[serde(default)]
    pub system: System,
    #[serde(default)]
    pub modules: Modules,
}

/// `[system]`: machine-wide settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct System {
    /// Hostname set at boot unless the kernel command line names one.
    #[serde(default = "default_hostname")]
    pub hostname: String,
}

impl Default for System {
    fn default() -> Self {
        System { hostname: default_hostname() }
    }
}

fn default_hostname() -> String {
    "keel".to_string()
}

/// `[modules]`: kernel modules to load at boot on a modular kernel.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Modules {
    /// Module names (as in modules.dep, `-` and `_` alike); dependencies are added.
    #[serde(default)]
    pub load: Vec<String>,
    /// Modules whose failure to load stops the boot (emergency shell).
    #[serde(default)]
    pub required: Vec<String>,
}

/// A config error with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: {}", self.path, l, c, self.message),
            (Some(l), None) => write!(f, "{}:{}: {}", self.path, l, self.message),
            _ => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// 1-based (line, column) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parses the appliance config. `path` is only used in messages.
pub fn parse(text: &str, path: &str) -> Result<ApplianceConfig, Vec<Diagnostic>> {
    toml::from_str::<ApplianceConfig>(text).map_err(|e| {
        let (line, column) = match e.span() {
            Some(span) => {
                let (l, c) = line_col(text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        vec![Diagnostic {
            path: path.to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_defaults() {
        let c = parse("", "a.toml").unwrap();
        assert_eq!(c.system.hostname, "keel");
        assert!(c.modules.load.is_empty());
    }

    #[test]
    fn unknown_field_names_line_and_column() {
        let e = parse("[system]\nhostnme = \"x\"\n", "a.toml").unwrap_err();
        assert_eq!(e[0].line, Some(2));
        assert_eq!(e[0].column, Some(1));
        assert!(e[0].message.contains("hostnme"), "{}", e[0]);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
