//! A small JSON writer for the applets' `--json` output (keelctl): values built in code,
//! printed compactly with RFC 8259 string escapes. Writing only; keel never parses JSON
//! here, so a serde_json dependency would buy nothing for its size.
#![forbid(unsafe_code)]

use std::fmt;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    /// Fields in the order given (stable output, easy to diff).
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// A number, or null for None.
    pub fn opt<T: Into<i64>>(v: Option<T>) -> Json {
        v.map_or(Json::Null, |v| Json::Int(v.into()))
    }

    /// An unsigned number (saturating at i64::MAX), or null.
    pub fn opt_u64(v: Option<u64>) -> Json {
        v.map_or(Json::Null, |v| {
            Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
        })
    }

    pub fn strs<S: AsRef<str>>(v: &[S]) -> Json {
        Json::Arr(v.iter().map(|s| Json::str(s.as_ref())).collect())
    }
}

fn escape(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if u32::from(c) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(n) => write!(f, "{n}"),
            Json::Str(s) => escape(s, f),
            Json::Arr(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            Json::Obj(v) => {
                f.write_str("{")?;
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    escape(k, f)?;
                    write!(f, ":{x}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_compact_json_with_escapes() {
        let v = Json::Obj(vec![
            ("name", Json::str("a\"b\\c\n\u{1b}[2J")),
            ("pid", Json::opt(Some(42))),
            ("none", Json::opt::<i32>(None)),
            ("ok", Json::Bool(true)),
            ("list", Json::strs(&["x", "y"])),
            ("empty", Json::Arr(vec![])),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{"name":"a\"b\\c\n\u001b[2J","pid":42,"none":null,"ok":true,"list":["x","y"],"empty":[]}"#
        );
    }
}
