//! `cargo xtask dhclient`: keel's dhclient, a static x86_64 musl build of the client of
//! Debian 12's `isc-dhcp` source package (Debian's patches applied), instead of Debian's
//! dynamically linked /sbin/dhclient and the glibc it alone needed in the image (issue 13).
//!
//! The recipe, as `cargo xtask sshd`'s and `cargo xtask busybox`'s (`debsrc`):
//! 1. apt's source mechanism with a private state in `$KEEL_CACHE/dhclient/apt/`: the newest
//!    `isc-dhcp` source the archive serves, Debian's patches applied by dpkg-source (none of
//!    them touches configure or a Makefile.in the client needs: no autoreconf).
//! 2. `./configure` with Debian's flags for its DDNS-disabled dhclient build (debian/rules:
//!    `--enable-log-pid --enable-paranoia`, `-DCALL_SCRIPT_ON_ONETRY_FAIL`, the /etc/dhcp and
//!    /var/lib/dhcp paths; no `-DNSUPDATE`, no LDAP), CC=musl-gcc, `-static`, the kernel's
//!    `linux/`, `asm/` and `asm-generic/` headers (the LPF code needs linux/filter.h and
//!    linux/if_packet.h; musl-gcc sees none), and `--with-bind-extra-config=--with-zlib=no`
//!    for the BIND 9.11 libraries isc-dhcp 4.4 bundles (bind/bind.tar.gz, built by its own
//!    configure; the slow part).
//! 3. `make` in bind, common, omapip and client only (no server, relay or omshell), then
//!    `strip`; the checks: no PT_INTERP, no DT_NEEDED, `dhclient --version` names the
//!    version.
//!
//! The result lands in `$KEEL_CACHE/dhclient/out/<key>/dhclient` with `info.txt`. The key
//! hashes the source version, the toolchain and every flag, so a Debian security update is a
//! rebuild and anything else a cache hit. Reproducible: one build path, `-ffile-prefix-map`,
//! SOURCE_DATE_EPOCH from the Debian changelog, stripped.

use crate::cache::{cache_dir, lock_cache};
use crate::debsrc::{self, apt, build_cmd, changelog_epoch, jobs, kernel_headers, key_of, prune};
use crate::prereq::{self, need};
use crate::util::{file_len, hex, out_dir};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask dhclient [--fresh] [-v]

Builds keel's dhclient, static for x86_64 musl, from Debian 12's isc-dhcp source package
(the client only, Debian's flags without DDNS), and prints its path. Cached in
$KEEL_CACHE/dhclient (default ~/.cache/keel/dhclient), keyed by the source version, the
toolchain and the flags: a second build is a cache hit.

  --fresh   build again from the source even when cached, and check the result has the
            same sha256 as the cached one
  -v        show the commands run";

/// Bump when the recipe changes in a way the flags do not show.
const RECIPE: &str = "keel-dhclient-1";

/// The directories of the tree that are built, in order: the bundled BIND libraries, then
/// what dhclient links (libdhcp, libomapi), then dhclient.
const SUBDIRS: &[&str] = &["bind", "common", "omapip", "client"];

/// What `cargo xtask dhclient` gives: the binary and what it was built from.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub dhclient: PathBuf,
    /// `isc-dhcp 4.4.3-P1-2`.
    pub source: String,
}

pub(crate) use debsrc::Opts;

fn phase(msg: &str) {
    debsrc::phase("dhclient", msg);
}

fn logged(cmd: &mut Command, what: &str, log: &Path, verbose: bool) -> Result<()> {
    debsrc::step::logged("dhclient", cmd, what, log, verbose)
}

pub(crate) fn run(args: Vec<String>) -> Result<()> {
    let Some(opts) = debsrc::parse_opts(args, USAGE)? else {
        return Ok(());
    };
    let built = build(&opts)?;
    eprintln!(
        "dhclient: {} (from {})",
        built.dhclient.display(),
        built.source
    );
    println!("{}", built.dhclient.display());
    Ok(())
}

fn ensure_prereqs() -> Result<()> {
    prereq::ensure(&[
        need("musl-gcc", "musl-tools"),
        need("dpkg-source", "dpkg-dev"),
        need("make", "make"),
        need("gcc", "build-essential"),
        need("strip", "binutils"),
        need("/usr/include/linux/if_packet.h", "linux-libc-dev"),
    ])
}

/// The configure arguments and environment for a build of the tree `tree` with the kernel
/// headers in `headers`. CFLAGS and LDFLAGS go in the environment too (see `build`): the
/// bundled BIND's configure, run by make, takes them from there.
fn configure_env(tree: &Path, headers: &Path) -> Vec<(String, String)> {
    let cflags = [
        "-Os".to_owned(),
        "-Wall".to_owned(),
        "-ffunction-sections".to_owned(),
        "-fdata-sections".to_owned(),
        format!("-ffile-prefix-map={}=.", tree.display()),
        // Here for the bundled BIND's build, which does not pass CPPFLAGS on; in CPPFLAGS
        // too, so configure's preprocessor checks (linux/types.h) see them.
        format!("-isystem {}", headers.display()),
        // debian/rules, for every build.
        "-DCALL_SCRIPT_ON_ONETRY_FAIL".to_owned(),
        "-D_PATH_DHCLIENT_SCRIPT='\"/sbin/dhclient-script\"'".to_owned(),
        "-D_PATH_DHCLIENT_CONF='\"/etc/dhcp/dhclient.conf\"'".to_owned(),
        "-D_PATH_DHCLIENT_DB='\"/var/lib/dhcp/dhclient.leases\"'".to_owned(),
        "-D_PATH_DHCLIENT6_DB='\"/var/lib/dhcp/dhclient6.leases\"'".to_owned(),
    ];
    vec![
        ("CC".into(), "musl-gcc".into()),
        ("CFLAGS".into(), cflags.join(" ")),
        ("CPPFLAGS".into(), format!("-isystem {}", headers.display())),
        ("LDFLAGS".into(), "-static -Wl,--gc-sections".into()),
    ]
}

/// `./configure`'s arguments: Debian's (debian/rules), for its DDNS-disabled client build.
const CONFIGURE: &[&str] = &[
    "--prefix=/usr",
    "--enable-log-pid",
    "--enable-paranoia",
    "--with-bind-extra-config=--with-zlib=no",
];

/// bind/Makefile builds the libraries in a loop that ignores a failure (the compiler's
/// errors go to bind/build.log): the build stops here, naming that log, if one is missing.
fn check_bind(tree: &Path) -> Result<()> {
    let missing: Vec<String> = ["isc", "dns", "isccfg", "irs"]
        .iter()
        .map(|l| format!("bind/lib/lib{l}.a"))
        .filter(|p| !tree.join(p).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the bundled BIND libraries did not build: {} missing; the compiler's errors are \
             in {}",
            missing.join(", "),
            tree.join("bind/build.log").display()
        );
    }
    Ok(())
}

/// The versions of everything that turns the source into the binary.
fn toolchain() -> Result<String> {
    debsrc::toolchain(&[("ld", "--version"), ("make", "--version")])
}

/// What `dhclient --version` prints (on stderr): `isc-dhclient-4.4.3-P1`.
pub(crate) fn dhclient_version(dhclient: &Path) -> Result<String> {
    let out = Command::new(dhclient)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} --version", dhclient.display()))?;
    if !out.status.success() {
        bail!("{} --version failed: {}", dhclient.display(), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stderr).trim().to_owned())
}

/// The upstream version in a Debian version: `4.4.3-P1-2` → `4.4.3-P1`.
fn upstream(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    v.rsplit_once('-').map_or(v, |(u, _)| u)
}

/// Builds keel's dhclient, or takes it from the cache.
pub(crate) fn build(opts: &Opts) -> Result<Built> {
    let started = Instant::now();
    ensure_prereqs()?;
    let cache = cache_dir()?.join("dhclient");
    let _lock = lock_cache(&cache)?;
    let apt = apt::Apt::setup(&cache.join("apt"), "dhclient")?;
    apt.update_if_stale()?;
    let (version, dsc) = apt.fetch("isc-dhcp")?;
    let source = format!("isc-dhcp {version}");

    let placeholder = Path::new("/BUILD");
    let env_shown: Vec<String> = configure_env(
        &placeholder.join("isc-dhcp"),
        &placeholder.join("kernel-headers"),
    )
    .into_iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect();
    let recipe = format!(
        "{RECIPE}\n{source}\n{}\n{}\nconfigure {}\nmake {}\n",
        toolchain()?,
        env_shown.join("\n"),
        CONFIGURE.join(" "),
        SUBDIRS.join(" "),
    );
    let key = key_of(&recipe);
    let out = cache.join("out").join(&key);
    let binary = out.join("dhclient");
    let cached = binary.is_file();
    if cached && !opts.fresh {
        phase(&format!(
            "cached: {} ({source}; key {key})",
            binary.display()
        ));
        return Ok(Built {
            dhclient: binary,
            source,
        });
    }

    phase(&format!(
        "building from {source} (key {key}; ~3 min on 2 busy cores, most of it the bundled \
         BIND libraries)"
    ));
    let logs = out_dir().join("dhclient-build");
    fs::create_dir_all(&logs)?;
    let build = cache.join("build");
    if build.exists() {
        fs::remove_dir_all(&build)
            .with_context(|| format!("cannot remove the old {}", build.display()))?;
    }
    fs::create_dir_all(&build)?;
    let headers = build.join("kernel-headers");
    kernel_headers(&headers)?;
    let tree = debsrc::unpack(
        "dhclient",
        &dsc,
        &build.join("isc-dhcp"),
        &logs,
        opts.verbose,
    )?;
    let epoch = changelog_epoch(&tree)?;
    let env = configure_env(&tree, &headers);
    let mut times = Vec::new();

    let t = Instant::now();
    let mut configure = build_cmd(&tree, epoch, &["./configure"]);
    configure.args(CONFIGURE).envs(env.iter().cloned());
    logged(
        &mut configure,
        "isc-dhcp: configure",
        &logs.join("isc-dhcp-configure.log"),
        opts.verbose,
    )?;
    times.push(format!("configure {}", debsrc::step::mmss(t.elapsed())));
    for dir in SUBDIRS {
        let t = Instant::now();
        let mut make = build_cmd(&tree.join(dir), epoch, &["make", &jobs()]);
        make.envs(env.iter().cloned());
        let what = if *dir == "bind" {
            "make in bind (BIND's libisc, libdns, libisccfg, libirs; the slow part; its log is \
             bind/build.log in the tree)"
                .to_owned()
        } else {
            format!("make in {dir}")
        };
        logged(
            &mut make,
            &what,
            &logs.join(format!("isc-dhcp-make-{dir}.log")),
            opts.verbose,
        )?;
        times.push(format!("{dir} {}", debsrc::step::mmss(t.elapsed())));
        if *dir == "bind" {
            check_bind(&tree)?;
        }
    }

    let make_log = logs.join("isc-dhcp-make-client.log");
    let (partial, stripped) = debsrc::strip_static(
        &cache,
        &key,
        "dhclient",
        &tree.join("client/dhclient"),
        &make_log,
    )?;
    let said = dhclient_version(&stripped)?;
    let want = format!("isc-dhclient-{}", upstream(&version));
    if said != want {
        bail!(
            "{} --version says {said:?}, expected {want:?} (from {source})",
            stripped.display()
        );
    }
    let digest = hex(&Sha256::digest(fs::read(&stripped)?));
    if cached {
        let old = hex(&Sha256::digest(fs::read(&binary)?));
        if old != digest {
            bail!(
                "not reproducible: this build of dhclient has sha256 {digest}, the cached one \
                 {old} ({}); the build logs are in {}",
                binary.display(),
                logs.display()
            );
        }
        phase(&format!(
            "reproducible: the fresh build has the cached sha256 {digest}"
        ));
    }
    let size = file_len(&stripped).unwrap_or(0);
    let info = format!(
        "{recipe}{said}\nsha256 {digest}\nsize {size}\nbuilt in {} ({})\n",
        debsrc::step::mmss(started.elapsed()),
        times.join(", ")
    );
    fs::write(partial.join("info.txt"), info)?;
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    fs::rename(&partial, &out)?;
    let _ = fs::remove_dir_all(&build);
    prune("dhclient", &cache.join("out"), &out);
    phase(&format!(
        "built {} ({size} bytes, sha256 {digest}) in {} ({})",
        binary.display(),
        debsrc::step::mmss(started.elapsed()),
        times.join(", ")
    ));
    Ok(Built {
        dhclient: binary,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_debians_client_build_without_ddns_for_musl() {
        let env = configure_env(Path::new("/B/isc-dhcp"), Path::new("/B/kernel-headers"));
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("CC"), "musl-gcc");
        assert!(get("LDFLAGS").starts_with("-static"));
        assert_eq!(get("CPPFLAGS"), "-isystem /B/kernel-headers");
        let cflags = get("CFLAGS");
        for want in [
            "-DCALL_SCRIPT_ON_ONETRY_FAIL",
            "-ffile-prefix-map=/B/isc-dhcp=.",
            "-isystem /B/kernel-headers",
            "-D_PATH_DHCLIENT_DB='\"/var/lib/dhcp/dhclient.leases\"'",
        ] {
            assert!(cflags.contains(want), "{want} not in {cflags}");
        }
        // Debian's DDNS-disabled dhclient: no NSUPDATE.
        assert!(!cflags.contains("NSUPDATE"), "{cflags}");
        assert!(CONFIGURE.contains(&"--with-bind-extra-config=--with-zlib=no"));
        assert!(!CONFIGURE.iter().any(|a| a.contains("ldap")));
        assert_eq!(SUBDIRS.last(), Some(&"client"));
    }

    #[test]
    fn the_upstream_version_is_what_dhclient_names() {
        assert_eq!(upstream("4.4.3-P1-2"), "4.4.3-P1");
        assert_eq!(upstream("1:4.4.3-P1-2+deb12u1"), "4.4.3-P1");
    }
}

/// Host tests of the built dhclient (`cargo test -p xtask dhclient::host -- --ignored`, run
/// by `cargo xtask test`): it builds keel's dhclient or takes it from the cache, then checks
/// it is static, names its version, and gets a real lease over a veth pair between two
/// network namespaces of its own from Debian's busybox udhcpd, with a hook given by `-sf`
/// as keel's dhcp-hook is, and with the lease file at `-lf`.
#[cfg(test)]
mod host {
    use super::*;
    use std::time::Duration;

    #[test]
    #[ignore = "builds keel's dhclient (~3 min when not cached); run by cargo xtask test"]
    fn dhclient_is_static_and_names_its_version() {
        let b = build(&Opts::default()).expect("cargo xtask dhclient");
        let info = crate::elf::read(&b.dhclient).unwrap();
        assert!(info.interp.is_none(), "PT_INTERP {:?}", info.interp);
        assert!(info.needed.is_empty(), "DT_NEEDED {:?}", info.needed);
        let version = dhclient_version(&b.dhclient).unwrap();
        assert!(version.starts_with("isc-dhclient-4.4."), "{version}");
        assert!(b.source.starts_with("isc-dhcp 4.4."), "{}", b.source);
    }

    fn ip(args: &[&str]) {
        let out = Command::new("ip")
            .args(args)
            .output()
            .expect("ip (iproute2)");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Two namespaces and the processes in them, removed when the test ends (also on failure).
    struct Lab {
        server: String,
        client: String,
        children: Vec<std::process::Child>,
        dir: PathBuf,
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            for ns in [&self.server, &self.client] {
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
            }
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    #[ignore = "builds keel's dhclient (~3 min when not cached); run by cargo xtask test"]
    fn dhclient_gets_a_lease_from_udhcpd_and_runs_its_sf_hook() {
        // Ignored by plain `cargo test`; `cargo xtask test` runs it, as root. Without root
        // it fails rather than pass having checked nothing.
        assert!(
            crate::prereq::is_root(),
            "this test needs root (it makes network namespaces): run it as root"
        );
        let b = build(&Opts::default()).expect("cargo xtask dhclient");
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("keel-dhclient-lease-{pid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            server: format!("keel-dhs-{pid}"),
            client: format!("keel-dhc-{pid}"),
            children: Vec::new(),
            dir: dir.clone(),
        };
        let (srv, cli) = (lab.server.clone(), lab.client.clone());
        ip(&["netns", "add", &srv]);
        ip(&["netns", "add", &cli]);
        ip(&[
            "link", "add", "dh0", "netns", &cli, "type", "veth", "peer", "name", "dh1", "netns",
            &srv,
        ]);
        ip(&["-n", &srv, "addr", "add", "192.0.2.1/24", "dev", "dh1"]);
        ip(&["-n", &srv, "link", "set", "dh1", "up"]);
        ip(&["-n", &cli, "link", "set", "lo", "up"]);
        ip(&["-n", &cli, "link", "set", "dh0", "up"]);

        let conf = dir.join("udhcpd.conf");
        fs::write(
            &conf,
            format!(
                "start 192.0.2.100\nend 192.0.2.110\ninterface dh1\nlease_file {0}/udhcpd.leases\n\
                 pidfile {0}/udhcpd.pid\noption subnet 255.255.255.0\noption router 192.0.2.1\n\
                 option dns 192.0.2.53\noption lease 600\n",
                dir.display()
            ),
        )
        .unwrap();
        fs::write(dir.join("udhcpd.leases"), "").unwrap();
        let udhcpd = Command::new("ip")
            .args(["netns", "exec", &srv, "/bin/busybox", "udhcpd", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("udhcpd.log")).unwrap())
            .spawn()
            .expect("busybox udhcpd (apt-get install busybox-static)");
        lab.children.push(udhcpd);

        // The hook as keel's is run: `-sf PATH`, the event in $reason, the lease in the
        // environment dhclient builds (and `-e` variables).
        let hook = dir.join("hook");
        fs::write(
            &hook,
            format!(
                "#!/bin/sh\nenv > {0}/hook-$reason.env.tmp && mv {0}/hook-$reason.env.tmp {0}/hook-$reason.env\n",
                dir.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        let leases = dir.join("dhclient.leases");
        fs::write(dir.join("dhclient.conf"), "").unwrap();
        let dhclient = Command::new("ip")
            .args(["netns", "exec", &cli])
            .arg(&b.dhclient)
            .args(["-d", "-4", "--no-pid", "-sf"])
            .arg(&hook)
            .arg("-cf")
            .arg(dir.join("dhclient.conf"))
            .arg("-lf")
            .arg(&leases)
            .args(["-e", "KEEL_PASSED=yes", "dh0"])
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("dhclient.log")).unwrap())
            .spawn()
            .unwrap();
        lab.children.push(dhclient);

        let bound = dir.join("hook-BOUND.env");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !bound.is_file() {
            assert!(
                Instant::now() < deadline,
                "no BOUND within 60 s; dhclient said:\n{}\nudhcpd said:\n{}",
                fs::read_to_string(dir.join("dhclient.log")).unwrap_or_default(),
                fs::read_to_string(dir.join("udhcpd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let env = fs::read_to_string(&bound).unwrap();
        let var = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_default()
                .to_owned()
        };
        let address = var("new_ip_address");
        assert!(address.starts_with("192.0.2.1"), "{env}");
        assert_eq!(var("interface"), "dh0", "{env}");
        assert_eq!(var("new_subnet_mask"), "255.255.255.0", "{env}");
        assert_eq!(var("new_routers"), "192.0.2.1", "{env}");
        assert_eq!(var("new_domain_name_servers"), "192.0.2.53", "{env}");
        assert_eq!(var("KEEL_PASSED"), "yes", "{env}");
        assert!(dir.join("hook-PREINIT.env").is_file(), "no PREINIT");
        // The lease file at -lf holds the lease.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(&leases).unwrap_or_default();
            if text.contains(&format!("fixed-address {address};")) {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {text:?}", leases.display());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
