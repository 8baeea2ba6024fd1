//! The subset of YAML that cloud-config and NoCloud meta-data use: block mappings and block
//! sequences by indentation (`- key: value` starting a mapping inside an item too), plain,
//! 'single' and "double" quoted scalars (folded over more-indented lines), comments, flow
//! sequences of scalars. What it does not read (block scalars `|` and `>`, flow mappings,
//! anchors, aliases, tags) becomes [`Node::Unsupported`], so a construct under a key keel
//! ignores costs nothing; a document it cannot follow at all (tabs in the indentation, bad
//! indentation, an unterminated quote, nested too deep) is an `Err`.

use crate::cat;

/// How deep mappings and sequences may nest.
pub const DEPTH_MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Null,
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
    /// A construct this reader skips, and what it was.
    Unsupported(&'static str),
}

impl Node {
    /// The value of `key` in a mapping (the last one, if repeated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar, or what this is instead.
    pub fn str(&self) -> Result<&str, &'static str> {
        match self {
            Node::Str(s) => Ok(s),
            Node::Null => Err("empty"),
            Node::Seq(_) => Err("a list, not a string"),
            Node::Map(_) => Err("a mapping, not a string"),
            Node::Unsupported(what) => Err(what),
        }
    }
}

#[derive(Clone, Copy)]
struct Line<'a> {
    no: usize,
    indent: usize,
    tab: bool,
    text: &'a str,
}

/// One document (a second `---` or a `...` ends it). An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, String> {
    let mut lines = Vec::new();
    for (no, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let body = raw.trim_start_matches([' ', '\t']);
        let indent = raw.len() - body.len();
        let text = strip_comment(body).trim_end_matches([' ', '\t']);
        if text.is_empty() {
            continue;
        }
        if indent == 0 && (text == "---" || text.starts_with("--- ")) {
            if lines.is_empty() {
                // `--- value` starts the document on its own line.
                match text.strip_prefix("--- ") {
                    Some(rest) => lines.push(Line {
                        no: no + 1,
                        indent: 0,
                        tab: false,
                        text: rest.trim_start(),
                    }),
                    None => continue,
                }
                continue;
            }
            break;
        }
        if indent == 0 && text == "..." {
            break;
        }
        if indent == 0 && text.starts_with('%') && lines.is_empty() {
            continue;
        }
        lines.push(Line {
            no: no + 1,
            indent,
            tab: raw[..indent].contains('\t'),
            text,
        });
    }
    let mut y = Y { lines, i: 0 };
    if y.lines.is_empty() {
        return Ok(Node::Null);
    }
    let node = y.block(0)?;
    if let Some(l) = y.lines.get(y.i) {
        return Err(y.at(l, "indentation that matches nothing above"));
    }
    Ok(node)
}

/// `s` without its comment: a `#` at the start or after a space or tab, outside quotes.
fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut q, mut prev, mut i) = (0u8, b' ', 0);
    while i < b.len() {
        let c = b[i];
        if q == b'"' {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' {
                q = 0;
            }
        } else if q == b'\'' {
            if c == b'\'' {
                if b.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                q = 0;
            }
        } else if c == b'#' && (prev == b' ' || prev == b'\t') {
            return &s[..i];
        } else if (c == b'"' || c == b'\'') && matches!(prev, b' ' | b'\t' | b'[' | b',' | b'{') {
            q = c;
        }
        prev = c;
        i += 1;
    }
    s
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

struct Y<'a> {
    lines: Vec<Line<'a>>,
    i: usize,
}

impl<'a> Y<'a> {
    fn at(&self, l: &Line, what: &str) -> String {
        cat(&["line ", &l.no.to_string(), ": ", what])
    }

    /// The block that starts at the current line (at its indentation).
    fn block(&mut self, depth: usize) -> Result<Node, String> {
        let l = self.lines[self.i];
        if depth > DEPTH_MAX {
            return Err(self.at(&l, "nested too deep"));
        }
        if l.tab {
            return Err(self.at(&l, "a tab in the indentation (YAML allows only spaces)"));
        }
        if is_item(l.text) {
            self.seq(l.indent, depth)
        } else if split_key(l.text).map_err(|e| self.at(&l, e))?.is_some() {
            self.map(l.indent, depth)
        } else {
            self.i += 1;
            self.scalar(&l, l.text, l.indent)
        }
    }

    /// The value on the lines after `key:` (or `-`) at indentation `n`.
    fn child(&mut self, n: usize, depth: usize) -> Result<Node, String> {
        match self.lines.get(self.i) {
            Some(l) if l.indent > n => self.block(depth + 1),
            _ => Ok(Node::Null),
        }
    }

    fn seq(&mut self, n: usize, depth: usize) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(&l) = self.lines.get(self.i) {
            if l.indent != n || !is_item(l.text) {
                break;
            }
            if l.tab {
                return Err(self.at(&l, "a tab in the indentation (YAML allows only spaces)"));
            }
            let rest = &l.text[1..];
            let value = rest.trim_start_matches(' ');
            if value.is_empty() {
                self.i += 1;
                items.push(self.child(n, depth)?);
            } else {
                // What follows `- ` is a block of its own, at its column.
                self.lines[self.i] = Line {
                    indent: n + 1 + rest.len() - value.len(),
                    text: value,
                    ..l
                };
                items.push(self.block(depth + 1)?);
            }
        }
        Ok(Node::Seq(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Node, String> {
        let mut m = Vec::new();
        while let Some(&l) = self.lines.get(self.i) {
            if l.indent != n {
                break;
            }
            if l.tab {
                return Err(self.at(&l, "a tab in the indentation (YAML allows only spaces)"));
            }
            let Some((key, value)) = split_key(l.text).map_err(|e| self.at(&l, e))? else {
                return Err(self.at(&l, "expected `key: value` in a mapping"));
            };
            self.i += 1;
            let value = if !value.is_empty() {
                self.scalar(&l, value, n + 1)?
            } else {
                match self.lines.get(self.i) {
                    Some(next) if next.indent == n && is_item(next.text) => {
                        self.seq(n, depth + 1)?
                    }
                    _ => self.child(n, depth)?,
                }
            };
            m.push((key, value));
        }
        Ok(Node::Map(m))
    }

    /// An inline value `v` of line `l`, with the lines after it indented at least `min`.
    fn scalar(&mut self, l: &Line, v: &str, min: usize) -> Result<Node, String> {
        if v.starts_with(['|', '>']) {
            while self.lines.get(self.i).is_some_and(|c| c.indent >= min) {
                self.i += 1;
            }
            return Ok(Node::Unsupported("a block scalar (| or >)"));
        }
        let mut joined = String::from(v);
        while let Some(c) = self.lines.get(self.i).filter(|c| c.indent >= min) {
            joined.push(' ');
            joined.push_str(c.text);
            self.i += 1;
        }
        let t = joined.as_str();
        if t.starts_with('[') {
            return flow(t).map_err(|e| self.at(l, e));
        }
        if t.starts_with('{') {
            return Ok(Node::Unsupported("a flow mapping ({...})"));
        }
        if t.starts_with(['&', '*']) {
            return Ok(Node::Unsupported("an anchor or alias (& or *)"));
        }
        if t.starts_with('!') {
            return Ok(Node::Unsupported("a tag (!)"));
        }
        if t.starts_with(['"', '\'']) {
            let (s, rest) = quoted(t).map_err(|e| self.at(l, e))?;
            if !rest.trim_start().is_empty() {
                return Err(self.at(l, "text after a quoted string"));
            }
            return Ok(Node::Str(s));
        }
        Ok(Node::Str(joined))
    }
}

/// `key: value` (value possibly empty) → the key and the value's text; `None` when the line
/// is no mapping entry.
fn split_key(text: &str) -> Result<Option<(String, &str)>, &'static str> {
    if text.starts_with(['"', '\'']) {
        let Ok((k, rest)) = quoted(text) else {
            // An unterminated quote may go on over the next lines: a scalar, not a key.
            return Ok(None);
        };
        return Ok(rest
            .strip_prefix(':')
            .filter(|r| r.is_empty() || r.starts_with(' '))
            .map(|r| (k, r.trim_start())));
    }
    if text.starts_with(['[', '{']) {
        return Ok(None);
    }
    let (k, v) = match text.find(": ") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => match text.strip_suffix(':') {
            Some(k) => (k, ""),
            None => return Ok(None),
        },
    };
    let k = k.trim_end();
    if k.starts_with(['?', '&', '*', '!']) {
        return Err("complex keys, anchors, aliases and tags are not supported");
    }
    Ok(Some((k.to_string(), v.trim_start())))
}

/// A quoted scalar at the start of `s` → its value and what follows the closing quote.
fn quoted(s: &str) -> Result<(String, &str), &'static str> {
    let q = s.as_bytes()[0];
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        if c == q as char {
            if q == b'\'' && s[1 + i + 1..].starts_with('\'') {
                chars.next();
                out.push('\'');
                continue;
            }
            return Ok((out, &s[1 + i + 1..]));
        }
        if c != '\\' || q == b'\'' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else { break };
        let hex = match e {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => 0,
        };
        let ch = if hex > 0 {
            let mut v = 0u32;
            for _ in 0..hex {
                let d = chars.next().and_then(|(_, d)| d.to_digit(16));
                v = v * 16 + d.ok_or("a bad \\x, \\u or \\U escape")?;
            }
            char::from_u32(v).ok_or("a \\u escape that is no character")?
        } else {
            match e {
                '0' => '\0',
                'a' => '\u{7}',
                'b' => '\u{8}',
                't' | '\t' => '\t',
                'n' => '\n',
                'v' => '\u{b}',
                'f' => '\u{c}',
                'r' => '\r',
                'e' => '\u{1b}',
                ' ' | '"' | '/' | '\\' => e,
                'N' => '\u{85}',
                '_' => '\u{a0}',
                'L' => '\u{2028}',
                'P' => '\u{2029}',
                _ => return Err("an unknown escape in a double-quoted string"),
            }
        };
        out.push(ch);
    }
    Err("an unterminated quoted string")
}

/// A flow sequence of scalars, `[a, "b", 'c']`.
fn flow(t: &str) -> Result<Node, &'static str> {
    let mut items = Vec::new();
    let mut p = &t[1..];
    loop {
        p = p.trim_start();
        if let Some(rest) = p.strip_prefix(']') {
            if !rest.trim().is_empty() {
                return Err("text after a flow sequence");
            }
            return Ok(Node::Seq(items));
        }
        if p.starts_with(['[', '{']) {
            return Ok(Node::Unsupported("a nested flow collection"));
        }
        if p.starts_with(['"', '\'']) {
            let (s, rest) = quoted(p)?;
            items.push(Node::Str(s));
            p = rest.trim_start();
        } else {
            let end = p.find([',', ']']).ok_or("an unterminated flow sequence")?;
            let item = p[..end].trim();
            if item.is_empty() {
                return Err("an empty item in a flow sequence");
            }
            items.push(Node::Str(item.to_string()));
            p = &p[end..];
        }
        if let Some(rest) = p.strip_prefix(',') {
            p = rest;
        } else if !p.starts_with(']') {
            return Err("a malformed flow sequence (expected , or ])");
        }
    }
}
