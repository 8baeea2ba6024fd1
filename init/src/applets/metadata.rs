//! `keel metadata`: the `metadata` oneshot. Takes root's ssh keys and the hostname from
//! the platform, so one image serves everyone who boots it (docs/deploy.md, "Platform
//! keys and hostname").
//!
//! The sources are `[cloud] sources` of the appliance config, in order; each checks
//! cheaply whether it applies, and the first that finds something wins:
//! - `nocloud`: a block device whose vfat or iso9660 label is `cidata` (any case), mounted
//!   read-only on [`SEED_MOUNT`] just long enough to read `meta-data` and `user-data`;
//! - `linode`: only where /sys/class/dmi/id/sys_vendor says Linode or Akamai: Linode's
//!   Metadata service at `[fd00:a9fe:a9fe::1]`, else 169.254.169.254 (cloud-init's order;
//!   a token, then `/v1/ssh-keys` and `/v1/instance`), tried again until `[cloud] timeout`
//!   while the network comes up.
//!
//! The keys go into root's authorized_keys in a marked block (`metadata::keys::merge`):
//! the state disk's file when there is one, else /root/.ssh/authorized_keys; other lines
//! stay, and a later boot replaces only that block. Each key's fingerprint is printed on
//! the console. The hostname is set when the kernel command line gives none.
//!
//! Everything is bounded by `[cloud] timeout`: the service is `after` nothing slow, and
//! sshd is only `after` it, so sshd starts with the keys it has when the time is up. A
//! source that applies but fails makes the service fail (exit 1) with the reason on the
//! console; none applying is success.
#![forbid(unsafe_code)]

use crate::applets::log_to_consoles;
use crate::applets::network::read_cmdline;
use crate::applets::state::{STATE_SSH_DIR, block_devices, read_head, write_atomic};
use crate::exit::Exit;
use crate::log;
use crate::sys::clock;
use appliance::{Cloud, CloudSource};
use metadata::{Found, http, keys, linode, nocloud};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use supervisor::Mono;

/// Where a NoCloud seed is mounted while it is read.
pub const SEED_MOUNT: &str = "/run/keel/cidata";

/// Root's authorized_keys in the image (sshd_config's first AuthorizedKeysFile).
pub const IMAGE_KEYS: &str = "/root/.ssh/authorized_keys";

/// The most keel reads of a seed file.
const MAX_FILE: u64 = 1 << 20;

/// The iso9660 primary volume descriptor is sector 16 (of 2048 bytes); what a label check
/// reads of each device.
const ISO_PVD: usize = 16 * 2048;
const HEAD_LEN: usize = ISO_PVD + 2048;

/// How long a Linode token lives; keel uses it within seconds.
const TOKEN_EXPIRY_SECS: u32 = 60;

const USAGE: &str = "usage: keel metadata [--config PATH]
Installs root's ssh keys and sets the hostname from the platform: a NoCloud seed (a vfat
or iso9660 volume labelled cidata) or Linode's Metadata service, as [cloud] in the config
(default /etc/keel/appliance.toml) says. Exit 0: done, or no source applies; 1: a source
applies but failed (the console says why); 100: bad usage.
";

fn say(msg: &str) {
    log::info(&format!("metadata: {msg}"));
}

/// What one source did.
#[derive(Debug)]
enum Outcome {
    /// It does not apply here (why, for the debug log).
    NotHere(String),
    Found(Found),
    /// It applies and failed.
    Failed(String),
}

/// The filesystem and label of a vfat or iso9660 volume from its first [`HEAD_LEN`]
/// bytes (fewer are fine for vfat), with trailing spaces removed.
pub fn volume_label(head: &[u8]) -> Option<(&'static str, String)> {
    let text = |b: &[u8]| {
        let s: String = b.iter().map(|&c| char::from(c)).collect();
        s.trim_end_matches([' ', '\0']).to_string()
    };
    if let Some(pvd) = head.get(ISO_PVD..ISO_PVD + 72)
        && pvd[0] == 1
        && &pvd[1..6] == b"CD001"
    {
        return Some(("iso9660", text(&pvd[40..72])));
    }
    let boot = head.get(..512)?;
    if boot[510..512] != [0x55, 0xAA] || u16::from_le_bytes([boot[11], boot[12]]) == 0 {
        return None;
    }
    // FAT32 has no 16-bit sectors-per-FAT; its extended boot record starts at 64.
    let (sig, label, kind) = if u16::from_le_bytes([boot[22], boot[23]]) == 0 {
        (66, 71, 82)
    } else {
        (38, 43, 54)
    };
    (boot[sig] == 0x29 && boot[kind..kind + 3] == *b"FAT")
        .then(|| ("vfat", text(&boot[label..label + 11])))
}

/// Whether a volume label names a NoCloud seed.
pub fn is_seed_label(label: &str) -> bool {
    label.eq_ignore_ascii_case("cidata")
}

/// The first block device with a seed label: its /dev path and filesystem.
fn find_seed() -> Option<(String, &'static str)> {
    block_devices().into_iter().find_map(|dev| {
        let (fs, label) = volume_label(&read_head(&dev, HEAD_LEN)?)?;
        is_seed_label(&label).then_some((dev, fs))
    })
}

/// Reads at most [`MAX_FILE`] of `path`; None when it is absent, an error when larger.
fn read_capped(path: &str) -> Result<Option<Vec<u8>>, String> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {path}: {e}")),
    };
    let mut data = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if data.len() as u64 > MAX_FILE {
        return Err(format!("{path} is larger than {MAX_FILE} bytes"));
    }
    Ok(Some(data))
}

fn nocloud_source() -> Outcome {
    let Some((dev, fs)) = find_seed() else {
        return Outcome::NotHere("no vfat or iso9660 volume labelled cidata".into());
    };
    say(&format!("nocloud: seed {dev} ({fs})"));
    if let Err(e) = crate::sys::fs::mkdir(SEED_MOUNT, 0o700) {
        return Outcome::Failed(format!("cannot create {SEED_MOUNT}: {e}"));
    }
    // The modular kernel has vfat and iso9660 as modules (`[modules] on_demand`), loaded
    // only now that a seed is there; vfat mounts with iocharset=ascii by default (Debian).
    let modules: &[&str] = match fs {
        "vfat" => &["vfat", "nls_cp437", "nls_ascii"],
        _ => &["isofs"],
    };
    if let Some(why) = super::state::ensure_filesystem(fs, modules, "for the NoCloud seed") {
        say(&format!("{why}; mounting the seed will fail"));
    }
    // c_ulong is u64 on both libcs; the cast documents the width mount() takes.
    #[allow(clippy::unnecessary_cast)]
    let flags = (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as u64;
    if let Err(e) = crate::sys::fs::mount(&dev, SEED_MOUNT, fs, flags, "") {
        return Outcome::Failed(format!(
            "cannot mount {dev} ({fs}) read-only on {SEED_MOUNT}: {e}"
        ));
    }
    let meta = read_capped(&format!("{SEED_MOUNT}/meta-data"));
    let user = read_capped(&format!("{SEED_MOUNT}/user-data"));
    if let Err(e) = nix::mount::umount2(SEED_MOUNT, nix::mount::MntFlags::MNT_DETACH) {
        say(&format!("cannot unmount {SEED_MOUNT}: {e}"));
    }
    let meta = match meta {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Outcome::Failed(format!(
                "{dev} is labelled cidata but has no meta-data file (NoCloud needs one, even empty)"
            ));
        }
        Err(e) => return Outcome::Failed(e),
    };
    match user {
        Ok(u) => Outcome::Found(nocloud::parse(&meta, u.as_deref())),
        Err(e) => Outcome::Failed(e),
    }
}

/// Whether the SMBIOS vendor is Linode's (`sys_vendor`'s text).
pub fn is_linode_vendor(vendor: &str) -> bool {
    let v = vendor.trim().to_ascii_lowercase();
    v.contains("linode") || v.contains("akamai")
}

/// Why an exchange with the metadata service failed.
enum Fail {
    /// Nothing answered (the network may not be up yet): worth trying again.
    Unreachable(String),
    /// It answered, but not as it should: final.
    Refused(String),
}

/// One HTTP exchange with the metadata service, within `deadline`. The errors do not name
/// the address: the caller does.
fn exchange(addr: SocketAddr, request: &[u8], deadline: Mono) -> Result<http::Response, Fail> {
    let now = clock::now();
    if now >= deadline {
        return Err(Fail::Unreachable("out of time".into()));
    }
    let left = Duration::from_millis(deadline.ms_since(now).clamp(1, 5_000));
    let mut s = TcpStream::connect_timeout(&addr, left.min(Duration::from_secs(2)))
        .map_err(|e| Fail::Unreachable(format!("cannot connect: {e}")))?;
    let _ = s.set_write_timeout(Some(left));
    let _ = s.set_read_timeout(Some(left));
    s.write_all(request)
        .map_err(|e| Fail::Unreachable(format!("cannot send: {e}")))?;
    let mut data = Vec::new();
    s.take(http::MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| Fail::Unreachable(format!("no answer: {e}")))?;
    http::parse_response(&data).map_err(Fail::Refused)
}

/// A 200's body, or why not.
fn ok_body(what: &str, r: Result<http::Response, Fail>) -> Result<Vec<u8>, Fail> {
    let r = r?;
    if r.status != 200 {
        return Err(Fail::Refused(format!("{what} answered HTTP {}", r.status)));
    }
    Ok(r.body)
}

/// The words of any failure.
fn words(f: Fail) -> String {
    match f {
        Fail::Unreachable(w) | Fail::Refused(w) => w,
    }
}

/// A token from the first of [`linode::ENDPOINTS`] that answers (IPv6, then IPv4), asking
/// each in turn until `deadline` while the network comes up: that address and the token.
fn token(deadline: Mono) -> Result<(linode::Endpoint, String), String> {
    let mut tried = linode::Tried::default();
    loop {
        for ep in linode::ENDPOINTS {
            let host = ep.host;
            let request = linode::token_request(host, TOKEN_EXPIRY_SECS);
            match ok_body("PUT /v1/token", exchange(ep.addr, &request, deadline)) {
                Ok(body) => {
                    return linode::parse_token(&body)
                        .map(|t| (ep, t))
                        .map_err(|e| format!("the token from {host}: {e}"));
                }
                Err(Fail::Refused(e)) => return Err(format!("{host}: {e}")),
                Err(Fail::Unreachable(e)) => {
                    log::debug(&format!("metadata: linode: {host}: {e}"));
                    tried.failed(host, &e);
                }
            }
        }
        if clock::now() >= deadline {
            return Err(format!("no metadata service: {}", tried.message()));
        }
        let _ = nix::poll::poll(&mut [], nix::poll::PollTimeout::from(500u16));
        if clock::now() >= deadline {
            return Err(format!("no metadata service: {}", tried.message()));
        }
    }
}

fn linode_source(deadline: Mono) -> Outcome {
    let vendor = std::fs::read_to_string("/sys/class/dmi/id/sys_vendor").unwrap_or_default();
    if !is_linode_vendor(&vendor) {
        return Outcome::NotHere(format!(
            "the SMBIOS vendor is {:?}, not Linode",
            vendor.trim()
        ));
    }
    let (ep, token) = match token(deadline) {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(e),
    };
    let host = ep.host;
    say(&format!("linode: the Metadata service answers at {host}"));
    let get = |path: &str| {
        ok_body(
            &format!("GET {path}"),
            exchange(ep.addr, &linode::get_request(host, path, &token), deadline),
        )
        .map_err(words)
    };
    let ssh_keys = match get("/v1/ssh-keys") {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("{host} /v1/ssh-keys: {e}")),
    };
    let (instance, why) = match get("/v1/instance") {
        Ok(b) => (Some(b), None),
        Err(e) => (None, Some(format!("{host} /v1/instance: {e}"))),
    };
    // A broken /v1/ssh-keys fails (the keys of an earlier boot stay); a bad key line in it
    // is dropped with a warning, as NoCloud's are.
    match linode::read(&ssh_keys, instance.as_deref()) {
        Ok(mut found) => {
            found.warnings.extend(why);
            Outcome::Found(found)
        }
        Err(e) => Outcome::Failed(format!("{host} /v1/ssh-keys: {e}")),
    }
}

/// Where the platform's keys go: the state disk's authorized_keys when it is there.
fn keys_file() -> String {
    if std::path::Path::new(STATE_SSH_DIR).is_dir() {
        format!("{STATE_SSH_DIR}/authorized_keys")
    } else {
        IMAGE_KEYS.to_string()
    }
}

/// Writes `text` to `path` (mode 0600) atomically, making its directory if needed.
fn write_private(path: &str, text: &str) -> Result<(), String> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    write_atomic(path, text.as_bytes(), 0o600).map_err(|e| format!("cannot write {path}: {e}"))
}

/// Installs what `src` found; returns false when the keys could not be written.
fn apply(src: CloudSource, found: &Found, cmdline_hostname: Option<&str>) -> bool {
    let name = src.name();
    for w in &found.warnings {
        say(&format!("{name}: {w}"));
    }
    let path = keys_file();
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let new = keys::merge(&old, name, &found.keys);
    let mut ok = true;
    if new != old {
        match write_private(&path, &new) {
            Ok(()) => {}
            Err(e) => {
                say(&format!(
                    "{name}: {e}; root's platform keys are not installed"
                ));
                ok = false;
            }
        }
    }
    if ok {
        for k in &found.keys {
            let fp = sshkeys::fingerprint::line_fingerprint(k)
                .unwrap_or_else(|| "(no fingerprint)".into());
            let kind = k.split_ascii_whitespace().next().unwrap_or("?");
            let comment: Vec<&str> = k.split_ascii_whitespace().skip(2).collect();
            say(&format!(
                "{name}: root may log in with {fp} ({kind}{}{})",
                if comment.is_empty() { "" } else { ", " },
                comment.join(" ")
            ));
        }
        if found.keys.is_empty() {
            say(&format!("{name}: no ssh keys for root"));
        } else {
            say(&format!("{name}: {} key(s) in {path}", found.keys.len()));
        }
    }
    match (&found.hostname, cmdline_hostname) {
        (Some(h), Some(c)) if h != c => say(&format!(
            "{name}: hostname {h} not set: the kernel command line names {c}"
        )),
        (Some(h), None) => match nix::unistd::sethostname(h) {
            Ok(()) => say(&format!("{name}: hostname {h}")),
            Err(e) => say(&format!("{name}: cannot set hostname {h}: {e}")),
        },
        _ => {}
    }
    ok
}

fn load_cloud(path: &str) -> Cloud {
    match std::fs::read_to_string(path) {
        Ok(text) => match appliance::parse(&text, path) {
            Ok(cfg) => cfg.cloud,
            Err(diags) => {
                let first = diags.first().map(ToString::to_string).unwrap_or_default();
                say(&format!("{first}; using the default [cloud]"));
                Cloud::default()
            }
        },
        Err(e) => {
            say(&format!(
                "cannot read {path}: {e}; using the default [cloud]"
            ));
            Cloud::default()
        }
    }
}

/// Runs `keel metadata`.
pub fn main(args: &[String]) -> Exit {
    let path = match crate::applets::options("keel metadata", args, USAGE, |a| match a {
        [] => Ok(appliance::DEFAULT_PATH.to_string()),
        [flag, p] if flag == "--config" => Ok(p.clone()),
        _ => Err(format!("unexpected arguments {a:?}")),
    }) {
        Ok(p) => p,
        Err(code) => return code,
    };
    log_to_consoles();
    let cloud = load_cloud(&path);
    if cloud.sources.is_empty() {
        say("no sources ([cloud] sources = [])");
        return Exit::Ok;
    }
    let deadline =
        clock::now().plus_ms(u64::try_from(cloud.timeout.as_millis()).unwrap_or(u64::MAX));
    // `hostname=` or the field of `ip=`: the command line's name wins over the platform's.
    let given = netcfg::plan::plan(&read_cmdline().unwrap_or_default()).hostname;
    let mut failures = Vec::new();
    for &src in &cloud.sources {
        let outcome = match src {
            CloudSource::NoCloud => nocloud_source(),
            CloudSource::Linode => linode_source(deadline),
        };
        match outcome {
            Outcome::NotHere(why) => log::debug(&format!("metadata: {}: {why}", src.name())),
            Outcome::Found(found) => {
                return if apply(src, &found, given.as_deref()) {
                    Exit::Ok
                } else {
                    Exit::Failed
                };
            }
            Outcome::Failed(why) => {
                say(&format!(
                    "{}: {why}; sshd uses the keys it has (the image's, the state disk's)",
                    src.name()
                ));
                failures.push(src.name());
            }
        }
    }
    if failures.is_empty() {
        let names: Vec<&str> = cloud.sources.iter().map(|s| s.name()).collect();
        say(&format!(
            "no platform metadata here (looked for: {})",
            names.join(", ")
        ));
        Exit::Ok
    } else {
        Exit::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fat16(label: &[u8; 11]) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[22..24].copy_from_slice(&32u16.to_le_bytes());
        b[38] = 0x29;
        b[43..54].copy_from_slice(label);
        b[54..62].copy_from_slice(b"FAT16   ");
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn vfat_and_iso9660_labels_are_read() {
        assert_eq!(
            volume_label(&fat16(b"CIDATA     ")),
            Some(("vfat", "CIDATA".to_string()))
        );
        let mut fat32 = vec![0u8; 512];
        fat32[11..13].copy_from_slice(&512u16.to_le_bytes());
        fat32[66] = 0x29;
        fat32[71..82].copy_from_slice(b"cidata     ");
        fat32[82..90].copy_from_slice(b"FAT32   ");
        fat32[510] = 0x55;
        fat32[511] = 0xAA;
        assert_eq!(volume_label(&fat32), Some(("vfat", "cidata".to_string())));
        let mut iso = vec![0u8; HEAD_LEN];
        iso[ISO_PVD] = 1;
        iso[ISO_PVD + 1..ISO_PVD + 6].copy_from_slice(b"CD001");
        let mut id = [b' '; 32];
        id[..6].copy_from_slice(b"cidata");
        iso[ISO_PVD + 40..ISO_PVD + 72].copy_from_slice(&id);
        assert_eq!(volume_label(&iso), Some(("iso9660", "cidata".to_string())));
        assert!(is_seed_label("CIDATA") && is_seed_label("cidata"));
        assert!(!is_seed_label("cidata2") && !is_seed_label(""));
    }

    #[test]
    fn other_volumes_have_no_label() {
        assert_eq!(volume_label(&[]), None);
        assert_eq!(volume_label(&[0u8; 4096]), None);
        let mut no_sig = fat16(b"CIDATA     ");
        no_sig[38] = 0;
        assert_eq!(volume_label(&no_sig), None);
        let mut ext = vec![0u8; 2048];
        ext[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
        assert_eq!(volume_label(&ext), None);
    }

    #[test]
    fn linode_is_known_by_its_vendor() {
        assert!(is_linode_vendor("Linode\n"));
        assert!(is_linode_vendor("Akamai Technologies"));
        assert!(!is_linode_vendor("QEMU"));
        assert!(!is_linode_vendor(""));
    }
}
