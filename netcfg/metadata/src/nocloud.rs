//! The NoCloud seed (cloud-init's convention: a volume labelled `cidata` with `meta-data` and
//! `user-data`): what keel reads of it.

use crate::json::{self, Json};
use crate::yaml::{self, Node};
use crate::{Found, cat, shown};

/// The largest meta-data or user-data keel reads (init caps its reads at this).
pub const MAX_FILE: usize = 1 << 20;

/// The top-level user-data keys keel reads.
const READ: &[&str] = &["ssh_authorized_keys", "hostname", "fqdn", "users"];

/// meta-data (YAML or JSON: `instance-id`, `local-hostname`) and user-data (a
/// `#cloud-config` YAML subset: top-level `ssh_authorized_keys` (a list), `hostname`, `fqdn`
/// (used when there is no `hostname`), and the `users` entries that are mappings with
/// `name: root`, their `ssh_authorized_keys`; the entry `default` is ignored silently).
/// user-data's host name wins over meta-data's `local-hostname`. `user_data` `None`: the
/// file is absent. Anything else in user-data: one warning naming the ignored top-level
/// keys. A user-data that is not `#cloud-config` (a script, MIME multipart, gzip): one
/// warning, no keys. Never panics; bad input gives warnings and no keys.
pub fn parse(meta_data: &[u8], user_data: Option<&[u8]>) -> Found {
    let mut f = Found::default();
    meta(&mut f, meta_data);
    if let Some(u) = user_data {
        user(&mut f, u);
    }
    f
}

/// The text of a file, or a warning why not.
fn text<'a>(f: &mut Found, what: &str, b: &'a [u8]) -> Option<&'a str> {
    if b.len() > MAX_FILE {
        f.warn(&[what, ": larger than 1 MiB, not read"]);
        return None;
    }
    let Ok(t) = std::str::from_utf8(b) else {
        f.warn(&[what, ": not UTF-8, not read"]);
        return None;
    };
    Some(t.strip_prefix('\u{feff}').unwrap_or(t))
}

fn meta(f: &mut Found, b: &[u8]) {
    const W: &str = "meta-data";
    let Some(t) = text(f, W, b) else { return };
    let (id, host) = if t.trim_start().starts_with('{') {
        let doc = match json::parse(t.as_bytes()) {
            Ok(d) => d,
            Err(e) => return f.warn(&[W, ": ", &e]),
        };
        let s = |k| match doc.get(k) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Str(s) | Json::Num(s)) => Ok(Some(s.clone())),
            Some(v) => Err(cat(&[W, ": ", k, " is ", v.kind(), ", not a string"])),
        };
        (s("instance-id"), s("local-hostname"))
    } else {
        let doc = match yaml::parse(t) {
            Ok(d) => d,
            Err(e) => return f.warn(&[W, ": ", &e]),
        };
        if !matches!(doc, Node::Map(_) | Node::Null) {
            return f.warn(&[W, ": not a mapping of keys"]);
        }
        let s = |k| match doc.get(k) {
            None | Some(Node::Null) => Ok(None),
            Some(v) => v
                .str()
                .map(|s| Some(s.to_string()))
                .map_err(|e| cat(&[W, ": ", k, ": ", e])),
        };
        (s("instance-id"), s("local-hostname"))
    };
    match id {
        Ok(id) => f.instance_id = id,
        Err(e) => f.warnings.push(e),
    }
    match host {
        Ok(Some(h)) => match crate::hostname_error(&h) {
            None => f.hostname = Some(h),
            Some(e) => f.warn(&[W, ": local-hostname: ", &e]),
        },
        Ok(None) => {}
        Err(e) => f.warnings.push(e),
    }
}

fn user(f: &mut Found, b: &[u8]) {
    const W: &str = "user-data";
    if b.starts_with(&[0x1f, 0x8b]) {
        return f.warn(&[
            W,
            ": gzip-compressed, not read (keel reads only #cloud-config)",
        ]);
    }
    let Some(t) = text(f, W, b) else { return };
    if t.trim().is_empty() {
        return;
    }
    let first = t.lines().next().unwrap_or("").trim_end();
    if first != "#cloud-config" {
        let what = if first.starts_with("#!") {
            "a script"
        } else if first.len() > 13 && first.starts_with("#cloud-config") {
            "not #cloud-config (something after it on the first line)"
        } else if t.starts_with("Content-Type:") || t.starts_with("MIME-Version:") {
            "MIME multipart"
        } else if first.starts_with("#include") {
            "an #include list"
        } else {
            "not #cloud-config"
        };
        return f.warn(&[W, ": ", what, ", not read (keel reads only #cloud-config)"]);
    }
    let doc = match yaml::parse(t) {
        Ok(d) => d,
        Err(e) => return f.warn(&[W, ": ", &e, "; no keys from it"]),
    };
    let map = match &doc {
        Node::Map(m) => m,
        Node::Null => return,
        _ => return f.warn(&[W, ": not a mapping of keys"]),
    };
    let mut ignored: Vec<String> = Vec::new();
    for (k, _) in map {
        if !READ.contains(&k.as_str()) {
            let k = shown(k, 32);
            if !ignored.contains(&k) {
                ignored.push(k);
            }
        }
    }
    if !ignored.is_empty() {
        if ignored.len() > 12 {
            ignored.truncate(12);
            ignored.push("...".into());
        }
        // Names as they are when they are plain words, quoted otherwise.
        let names: Vec<String> = ignored
            .into_iter()
            .map(|n| {
                let bare = &n[1..n.len().max(2) - 1];
                if bare
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                {
                    bare.to_string()
                } else {
                    n
                }
            })
            .collect();
        f.warn(&[
            W,
            ": ignored keys ",
            &names.join(", "),
            ": keel reads only ssh_authorized_keys, hostname, fqdn and users[].ssh_authorized_keys of root",
        ]);
    }
    if let Some(keys) = doc.get("ssh_authorized_keys") {
        add_keys(f, "user-data: ssh_authorized_keys", keys);
    }
    match doc.get("users") {
        None | Some(Node::Null) => {}
        Some(Node::Seq(users)) => {
            let mut others = Vec::new();
            for (i, u) in users.iter().enumerate() {
                let name = match u {
                    Node::Str(s) => s.as_str(),
                    Node::Map(_) => match u.get("name").map(Node::str) {
                        Some(Ok(n)) => n,
                        _ => {
                            f.warn(&[W, ": users[", &i.to_string(), "] has no name, ignored"]);
                            continue;
                        }
                    },
                    _ => {
                        f.warn(&[
                            W,
                            ": users[",
                            &i.to_string(),
                            "] is not a name or a mapping, ignored",
                        ]);
                        continue;
                    }
                };
                if name == "default" && matches!(u, Node::Str(_)) {
                    continue;
                }
                if name != "root" || !matches!(u, Node::Map(_)) {
                    others.push(shown(name, 32));
                    continue;
                }
                if let Some(keys) = u.get("ssh_authorized_keys") {
                    add_keys(f, "user-data: users[root].ssh_authorized_keys", keys);
                }
            }
            if !others.is_empty() {
                f.warn(&[W, ": users other than root ignored: ", &others.join(", ")]);
            }
        }
        Some(Node::Str(s)) => {
            // `users: default` or a comma-separated list of names: none of them root's keys.
            let others: Vec<String> = s
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty() && *n != "default")
                .map(|n| shown(n, 32))
                .collect();
            if !others.is_empty() {
                f.warn(&[W, ": users other than root ignored: ", &others.join(", ")]);
            }
        }
        Some(_) => f.warn(&[W, ": users is not a list, ignored"]),
    }
    let host = match doc.get("hostname") {
        None | Some(Node::Null) => doc.get("fqdn").map(|n| ("fqdn", n)),
        Some(n) => Some(("hostname", n)),
    };
    match host {
        None | Some((_, Node::Null)) => {}
        Some((k, n)) => match n.str() {
            Ok(h) => match crate::hostname_error(h) {
                None => f.hostname = Some(h.to_string()),
                Some(e) => f.warn(&[W, ": ", k, ": ", &e]),
            },
            Err(e) => f.warn(&[W, ": ", k, ": ", e]),
        },
    }
}

/// A list of key lines (or one line) into `f`, a warning for each one dropped.
fn add_keys(f: &mut Found, what: &str, keys: &Node) {
    let list = match keys {
        Node::Seq(l) => l.as_slice(),
        Node::Null => return,
        one => std::slice::from_ref(one),
    };
    for (i, k) in list.iter().enumerate() {
        let at = cat(&[what, "[", &i.to_string(), "]"]);
        match k.str() {
            Ok(line) => f.add_key(&at, line),
            Err(e) => f.warn(&[&at, ": ", e, ", key dropped"]),
        }
    }
}
