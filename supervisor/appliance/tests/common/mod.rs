//! What the config tests share: a text's config, or its diagnostics as `line:col: message`
//! strings.

#![allow(dead_code)]

use appliance::ApplianceConfig;

/// The config of `text`; a test with a bad one fails with its diagnostics.
pub fn parse_config(text: &str) -> ApplianceConfig {
    parse_file(text, "test.toml")
}

/// The config of `text` shown as `path`; a test with a bad one fails with its diagnostics.
pub fn parse_file(text: &str, path: &str) -> ApplianceConfig {
    match appliance::parse(text, path) {
        Ok(c) => c,
        Err(d) => panic!(
            "{}",
            d.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// Parses `text` and returns its diagnostics as `line:col: message` strings.
pub fn errors(text: &str) -> Vec<String> {
    match appliance::parse(text, "t.toml") {
        Ok(_) => Vec::new(),
        Err(d) => d
            .iter()
            .map(|d| d.to_string().trim_start_matches("t.toml:").to_string())
            .collect(),
    }
}

/// Asserts there is exactly one diagnostic, at `at` (`line:col`), containing `needle`.
pub fn one(text: &str, at: &str, needle: &str) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    assert!(
        e[0].starts_with(&format!("{at}: ")),
        "wrong place: {}",
        e[0]
    );
    assert!(
        e[0].contains(needle),
        "{:?} does not contain {needle:?}",
        e[0]
    );
}
