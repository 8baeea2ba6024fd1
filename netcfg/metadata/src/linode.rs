//! The Linode (Akamai) Metadata service: `PUT /v1/token`, then `GET /v1/ssh-keys` and
//! `GET /v1/instance` with the token, plain HTTP on the link-local address. This module
//! builds the requests and reads the answers' bodies ([`crate::http`] reads the responses).

use crate::json::{self, Json};
use crate::{Found, cat};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The service's IPv4 address (IPv6: `[fd00:a9fe:a9fe::1]`, see [`HOST6`]).
pub const HOST: &str = "169.254.169.254";
/// The service's IPv6 address, as a Host header writes it.
pub const HOST6: &str = "[fd00:a9fe:a9fe::1]";

/// One address of the service: where to connect and the Host header that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// [`HOST`] or [`HOST6`]: the address as the Host header (and the console) writes it.
    pub host: &'static str,
}

/// The service's addresses in the order keel tries them, cloud-init's Akamai datasource's
/// order: IPv6 first (router advertisements need no DHCP, so it is often up first), then
/// IPv4. An address that does not answer (no route yet, nothing listening) passes the turn
/// to the next; the first that answers is used for the token and both GETs.
pub const ENDPOINTS: [Endpoint; 2] = [
    Endpoint {
        addr: SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0xa9fe, 0xa9fe, 0, 0, 0, 0, 1)),
            80,
        ),
        host: HOST6,
    },
    Endpoint {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), 80),
        host: HOST,
    },
];

/// Why each address did not answer, the last reason of each, in the order they first
/// failed (the caller tries them in [`ENDPOINTS`]' order): what the console says when no
/// address answered before the deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tried(Vec<(&'static str, String)>);

impl Tried {
    /// `host` did not answer, because `why`; replaces what an earlier round said of it.
    pub fn failed(&mut self, host: &'static str, why: &str) {
        match self.0.iter_mut().find(|(h, _)| *h == host) {
            Some(entry) => entry.1 = why.to_string(),
            None => self.0.push((host, why.to_string())),
        }
    }

    /// `no answer at [fd00:a9fe:a9fe::1] (why), nor at 169.254.169.254 (why)`.
    pub fn message(&self) -> String {
        let mut s = String::from("no answer");
        for (i, (host, why)) in self.0.iter().enumerate() {
            s.push_str(if i == 0 { " at " } else { ", nor at " });
            s.push_str(&cat(&[host, " (", why, ")"]));
        }
        if self.0.is_empty() {
            s.push_str(": nothing tried");
        }
        s
    }
}
/// The longest token keel takes.
pub const TOKEN_MAX: usize = 512;

fn request(method: &str, path: &str, host: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    // Nothing the caller passes may end a header line early.
    let clean = |s: &str| s.replace(|c: char| c.is_control(), "");
    let mut r = cat(&[
        method,
        " ",
        &clean(path),
        " HTTP/1.1\r\nHost: ",
        &clean(host),
        "\r\n",
    ]);
    for (k, v) in headers {
        r.push_str(k);
        r.push_str(": ");
        r.push_str(&clean(v));
        r.push_str("\r\n");
    }
    r.push_str("Connection: close\r\n\r\n");
    r.into_bytes()
}

/// `PUT /v1/token` with `Metadata-Token-Expiry-Seconds: {expiry_secs}` (HTTP/1.1, `Host`,
/// `Connection: close`, `Content-Length: 0`). `host` as the Host header has it
/// ([`HOST`] or [`HOST6`]).
pub fn token_request(host: &str, expiry_secs: u32) -> Vec<u8> {
    request(
        "PUT",
        "/v1/token",
        host,
        &[
            ("Metadata-Token-Expiry-Seconds", &expiry_secs.to_string()),
            ("Content-Length", "0"),
        ],
    )
}

/// `GET {path}` with `Metadata-Token: {token}`, `Accept: application/json`, `Connection:
/// close`.
pub fn get_request(host: &str, path: &str, token: &str) -> Vec<u8> {
    request(
        "GET",
        path,
        host,
        &[("Metadata-Token", token), ("Accept", "application/json")],
    )
}

/// The token from the PUT's body: trimmed, printable ASCII, 1..=512 bytes, else Err.
pub fn parse_token(body: &[u8]) -> Result<String, String> {
    let t = body.trim_ascii();
    if t.is_empty() {
        return Err("token: empty".into());
    }
    if t.len() > TOKEN_MAX {
        return Err("token: longer than 512 bytes".into());
    }
    if !t.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        return Err("token: not printable ASCII".into());
    }
    Ok(String::from_utf8_lossy(t).into_owned())
}

fn object(body: &[u8], what: &str) -> Result<Json, String> {
    let v = json::parse(body).map_err(|e| cat(&[what, ": ", &e]))?;
    if !matches!(v, Json::Obj(_)) {
        return Err(cat(&[what, ": ", v.kind(), ", not an object"]));
    }
    Ok(v)
}

/// Root's entries of /v1/ssh-keys as given (trimmed), and the names of the other users.
fn root_entries(body: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    const W: &str = "ssh-keys";
    let doc = object(body, W)?;
    let users = match doc.get("users") {
        Some(Json::Obj(u)) => u,
        Some(v) => return Err(cat(&[W, ": users is ", v.kind(), ", not an object"])),
        None => return Err(cat(&[W, ": no users"])),
    };
    let (mut keys, mut others) = (Vec::new(), Vec::new());
    for (name, list) in users {
        if name != "root" {
            others.push(crate::shown(name, 32));
            continue;
        }
        let list = match list {
            Json::Arr(a) => a,
            Json::Null => continue,
            v => return Err(cat(&[W, ": users.root is ", v.kind(), ", not an array"])),
        };
        keys.clear();
        for k in list {
            match k {
                Json::Str(s) => keys.push(s.trim().to_string()),
                v => return Err(cat(&[W, ": a key of root is ", v.kind(), ", not a string"])),
            }
        }
    }
    Ok((keys, others))
}

/// /v1/ssh-keys (`{"users": {"root": ["ssh-ed25519 ...", ...], "other": [...]}}`) → root's
/// keys that [`crate::keys::check_line`] accepts, deduplicated in order (the other users'
/// are ignored). Invalid JSON or wrong types: Err. [`parse`] gives the same keys with a
/// warning for each dropped line and the other users.
pub fn parse_ssh_keys(body: &[u8]) -> Result<Vec<String>, String> {
    let mut f = Found::default();
    for k in root_entries(body)?.0 {
        f.add_key("", &k);
    }
    Ok(f.keys)
}

/// /v1/instance → its `label` (the host name Linode gives), `Ok(None)` when it has none.
/// A label that is not a valid host name (Linode allows `_`, host names do not): Err.
pub fn parse_instance(body: &[u8]) -> Result<Option<String>, String> {
    instance(body)?.0
}

/// The label (or why it is no host name) and the id of /v1/instance.
type Instance = (Result<Option<String>, String>, Option<String>);

fn instance(body: &[u8]) -> Result<Instance, String> {
    const W: &str = "instance";
    let doc = object(body, W)?;
    let id = match doc.get("id") {
        Some(Json::Num(n) | Json::Str(n)) => Some(n.clone()),
        _ => None,
    };
    let label = match doc.get("label") {
        Some(Json::Str(l)) => match crate::hostname_error(l) {
            Some(e) => Err(cat(&[W, ": label: ", &e])),
            None => Ok(Some(l.clone())),
        },
        None | Some(Json::Null) => Ok(None),
        Some(v) => Err(cat(&[W, ": label is ", v.kind(), ", not a string"])),
    };
    Ok((label, id))
}

/// Both documents into one [`Found`], or `Err` when /v1/ssh-keys is no usable document
/// (invalid JSON, wrong types): then the caller keeps the keys it has rather than replace
/// them with none. Otherwise as [`parse`]: each refused key line dropped with a warning, a
/// warning naming the other users, the label as host name, the id as instance id, an error
/// of `instance` a warning.
pub fn read(ssh_keys: &[u8], instance: Option<&[u8]>) -> Result<Found, String> {
    let (keys, others) = root_entries(ssh_keys)?;
    let mut f = Found::default();
    for (i, k) in keys.iter().enumerate() {
        f.add_key(&cat(&["ssh-keys: root's key ", &(i + 1).to_string()]), k);
    }
    if !others.is_empty() {
        f.warn(&[
            "ssh-keys: keys of users other than root ignored: ",
            &others.join(", "),
        ]);
    }
    add_instance(&mut f, instance);
    Ok(f)
}

/// Both documents into one [`Found`]: root's keys (each refused line dropped with a warning),
/// a warning naming the other users, the label as host name and the id as instance id. An
/// error of either document is a warning; `instance` is `None` when it was not fetched.
pub fn parse(ssh_keys: &[u8], instance: Option<&[u8]>) -> Found {
    read(ssh_keys, instance).unwrap_or_else(|e| {
        let mut f = Found::default();
        f.warnings.push(e);
        add_instance(&mut f, instance);
        f
    })
}

fn add_instance(f: &mut Found, instance: Option<&[u8]>) {
    if let Some(body) = instance {
        match self::instance(body) {
            Ok((label, id)) => {
                f.instance_id = id;
                match label {
                    Ok(l) => f.hostname = l,
                    Err(e) => f.warnings.push(e),
                }
            }
            Err(e) => f.warnings.push(e),
        }
    }
}
