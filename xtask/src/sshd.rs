//! `cargo xtask sshd`: keel's own sshd, a static x86_64 musl build of Debian 12's
//! `openssh` source package (Debian's patches applied), linked with a static libcrypto
//! built the same way from Debian's `openssl` source and with musl's own crypt(3)
//! (Debian's musl ships none) from Debian's `musl` source (issue 13).
//!
//! The recipe, step by step:
//! 1. apt's source mechanism with a private state in `$KEEL_CACHE/sshd/apt/` (`apt.rs`):
//!    the newest version of each source package the archive serves, Debian's patches
//!    applied by dpkg-source.
//! 2. A header directory holding only the kernel's `linux/`, `asm/` and `asm-generic/`
//!    (from linux-libc-dev), because musl-gcc sees no kernel headers and OpenSSH's
//!    configure then silently turns the seccomp sandbox off.
//! 3. musl's `src/crypt/*.c` into `libcrypt.a`, so password hashes still verify.
//! 4. libcrypto only (`make libcrypto.a`): no shared objects, modules, engines, DSO or
//!    tests; cached on its own in `$KEEL_CACHE/sshd/libcrypto/<key>/`.
//! 5. `autoreconf` (Debian's patches touch configure.ac), configure without PAM, Kerberos,
//!    SELinux, libsystemd, libedit and zlib, privsep path /run/sshd, sandbox seccomp_filter
//!    (the configure summary is checked), `make sshd`, strip.
//!
//! The result lands in `$KEEL_CACHE/sshd/out/<key>/sshd` with `info.txt` (recipe, sizes,
//! times). The key hashes the recipe: the source versions, the toolchain's versions and
//! every flag, so a Debian security update (a new source version) is a new key and a
//! rebuild, and anything else is a cache hit. The build is reproducible: relative source
//! paths, `-ffile-prefix-map`, SOURCE_DATE_EPOCH from Debian's changelog, stripped.

use crate::cache::{cache_dir, lock_cache};
use crate::debsrc::step::mmss;
use crate::debsrc::{apt, build_cmd, changelog_epoch, jobs, kernel_headers, key_of, prune};
use crate::prereq::{self, need};
use crate::util::{file_len, hex, out_dir};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask sshd [--without-openssl] [--fresh] [-v]

Builds keel's sshd, static for x86_64 musl, from Debian 12's openssh source package with
a static libcrypto from Debian's openssl source, and prints its path. Cached in
$KEEL_CACHE/sshd (default ~/.cache/keel/sshd), keyed by the source versions, the
toolchain and the flags: a second build is a cache hit.

  --without-openssl  OpenSSH's own crypto only (ed25519 keys only; for measuring)
  --fresh            build again from the sources (libcrypto too) even when cached, and
                     check the result has the same sha256 as the cached one
  -v                 show the commands run";

/// Bump when the recipe changes in a way the flags below do not show.
const RECIPE: &str = "keel-sshd-1";

const PRIVSEP_PATH: &str = "/run/sshd";

/// What `cargo xtask sshd` gives: the binary and what it was built from.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub sshd: PathBuf,
    /// `openssh 1:9.2p1-2+deb12u10, openssl 3.0.20-1~deb12u2, musl 1.2.3-1`.
    pub sources: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Opts {
    pub without_openssl: bool,
    pub fresh: bool,
    pub verbose: bool,
}

fn phase(msg: &str) {
    crate::debsrc::phase("sshd", msg);
}

/// One long step of this build, logged (`debsrc::step`).
fn logged(cmd: &mut Command, what: &str, log: &Path, verbose: bool) -> Result<()> {
    crate::debsrc::step::logged("sshd", cmd, what, log, verbose)
}

/// `dpkg-source -x` with Debian's patches (`debsrc::unpack`).
fn unpack(dsc: &Path, into: &Path, logs: &Path, opts: &Opts) -> Result<PathBuf> {
    crate::debsrc::unpack("sshd", dsc, into, logs, opts.verbose)
}

pub(crate) fn run(args: Vec<String>) -> Result<()> {
    let mut opts = Opts::default();
    for a in args {
        match a.as_str() {
            "--without-openssl" => opts.without_openssl = true,
            "--fresh" => opts.fresh = true,
            "-v" | "--verbose" => opts.verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let built = build(&opts)?;
    eprintln!("sshd: {} (from {})", built.sshd.display(), built.sources);
    println!("{}", built.sshd.display());
    Ok(())
}

fn ensure_prereqs() -> Result<()> {
    prereq::ensure(&[
        need("musl-gcc", "musl-tools"),
        need("dpkg-source", "dpkg-dev"),
        need("autoreconf", "autoconf"),
        need("aclocal", "automake"),
        need("make", "make"),
        need("gcc", "build-essential"),
        need("perl", "perl"),
        need("strip", "binutils"),
        need("/usr/include/linux/seccomp.h", "linux-libc-dev"),
    ])
}

/// Builds keel's sshd, or takes it from the cache.
pub(crate) fn build(opts: &Opts) -> Result<Built> {
    let started = Instant::now();
    ensure_prereqs()?;
    let cache = cache_dir()?.join("sshd");
    let _lock = lock_cache(&cache)?;
    let apt = apt::Apt::setup(&cache.join("apt"), "sshd")?;
    apt.update_if_stale()?;
    let openssh = apt.fetch("openssh")?;
    let musl = apt.fetch("musl")?;
    let openssl = if opts.without_openssl {
        None
    } else {
        Some(apt.fetch("openssl")?)
    };
    let mut sources = format!("openssh {}", openssh.0);
    if let Some((v, _)) = &openssl {
        sources.push_str(&format!(", openssl {v}"));
    }
    sources.push_str(&format!(", musl {}", musl.0));

    let toolchain = toolchain()?;
    let libcrypto_recipe = openssl.as_ref().map(|(v, _)| {
        format!(
            "{RECIPE}\nopenssl {v}\n{toolchain}\n{}\n{}",
            libcrypto_configure().join(" "),
            NISTZ256_EDIT
                .iter()
                .map(|(from, to)| format!("{EC_BUILD_INFO}: {from} -> {to}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let libcrypto_key = libcrypto_recipe.as_deref().map(key_of);
    let placeholder = Path::new("/BUILD");
    let recipe = format!(
        "{RECIPE}\n{sources}\n{toolchain}\nlibcrypto {}\ncrypt {}\nconfigure {}\n",
        libcrypto_key.as_deref().unwrap_or("none"),
        CRYPT_CFLAGS.join(" "),
        openssh_configure(
            placeholder,
            &openssh.0,
            libcrypto_key.as_ref().map(|_| placeholder)
        )
        .join(" ")
    );
    let key = key_of(&recipe);
    let out = cache.join("out").join(&key);
    let sshd = out.join("sshd");
    let cached = sshd.is_file();
    if cached && !opts.fresh {
        phase(&format!(
            "cached: {} ({sources}; key {key})",
            sshd.display()
        ));
        return Ok(Built { sshd, sources });
    }

    phase(&format!(
        "building from {sources} (key {key}; a first build takes ~15-25 min on 2 busy cores, \
         most of it libcrypto)"
    ));
    let logs = out_dir().join("sshd-build");
    fs::create_dir_all(&logs)?;
    let build = cache.join("build");
    if build.exists() {
        fs::remove_dir_all(&build)
            .with_context(|| format!("cannot remove the old {}", build.display()))?;
    }
    fs::create_dir_all(&build)?;
    let mut times = Vec::new();

    let headers = build.join("kernel-headers");
    kernel_headers(&headers)?;
    let t = Instant::now();
    let musl_tree = unpack(&musl.1, &build.join("musl"), &logs, opts)?;
    let crypt = build.join("crypt");
    musl_crypt(&musl_tree, &crypt, &logs, opts)?;
    times.push(format!("musl crypt {}", mmss(t.elapsed())));

    let libcrypto = match (&openssl, &libcrypto_key, &libcrypto_recipe) {
        (Some((version, dsc)), Some(lkey), Some(lrecipe)) => {
            let dir = cache.join("libcrypto").join(lkey);
            if !dir.join("lib/libcrypto.a").is_file() || opts.fresh {
                let t = Instant::now();
                build_libcrypto(dsc, version, &build, &headers, &dir, lrecipe, &logs, opts)?;
                times.push(format!("libcrypto {}", mmss(t.elapsed())));
            } else {
                phase(&format!("libcrypto: cached in {}", dir.display()));
            }
            Some(dir)
        }
        _ => None,
    };

    let t = Instant::now();
    let tree = unpack(&openssh.1, &build.join("openssh"), &logs, opts)?;
    let epoch = changelog_epoch(&tree)?;
    logged(
        Command::new("autoreconf").arg("-fi").current_dir(&tree),
        "openssh: autoreconf",
        &logs.join("openssh-autoreconf.log"),
        opts.verbose,
    )?;
    let mut configure = build_cmd(&tree, epoch, &["./configure"]);
    configure.args(openssh_configure(&build, &openssh.0, libcrypto.as_deref()));
    let conf_log = logs.join("openssh-configure.log");
    logged(
        &mut configure,
        "openssh: configure",
        &conf_log,
        opts.verbose,
    )?;
    check_summary(&conf_log)?;
    let mut make = build_cmd(&tree, epoch, &["make", &jobs(), "sshd"]);
    logged(
        &mut make,
        "openssh: make sshd",
        &logs.join("openssh-make.log"),
        opts.verbose,
    )?;
    times.push(format!("openssh {}", mmss(t.elapsed())));

    let (fresh_out, stripped) = crate::debsrc::strip_static(
        &cache,
        &key,
        "sshd",
        &tree.join("sshd"),
        &logs.join("openssh-make.log"),
    )?;
    let version = sshd_version(&stripped)?;
    let with_openssl = version.contains("OpenSSL 3.");
    if with_openssl != libcrypto.is_some() {
        bail!(
            "{} -V says {version:?}: not the crypto it was configured with",
            stripped.display()
        );
    }
    let digest = hex(&Sha256::digest(fs::read(&stripped)?));
    if cached {
        let old = hex(&Sha256::digest(fs::read(&sshd)?));
        if old != digest {
            bail!(
                "not reproducible: this build of sshd has sha256 {digest}, the cached one {old} \
                 ({}); the build log is in {}",
                sshd.display(),
                logs.display()
            );
        }
        phase(&format!(
            "reproducible: the fresh build has the cached sha256 {digest}"
        ));
    }
    let size = file_len(&stripped).unwrap_or(0);
    let info = format!(
        "{recipe}\n{version}\nsha256 {digest}\nsize {size}\nbuilt in {} ({})\n{}",
        mmss(started.elapsed()),
        times.join(", "),
        summary(&conf_log)
    );
    fs::write(fresh_out.join("info.txt"), info)?;
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    fs::rename(&fresh_out, &out)?;
    let _ = fs::remove_dir_all(&build);
    prune("sshd", &cache.join("out"), &out);
    if let Some(dir) = &libcrypto {
        prune("sshd", &cache.join("libcrypto"), dir);
    }
    phase(&format!(
        "built {} ({size} bytes, sha256 {digest}) in {} ({})",
        sshd.display(),
        mmss(started.elapsed()),
        times.join(", ")
    ));
    Ok(Built { sshd, sources })
}

/// What `sshd -V` prints (on stderr): `OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.20 ...`.
pub(crate) fn sshd_version(sshd: &Path) -> Result<String> {
    let out = Command::new(sshd)
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} -V", sshd.display()))?;
    Ok(String::from_utf8_lossy(&out.stderr).trim().to_owned())
}

/// The versions of everything that turns the sources into the binary.
fn toolchain() -> Result<String> {
    crate::debsrc::toolchain(&[
        ("ld", "--version"),
        ("autoconf", "--version"),
        ("aclocal", "--version"),
    ])
}

const CRYPT_CFLAGS: &[&str] = &[
    "-std=c99",
    "-D_XOPEN_SOURCE=700",
    "-Os",
    "-ffunction-sections",
    "-fdata-sections",
];

/// musl's src/crypt/*.c (DES, MD5, bcrypt, SHA-256/512 crypt) as `libcrypt.a`, and its
/// `crypt.h`, in `out`.
fn musl_crypt(musl: &Path, out: &Path, logs: &Path, opts: &Opts) -> Result<()> {
    fs::create_dir_all(out)?;
    let src = musl.join("src/crypt");
    let mut files: Vec<PathBuf> = fs::read_dir(&src)
        .with_context(|| format!("cannot list {}", src.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no crypt sources", src.display());
    }
    let rel: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(musl).unwrap_or(f).to_path_buf())
        .collect();
    // Relative paths, compiled in the musl tree: nothing of the build path gets in.
    logged(
        Command::new("musl-gcc")
            .args(CRYPT_CFLAGS)
            .args([
                "-Isrc/include",
                "-Isrc/internal",
                "-Iarch/x86_64",
                "-Iarch/generic",
                "-c",
            ])
            .args(&rel)
            .current_dir(musl),
        &format!("musl crypt: {} files of src/crypt", rel.len()),
        &logs.join("musl-crypt.log"),
        opts.verbose,
    )?;
    let objects: Vec<String> = rel
        .iter()
        .filter_map(|r| r.file_stem())
        .map(|s| format!("{}.o", s.to_string_lossy()))
        .collect();
    crate::util::run(
        Command::new("ar")
            .arg("rcD")
            .arg(out.join("libcrypt.a"))
            .args(&objects)
            .current_dir(musl),
    )?;
    fs::copy(musl.join("include/crypt.h"), out.join("crypt.h"))?;
    Ok(())
}

/// OpenSSL's Configure arguments: libcrypto only, static, everything loadable off. The
/// kernel headers are named relative to the tree (`keel-kernel-headers`), because the flags
/// are stamped into libcrypto (`OpenSSL_version(OPENSSL_CFLAGS)`).
fn libcrypto_configure() -> Vec<String> {
    [
        "linux-x86_64",
        "no-shared",
        "no-module",
        "no-engine",
        "no-dso",
        "no-tests",
        "no-async",
        "no-afalgeng",
        "no-legacy",
        "no-ui-console",
        "no-autoload-config",
        "no-comp",
        // Algorithms and formats OpenSSH 9.2's sshd never asks libcrypto for (its own
        // chacha20-poly1305 takes only chacha20 from libcrypto; poly1305, ed25519,
        // curve25519 and sntrup761 are OpenSSH's own). The default provider's tables
        // name every algorithm built, so each one left in is linked (docs/ssh.md).
        "no-aria",
        "no-bf",
        "no-blake2",
        "no-camellia",
        "no-cast",
        "no-cmac",
        "no-cmp",
        "no-cms",
        "no-ct",
        "no-des",
        "no-ec2m",
        "no-filenames",
        "no-idea",
        "no-md4",
        "no-mdc2",
        "no-ocb",
        "no-ocsp",
        "no-poly1305",
        "no-rc2",
        "no-rc4",
        "no-rfc3779",
        "no-rmd160",
        "no-scrypt",
        "no-seed",
        "no-siphash",
        "no-siv",
        "no-sm2",
        "no-sm3",
        "no-sm4",
        "no-srp",
        "no-ts",
        "no-whirlpool",
        // P-256 and P-521 in constant-time 64-bit C (see NISTZ256_EDIT).
        "enable-ec_nistp_64_gcc_128",
        "--prefix=/usr",
        "--openssldir=/etc/ssl",
        "-Os",
        "-ffunction-sections",
        "-fdata-sections",
        "-isystemkeel-kernel-headers",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The file of OpenSSL's tree that picks the x86_64 assembler of the EC code.
const EC_BUILD_INFO: &str = "crypto/ec/build.info";

/// keel's one edit of Debian's openssl source: no `ecp_nistz256` on x86_64. Its P-256
/// code carries a 151,552-byte table of precomputed points that no compressor shrinks.
/// P-256 then runs on `ecp_nistp256.c` (`enable-ec_nistp_64_gcc_128`: constant-time
/// 64-bit C, what OpenSSL uses where it has no nistz256 assembler), P-521 on
/// `ecp_nistp521.c`; P-384 stays on the generic code, as before. X25519's assembler stays.
const NISTZ256_EDIT: [(&str, &str); 2] = [
    (
        "$ECASM_x86_64=ecp_nistz256.c ecp_nistz256-x86_64.s x25519-x86_64.s",
        "$ECASM_x86_64=x25519-x86_64.s",
    ),
    (
        "$ECDEF_x86_64=ECP_NISTZ256_ASM X25519_ASM",
        "$ECDEF_x86_64=X25519_ASM",
    ),
];

/// Applies `NISTZ256_EDIT` to `tree`, or says which line a new openssl version changed.
fn drop_nistz256(tree: &Path) -> Result<()> {
    let path = tree.join(EC_BUILD_INFO);
    let mut text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    for (from, to) in NISTZ256_EDIT {
        let hits = text.lines().filter(|l| l.trim() == from).count();
        if hits != 1 {
            bail!(
                "{} has {hits} lines `{from}` (keel's recipe expects exactly one, to turn it \
                 into `{to}`): this openssl version changed its EC build; update NISTZ256_EDIT \
                 in xtask/src/sshd.rs",
                path.display()
            );
        }
        text = text
            .lines()
            .map(|l| {
                if l.trim() == from {
                    format!("  {to}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        text.push('\n');
    }
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)] // One call site; the arguments are the step's inputs.
fn build_libcrypto(
    dsc: &Path,
    version: &str,
    build: &Path,
    headers: &Path,
    dest: &Path,
    recipe: &str,
    logs: &Path,
    opts: &Opts,
) -> Result<()> {
    phase(&format!(
        "libcrypto: building Debian's openssl {version} (crypto only; ~13 min on 2 busy cores)"
    ));
    let tree = unpack(dsc, &build.join("openssl"), logs, opts)?;
    let epoch = changelog_epoch(&tree)?;
    drop_nistz256(&tree)?;
    crate::util::run(
        Command::new("cp")
            .arg("-r")
            .arg(headers)
            .arg(tree.join("keel-kernel-headers")),
    )?;
    let mut configure = build_cmd(&tree, epoch, &["perl", "Configure"]);
    configure.args(libcrypto_configure()).env("CC", "musl-gcc");
    logged(
        &mut configure,
        "libcrypto: Configure",
        &logs.join("openssl-configure.log"),
        opts.verbose,
    )?;
    let mut make = build_cmd(
        &tree,
        epoch,
        &["make", &jobs(), "build_generated", "libcrypto.a"],
    );
    logged(
        &mut make,
        "libcrypto: make libcrypto.a",
        &logs.join("openssl-make.log"),
        opts.verbose,
    )?;
    let partial = dest.with_extension("partial");
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    fs::create_dir_all(partial.join("lib"))?;
    fs::create_dir_all(partial.join("include"))?;
    fs::copy(tree.join("libcrypto.a"), partial.join("lib/libcrypto.a"))?;
    crate::util::run(
        Command::new("cp")
            .arg("-r")
            .arg(tree.join("include/openssl"))
            .arg(partial.join("include/openssl")),
    )?;
    fs::write(partial.join("recipe.txt"), recipe)?;
    if dest.exists() {
        fs::remove_dir_all(dest)?;
    }
    fs::rename(&partial, dest)?;
    phase(&format!(
        "libcrypto: {} ({} bytes)",
        dest.join("lib/libcrypto.a").display(),
        file_len(&dest.join("lib/libcrypto.a")).unwrap_or(0)
    ));
    Ok(())
}

/// OpenSSH's configure arguments for a build in `build` (kernel headers and libcrypt in
/// it), with the libcrypto in `libcrypto` or OpenSSH's own crypto.
fn openssh_configure(build: &Path, version: &str, libcrypto: Option<&Path>) -> Vec<String> {
    let revision = version.rsplit_once('-').map_or("", |(_, r)| r);
    let tree = build.join("openssh");
    let headers = build.join("kernel-headers");
    let crypt = build.join("crypt");
    let mut args: Vec<String> = vec![
        "CC=musl-gcc".into(),
        // Debian's own version suffix, so the banner says which Debian patch level runs.
        format!(
            "CFLAGS=-Os -pipe -ffunction-sections -fdata-sections -ffile-prefix-map={}=. \
             -DSSH_EXTRAVERSION=\\\"Debian-{revision}\\\"",
            tree.display(),
        ),
        format!(
            "CPPFLAGS=-isystem {} -I{}",
            headers.display(),
            crypt.display()
        ),
        format!("LDFLAGS=-static -Wl,--gc-sections -L{}", crypt.display()),
        "LIBS=-lcrypt".into(),
        "--prefix=/usr".into(),
        "--sysconfdir=/etc/ssh".into(),
        "--libexecdir=/usr/lib/openssh".into(),
        format!("--with-privsep-path={PRIVSEP_PATH}"),
        "--with-privsep-user=sshd".into(),
        "--with-pid-dir=/run".into(),
        "--with-zlib=no".into(),
        "--without-pam".into(),
        "--without-selinux".into(),
        "--without-kerberos5".into(),
        "--without-libedit".into(),
        "--with-sandbox=seccomp_filter".into(),
        "--without-pie".into(),
        "--disable-lastlog".into(),
        "--disable-utmp".into(),
        "--disable-utmpx".into(),
        "--disable-wtmp".into(),
        "--disable-wtmpx".into(),
        "--with-default-path=/usr/local/bin:/usr/bin:/bin".into(),
        "--with-superuser-path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        // Debian's rules: always the internal mkdtemp (https://bugs.debian.org/1001186).
        "ac_cv_func_mkdtemp=no".into(),
    ];
    match libcrypto {
        Some(dir) => args.push(format!("--with-ssl-dir={}", dir.display())),
        None => args.push("--without-openssl".into()),
    }
    args
}

/// What configure's summary must say, or the build is not what keel ships.
fn check_summary(log: &Path) -> Result<()> {
    let text = fs::read_to_string(log)?;
    let value = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
    };
    let mut wrong = Vec::new();
    for (label, want) in [
        ("Privsep sandbox style:", "seccomp_filter"),
        ("PAM support:", "no"),
        ("KerberosV support:", "no"),
        ("SELinux support:", "no"),
        ("systemd support:", "no"),
        ("libedit support:", "no"),
        ("Privilege separation chroot path:", PRIVSEP_PATH),
    ] {
        let got = value(label);
        if got.as_deref() != Some(want) {
            wrong.push(format!("`{label}` is {got:?}, must be {want:?}"));
        }
    }
    if !wrong.is_empty() {
        bail!(
            "OpenSSH's configure summary ({}) is not keel's build: {}. For the sandbox: the \
             kernel headers (linux/seccomp.h, linux/filter.h, linux/audit.h, linux/prctl.h) \
             must be visible to musl-gcc",
            log.display(),
            wrong.join("; ")
        );
    }
    Ok(())
}

/// The configure summary, from "OpenSSH has been configured" on.
fn summary(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.find("OpenSSH has been configured")
        .map(|i| text[i..].to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_asks_for_keels_build() {
        let args = openssh_configure(Path::new("/B"), "1:9.2p1-2+deb12u10", None).join(" ");
        for want in [
            "--with-privsep-path=/run/sshd",
            "--with-sandbox=seccomp_filter",
            "--without-pam",
            "--without-kerberos5",
            "--without-selinux",
            "--without-libedit",
            "--with-zlib=no",
            "--without-openssl",
            "-isystem /B/kernel-headers",
            "-ffile-prefix-map=/B/openssh=.",
            "-DSSH_EXTRAVERSION=\\\"Debian-2+deb12u10\\\"",
            "LDFLAGS=-static",
        ] {
            assert!(args.contains(want), "{want} not in {args}");
        }
        let with = openssh_configure(Path::new("/B"), "1:9.2p1-2", Some(Path::new("/L"))).join(" ");
        assert!(with.contains("--with-ssl-dir=/L") && !with.contains("--without-openssl"));
        // The libcrypto flags name nothing absolute: they are stamped into the library.
        assert!(libcrypto_configure().iter().all(|a| !a.contains("/B")));
        assert!(libcrypto_configure().contains(&"no-shared".to_owned()));
    }

    fn summary_with(sandbox: &str) -> String {
        format!(
            "configure: creating ./config.status\nOpenSSH has been configured with the following options:\n\
             \x20 Privilege separation chroot path: /run/sshd\n\
             \x20                      PAM support: no\n\
             \x20                KerberosV support: no\n\
             \x20                  SELinux support: no\n\
             \x20                  libedit support: no\n\
             \x20                  systemd support: no\n\
             \x20            Privsep sandbox style: {sandbox}\n"
        )
    }

    #[test]
    fn a_configure_without_the_seccomp_sandbox_fails_the_build() {
        let dir = std::env::temp_dir().join(format!("keel-sshd-summary-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("configure.log");
        fs::write(&log, summary_with("seccomp_filter")).unwrap();
        check_summary(&log).unwrap();
        assert!(summary(&log).starts_with("OpenSSH has been configured"));
        fs::write(&log, summary_with("rlimit")).unwrap();
        let err = format!("{:#}", check_summary(&log).unwrap_err());
        assert!(
            err.contains("Privsep sandbox style") && err.contains("rlimit"),
            "{err}"
        );
        fs::write(
            &log,
            summary_with("seccomp_filter").replace("PAM support: no", "PAM support: yes"),
        )
        .unwrap();
        assert!(check_summary(&log).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Host tests of the built sshd (`cargo test -p xtask sshd::host -- --ignored`, run by
/// `cargo xtask test`): it builds keel's sshd or takes it from the cache, then checks it is
/// static, accepts the image's sshd_config, and lets Debian's own `ssh` client log in with
/// ed25519, RSA and ECDSA keys on a port of 127.0.0.1.
#[cfg(test)]
mod host {
    use super::*;
    use crate::util::project_root;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// The test server's host keys: (file, `ssh-keygen -t`, `-b`).
    const HOST_KEYS: [(&str, &str, Option<&str>); 5] = [
        ("host_ed25519", "ed25519", None),
        ("host_rsa", "rsa", None),
        ("host_ecdsa256", "ecdsa", Some("256")),
        ("host_ecdsa384", "ecdsa", Some("384")),
        ("host_ecdsa521", "ecdsa", Some("521")),
    ];

    /// Client options that make a login use one libcrypto algorithm (docs/ssh.md, "What it
    /// offers"); a MAC needs a cipher that is not an AEAD.
    const LIBCRYPTO_ALGORITHMS: [&[&str]; 20] = [
        &["KexAlgorithms=ecdh-sha2-nistp256"],
        &["KexAlgorithms=ecdh-sha2-nistp384"],
        &["KexAlgorithms=ecdh-sha2-nistp521"],
        &["KexAlgorithms=diffie-hellman-group-exchange-sha256"],
        &["KexAlgorithms=diffie-hellman-group14-sha256"],
        &["KexAlgorithms=diffie-hellman-group16-sha512"],
        &["KexAlgorithms=diffie-hellman-group18-sha512"],
        &["Ciphers=aes128-ctr"],
        &["Ciphers=aes192-ctr"],
        &["Ciphers=aes256-ctr"],
        &["Ciphers=aes128-gcm@openssh.com"],
        &["Ciphers=aes256-gcm@openssh.com"],
        &["Ciphers=aes128-ctr", "MACs=hmac-sha2-256-etm@openssh.com"],
        &["Ciphers=aes128-ctr", "MACs=hmac-sha2-512"],
        &["Ciphers=aes128-ctr", "MACs=hmac-sha1"],
        &["HostKeyAlgorithms=rsa-sha2-512"],
        &["HostKeyAlgorithms=rsa-sha2-256"],
        &["HostKeyAlgorithms=ecdsa-sha2-nistp256"],
        &["HostKeyAlgorithms=ecdsa-sha2-nistp384"],
        &["HostKeyAlgorithms=ecdsa-sha2-nistp521"],
    ];

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keel-sshd-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn keygen(kind: &str, path: &Path) {
        keygen_bits(kind, None, path);
    }

    fn keygen_bits(kind: &str, bits: Option<&str>, path: &Path) {
        let mut cmd = Command::new("ssh-keygen");
        if let Some(bits) = bits {
            cmd.args(["-b", bits]);
        }
        let out = cmd
            .args(["-q", "-t", kind, "-N", "", "-C", kind, "-f"])
            .arg(path)
            .output()
            .expect("ssh-keygen (apt-get install openssh-client)");
        assert!(out.status.success(), "ssh-keygen -t {kind}: {out:?}");
    }

    /// sshd refuses to start without its privsep directory; as root the test makes it, as
    /// Debian's own sshd does.
    fn privsep_dir() {
        if !Path::new(PRIVSEP_PATH).is_dir() && crate::prereq::is_root() {
            fs::create_dir_all(PRIVSEP_PATH).unwrap();
        }
    }

    #[test]
    #[ignore = "builds keel's sshd (minutes when not cached); run by cargo xtask test"]
    fn sshd_is_static_and_takes_the_image_config() {
        let built = build(&Opts::default()).expect("cargo xtask sshd");
        let info = crate::elf::read(&built.sshd).unwrap();
        assert!(info.interp.is_none(), "PT_INTERP {:?}", info.interp);
        assert!(info.needed.is_empty(), "DT_NEEDED {:?}", info.needed);
        let version = sshd_version(&built.sshd).unwrap();
        assert!(version.starts_with("OpenSSH_9.2, OpenSSL 3."), "{version}");

        privsep_dir();
        let dir = scratch("t");
        let key = dir.join("host_ed25519");
        keygen("ed25519", &key);
        let config = project_root().join("configs/sshd_config");
        let started = Instant::now();
        let out = Command::new(&built.sshd)
            .arg("-t")
            .arg("-f")
            .arg(&config)
            .arg("-h")
            .arg(&key)
            .output()
            .unwrap();
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "sshd -t: {err}");
        assert!(!err.contains("Unsupported option"), "sshd -t warns: {err}");
        eprintln!(
            "sshd -t with the image's sshd_config: {} ms",
            took.as_millis()
        );

        // What it offers: `sshd -T` (the algorithms docs/ssh.md lists).
        let out = Command::new(&built.sshd)
            .arg("-T")
            .arg("-f")
            .arg(&config)
            .arg("-h")
            .arg(&key)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "sshd -T: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_default()
                .to_owned()
        };
        for line in [
            "kexalgorithms",
            "ciphers",
            "macs",
            "hostkeyalgorithms",
            "pubkeyacceptedalgorithms",
        ] {
            eprintln!("{line} {}", field(line));
        }
        let pubkey = field("pubkeyacceptedalgorithms");
        for alg in [
            "ssh-ed25519",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ecdsa-sha2-nistp256",
        ] {
            assert!(pubkey.split(',').any(|a| a == alg), "{alg} not in {pubkey}");
        }
        assert!(field("kexalgorithms").contains("curve25519-sha256"));
        assert_eq!(field("usepam"), "", "a build without PAM has no UsePAM");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    #[ignore = "builds keel's sshd (minutes when not cached); run by cargo xtask test"]
    fn debian_ssh_logs_in_with_ed25519_rsa_and_ecdsa_keys() {
        let built = build(&Opts::default()).expect("cargo xtask sshd");
        privsep_dir();
        let dir = scratch("login");
        // A host key of every kind, so each signature algorithm is tried on the server's
        // side too (libcrypto signs with the RSA and ECDSA ones).
        let mut host_keys = String::new();
        for (name, kind, bits) in HOST_KEYS {
            let path = dir.join(name);
            keygen_bits(kind, bits, &path);
            host_keys.push_str(&format!("HostKey {}\n", path.display()));
        }
        let mut authorized = String::new();
        for (name, kind, bits) in [
            ("id_ed25519", "ed25519", None),
            ("id_rsa", "rsa", None),
            ("id_ecdsa", "ecdsa", None),
            ("id_ecdsa384", "ecdsa", Some("384")),
            ("id_ecdsa521", "ecdsa", Some("521")),
        ] {
            keygen_bits(kind, bits, &dir.join(name));
            authorized.push_str(&fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap());
        }
        keygen("ed25519", &dir.join("id_stranger"));
        fs::write(dir.join("authorized_keys"), authorized).unwrap();
        let user = if crate::prereq::is_root() {
            "root".to_owned()
        } else {
            std::env::var("USER").expect("USER")
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\n{host_keys}PidFile none\n\
                 AuthorizedKeysFile {}\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n",
                dir.join("authorized_keys").display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("sshd.log")).unwrap();
        let mut sshd = Command::new(&built.sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on 127.0.0.1:{port}: {}",
                fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // The banner carries Debian's revision, as Debian's own sshd's does.
        let mut banner = String::new();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stream), &mut banner).unwrap();
        assert!(
            banner.starts_with("SSH-2.0-OpenSSH_9.2p1 Debian-"),
            "{banner:?}"
        );
        // Debian's client with its default configuration: no algorithm options.
        let login_with = |key: &str, options: &[&str]| {
            Command::new("ssh")
                .args(["-p", &port.to_string(), "-i"])
                .arg(dir.join(key))
                .args(options.iter().flat_map(|o| ["-o", o]))
                .args([
                    "-o",
                    "IdentitiesOnly=yes",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "LogLevel=ERROR",
                ])
                .arg(format!("{user}@127.0.0.1"))
                .arg("echo logged in with $((6*7))")
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };
        let login = |key: &str| login_with(key, &[]);
        let mut failures = Vec::new();
        let mut check = |what: &str, out: std::process::Output| {
            let said = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || said != "logged in with 42\n" {
                failures.push(format!(
                    "{what}: {} {said:?} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        };
        for key in ["ed25519", "rsa", "ecdsa", "ecdsa384", "ecdsa521"] {
            check(key, login(&format!("id_{key}")));
        }
        // Everything sshd offers that libcrypto computes, one at a time (the default
        // choices above are OpenSSH's own sntrup761x25519, chacha20-poly1305 and
        // ed25519), so a libcrypto built without something sshd needs fails here.
        for options in LIBCRYPTO_ALGORITHMS {
            check(&options.join(" "), login_with("id_ed25519", options));
        }
        // A key that is not authorized is refused: the logins above prove something.
        let stranger = login("id_stranger");
        let _ = sshd.kill();
        let _ = sshd.wait();
        let sshd_log = fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
        assert!(failures.is_empty(), "{failures:#?}\nsshd said:\n{sshd_log}");
        assert_eq!(stranger.status.code(), Some(255), "{stranger:?}");
        assert!(
            String::from_utf8_lossy(&stranger.stderr).contains("Permission denied"),
            "{stranger:?}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
