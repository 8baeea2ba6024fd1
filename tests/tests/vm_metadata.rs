//! VM tests for issue 18: root's ssh keys and the hostname from the platform.
//!
//! - a NoCloud seed made here (vfat with mkfs.vfat and mcopy, iso9660 with xorriso; as a
//!   virtio disk, and the iso also as a CD-ROM on virtio-scsi, as docs/deploy.md's libvirt
//!   XML attaches it) with
//!   keys that are not in the image, an ed25519 one at the top of user-data and an RSA one
//!   under `users: [{name: root}]`: ssh logs in with each, the hostname is the seed's, the
//!   console shows each fingerprint as `ssh-keygen -l` prints it, and keys of user-data
//!   keel does not read get one warning;
//! - Linode's Metadata service played by an HTTP server in this test (token required, a
//!   wrong or missing token refused with 401), reachable from the guest at
//!   169.254.169.254:80 through QEMU's user network (`net=169.254.0.0/16` and a `guestfwd`
//!   to `busybox nc`), with the SMBIOS vendor Linode: ssh with its key works, the hostname
//!   is the instance's label, and a bad key line among root's is dropped with a warning;
//! - the same guest with nothing at 169.254.169.254: sshd still starts, after at most the
//!   `[cloud] timeout`, with the image's keys, and the console says why, naming both
//!   addresses tried.
//!
//! The Linode guests' network has no IPv6 (`ipv6=off`): QEMU's `guestfwd` takes only an
//! IPv4 address (`guestfwd=tcp:[fd00:a9fe:a9fe::1]:80-...` is "Invalid guest forwarding
//! rule" in QEMU 7.2), so the service cannot be played at `[fd00:a9fe:a9fe::1]`; keel tries
//! that address first, finds no route, and falls back to 169.254.169.254, which is what
//! these tests see. `restrict=on` keeps the guest's packets off the host's network: only
//! the forwards reach anything.
//!
//! They boot target/keel/bzImage and run only with KEEL_VM_TESTS=1; logs are in
//! target/keel/vm-logs/<test>.log.
#![allow(clippy::disallowed_methods)] // A VM test: it waits with a clock.

use anyhow::{Context, Result, bail, ensure};
use keel_tests::{BOOT_TIMEOUT, BootOpts, CMD_TIMEOUT, Scratch, Vm, disk, vm_tests_enabled};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Makes an ssh key pair `dir/name` (ssh-keygen) and returns (private key, public line).
fn keypair(dir: &Path, name: &str, kind: &[&str]) -> Result<(PathBuf, String)> {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(kind)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .context("cannot run ssh-keygen: apt-get install openssh-client")?;
    ensure!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    Ok((key, public.trim().to_string()))
}

/// `SHA256:...` of a public key file, as `ssh-keygen -l` prints it.
fn fingerprint(key: &Path) -> Result<String> {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .map(str::to_string)
        .with_context(|| format!("ssh-keygen -lf printed {text:?}"))
}

/// `ssh -i key root@guest cmd`, offering that key alone.
fn ssh_with(vm: &Vm, key: &Path, cmd: &str) -> Result<Output> {
    Command::new("ssh")
        .args(keel_tests::ssh::ssh_args(vm.ssh_port(), key))
        .args(["-o", "IdentitiesOnly=yes", "--", cmd])
        .stdin(Stdio::null())
        .output()
        .context("cannot run ssh: apt-get install openssh-client")
}

/// Retries `ssh_with` until it succeeds, for up to BOOT_TIMEOUT.
fn ssh_until_ok(vm: &Vm, key: &Path, cmd: &str) -> Result<String> {
    let start = Instant::now();
    loop {
        let out = ssh_with(vm, key, cmd)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        if start.elapsed() > BOOT_TIMEOUT {
            bail!(
                "ssh with {} never worked: {}",
                key.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

const META_DATA: &str = "instance-id: iid-keel-test-1\nlocal-hostname: seedhost\n";

fn user_data(ed25519: &str, rsa: &str) -> String {
    format!(
        "#cloud-config\n\
         ssh_authorized_keys:\n  - {ed25519}\n\
         users:\n  - default\n  - name: root\n    ssh_authorized_keys:\n      - \"{rsa}\"\n\
         packages:\n  - nginx\n"
    )
}

/// The seed as a virtio disk (`-drive if=virtio`).
fn virtio_disk(opts: BootOpts, seed: PathBuf) -> BootOpts {
    opts.drive(seed)
}

/// The seed as a read-only CD-ROM on a virtio-scsi controller: what libvirt's `<disk
/// device='cdrom'>` with `<target bus='scsi'/>` and a virtio-scsi controller gives (the
/// kernel has no IDE or SATA driver).
fn virtio_scsi_cdrom(opts: BootOpts, seed: PathBuf) -> BootOpts {
    let mut drive = std::ffi::OsString::from("file=");
    drive.push(seed);
    drive.push(",if=none,id=seed,format=raw,media=cdrom,readonly=on");
    opts.qemu_args(["-device", "virtio-scsi-pci,id=scsi0"])
        .qemu_args([std::ffi::OsString::from("-drive"), drive])
        .qemu_args(["-device", "scsi-cd,drive=seed,bus=scsi0.0"])
}

/// Boots with the seed `make` makes, attached by `attach`, and checks everything a NoCloud
/// user expects.
fn seed_gives_keys_and_hostname(
    name: &str,
    make: fn(&Path, &str, Option<&str>) -> Result<PathBuf>,
    attach: fn(BootOpts, PathBuf) -> BootOpts,
) -> Result<()> {
    let scratch = Scratch::new(name)?;
    let (ed_key, ed_pub) = keypair(&scratch.0, "seed-ed25519", &["-t", "ed25519"])?;
    let (rsa_key, rsa_pub) = keypair(&scratch.0, "seed-rsa", &["-t", "rsa", "-b", "2048"])?;
    let seed = make(&scratch.0, META_DATA, Some(&user_data(&ed_pub, &rsa_pub)))?;
    let mut vm = Vm::boot(attach(BootOpts::new(name), seed))?;
    ssh_until_ok(&vm, &ed_key, "true")?;
    let host = ssh_until_ok(&vm, &rsa_key, "hostname")?;
    ensure!(
        host.trim() == "seedhost",
        "hostname is {host:?}, not the seed's"
    );
    let log = vm.keel_log()?;
    for key in [&ed_key, &rsa_key] {
        let fp = fingerprint(key)?;
        ensure!(
            log.contains(&format!("metadata: nocloud: root may log in with {fp}")),
            "no fingerprint line for {fp}:\n{log}"
        );
    }
    ensure!(
        log.contains("packages"),
        "no warning about the ignored key:\n{log}"
    );
    let keys = vm.run("cat /root/.ssh/authorized_keys", CMD_TIMEOUT)?;
    ensure!(
        keys.contains("# keel: keys from the platform (nocloud)") && keys.contains(&ed_pub),
        "authorized_keys:\n{keys}"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn a_vfat_nocloud_seed_gives_root_its_keys_and_the_hostname() -> Result<()> {
    let name = "a_vfat_nocloud_seed_gives_root_its_keys_and_the_hostname";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    seed_gives_keys_and_hostname(name, disk::nocloud_vfat, virtio_disk)
}

#[test]
fn an_iso9660_nocloud_seed_gives_root_its_keys_and_the_hostname() -> Result<()> {
    let name = "an_iso9660_nocloud_seed_gives_root_its_keys_and_the_hostname";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    seed_gives_keys_and_hostname(name, disk::nocloud_iso, virtio_disk)
}

#[test]
fn an_iso9660_seed_on_a_virtio_scsi_cdrom_gives_root_its_keys_and_the_hostname() -> Result<()> {
    let name = "an_iso9660_seed_on_a_virtio_scsi_cdrom_gives_root_its_keys_and_the_hostname";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    seed_gives_keys_and_hostname(name, disk::nocloud_iso, virtio_scsi_cdrom)
}

/// What the fake metadata service saw: (method, path, token header) per request.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

const TOKEN: &str = "keel-test-token-6f1c";

/// Linode's Metadata API as documented: PUT /v1/token with an expiry header gives a token;
/// GET /v1/ssh-keys and /v1/instance need it (401 otherwise).
fn serve(listener: TcpListener, keys_json: String, seen: Seen) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut reader = BufReader::new(match conn.try_clone() {
            Ok(c) => c,
            Err(_) => continue,
        });
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let path = words.next().unwrap_or_default().to_string();
        let mut token = None;
        let mut expiry = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).map_or(true, |n| n == 0) || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "metadata-token" => token = Some(v.trim().to_string()),
                    "metadata-token-expiry-seconds" => expiry = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((method.clone(), path.clone(), token.clone()));
        let (status, body) = match (method.as_str(), path.as_str()) {
            ("PUT", "/v1/token") if expiry.is_some() => ("200 OK", TOKEN.to_string()),
            ("PUT", "/v1/token") => ("400 Bad Request", "expiry required".to_string()),
            (_, _) if token.as_deref() != Some(TOKEN) => {
                ("401 Unauthorized", "{\"errors\":[{\"reason\":\"Unauthorized\"}]}".to_string())
            }
            ("GET", "/v1/ssh-keys") => ("200 OK", keys_json.clone()),
            ("GET", "/v1/instance") => (
                "200 OK",
                "{\"id\":123,\"host_uuid\":\"x\",\"label\":\"linode-host\",\"region\":\"us-east\",\"type\":\"g6-nanode-1\",\"tags\":[],\"specs\":{\"vcpus\":1,\"memory\":1024}}".to_string(),
            ),
            _ => ("404 Not Found", "not found".to_string()),
        };
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

/// A Linode-looking guest (SMBIOS vendor Linode) on QEMU's network 169.254.0.0/16, with
/// 169.254.169.254:80 forwarded to host port `port` when given.
fn linode_guest(name: &str, port: Option<u16>) -> BootOpts {
    let mut opts = BootOpts::new(name)
        .qemu_args([
            "-smbios",
            "type=1,manufacturer=Linode,product=Compute Instance",
        ])
        .nic_option("net=169.254.0.0/16")
        .nic_option("ipv6=off")
        .nic_option("restrict=on");
    if let Some(p) = port {
        opts = opts.nic_option(&format!(
            "guestfwd=tcp:169.254.169.254:80-cmd:busybox nc 127.0.0.1 {p}"
        ));
    }
    opts
}

#[test]
fn the_linode_metadata_service_gives_root_its_keys_and_the_hostname() -> Result<()> {
    let name = "the_linode_metadata_service_gives_root_its_keys_and_the_hostname";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let scratch = Scratch::new(name)?;
    let (key, public) = keypair(&scratch.0, "linode-ed25519", &["-t", "ed25519"])?;
    let (_, other) = keypair(&scratch.0, "linode-other", &["-t", "ed25519"])?;
    // One line of root's is no key: dropped with a warning, the others kept.
    let keys_json = format!(
        "{{\"users\":{{\"root\":[\"ssh-ed25519 not-a-key!\",\"{public}\"],\"deploy\":[\"{other}\"]}}}}"
    );
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let seen: Seen = Arc::default();
    {
        let seen = seen.clone();
        std::thread::spawn(move || serve(listener, keys_json, seen));
    }
    // The fake refuses a wrong token, as the real one does.
    {
        let mut c = TcpStream::connect(("127.0.0.1", port))?;
        write!(
            c,
            "GET /v1/ssh-keys HTTP/1.1\r\nHost: x\r\nMetadata-Token: wrong\r\n\r\n"
        )?;
        let mut answer = String::new();
        c.read_to_string(&mut answer)?;
        ensure!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    let mut vm = Vm::boot(linode_guest(name, Some(port)))?;
    let host = ssh_until_ok(&vm, &key, "hostname")?;
    ensure!(
        host.trim() == "linode-host",
        "hostname is {host:?}, not the label"
    );
    let log = vm.keel_log()?;
    let fp = fingerprint(&key)?;
    ensure!(
        log.contains(&format!("metadata: linode: root may log in with {fp}")),
        "no fingerprint line for {fp}:\n{log}"
    );
    ensure!(
        log.contains("metadata: linode: ssh-keys: root's key 1 (\"ssh-ed25519 not-a-key!\"): ")
            && log.contains(", key dropped"),
        "no warning for the bad key line:\n{log}"
    );
    ensure!(
        log.contains("metadata: linode: the Metadata service answers at 169.254.169.254"),
        "the console does not say which address answered:\n{log}"
    );
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let guest: Vec<_> = seen.iter().skip(1).collect();
    ensure!(
        guest
            .first()
            .is_some_and(|(m, p, _)| m == "PUT" && p == "/v1/token"),
        "the guest did not ask for a token first: {guest:?}"
    );
    ensure!(
        guest
            .iter()
            .filter(|(m, _, _)| m == "GET")
            .all(|(_, _, t)| t.as_deref() == Some(TOKEN)),
        "a GET without the token: {guest:?}"
    );
    let other_key = ssh_with(&vm, &scratch.0.join("linode-other"), "true")?;
    ensure!(
        !other_key.status.success(),
        "another user's key from the metadata logs in as root"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn without_the_metadata_service_sshd_starts_in_time_with_the_image_s_keys() -> Result<()> {
    let name = "without_the_metadata_service_sshd_starts_in_time_with_the_image_s_keys";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/appliance.toml");
    let config =
        std::fs::read_to_string(&shipped)?.replace("timeout = \"10s\"", "timeout = \"4s\"");
    ensure!(
        config.contains("timeout = \"4s\""),
        "the shipped [cloud] has no timeout = \"10s\""
    );
    let mut vm = Vm::boot(
        linode_guest(name, None)
            .overlay("/etc/keel/appliance.toml", config)
            .authorize_test_key()?,
    )?;
    vm.wait_ssh(BOOT_TIMEOUT)?;
    let log = vm.keel_log()?;
    ensure!(
        log.contains("metadata: linode: no metadata service: no answer at [fd00:a9fe:a9fe::1] (")
            && log.contains("), nor at 169.254.169.254 ("),
        "the console does not say why, for both addresses:\n{log}"
    );
    let rows = vm.wait_services("metadata settled", &["metadata"], |r| {
        !matches!(r[0].0.as_str(), "running" | "starting" | "waiting")
    })?;
    // A failed oneshot with the default restart = "never" is down, with its exit.
    ensure!(rows[0].0 == "down", "metadata is {:?}", rows[0]);
    let log = vm.keel_log()?;
    ensure!(
        log.contains("keel: metadata exited (exit code 1)"),
        "metadata did not fail:\n{log}"
    );
    vm.assert_no_kernel_panic()
}
