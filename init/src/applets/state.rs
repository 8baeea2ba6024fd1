//! `keel state`: the `state` oneshot. Puts the state disk named by `keel.state=` on
//! /var/lib/keel, or says that state lives in RAM.
//!
//! `keel.state=/dev/vdb` names a device path; `keel.state=LABEL=keel-state` and
//! `keel.state=UUID=...` are found by reading the ext2/3/4 superblock of every block device
//! in /sys/class/block (the pure [`parse_superblock`]). The device is awaited for at most
//! [`WAIT_FOR_DEVICE`], then mounted ext4 (nosuid, nodev) at [`STATE_DIR`]. The disk is
//! never formatted here: a missing or unmountable disk leaves state in RAM with a loud
//! message, so the machine stays reachable, and hostkeys says the key is new this boot.
//!
//! With the disk mounted, root's password survives `passwd`: /etc/shadow becomes a symlink
//! to [`PERSISTENT_SHADOW`] (seeded from the image's /etc/shadow the first time), and
//! busybox `passwd` follows that symlink and writes `shadow+` beside it on the state disk
//! and renames it into place, so a change is on the disk the moment `passwd` returns.
//! `/var/lib/keel/root/.ssh/` is made for authorized_keys (sshd_config reads it).
//!
//! This applet runs as a service, never inside PID 1: it may wait. It must not format,
//! fsck or unmount anything.
#![forbid(unsafe_code)]

use crate::applets::log_to_consoles;
use crate::exit::Exit;
use crate::log;
use crate::sys::{clock, fs};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Where keel's state lives (host keys, the persistent shadow, authorized_keys).
pub const STATE_DIR: &str = "/var/lib/keel";

/// The persistent copy of /etc/shadow on the state disk.
pub const PERSISTENT_SHADOW: &str = "/var/lib/keel/etc/shadow";

/// The image's shadow, replaced by a symlink to [`PERSISTENT_SHADOW`].
pub const SHADOW: &str = "/etc/shadow";

/// Root's authorized_keys directory on the state disk.
pub const STATE_SSH_DIR: &str = "/var/lib/keel/root/.ssh";

/// How long the state disk may take to appear (virtio-blk appears within a second; a slow
/// hypervisor or USB disk gets more room).
pub const WAIT_FOR_DEVICE: u64 = 30_000;

/// How often the device is looked for, in milliseconds.
const LOOK_EVERY: u16 = 200;

/// How often the console hears that keel is still waiting, in milliseconds.
const SAY_EVERY: u64 = 5_000;

/// The ext2/3/4 superblock starts 1024 bytes into the device and is 1024 bytes long.
pub const SUPERBLOCK_OFFSET: usize = 1024;
const SUPERBLOCK_LEN: usize = 1024;
const EXT_MAGIC: u16 = 0xEF53;

/// What `keel.state=` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateSpec {
    /// A device path such as `/dev/vdb`.
    Path(String),
    /// `LABEL=<volume label>` (as `mkfs.ext4 -L` sets it).
    Label(String),
    /// `UUID=<filesystem uuid>`, compared without regard to case.
    Uuid(String),
}

impl std::fmt::Display for StateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateSpec::Path(p) => write!(f, "{p}"),
            StateSpec::Label(l) => write!(f, "LABEL={l}"),
            StateSpec::Uuid(u) => write!(f, "UUID={u}"),
        }
    }
}

/// Parses the value of `keel.state=`.
pub fn parse_spec(value: &str) -> Result<StateSpec, String> {
    if let Some(label) = value.strip_prefix("LABEL=") {
        if label.is_empty() || label.len() > 16 {
            return Err(format!(
                "keel.state={value}: an ext4 label is 1 to 16 bytes (mkfs.ext4 -L keel-state)"
            ));
        }
        return Ok(StateSpec::Label(label.to_string()));
    }
    if let Some(uuid) = value.strip_prefix("UUID=") {
        if parse_uuid(uuid).is_none() {
            return Err(format!(
                "keel.state={value}: a uuid is 32 hex digits in groups 8-4-4-4-12 (blkid shows it)"
            ));
        }
        return Ok(StateSpec::Uuid(uuid.to_ascii_lowercase()));
    }
    if value.starts_with('/') && !value.contains("..") {
        return Ok(StateSpec::Path(value.to_string()));
    }
    Err(format!(
        "keel.state={value}: expected a device path (/dev/vdb), LABEL=<label> or UUID=<uuid>"
    ))
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = groups.concat();
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What the superblock of an ext2/3/4 filesystem says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// `s_volume_name`, up to the first NUL.
    pub label: String,
    /// `s_uuid`.
    pub uuid: [u8; 16],
}

impl Superblock {
    /// The uuid as blkid prints it (lowercase 8-4-4-4-12).
    pub fn uuid_text(&self) -> String {
        let h: String = self.uuid.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// Reads the superblock from the first bytes of a device (at least 2048 of them).
/// `None` unless the ext2/3/4 magic is there.
pub fn parse_superblock(head: &[u8]) -> Option<Superblock> {
    let sb = head.get(SUPERBLOCK_OFFSET..SUPERBLOCK_OFFSET + SUPERBLOCK_LEN)?;
    let magic = u16::from_le_bytes([*sb.get(0x38)?, *sb.get(0x39)?]);
    if magic != EXT_MAGIC {
        return None;
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(sb.get(0x68..0x78)?);
    let name = sb.get(0x78..0x88)?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let label = String::from_utf8_lossy(&name[..end]).into_owned();
    Some(Superblock { label, uuid })
}

impl StateSpec {
    /// Whether a filesystem with this superblock is the one named.
    pub fn matches(&self, sb: &Superblock) -> bool {
        match self {
            StateSpec::Path(_) => false,
            StateSpec::Label(l) => sb.label == *l,
            StateSpec::Uuid(u) => parse_uuid(u) == Some(sb.uuid),
        }
    }
}

/// The source and fstype mounted at `target`, from /proc/self/mountinfo (the last mount
/// there wins, as it is the one that is visible).
pub fn mounted_at(mountinfo: &str, target: &str) -> Option<(String, String)> {
    let mut found = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.get(4) == Some(&target)
            && let (Some(fstype), Some(source)) = (fields.get(sep + 1), fields.get(sep + 2))
        {
            found = Some((source.to_string(), fstype.to_string()));
        }
    }
    found
}

/// Block device names under /sys/class/block worth reading (not loop, ram or zram
/// devices, which never hold keel's state unless named by path).
pub fn candidate(name: &str) -> bool {
    !(name.starts_with("loop") || name.starts_with("ram") || name.starts_with("zram"))
}

fn say(msg: &str) {
    log::info(&format!("state: {msg}"));
}

/// Reads up to the first `len` bytes of the device `dev` without blocking on an empty
/// drive (fewer when the device is smaller).
pub fn read_head(dev: &str, len: usize) -> Option<Vec<u8>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dev)
        .ok()?;
    let mut buf = Vec::with_capacity(len);
    f.take(len as u64).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// The /dev paths of the block devices in /sys/class/block worth reading ([`candidate`]),
/// sorted.
pub fn block_devices() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/sys/class/block") else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| candidate(n))
        .collect();
    names.sort();
    names.into_iter().map(|n| format!("/dev/{n}")).collect()
}

/// Looks once for the device `spec` names; returns its /dev path.
fn find(spec: &StateSpec) -> Option<String> {
    if let StateSpec::Path(p) = spec {
        return fs::exists(p).then(|| p.clone());
    }
    block_devices().into_iter().find_map(|dev| {
        let sb = parse_superblock(&read_head(&dev, SUPERBLOCK_OFFSET + SUPERBLOCK_LEN)?)?;
        spec.matches(&sb).then_some(dev)
    })
}

/// Waits up to [`WAIT_FOR_DEVICE`] for the device.
fn wait_for(spec: &StateSpec) -> Option<String> {
    let start = clock::now();
    let mut next_say = start.plus_ms(SAY_EVERY);
    loop {
        if let Some(dev) = find(spec) {
            return Some(dev);
        }
        let now = clock::now();
        if now.ms_since(start) >= WAIT_FOR_DEVICE {
            return None;
        }
        if now >= next_say {
            say(&format!(
                "still waiting for the state disk {spec} ({}s of {}s)",
                now.ms_since(start) / 1000,
                WAIT_FOR_DEVICE / 1000
            ));
            next_say = now.plus_ms(SAY_EVERY);
        }
        // This applet is a service process, not PID 1: an idle poll is its sleep.
        let _ = nix::poll::poll(&mut [], nix::poll::PollTimeout::from(LOOK_EVERY));
    }
}

/// Writes `data` to `path` through a temporary file, fsync and rename, then fsyncs the
/// directory: the file holds the old contents or the new ones, never a mix.
pub fn write_atomic(path: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = format!("{path}.keel-tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(data)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = Path::new(path).parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Makes /etc/shadow a symlink to the state disk's copy, seeding the copy from the image
/// the first time. The image's hash is ignored once the disk has its own shadow: the
/// disk holds the last `passwd`.
fn persist_shadow() -> Result<&'static str, String> {
    let dir = "/var/lib/keel/etc";
    fs::mkdir(dir, 0o700).map_err(|e| format!("cannot create {dir}: {e}"))?;
    let seeded = if fs::exists(PERSISTENT_SHADOW) {
        false
    } else {
        let image = std::fs::read(SHADOW).map_err(|e| format!("cannot read {SHADOW}: {e}"))?;
        write_atomic(PERSISTENT_SHADOW, &image, 0o600)
            .map_err(|e| format!("cannot write {PERSISTENT_SHADOW}: {e}"))?;
        true
    };
    let already = std::fs::read_link(SHADOW).is_ok_and(|t| t == Path::new(PERSISTENT_SHADOW));
    if !already {
        let tmp = "/etc/.shadow.keel-link";
        let _ = std::fs::remove_file(tmp);
        std::os::unix::fs::symlink(PERSISTENT_SHADOW, tmp)
            .and_then(|()| std::fs::rename(tmp, SHADOW))
            .map_err(|e| format!("cannot point {SHADOW} at {PERSISTENT_SHADOW}: {e}"))?;
    }
    Ok(if seeded {
        "root's password: copied the image's /etc/shadow to the state disk; passwd changes persist there"
    } else {
        "root's password: from the state disk (the last passwd); it overrides the image's"
    })
}

fn on_disk() -> Exit {
    if let Err(e) = fs::mkdir(STATE_SSH_DIR, 0o700) {
        say(&format!(
            "cannot create {STATE_SSH_DIR} for authorized_keys: {e}"
        ));
    }
    match persist_shadow() {
        Ok(msg) => say(msg),
        Err(e) => say(&format!("{e}; passwd changes will not survive a reboot")),
    }
    Exit::Ok
}

/// Loads ext4 (and jbd2, mbcache, crc16) when the kernel does not know it yet: on the
/// modular kernel only a state disk needs it, so it is not in the boot's `[modules]` list
/// (ext4.ko is the largest module the image packs, 2 MB on Debian 12). This runs in the
/// `state` service, beside the rest of the boot, not in PID 1 before it.
fn ensure_ext4() {
    if let Some(why) = ensure_filesystem("ext4", &["ext4"], "for the state disk, keel.state=") {
        say(&format!("{why}; mounting the state disk will fail"));
    }
}

/// Loads `modules` (with what modules.dep says they need) when /proc/filesystems does not
/// list `fstype` yet: the filesystems a service mounts on demand on the modular kernel
/// (`[modules] on_demand`). `None` when the kernel knows it (built in, or loaded now);
/// otherwise what went wrong, naming `origin`.
pub(crate) fn ensure_filesystem(fstype: &str, modules: &[&str], origin: &str) -> Option<String> {
    let known = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if has_filesystem(&known, fstype) {
        return None;
    }
    let want: Vec<String> = modules.iter().map(|m| m.to_string()).collect();
    crate::boot::load_named(&mut crate::sys::linux::LinuxSys, &want, &want, origin)
}

/// Whether /proc/filesystems (`nodev\tproc` and `\text4` lines) lists `fstype`.
fn has_filesystem(proc_filesystems: &str, fstype: &str) -> bool {
    proc_filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some(fstype))
}

/// Runs `keel state`.
pub fn main(args: &[String]) -> Exit {
    log_to_consoles();
    if !args.is_empty() {
        say("usage: keel state (reads keel.state= from /proc/cmdline)");
        return Exit::Permanent;
    }
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let (parsed, _) = netcfg::cmdline::parse(&cmdline);
    let Some(value) = parsed.state else {
        say(
            "no keel.state= on the kernel command line: state is in RAM (/var/lib/keel), host keys are new every boot",
        );
        return Exit::Ok;
    };
    let spec = match parse_spec(&value) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("{e}; state stays in RAM this boot"));
            return Exit::Ok;
        }
    };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if let Some((source, fstype)) = mounted_at(&mountinfo, STATE_DIR) {
        say(&format!(
            "{source} ({fstype}) is already mounted on {STATE_DIR}"
        ));
        return on_disk();
    }
    let Some(dev) = wait_for(&spec) else {
        say(&format!(
            "state disk {spec} not found after {}s (no block device has that {}): state is in RAM \
             this boot, host keys are new and passwd changes are lost; check the disk is attached \
             and made with mkfs.ext4 -L keel-state",
            WAIT_FOR_DEVICE / 1000,
            match spec {
                StateSpec::Path(_) => "path",
                StateSpec::Label(_) => "ext4 label",
                StateSpec::Uuid(_) => "ext4 uuid",
            }
        ));
        return Exit::Ok;
    };
    ensure_ext4();
    let flags = libc::MS_NOSUID | libc::MS_NODEV;
    if let Err(e) = fs::mount(&dev, STATE_DIR, "ext4", flags, "") {
        say(&format!(
            "cannot mount {dev} ({spec}) as ext4 on {STATE_DIR}: {e}; state is in RAM this boot, \
             host keys are new (is it ext4, and is the ext4 module loaded? dmesg says more)"
        ));
        return Exit::Ok;
    }
    say(&format!(
        "mounted the state disk {dev} ({spec}) on {STATE_DIR}"
    ));
    on_disk()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device head with an ext4 superblock carrying `label` and `uuid`.
    fn head(label: &[u8], uuid: [u8; 16]) -> Vec<u8> {
        let mut d = vec![0u8; 4096];
        let sb = SUPERBLOCK_OFFSET;
        d[sb + 0x38..sb + 0x3a].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        d[sb + 0x68..sb + 0x78].copy_from_slice(&uuid);
        d[sb + 0x78..sb + 0x78 + label.len()].copy_from_slice(label);
        d
    }

    const UUID: [u8; 16] = [
        0x3e, 0x6b, 0xe9, 0xde, 0x81, 0x39, 0x4a, 0x2b, 0x9e, 0x0f, 0x12, 0x34, 0x56, 0x78, 0x9a,
        0xbc,
    ];

    #[test]
    fn ext4_is_known_from_proc_filesystems() {
        let text = "nodev\tsysfs\nnodev\tproc\n\text2\n\text4\nnodev\tcgroup2\n";
        assert!(has_filesystem(text, "ext4"));
        assert!(has_filesystem(text, "ext2"));
        assert!(!has_filesystem(text, "ext3"));
        assert!(!has_filesystem(text, "nodev"));
        assert!(!has_filesystem("", "ext4"));
    }

    #[test]
    fn superblock_label_and_uuid() {
        let sb = parse_superblock(&head(b"keel-state", UUID)).unwrap();
        assert_eq!(sb.label, "keel-state");
        assert_eq!(sb.uuid_text(), "3e6be9de-8139-4a2b-9e0f-123456789abc");
        // A 16-byte label has no NUL.
        let sb = parse_superblock(&head(b"0123456789abcdef", UUID)).unwrap();
        assert_eq!(sb.label, "0123456789abcdef");
    }

    #[test]
    fn not_ext_or_too_short_is_none() {
        let mut d = head(b"x", UUID);
        d[SUPERBLOCK_OFFSET + 0x38] = 0;
        assert_eq!(parse_superblock(&d), None);
        assert_eq!(parse_superblock(&head(b"x", UUID)[..2000]), None);
        assert_eq!(parse_superblock(&[]), None);
    }

    #[test]
    fn specs_parse_and_match() {
        let sb = parse_superblock(&head(b"keel-state", UUID)).unwrap();
        assert_eq!(
            parse_spec("/dev/vdb"),
            Ok(StateSpec::Path("/dev/vdb".into()))
        );
        let label = parse_spec("LABEL=keel-state").unwrap();
        assert!(label.matches(&sb));
        assert!(!parse_spec("LABEL=other").unwrap().matches(&sb));
        let uuid = parse_spec("UUID=3E6BE9DE-8139-4A2B-9E0F-123456789ABC").unwrap();
        assert!(uuid.matches(&sb));
        assert_eq!(
            uuid.to_string(),
            "UUID=3e6be9de-8139-4a2b-9e0f-123456789abc"
        );
        assert!(
            !parse_spec("UUID=3e6be9de-8139-4a2b-9e0f-123456789abd")
                .unwrap()
                .matches(&sb)
        );
        for bad in [
            "LABEL=",
            "LABEL=seventeen-bytes-x",
            "UUID=123",
            "UUID=3e6be9de81394a2b9e0f123456789abc",
            "UUID=ze6be9de-8139-4a2b-9e0f-123456789abc",
            "vdb",
            "/dev/../etc",
        ] {
            let e = parse_spec(bad).unwrap_err();
            assert!(e.starts_with(&format!("keel.state={bad}: ")), "{e}");
        }
    }

    #[test]
    fn mountinfo_finds_the_visible_mount() {
        let mi = "22 1 0:5 / / rw - rootfs rootfs rw\n\
                  30 22 254:16 / /var/lib/keel rw,nosuid,nodev - ext4 /dev/vdb rw\n";
        assert_eq!(
            mounted_at(mi, "/var/lib/keel"),
            Some(("/dev/vdb".into(), "ext4".into()))
        );
        assert_eq!(mounted_at(mi, "/var/lib"), None);
        let stacked = format!("{mi}31 30 0:40 / /var/lib/keel rw - tmpfs tmpfs rw\n");
        assert_eq!(
            mounted_at(&stacked, "/var/lib/keel"),
            Some(("tmpfs".into(), "tmpfs".into()))
        );
        // Optional fields before the separator do not shift what follows it.
        let opt = "30 22 254:16 / /var/lib/keel rw shared:1 master:2 - ext4 /dev/vdb rw\n";
        assert_eq!(
            mounted_at(opt, "/var/lib/keel"),
            Some(("/dev/vdb".into(), "ext4".into()))
        );
    }

    /// The parser against a filesystem made by the real mkfs.ext4 (e2fsprogs), when the
    /// host has it.
    #[test]
    #[allow(clippy::disallowed_methods)] // A host test: it waits for mkfs, not PID 1.
    fn real_mkfs_ext4_superblock() {
        let img = std::env::temp_dir().join(format!("keel-state-sb-{}.img", std::process::id()));
        let uuid = "0b5c1e2f-3a4d-4e6f-8a9b-0c1d2e3f4a5b";
        let made = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "keel-state", "-U", uuid])
            .arg(&img)
            .arg("4M")
            .output();
        let Ok(out) = made else {
            crate::applets::not_run("no mkfs.ext4 (apt-get install e2fsprogs)");
            return;
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let head = std::fs::read(&img).unwrap_or_default();
        let _ = std::fs::remove_file(&img);
        let sb = parse_superblock(&head).unwrap();
        assert_eq!(sb.label, "keel-state");
        assert_eq!(sb.uuid_text(), uuid);
        assert!(parse_spec(&format!("UUID={uuid}")).unwrap().matches(&sb));
    }

    #[test]
    fn loop_and_ram_devices_are_skipped() {
        assert!(candidate("vdb") && candidate("sda1") && candidate("xvdb"));
        assert!(!candidate("loop0") && !candidate("ram0") && !candidate("zram0"));
    }
}
