//! `cargo xtask image`: builds keel and packs the initramfs.
//!
//! Output in `target/keel/` (or `--out DIR`): `initramfs.cpio` (uncompressed, for
//! CONFIG_INITRAMFS_SOURCE), `initramfs.cpio.gz` (for `-initrd`), `manifest.txt` (one line
//! per entry: mode, size, sha256, path) and `kernel.release` (the host kernel whose
//! modules were packed).
//!
//! The image is collected into an in-memory tree and written in one pass, sorted by path,
//! so two builds of the same tree on the same machine give identical bytes. This module
//! must not write outside the output directory and must not run the programs it packs
//! except keel's own busybox's `--list-full`.

use crate::util::{hex, out_dir, project_root, run as run_cmd, source_date_epoch, write_atomic};
use crate::{elf, prereq};
use anyhow::{Context, Result, bail};
use keel::modules::{ModDb, name_of_path};
use newc::{self as cpio, Kind};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask image [options]

Builds keel for x86_64-unknown-linux-musl and writes initramfs.cpio, initramfs.cpio.gz,
manifest.txt and kernel.release to target/keel/.

options:
  --ssh-key FILE              authorize the public keys in FILE for root (repeatable)
  --config FILE               appliance config to install (default configs/appliance.toml)
  --root-password-hash HASH   crypt(3) hash for root in /etc/shadow (default: locked, `*`;
                              make one with `openssl passwd -6`)
  --root-password             ask for root's password (no echo, twice) and store its
                              SHA-512 crypt hash ($6$, which busybox login checks)
  --kernel-release REL        pack modules of this release (default: the newest kernel
                              with both /boot/vmlinuz-REL and /lib/modules/REL)
  --keel FILE                 pack this keel binary instead of building one
  --out DIR                   write the artefacts to DIR instead of target/keel
  -h, --help                  this text

SOURCE_DATE_EPOCH, when set, is the mtime of every entry; otherwise the last commit's time.";

/// Every program in the image is keel's own static build: keel, and sshd, busybox and
/// dhclient from Debian's source packages (`cargo xtask sshd`, `busybox`, `dhclient`). So
/// the image has no shared library and no dynamic loader; keel makes the host keys itself,
/// so ssh-keygen is not packed (nothing in the image runs it). A program packed from the
/// host would need its ELF closure (`Tree::add_host` with `elf::closure_by_user`, as the
/// bench's baseline does) and whatever it dlopens (NSS modules, plugins), which ELF headers
/// do not show.
///
/// Where keel's dhclient goes, and what runs it (`netcfg::client::DHCLIENT`).
const DHCLIENT: (&str, &str) = (
    "sbin/dhclient",
    "keel network (the network service, configs/appliance.toml)",
);

/// Where keel's busybox goes, and what runs it.
const BUSYBOX: (&str, &str) = (
    "bin/busybox",
    "the console shell, keel's services' helpers and the tests' commands",
);

/// Where keel's sshd goes, and what runs it.
const SSHD: (&str, &str) = (
    "usr/sbin/sshd",
    "keel sshd (the sshd service, configs/appliance.toml)",
);

/// Busybox applets that keel provides or that must not exist (`init`, `linuxrc`).
const SKIP_APPLETS: &[&str] = &["init", "linuxrc", "poweroff", "reboot", "halt"];

/// keel's multi-call names, all symlinks to /init.
const KEEL_LINKS: &[&str] = &["keel", "keelctl", "poweroff", "reboot", "halt", "dhcp-hook"];

/// The directories every image has, with their permissions.
const DIRS: &[(&str, u32)] = &[
    // The root directory itself: the kernel applies this mode to the rootfs (a tmpfs whose
    // root is 1777 otherwise), and sshd refuses keys under a world-writable `/`, such as
    // the state disk's /var/lib/keel/root/.ssh/authorized_keys.
    (".", 0o755),
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("etc/keel", 0o755),
    ("etc/ssh", 0o755),
    ("lib", 0o755),
    ("mnt", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("root/.ssh", 0o700),
    ("run", 0o755),
    ("sbin", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("var", 0o755),
    ("var/empty", 0o755),
    ("var/lib", 0o755),
    ("var/lib/dhcp", 0o755),
    ("var/lib/keel", 0o700),
    ("var/log", 0o755),
];

/// Options of `cargo xtask image`.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub ssh_keys: Vec<PathBuf>,
    pub config: PathBuf,
    pub root_password_hash: Option<String>,
    pub kernel_release: Option<String>,
    pub keel: Option<PathBuf>,
    pub out: PathBuf,
}

impl Options {
    fn parse(args: Vec<String>) -> Result<Option<Options>> {
        let mut o = Options {
            ssh_keys: Vec::new(),
            config: project_root().join("configs/appliance.toml"),
            root_password_hash: None,
            kernel_release: None,
            keel: None,
            out: out_dir(),
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
            };
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "--ssh-key" => o.ssh_keys.push(value("--ssh-key")?.into()),
                "--config" => o.config = value("--config")?.into(),
                "--root-password-hash" => {
                    o.root_password_hash = Some(value("--root-password-hash")?);
                }
                "--root-password" => o.root_password_hash = Some(ask_root_password()?),
                "--kernel-release" => o.kernel_release = Some(value("--kernel-release")?),
                "--keel" => o.keel = Some(value("--keel")?.into()),
                "--out" => o.out = value("--out")?.into(),
                other => bail!("unknown option {other:?}\n\n{USAGE}"),
            }
        }
        Ok(Some(o))
    }
}

pub(crate) fn run(args: Vec<String>) -> Result<()> {
    let Some(opts) = Options::parse(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    build(&opts).map(|_| ())
}

/// What a build produced, for the summary and for tests.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub cpio: PathBuf,
    pub gz: PathBuf,
}

/// Builds the image described by `opts`.
pub(crate) fn build(opts: &Options) -> Result<Built> {
    let mut step = Steps::default();
    step.say("checking prerequisites");
    // `Need` holds static strings; xtask is a short-lived host tool, so leaking one is fine.
    let vmlinuz: &'static str = Box::leak(newest_vmlinuz_probe().into_boxed_str());
    prereq::ensure(&[
        prereq::need(vmlinuz, "linux-image-amd64"),
        prereq::need("cpio", "cpio"),
    ])?;

    step.say("reading the appliance config");
    let config_text = std::fs::read_to_string(&opts.config)
        .with_context(|| format!("cannot read the appliance config {}", opts.config.display()))?;
    let shown = opts.config.display().to_string();
    // The same report as `keel check --graph`, so the builder sees the boot it will get.
    let report = keel::applets::keel::CheckOpts {
        verbose: true,
        graph: Some(keel::applets::keel::GraphStyle::Text),
    };
    let (lines, ok) = keel::applets::keel::check_report(&config_text, &shown, report);
    for l in &lines {
        eprintln!("{l}");
    }
    if !ok {
        bail!(
            "{shown}: {} problem(s) in the appliance config; fix them and run again \
             (keel check {shown} says the same)",
            lines.len()
        );
    }
    let config = appliance::parse(&config_text, &shown).map_err(|d| {
        anyhow::anyhow!("{shown}: the config checked ok but did not parse again: {d:?}")
    })?;

    let keel_bin = match &opts.keel {
        Some(path) => path.clone(),
        None => {
            step.say(
                "building keel (cargo build --release -p keel --target x86_64-unknown-linux-musl)",
            );
            prereq::ensure_musl_target()?;
            build_keel()?
        }
    };
    let keel_data = std::fs::read(&keel_bin)
        .with_context(|| format!("cannot read the keel binary {}", keel_bin.display()))?;
    if !elf::is_static(&keel_bin)? {
        bail!(
            "{} is dynamically linked (it has PT_INTERP or DT_NEEDED); keel must be static for \
             musl, check its dependencies for C libraries",
            keel_bin.display()
        );
    }

    let mut tree = Tree::default();
    for (dir, perm) in DIRS {
        tree.dir(dir, *perm)?;
    }
    tree.insert("init", 0o755, Kind::File(keel_data.clone()))?;
    tree.because("init", "the kernel (PID 1: keel)");
    for name in KEEL_LINKS {
        let link = format!("sbin/{name}");
        tree.insert(&link, 0o777, Kind::Symlink("/init".into()))?;
        tree.because(
            &link,
            "keel's applets (configs/appliance.toml, the console)",
        );
    }
    tree.insert("dev/console", 0o600, Kind::CharDev { major: 5, minor: 1 })?;
    tree.insert("dev/null", 0o666, Kind::CharDev { major: 1, minor: 3 })?;
    tree.because("dev/console", "PID 1's stdio before devtmpfs");
    tree.because("dev/null", "PID 1's stdio before devtmpfs");
    tree.insert("var/run", 0o777, Kind::Symlink("/run".into()))?;
    tree.because(
        "var/run",
        "programs that write /var/run (dhclient's default pid file /var/run/dhclient.pid, \
         when it is run by hand without keel network's --no-pid)",
    );

    step.say("building keel's sshd (cargo xtask sshd; cached)");
    let sshd = crate::sshd::build(&crate::sshd::Opts::default())?;
    let sshd_data = std::fs::read(&sshd.sshd)
        .with_context(|| format!("cannot read {}", sshd.sshd.display()))?;
    tree.insert(SSHD.0, 0o755, Kind::File(sshd_data))?;
    tree.because(SSHD.0, &format!("{} (built from {})", SSHD.1, sshd.sources));

    step.say("building keel's dhclient (cargo xtask dhclient; cached)");
    let dhclient = crate::dhclient::build(&crate::dhclient::Opts::default())?;
    let dhclient_data = std::fs::read(&dhclient.dhclient)
        .with_context(|| format!("cannot read {}", dhclient.dhclient.display()))?;
    tree.insert(DHCLIENT.0, 0o755, Kind::File(dhclient_data))?;
    tree.because(
        DHCLIENT.0,
        &format!("{} (built from {})", DHCLIENT.1, dhclient.source),
    );

    step.say("building keel's busybox (cargo xtask busybox; cached)");
    let busybox = crate::busybox::build(&crate::busybox::Opts::default())?;
    let busybox_data = std::fs::read(&busybox.busybox)
        .with_context(|| format!("cannot read {}", busybox.busybox.display()))?;
    tree.insert(BUSYBOX.0, 0o755, Kind::File(busybox_data))?;
    tree.because(
        BUSYBOX.0,
        &format!("{} (built from {})", BUSYBOX.1, busybox.source),
    );
    let applets = busybox_applets(&busybox.busybox)?;
    let mut linked = 0;
    for applet in &applets {
        let base = applet.rsplit('/').next().unwrap_or(applet);
        if SKIP_APPLETS.contains(&base) || KEEL_LINKS.contains(&base) {
            continue;
        }
        // A real program (sshd, nft...) or a keel link always wins over an applet.
        if tree.entries.contains_key(applet.as_str()) {
            continue;
        }
        tree.insert(applet, 0o777, Kind::Symlink("/bin/busybox".into()))?;
        tree.because(applet, &applet_reason(base));
        linked += 1;
    }
    println!("    {linked} applet links");

    step.say("choosing kernel modules");
    let release = match &opts.kernel_release {
        Some(r) => r.clone(),
        None => newest_kernel_release()?,
    };
    // What the boot loads, and what a service loads when it needs it: both are packed.
    let mut wanted = config.modules.load.clone();
    for r in config
        .modules
        .required
        .iter()
        .chain(&config.modules.on_demand)
    {
        if !wanted.contains(r) {
            wanted.push(r.clone());
        }
    }
    let shipped = add_modules(&mut tree, &release, &wanted, &config.modules.required)?;
    println!("    {shipped} modules of {release}");

    step.say("writing /etc");
    let epoch = source_date_epoch()?;
    add_etc(&mut tree, opts, &config_text)?;
    // keel's clock floor (init/src/boot.rs): a guest clock earlier than this is set to it.
    // The same epoch as every mtime, so the image stays reproducible.
    tree.insert(
        "etc/keel/build-epoch",
        0o644,
        Kind::File(format!("{epoch}\n").into_bytes()),
    )?;
    tree.because("etc/keel/build-epoch", "keel's clock floor at boot");

    step.say("writing the archive");
    let mtime = u32::try_from(epoch)
        .with_context(|| format!("SOURCE_DATE_EPOCH {epoch} does not fit newc's 32-bit mtime"))?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let cpio_path = opts.out.join("initramfs.cpio");
    let gz_path = opts.out.join("initramfs.cpio.gz");
    let manifest_path = opts.out.join("manifest.txt");
    let archive = tree.write_cpio(mtime)?;
    write_atomic(&cpio_path, &archive)?;
    write_atomic(&gz_path, &gzip(&archive)?)?;
    write_atomic(&manifest_path, tree.manifest().as_bytes())?;
    write_atomic(
        &opts.out.join("kernel.release"),
        format!("{release}\n").as_bytes(),
    )?;

    let built = Built {
        cpio: cpio_path,
        gz: gz_path,
    };
    let gz_len = std::fs::metadata(&built.gz)?.len();
    let entries = tree.entries.len();
    println!("\nxtask image: done ({entries} entries, mtime {mtime})");
    let keel_shown = keel_bin.display();
    println!(
        "  keel              {:>10} bytes  {keel_shown}",
        keel_data.len()
    );
    let cpio_shown = built.cpio.display();
    println!(
        "  initramfs.cpio    {:>10} bytes  {cpio_shown}",
        archive.len()
    );
    let gz_shown = built.gz.display();
    println!("  initramfs.cpio.gz {gz_len:>10} bytes  {gz_shown}");
    println!("  manifest          {}", manifest_path.display());
    println!("  kernel.release    {release}");
    println!("  biggest files:");
    for (size, path) in tree.biggest(10) {
        println!("    {size:>10}  /{path}");
    }
    Ok(built)
}

/// Prints numbered progress lines.
#[derive(Default)]
struct Steps(usize);

impl Steps {
    fn say(&mut self, what: &str) {
        self.0 += 1;
        println!("xtask image: [{}] {what}", self.0);
    }
}

/// Builds keel for musl and returns the binary's path.
fn build_keel() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_cmd(Command::new(cargo).current_dir(project_root()).args([
        "build",
        "--release",
        "-p",
        "keel",
        "--target",
        prereq::MUSL,
    ]))?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    Ok(target_dir.join(prereq::MUSL).join("release").join("keel"))
}

/// keel's busybox's applets (`busybox --list-full`, paths relative to /), checked to hold
/// every applet the image needs (`busybox::NEEDED`).
fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let list = crate::busybox::applets(busybox)?;
    let missing = crate::busybox::missing(&list);
    if !missing.is_empty() {
        bail!(
            "{} lacks applet(s) the image needs: {} (turn them on in {})",
            busybox.display(),
            missing.join(", "),
            crate::busybox::CONFIG
        );
    }
    Ok(list)
}

/// What the manifest says needs an applet link: the users `busybox::NEEDED` names, or the
/// console's toolset (`configs/busybox.config` says why each group is there).
fn applet_reason(applet: &str) -> String {
    match crate::busybox::NEEDED.iter().find(|(n, _)| *n == applet) {
        Some((_, why)) => format!("busybox applet: {why}"),
        None => format!(
            "busybox applet: the console's toolset ({})",
            crate::busybox::CONFIG
        ),
    }
}

/// A path that exists when a Debian kernel is installed, for `prereq::ensure`.
fn newest_vmlinuz_probe() -> String {
    match newest_kernel_release() {
        Ok(r) => format!("/boot/vmlinuz-{r}"),
        Err(_) => "/boot/vmlinuz".into(),
    }
}

/// The newest release with both `/boot/vmlinuz-<release>` and a modules.dep.
fn newest_kernel_release() -> Result<String> {
    let mut releases: Vec<String> = std::fs::read_dir("/boot")
        .context("cannot list /boot")?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("vmlinuz-"))
                .map(str::to_string)
        })
        .filter(|r| {
            Path::new("/lib/modules")
                .join(r)
                .join("modules.dep")
                .is_file()
        })
        .collect();
    releases.sort_by_key(|r| version_key(r));
    releases.pop().context(
        "no kernel with both /boot/vmlinuz-<release> and /lib/modules/<release>/modules.dep; \
         apt-get install linux-image-amd64",
    )
}

/// Orders `6.1.0-10-amd64` before `6.1.0-56-amd64`: digit runs compare as numbers.
fn version_key(s: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let mut num = String::new();
        while let Some(c) = chars.next_if(char::is_ascii_digit) {
            num.push(c);
        }
        let mut text = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_ascii_digit()) {
            text.push(c);
        }
        key.push((num.parse().unwrap_or(0), text));
    }
    key
}

/// Packs the modules `wanted` needs from `/lib/modules/<release>/`, with a modules.dep,
/// modules.softdep and modules.alias filtered to what is shipped and the kernel's
/// modules.builtin copied whole (so PID 1 can tell "built in" from "missing"). Returns how
/// many modules were packed.
fn add_modules(
    tree: &mut Tree,
    release: &str,
    wanted: &[String],
    required: &[String],
) -> Result<usize> {
    let base = Path::new("/lib/modules").join(release);
    let read = |name: &str| -> Result<String> {
        let p = base.join(name);
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != "modules.dep" => {
                Ok(String::new())
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    };
    let dep = read("modules.dep")?;
    let softdep = read("modules.softdep")?;
    let alias = read("modules.alias")?;
    let builtin = read("modules.builtin")?;
    let db = ModDb::parse(&dep, &softdep, &alias, &builtin);
    let plan = db.plan(wanted);
    for name in &plan.missing {
        if required.contains(name) {
            bail!(
                "[modules].required names {name:?}, which kernel {release} has neither as a \
                 module nor built in (see {}/modules.dep); fix the name in the appliance config",
                base.display()
            );
        }
        eprintln!(
            "xtask image: warning: [modules].load names {name:?}, which kernel {release} has \
             neither as a module nor built in; keel will report it missing at boot"
        );
    }
    if !plan.builtin.is_empty() {
        println!("    built into {release}: {}", plan.builtin.join(", "));
    }

    let dir = format!("lib/modules/{release}");
    let mut shipped: BTreeMap<String, String> = BTreeMap::new();
    for m in &plan.load {
        let src = base.join(&m.path);
        let data =
            std::fs::read(&src).with_context(|| format!("cannot read module {}", src.display()))?;
        let path = format!("{dir}/{}", m.path);
        tree.insert(&path, 0o644, Kind::File(data))?;
        tree.because(
            &path,
            "keel's module loader ([modules] in configs/appliance.toml, or modules.dep of one)",
        );
        shipped.insert(m.name.clone(), m.path.clone());
    }

    // modules.dep: the original line of each shipped module; depmod's lines are closed
    // under dependencies, so every module they name is shipped too.
    let mut dep_out = String::new();
    for line in dep.lines() {
        let Some((path, deps)) = line.split_once(':') else {
            continue;
        };
        if !shipped.contains_key(&name_of_path(path.trim())) {
            continue;
        }
        for d in deps.split_whitespace() {
            if !shipped.contains_key(&name_of_path(d)) {
                bail!(
                    "{}: {path} needs {d}, which the plan left out",
                    base.display()
                );
            }
        }
        dep_out.push_str(line);
        dep_out.push('\n');
    }
    let keep = |line: &str, word: usize| {
        line.split_whitespace()
            .nth(word)
            .is_some_and(|m| shipped.contains_key(&keel::modules::normalize(m)))
    };
    let softdep_out: String = softdep
        .lines()
        .filter(|l| l.starts_with("softdep ") && keep(l, 1))
        .map(|l| format!("{l}\n"))
        .collect();
    let alias_out: String = alias
        .lines()
        .filter(|l| l.starts_with("alias ") && keep(l, 2))
        .map(|l| format!("{l}\n"))
        .collect();
    tree.insert(
        &format!("{dir}/modules.dep"),
        0o644,
        Kind::File(dep_out.into_bytes()),
    )?;
    tree.insert(
        &format!("{dir}/modules.softdep"),
        0o644,
        Kind::File(softdep_out.into_bytes()),
    )?;
    tree.insert(
        &format!("{dir}/modules.alias"),
        0o644,
        Kind::File(alias_out.into_bytes()),
    )?;
    tree.insert(
        &format!("{dir}/modules.builtin"),
        0o644,
        Kind::File(builtin.into_bytes()),
    )?;
    for f in ["dep", "softdep", "alias", "builtin"] {
        tree.because(
            &format!("{dir}/modules.{f}"),
            "keel's module loader (load order, aliases, built-ins)",
        );
    }
    Ok(shipped.len())
}

/// /etc: the static templates in configs/etc/, then the generated files.
fn add_etc(tree: &mut Tree, opts: &Options, config_text: &str) -> Result<()> {
    let templates = project_root().join("configs/etc");
    let mut files = Vec::new();
    list_files(&templates, &mut files)?;
    files.sort();
    for file in files {
        let rel = file
            .strip_prefix(&templates)
            .context("template outside configs/etc")?
            .to_string_lossy()
            .into_owned();
        let data =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let path = format!("etc/{rel}");
        tree.insert(&path, 0o644, Kind::File(data))?;
        tree.because(&path, etc_user(&rel));
    }

    let hash = opts.root_password_hash.as_deref().unwrap_or("*");
    if hash.is_empty() || hash.contains([':', '\n']) {
        bail!(
            "--root-password-hash {hash:?}: a crypt(3) hash has no ':' or newline and is not \
             empty; make one with `openssl passwd -6`"
        );
    }
    // `*` locks password login without locking the account: sshd (UsePAM no) treats only a
    // hash starting with `!` as a locked account and would then refuse keys too.
    let shadow =
        format!("root:{hash}::0:99999:7:::\nsshd:*::0:99999:7:::\nnobody:*::0:99999:7:::\n");
    tree.insert("etc/shadow", 0o600, Kind::File(shadow.into_bytes()))?;
    tree.because("etc/shadow", "sshd (password_login) and busybox login");

    let sshd_config = project_root().join("configs/sshd_config");
    let data = std::fs::read(&sshd_config)
        .with_context(|| format!("cannot read {}", sshd_config.display()))?;
    tree.insert("etc/ssh/sshd_config", 0o644, Kind::File(data))?;
    tree.because("etc/ssh/sshd_config", "sshd");
    tree.insert(
        "etc/keel/appliance.toml",
        0o644,
        Kind::File(config_text.as_bytes().to_vec()),
    )?;
    tree.because("etc/keel/appliance.toml", "keel (PID 1)");

    if !opts.ssh_keys.is_empty() {
        let mut keys = String::new();
        for file in &opts.ssh_keys {
            keys.push_str(&read_public_keys(file)?);
        }
        tree.insert(
            "root/.ssh/authorized_keys",
            0o600,
            Kind::File(keys.into_bytes()),
        )?;
        tree.because("root/.ssh/authorized_keys", "sshd (--ssh-key)");
    }
    Ok(())
}

/// Who reads a template of configs/etc/.
fn etc_user(rel: &str) -> &'static str {
    match rel {
        "passwd" | "group" => "sshd (users, the privsep user sshd), busybox login and ls",
        "shells" => "sshd (root's login shell must be listed)",
        "hosts" => "musl's getaddrinfo (localhost, for busybox's applets and sshd)",
        "services" => "musl's getservbyname (busybox's netstat and nc, dhclient)",
        _ if rel.starts_with("dhcp") => "dhclient",
        _ => "configs/etc (no known reader: check it is needed)",
    }
}

/// Asks for root's password on the terminal and returns its SHA-512 crypt hash.
///
/// `openssl passwd -6` prompts twice on /dev/tty without echo and prints the hash; busybox
/// login and passwd accept `$6$` hashes (checked: `busybox mkpasswd -m sha512` gives the
/// same string for the same salt). The password never touches argv or a file.
fn ask_root_password() -> Result<String> {
    prereq::ensure(&[prereq::need("/usr/bin/openssl", "openssl")])?;
    eprintln!("xtask image: root's password for the console login (asked twice, not shown)");
    let out = Command::new("openssl")
        .args(["passwd", "-6"])
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run openssl passwd -6")?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !hash.starts_with("$6$") {
        bail!(
            "--root-password: openssl passwd -6 did not give a hash (did the two entries differ?)"
        );
    }
    Ok(hash)
}

/// Reads an authorized_keys-style file, refusing what is plainly not a public key.
fn read_public_keys(file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--ssh-key {}: cannot read it", file.display()))?;
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains("PRIVATE KEY") {
            bail!(
                "--ssh-key {}: line {} is a private key; give the .pub file",
                file.display(),
                i + 1
            );
        }
        let is_key = line
            .split_whitespace()
            .any(|w| w.starts_with("ssh-") || w.starts_with("ecdsa-sha2-") || w.starts_with("sk-"));
        if !is_key {
            bail!(
                "--ssh-key {}: line {} is not an OpenSSH public key (expected `ssh-ed25519 AAAA... comment`)",
                file.display(),
                i + 1
            );
        }
        out.push_str(line);
        out.push('\n');
    }
    if out.is_empty() {
        bail!("--ssh-key {}: no public key in it", file.display());
    }
    Ok(out)
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            list_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// gzip with no name and mtime 0 in the header, so the output depends only on the input.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

/// The image as a sorted map of relative paths to entries.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub entries: BTreeMap<String, (u32, Kind)>,
    /// For the manifest: which program or config needs the entry.
    pub needed_by: BTreeMap<String, String>,
}

impl Tree {
    /// Records what needs `path` (shown in the manifest); a second reason is added.
    pub(crate) fn because(&mut self, path: &str, why: &str) {
        let entry = self.needed_by.entry(path.to_owned()).or_default();
        if entry.split("; ").any(|w| w == why) {
            return;
        }
        if !entry.is_empty() {
            entry.push_str("; ");
        }
        entry.push_str(why);
    }

    /// Adds a directory and its parents.
    pub(crate) fn dir(&mut self, path: &str, perm: u32) -> Result<()> {
        self.parents(path)?;
        match self.entries.get(path) {
            Some((_, Kind::Dir)) => Ok(()),
            Some(_) => bail!("image: /{path} is already a file, cannot make it a directory"),
            None => {
                self.entries.insert(path.to_string(), (perm, Kind::Dir));
                Ok(())
            }
        }
    }

    /// Adds an entry (and 0755 parents). The same path twice must mean the same thing.
    pub(crate) fn insert(&mut self, path: &str, perm: u32, kind: Kind) -> Result<()> {
        self.parents(path)?;
        if let Some((p, k)) = self.entries.get(path) {
            if *p == perm && *k == kind {
                return Ok(());
            }
            bail!("image: /{path} is added twice with different contents");
        }
        self.entries.insert(path.to_string(), (perm, kind));
        Ok(())
    }

    fn parents(&mut self, path: &str) -> Result<()> {
        let mut at = 0;
        while let Some(i) = path.get(at..).and_then(|s| s.find('/')) {
            let parent = &path[..at + i];
            match self.entries.get(parent) {
                Some((_, Kind::Dir)) => {}
                Some(_) => bail!("image: /{parent} is not a directory, cannot add /{path}"),
                None => {
                    self.entries.insert(parent.to_string(), (0o755, Kind::Dir));
                }
            }
            at += i + 1;
        }
        Ok(())
    }

    /// Copies the host file at the absolute `path` to the same path in the image. A
    /// symlink is recreated as it is and its target added too; directories along the way
    /// stay real directories in the image (Debian's /lib -> usr/lib is not copied).
    pub(crate) fn add_host(&mut self, path: &Path, why: &str) -> Result<()> {
        let mut path = normalize(path)?;
        for _ in 0..16 {
            let rel = path
                .strip_prefix("/")
                .with_context(|| format!("{} is not absolute", path.display()))?
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("cannot stat {}", path.display()))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)?;
                let target_str = target.to_string_lossy().into_owned();
                self.insert(&rel, 0o777, Kind::Symlink(target_str))?;
                self.because(&rel, why);
                let parent = path.parent().unwrap_or(Path::new("/"));
                path = normalize(&parent.join(&target))?;
                continue;
            }
            if !meta.is_file() {
                bail!("{} is not a regular file or symlink", path.display());
            }
            use std::os::unix::fs::PermissionsExt;
            let perm = meta.permissions().mode() & 0o7777;
            let data =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            self.insert(&rel, perm, Kind::File(data))?;
            self.because(&rel, why);
            return Ok(());
        }
        bail!("{}: too many levels of symlinks", path.display())
    }

    /// Writes the archive: entries in path order, which puts parents before children.
    pub(crate) fn write_cpio(&self, mtime: u32) -> Result<Vec<u8>> {
        let mut w = cpio::Writer::new(Vec::new(), mtime);
        for (path, (perm, kind)) in &self.entries {
            w.entry(path, *perm, kind)?;
        }
        Ok(w.finish()?)
    }

    /// One line per entry: mode (octal), size, sha256 or `-`, path, and for files and
    /// links what needs them (`# needed by ...`).
    pub(crate) fn manifest(&self) -> String {
        let mut out = String::from(
            "# mode size sha256 path [# needed by: program or config] (generated by cargo xtask image)\n",
        );
        for (path, (perm, kind)) in &self.entries {
            let mode = kind.type_bits() | perm;
            let data = kind.data();
            let sha = match kind {
                Kind::File(d) => hex(&Sha256::digest(d)),
                _ => "-".into(),
            };
            let extra = match kind {
                Kind::Symlink(t) => format!(" -> {t}"),
                Kind::CharDev { major, minor } => format!(" (char {major}:{minor})"),
                _ => String::new(),
            };
            let why = self
                .needed_by
                .get(path)
                .map(|w| format!("  # needed by: {w}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "{mode:06o} {} {sha} /{path}{extra}{why}\n",
                data.len()
            ));
        }
        out
    }

    /// The `n` biggest files, biggest first.
    pub(crate) fn biggest(&self, n: usize) -> Vec<(usize, String)> {
        let mut files: Vec<(usize, String)> = self
            .entries
            .iter()
            .filter(|(_, (_, k))| matches!(k, Kind::File(_)))
            .map(|(p, (_, k))| (k.data().len(), p.clone()))
            .collect();
        files.sort_by(|a, b| b.cmp(a));
        files.truncate(n);
        files
    }
}

/// Resolves `.` and `..` lexically; in the image every directory is real, so this is
/// what the kernel will resolve.
fn normalize(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => bail!("{} is not a Unix path", path.display()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhclient_goes_where_keel_network_runs_it_with_its_lease_directory() {
        assert_eq!(format!("/{}", DHCLIENT.0), netcfg::client::DHCLIENT);
        let lease_dir = netcfg::client::LEASE_DIR.trim_start_matches('/');
        assert!(DIRS.iter().any(|(d, _)| *d == lease_dir), "{lease_dir}");
        // dhclient writes no pid file (--no-pid) and keel's dhcp-hook is its script.
        assert!(KEEL_LINKS.contains(&"dhcp-hook"));
        assert_eq!(netcfg::client::HOOK, "/sbin/dhcp-hook");
    }

    #[test]
    fn version_key_orders_numerically() {
        let mut v = vec![
            "6.1.0-56-amd64",
            "6.1.0-9-amd64",
            "5.10.0-30-amd64",
            "6.10.1-1-amd64",
        ];
        v.sort_by_key(|r| version_key(r));
        assert_eq!(
            v,
            [
                "5.10.0-30-amd64",
                "6.1.0-9-amd64",
                "6.1.0-56-amd64",
                "6.10.1-1-amd64"
            ]
        );
    }

    #[test]
    fn tree_adds_parents_and_refuses_conflicts() {
        let mut t = Tree::default();
        t.insert("usr/lib/x/libfoo.so.1", 0o644, Kind::File(b"a".to_vec()))
            .expect("insert");
        assert!(matches!(t.entries.get("usr"), Some((0o755, Kind::Dir))));
        assert!(matches!(
            t.entries.get("usr/lib/x"),
            Some((0o755, Kind::Dir))
        ));
        // The same thing twice is fine; something else at the same path is not.
        t.insert("usr/lib/x/libfoo.so.1", 0o644, Kind::File(b"a".to_vec()))
            .expect("same again");
        assert!(
            t.insert("usr/lib/x/libfoo.so.1", 0o644, Kind::File(b"b".to_vec()))
                .is_err()
        );
        assert!(
            t.insert("usr/lib/x/libfoo.so.1/child", 0o644, Kind::Dir)
                .is_err()
        );
        // Sorted paths put each parent before its children.
        let order: Vec<&String> = t.entries.keys().collect();
        assert_eq!(
            order,
            ["usr", "usr/lib", "usr/lib/x", "usr/lib/x/libfoo.so.1"]
        );
    }

    #[test]
    fn host_symlink_chains_are_recreated_with_real_directories() {
        let loader = Path::new("/lib64/ld-linux-x86-64.so.2");
        if !loader.exists() {
            // A test that cannot run must not pass under CI.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and this test cannot run: no {}",
                loader.display()
            );
            eprintln!(
                "NOT RUN: no {} (under CI=true this test fails)",
                loader.display()
            );
            return;
        }
        let mut t = Tree::default();
        t.add_host(loader, "a test").expect("add loader");
        // On Debian 12 /lib64/ld-linux-x86-64.so.2 is an absolute symlink into
        // /lib/x86_64-linux-gnu: both ends must be in the image, /lib64 a directory.
        assert!(matches!(t.entries.get("lib64"), Some((_, Kind::Dir))));
        let files = t
            .entries
            .values()
            .filter(|(_, k)| matches!(k, Kind::File(_)))
            .count();
        assert_eq!(files, 1, "{:?}", t.entries.keys().collect::<Vec<_>>());
    }

    #[test]
    fn manifest_lists_mode_size_hash_and_path() {
        let mut t = Tree::default();
        t.insert("etc/hostname", 0o644, Kind::File(b"keel\n".to_vec()))
            .expect("insert");
        t.insert("dev/null", 0o666, Kind::CharDev { major: 1, minor: 3 })
            .expect("insert");
        t.insert("sbin/reboot", 0o777, Kind::Symlink("/init".into()))
            .expect("insert");
        let m = t.manifest();
        let line = m
            .lines()
            .find(|l| l.ends_with("/etc/hostname"))
            .expect("hostname line");
        assert_eq!(
            line,
            format!("100644 5 {} /etc/hostname", hex(&Sha256::digest(b"keel\n")))
        );
        assert!(m.contains("020666 0 - /dev/null (char 1:3)\n"), "{m}");
        assert!(m.contains("120777 5 - /sbin/reboot -> /init\n"), "{m}");
        assert!(m.contains("040755 0 - /etc\n"), "{m}");
        t.because("sbin/reboot", "keel");
        t.because("sbin/reboot", "the console");
        t.because("sbin/reboot", "keel");
        assert!(
            t.manifest()
                .contains("120777 5 - /sbin/reboot -> /init  # needed by: keel; the console\n"),
            "{}",
            t.manifest()
        );
    }

    #[test]
    fn public_keys_are_checked() {
        let dir = std::env::temp_dir().join(format!("keel-image-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let good = dir.join("good.pub");
        std::fs::write(
            &good,
            "# mine\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA me@host\n",
        )
        .expect("write");
        let bad = dir.join("bad");
        std::fs::write(&bad, "-----BEGIN OPENSSH PRIVATE KEY-----\n").expect("write");
        assert_eq!(
            read_public_keys(&good).expect("good key"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA me@host\n"
        );
        let err = read_public_keys(&bad)
            .expect_err("private key refused")
            .to_string();
        assert!(err.contains("private key"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Builds the whole image twice into two directories and compares the bytes.
    #[test]
    #[ignore = "builds the whole image; run by cargo xtask test"]
    fn image_is_reproducible() {
        let base = std::env::temp_dir().join(format!("keel-repro-{}", std::process::id()));
        let mut shas = Vec::new();
        for n in 0..2 {
            let opts = Options {
                out: base.join(n.to_string()),
                ..Options::parse(Vec::new())
                    .expect("options")
                    .expect("not help")
            };
            let built = build(&opts).expect("image build");
            let sha = |p: &Path| hex(&Sha256::digest(std::fs::read(p).expect("read artefact")));
            shas.push((sha(&built.cpio), sha(&built.gz)));
        }
        assert_eq!(shas[0], shas[1], "two builds differ: {shas:?}");
        // Nothing unused: keel's static sshd and dhclient, no ssh-keygen, no library only
        // Debian's sshd or dhclient needed, no glibc, and every file and link says what
        // needs it.
        let manifest = std::fs::read_to_string(base.join("0/manifest.txt")).expect("manifest");
        for gone in [
            "/usr/bin/ssh-keygen",
            "libcrypto.so",
            "libkrb5",
            "libsystemd",
            "libz.so",
            "libc.so.6",
            "ld-linux",
            "/lib64",
            "nsswitch.conf",
        ] {
            assert!(!manifest.contains(gone), "{gone} is in the image");
        }
        // The line of the entry itself: its fourth field is the path (a link's line names
        // its target after the path, so a substring match could find a link instead).
        let entry = |path: &str| {
            manifest
                .lines()
                .find(|l| l.split_whitespace().nth(3) == Some(path))
                .unwrap_or_else(|| panic!("{path} is not in the manifest"))
        };
        let sshd = entry("/usr/sbin/sshd");
        assert!(sshd.contains("built from openssh "), "{sshd}");
        let dhclient = entry("/sbin/dhclient");
        assert!(dhclient.contains("built from isc-dhcp "), "{dhclient}");
        assert!(
            !manifest.lines().any(|l| l
                .split_whitespace()
                .nth(3)
                .is_some_and(|p| p.ends_with(".so") || p.contains(".so."))),
            "a shared library is in the image"
        );
        // keel's busybox, not Debian's busybox-static, with a link for every applet the image
        // needs and none for the applets it left out.
        let busybox = entry("/bin/busybox");
        assert!(busybox.contains("built from busybox "), "{busybox}");
        for (applet, _) in crate::busybox::NEEDED {
            assert!(
                manifest
                    .lines()
                    .any(|l| l.contains(&format!("/{applet} -> /bin/busybox "))),
                "no link for the needed applet {applet}"
            );
        }
        for left_out in ["/bin/rpm -> ", "/bin/cttyhack -> ", "/sbin/fdisk -> "] {
            assert!(!manifest.contains(left_out), "{left_out} is in the image");
        }
        for line in manifest
            .lines()
            .filter(|l| l.starts_with("10") || l.starts_with("12"))
        {
            assert!(line.contains("  # needed by: "), "no reason: {line}");
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}
