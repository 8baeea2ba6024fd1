//! `cargo xtask bench`: keel side by side with a busybox shell-script init doing the same
//! job (issue 9), and keel's supervisor against runit and s6 on the host.
//!
//! It builds the image (unless `--no-build`), derives the baseline appliance from it
//! (`bench/baseline.rs`), boots the two alternately on the same kernel and QEMU settings
//! (`bench/guest.rs`), runs the host figures (`bench/host.rs`), then prints a table and
//! writes `target/keel/bench.json`. Figures are measured, never asserted: the targets from
//! the issue are marked pass or fail for information, and the command fails only when it
//! cannot measure at all. A figure it could not get is shown missing with the reason.

mod baseline;
mod figure;
mod guest;
mod host;
mod initcalls;
mod report;
mod stats;

use crate::prereq::{self, need};
use crate::util::out_dir;
use anyhow::{Context, Result, bail};
use figure::{Figure, Series, Target, Unit};
use guest::{Init, Plan};
use host::Sup;
use keel_tests::artefacts::Kind;
use report::{Machine, render_json, render_table};
use std::path::{Path, PathBuf};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask bench [--runs N] [--json PATH] [options]

Boots keel's image and a busybox shell-script baseline alternately under QEMU (TCG, same
kernel and settings) and reports median [min-max] of each figure, the ratio keel/baseline,
and the issue's targets; then times keel supervise on the host (10,000 orphans; restart of
a crashing service against runsv and s6-supervise). Writes target/keel/bench.json.

options:
  --runs N        boots per appliance and network mode (default 5)
  --json PATH     where to write the JSON (default target/keel/bench.json)
  --idle SECS     idle window for PID 1's context switches (default 30; 0 skips memory
                  and idle)
  --launches N    launches per supervisor in the restart comparison (default 6)
  --no-build      use the image already in target/keel instead of running `xtask image`
  --only vm|host  run only the guest or only the host figures
  --cpus N        virtual CPUs of each guest (default 1: the smallest cloud guests have
                  one, and then parallel services share it)
  --kernel single|modular
                  single (default): both boot target/keel/bzImage, the firmware users
                  ship, whose drivers are built in; the baseline's /init and files are
                  an initrd unpacked over the built-in initramfs. modular: both boot the
                  Debian kernel with their own initramfs and load the same modules.
  --initcalls     only boot the bzImage (target/keel/bzImage, or --bzimage FILE) with
                  initcall_debug under TCG until `Run /init` and list where the kernel's
                  time goes: the longest initcalls, the wait for the initramfs unpack;
                  then, over --runs boots each, QEMU start to /init on the host clock and
                  the time before the kernel's clock (loading and decompressing the image)
  --bzimage FILE  the kernel --initcalls boots; give it more than once to compare images
                  (payload compressions), booted in turn
  -h, --help      this text

The figures and how each is taken: docs/performance.md.";

/// Targets from issues 9 and 13.
const INIT_RATIO_TARGET: f64 = 0.35;
/// keel against the floor (bench/baseline/floor.sh), init exec to sshd ready.
const FLOOR_RATIO_TARGET: f64 = 1.10;
/// The single bzImage and the uncompressed initramfs (issue 13): 6 MiB and 8 MiB.
const BZIMAGE_TARGET_BYTES: f64 = 6.0 * 1_048_576.0;
const INITRAMFS_TARGET_BYTES: f64 = 8.0 * 1_048_576.0;
/// 1.5 MiB, in the unit of each figure.
const RSS_TARGET_KB: f64 = 1536.0;
const SIZE_TARGET_BYTES: f64 = 1_572_864.0;

#[derive(Debug, Clone)]
struct Opts {
    runs: usize,
    json: PathBuf,
    idle: u64,
    launches: usize,
    build: bool,
    vm: bool,
    host: bool,
    kernel: Kind,
    cpus: u32,
    initcalls: bool,
    bzimage: Vec<PathBuf>,
}

fn parse(args: Vec<String>) -> Result<Option<Opts>> {
    let mut o = Opts {
        runs: 5,
        json: out_dir().join("bench.json"),
        idle: 30,
        launches: 6,
        build: true,
        vm: true,
        host: true,
        kernel: Kind::Single,
        cpus: 1,
        initcalls: false,
        bzimage: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        let number = |name: &str, v: String| -> Result<u64> {
            v.parse()
                .with_context(|| format!("{name} {v:?} is not a whole number"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--runs" => {
                let v = value("--runs")?;
                o.runs = usize::try_from(number("--runs", v)?)?;
                if o.runs == 0 {
                    bail!("--runs 0 measures nothing; give 1 or more");
                }
            }
            "--json" => o.json = value("--json")?.into(),
            "--idle" => {
                let v = value("--idle")?;
                o.idle = number("--idle", v)?;
            }
            "--launches" => {
                let v = value("--launches")?;
                o.launches = usize::try_from(number("--launches", v)?)?;
                if o.launches < 2 {
                    bail!("--launches {} gives no period; give 2 or more", o.launches);
                }
            }
            "--no-build" => o.build = false,
            "--initcalls" => o.initcalls = true,
            "--bzimage" => o.bzimage.push(value("--bzimage")?.into()),
            "--only" => match value("--only")?.as_str() {
                "vm" => o.host = false,
                "host" => o.vm = false,
                other => bail!("--only {other:?}: give vm or host"),
            },
            "--cpus" => {
                let v = value("--cpus")?;
                o.cpus = u32::try_from(number("--cpus", v)?)?;
                if o.cpus == 0 {
                    bail!("--cpus 0: a guest needs at least one CPU");
                }
            }
            "--kernel" => {
                o.kernel = match value("--kernel")?.as_str() {
                    "single" => Kind::Single,
                    "modular" => Kind::Modular,
                    other => bail!("--kernel {other:?}: give single or modular"),
                }
            }
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    Ok(Some(o))
}

/// The unit a figure is in; values are stored in it.
pub(crate) fn run(args: Vec<String>) -> Result<()> {
    let Some(opts) = parse(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    if opts.initcalls {
        prereq::ensure(&[need("qemu-system-x86_64", "qemu-system-x86")])?;
        let images = if opts.bzimage.is_empty() {
            vec![out_dir().join("bzImage")]
        } else {
            opts.bzimage.clone()
        };
        return initcalls::compare(&images, opts.runs, std::time::Duration::from_secs(300));
    }
    let mut needs = vec![
        need("qemu-system-x86_64", "qemu-system-x86"),
        need("ssh", "openssh-client"),
        need("/bin/busybox", "busybox-static"),
        // The baseline's own programs (bench/baseline.rs PROGRAMS), Debian's packages.
        need("/usr/sbin/sshd", "openssh-server"),
        need("/usr/bin/ssh-keygen", "openssh-client"),
        need("/usr/sbin/nft", "nftables"),
        need("/sbin/dhclient", "isc-dhcp-client"),
    ];
    if opts.host {
        needs.push(need("runsv", "runit"));
        needs.push(need("s6-supervise", "s6"));
    }
    prereq::ensure(&needs)?;
    if opts.build {
        say("building the image (cargo xtask image)");
        crate::image::run(Vec::new())?;
    }
    let started = Instant::now();
    let load_before = loadavg();
    let out = out_dir();
    let bench_dir = out.join("bench");
    let release = keel_tests::artefacts::kernel_release(&out)?;
    // A snapshot, so a rebuild of target/keel during the runs cannot change what boots.
    std::fs::create_dir_all(&bench_dir)
        .with_context(|| format!("cannot create {}", bench_dir.display()))?;
    let kernel = match opts.kernel {
        Kind::Modular => keel_tests::artefacts::kernel(Kind::Modular)?,
        Kind::Single => {
            let bz = bench_dir.join("bzImage");
            std::fs::copy(out.join("bzImage"), &bz).with_context(|| {
                format!(
                    "cannot copy {} to {}: run `cargo xtask kernel` first, or bench the \
                     Debian kernel with --kernel modular",
                    out.join("bzImage").display(),
                    bz.display()
                )
            })?;
            bz
        }
    };
    let keel_cpio = bench_dir.join("keel.cpio");
    let keel_gz = bench_dir.join("keel.cpio.gz");
    for (from, to) in [
        ("initramfs.cpio", &keel_cpio),
        ("initramfs.cpio.gz", &keel_gz),
    ] {
        std::fs::copy(out.join(from), to).with_context(|| {
            format!(
                "cannot copy {} to {}: run `cargo xtask image` first",
                out.join(from).display(),
                to.display()
            )
        })?;
    }

    say("building the baseline appliance from keel's image");
    let base = baseline::build(&keel_cpio, &release, &bench_dir, opts.kernel)?;
    println!(
        "    {} ({} modules in its list), {}, {}",
        base.cpio.display(),
        base.modules,
        base.gz.display(),
        base.overlay.display()
    );
    say("building the floor appliance from keel's image");
    let floor = baseline::build_floor(&keel_cpio, &release, &bench_dir, opts.kernel)?;
    println!(
        "    {} ({} modules in its list)",
        floor.cpio.display(),
        floor.modules
    );
    let keel_bin = extract_keel(&keel_cpio, &bench_dir)?;

    let mut figures = sizes(&keel_bin, &keel_cpio, &keel_gz, &base)?;
    let mut notes = Vec::new();
    if opts.vm {
        // The single image carries keel's initramfs; the baseline's files are unpacked
        // over it. The modular kernel gets each appliance's whole initramfs.
        let (keel_initrd, base_initrd, floor_initrd) = match opts.kernel {
            Kind::Single => (None, base.overlay.clone(), floor.overlay.clone()),
            Kind::Modular => (Some(keel_gz.clone()), base.gz.clone(), floor.gz.clone()),
        };
        figures.extend(vm_figures(
            &opts,
            &kernel,
            keel_initrd.as_deref(),
            &base_initrd,
            &floor_initrd,
            &mut notes,
        ));
    }
    if opts.host {
        figures.extend(host_figures(&opts, &keel_bin, &mut notes));
    }

    let machine = Machine::probe(load_before, started.elapsed().as_secs_f64(), &opts, &kernel);
    let table = render_table(&figures, &machine, &notes);
    println!("\n{table}");
    let json = render_json(&figures, &machine, &notes);
    if let Some(parent) = opts.json.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&opts.json, json)
        .with_context(|| format!("cannot write {}", opts.json.display()))?;
    std::fs::write(bench_dir.join("table.txt"), &table)
        .with_context(|| format!("cannot write {}", bench_dir.join("table.txt").display()))?;
    println!(
        "\nxtask bench: wrote {} and {}",
        opts.json.display(),
        bench_dir.join("table.txt").display()
    );
    Ok(())
}

fn say(what: &str) {
    println!("xtask bench: {what}");
}

/// Writes the keel binary the image ships (its /init) to `dir/keel`, for `keel supervise`
/// on the host and for its size.
fn extract_keel(image_cpio: &Path, dir: &Path) -> Result<PathBuf> {
    let data = std::fs::read(image_cpio)
        .with_context(|| format!("cannot read {}", image_cpio.display()))?;
    let (entries, _) = baseline::read_cpio(&data)?;
    let Some((_, _, newc::Kind::File(bin))) = entries.into_iter().find(|(p, _, _)| p == "init")
    else {
        bail!(
            "{} has no /init file: rebuild it with `cargo xtask image`",
            image_cpio.display()
        );
    };
    std::fs::create_dir_all(dir)?;
    let path = dir.join("keel");
    std::fs::write(&path, bin).with_context(|| format!("cannot write {}", path.display()))?;
    crate::util::run(std::process::Command::new("chmod").arg("755").arg(&path))?;
    Ok(path)
}

fn file_len(p: &Path) -> Option<f64> {
    crate::util::file_len(p).map(|n| n as f64)
}

/// Sizes: keel's binary, both initramfs archives, and the single-image kernel.
fn sizes(
    keel_bin: &Path,
    cpio: &Path,
    gz: &Path,
    base: &baseline::Baseline,
) -> Result<Vec<Figure>> {
    let one = |who, p: &Path| {
        let mut s = Series::new(who);
        s.push(file_len(p));
        s
    };
    let bz = out_dir().join("bzImage");
    let bz_series = if bz.is_file() {
        one("keel", &bz)
    } else {
        Series::missing(
            "keel",
            "target/keel/bzImage not built: run `cargo xtask kernel`",
        )
    };
    // What the single image embeds: the same archive without /lib/modules, as
    // `cargo xtask kernel` cuts it (that kernel has no loadable modules).
    let mut embedded = Series::new("keel");
    let data = std::fs::read(cpio).with_context(|| format!("cannot read {}", cpio.display()))?;
    embedded.push(Some(crate::kernel::drop_modules(&data)?.0.len() as f64));
    Ok(vec![
        Figure::new(
            "keel_binary",
            "keel binary (stripped, static)",
            Unit::Bytes,
            vec![one("keel", keel_bin)],
        )
        .target(Target::AtMost(SIZE_TARGET_BYTES)),
        Figure::new(
            "initramfs_embedded",
            "initramfs in the bzImage (no modules), raw",
            Unit::Bytes,
            vec![embedded],
        )
        .target(Target::AtMost(INITRAMFS_TARGET_BYTES)),
        Figure::new(
            "initramfs_raw",
            "initramfs with modules (modular), raw",
            Unit::Bytes,
            vec![one("keel", cpio), one("baseline", &base.cpio)],
        ),
        Figure::new(
            "initramfs_gz",
            "initramfs, gzip -9",
            Unit::Bytes,
            vec![one("keel", gz), one("baseline", &base.gz)],
        ),
        Figure::new(
            "bzimage",
            "bzImage (single image)",
            Unit::Bytes,
            vec![bz_series],
        )
        .target(Target::AtMost(BZIMAGE_TARGET_BYTES)),
    ])
}

/// The guest figures: `runs` boots of each appliance with DHCP and with a static ip=,
/// alternating which goes first.
fn vm_figures(
    opts: &Opts,
    kernel: &Path,
    keel_initrd: Option<&Path>,
    base_initrd: &Path,
    floor_initrd: &Path,
    notes: &mut Vec<String>,
) -> Vec<Figure> {
    let pair = || (Series::new("keel"), Series::new("baseline"));
    let (mut wall, mut wall_b) = pair();
    let (mut guest, mut guest_b) = pair();
    let (mut wall_s, mut wall_sb) = pair();
    let (mut guest_s, mut guest_sb) = pair();
    let (mut rss, mut rss_b) = pair();
    let (mut private, mut private_b) = pair();
    let (mut idle, mut idle_b) = pair();
    let mut sshd_g = Series::new("keel");
    let mut sshd_h = Series::new("keel");
    let mut casc_g = Series::new("keel");
    let mut casc_h = Series::new("keel");
    let mut wall_sf = Series::new("floor");
    let mut guest_sf = Series::new("floor");
    // Per run: keel and the baseline with DHCP, then all three with the static ip=.
    let total = opts.runs * 5;
    let mut n = 0;
    for run in 0..opts.runs {
        for static_ip in [false, true] {
            let mut order = if static_ip {
                vec![Init::Keel, Init::Baseline, Init::Floor]
            } else {
                vec![Init::Keel, Init::Baseline]
            };
            if run % 2 == 1 {
                order.reverse();
            }
            for init in order {
                n += 1;
                let mode = if static_ip { "static" } else { "dhcp" };
                let name = format!("bench-{}-{mode}-{}", init.name(), run + 1);
                say(&format!("[{n}/{total}] booting {} ({mode})", init.name()));
                let plan = Plan {
                    init,
                    kernel: kernel.to_path_buf(),
                    initrd: match init {
                        Init::Keel => keel_initrd.map(Path::to_path_buf),
                        Init::Baseline => Some(base_initrd.to_path_buf()),
                        Init::Floor => Some(floor_initrd.to_path_buf()),
                    },
                    static_ip,
                    cpus: opts.cpus,
                    idle_secs: if static_ip { 0 } else { opts.idle },
                    restarts: init == Init::Keel && !static_ip,
                    name: name.clone(),
                };
                let b = match guest::measure(&plan) {
                    Ok(b) => b,
                    Err(e) => {
                        let msg = format!("{name}: boot not measured: {e:#}");
                        eprintln!("xtask bench: {}", msg.lines().next().unwrap_or_default());
                        notes.push(msg);
                        continue;
                    }
                };
                println!(
                    "    banner after {}, init to sshd ready {}, {} modules loaded",
                    shown(b.wall_to_banner),
                    shown(b.init_to_sshd),
                    b.modules.map_or_else(|| "?".into(), |m| m.to_string())
                );
                notes.extend(b.notes.iter().cloned());
                let kb = |v: Option<u64>| v.map(|x| x as f64);
                match (init, static_ip) {
                    (Init::Keel, false) => {
                        wall.push(b.wall_to_banner);
                        guest.push(b.init_to_sshd);
                        rss.push(kb(b.vmrss_kb));
                        private.push(kb(b.private_kb));
                        idle.push(kb(b.idle_switches));
                        sshd_g.push(b.sshd_restart_guest);
                        sshd_h.push(b.sshd_restart_banner);
                        casc_g.push(b.cascade_guest);
                        casc_h.push(b.cascade_banner);
                    }
                    (Init::Baseline, false) => {
                        wall_b.push(b.wall_to_banner);
                        guest_b.push(b.init_to_sshd);
                        rss_b.push(kb(b.vmrss_kb));
                        private_b.push(kb(b.private_kb));
                        idle_b.push(kb(b.idle_switches));
                    }
                    (Init::Keel, true) => {
                        wall_s.push(b.wall_to_banner);
                        guest_s.push(b.init_to_sshd);
                    }
                    (Init::Baseline, true) => {
                        wall_sb.push(b.wall_to_banner);
                        guest_sb.push(b.init_to_sshd);
                    }
                    (Init::Floor, _) => {
                        wall_sf.push(b.wall_to_banner);
                        guest_sf.push(b.init_to_sshd);
                    }
                }
            }
        }
    }
    let unsupervised = || {
        Series::missing(
            "baseline",
            "nothing supervises the baseline's sshd or dhclient",
        )
    };
    let mut idle_fig = Figure::new(
        "idle_wakeups",
        "PID 1 context switches while idle",
        Unit::Count,
        vec![idle, idle_b],
    )
    .target(Target::AtMost(0.0));
    if opts.idle == 0 {
        idle_fig.series = vec![Series::missing("keel", "--idle 0")];
    }
    vec![
        Figure::new(
            "wall_to_banner_dhcp",
            "QEMU start to ssh banner, DHCP",
            Unit::Secs,
            vec![wall, wall_b],
        ),
        Figure::new(
            "init_to_sshd_dhcp",
            "init exec to sshd ready, DHCP",
            Unit::Secs,
            vec![guest, guest_b],
        )
        .target(Target::RatioAtMost(INIT_RATIO_TARGET)),
        Figure::new(
            "wall_to_banner_static",
            "QEMU start to ssh banner, static ip=",
            Unit::Secs,
            vec![wall_s, wall_sb, wall_sf],
        ),
        Figure::new(
            "init_to_sshd_static",
            "init exec to sshd ready, static ip=",
            Unit::Secs,
            vec![guest_s.clone(), guest_sb],
        )
        .target(Target::RatioAtMost(INIT_RATIO_TARGET)),
        Figure::new(
            "init_to_sshd_floor",
            "init exec to sshd ready, static ip=, against the floor",
            Unit::Secs,
            vec![guest_s, guest_sf],
        )
        .target(Target::RatioAtMost(FLOOR_RATIO_TARGET)),
        Figure::new(
            "pid1_vmrss",
            "PID 1 VmRSS after boot",
            Unit::KiB,
            vec![rss, rss_b],
        )
        .target(Target::AtMost(RSS_TARGET_KB)),
        Figure::new(
            "pid1_private",
            "PID 1 private memory (smaps_rollup)",
            Unit::KiB,
            vec![private, private_b],
        ),
        idle_fig,
        Figure::new(
            "sshd_restart_guest",
            "kill -9 sshd to sshd ready (guest)",
            Unit::Secs,
            vec![sshd_g, unsupervised()],
        ),
        Figure::new(
            "sshd_restart_banner",
            "kill -9 sshd to banner (host)",
            Unit::Secs,
            vec![sshd_h, unsupervised()],
        ),
        Figure::new(
            "cascade_guest",
            "kill -9 dhclient to network ready (guest)",
            Unit::Secs,
            vec![casc_g, unsupervised()],
        ),
        Figure::new(
            "cascade_banner",
            "kill -9 dhclient to banner (host; sshd stays up)",
            Unit::Secs,
            vec![casc_h, unsupervised()],
        ),
    ]
}

/// The host figures: orphan reaping and the restart comparison.
fn host_figures(opts: &Opts, keel: &Path, notes: &mut Vec<String>) -> Vec<Figure> {
    let mut reap = Series::new("keel");
    for i in 0..opts.runs.min(3) {
        say(&format!(
            "host: keel supervise reaping {} orphans ({}/{})",
            host::ORPHANS,
            i + 1,
            opts.runs.min(3)
        ));
        match host::reap_orphans(keel) {
            Ok(t) => {
                println!("    {t:.3}s");
                reap.samples.push(t);
            }
            Err(e) => {
                notes.push(format!("orphan reaping: {e:#}"));
                reap.note = Some("failed; see the notes".into());
                break;
            }
        }
    }
    let mut series = Vec::new();
    for sup in [Sup::Keel, Sup::Runsv, Sup::S6] {
        say(&format!(
            "host: restart period of a crashing service under {}",
            sup.name()
        ));
        let mut s = Series::new(sup.name());
        match host::restart_periods(sup, keel, opts.launches) {
            Ok(p) => {
                println!(
                    "    {}",
                    p.iter()
                        .map(|x| format!("{x:.3}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                s.samples = p;
            }
            Err(e) => {
                notes.push(format!("{}: restart period: {e:#}", sup.name()));
                s.note = Some("failed; see the notes".into());
            }
        }
        series.push(s);
    }
    vec![
        Figure::new(
            "reap_10000_orphans",
            "keel supervise: reap 10,000 orphans",
            Unit::Secs,
            vec![reap],
        ),
        Figure::new(
            "restart_period",
            "crashing service relaunch period (1 s fixed delay)",
            Unit::Secs,
            series,
        )
        .target(Target::NoSlowerThanOthers),
    ]
}

fn shown(v: Option<f64>) -> String {
    v.map_or_else(|| "(missing)".into(), |x| format!("{x:.3}s"))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::report::*;
    use super::*;

    fn fig(keel: &[f64], other: &[f64], t: Target) -> Figure {
        let mut a = Series::new("keel");
        a.samples = keel.to_vec();
        let mut b = Series::new("baseline");
        b.samples = other.to_vec();
        Figure::new("k", "l", Unit::Secs, vec![a, b]).target(t)
    }

    #[test]
    fn ratios_and_targets() {
        let f = fig(
            &[1.0, 2.0, 3.0],
            &[10.0, 8.0, 6.0],
            Target::RatioAtMost(0.35),
        );
        assert_eq!(f.ratios(), vec![("baseline", Some(0.25))]);
        assert_eq!(f.pass(), Some(true));
        let f = fig(&[4.0], &[10.0], Target::RatioAtMost(0.35));
        assert_eq!(f.pass(), Some(false));
        let f = fig(&[4.0], &[], Target::RatioAtMost(0.35));
        assert_eq!(f.pass(), None, "no baseline, no verdict");
        let f = fig(&[1.001], &[1.002], Target::NoSlowerThanOthers);
        assert_eq!(f.pass(), Some(true));
        let f = fig(&[0.0, 2.0, 0.0], &[], Target::AtMost(0.0));
        assert_eq!(f.pass(), Some(true));
    }

    #[test]
    fn json_is_escaped_and_missing_values_are_null() {
        assert_eq!(js("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(jn(None), "null");
        assert_eq!(jn(Some(f64::NAN)), "null");
        assert_eq!(jn(Some(1.5)), "1.5");
    }

    #[test]
    fn options() {
        let o = parse(vec![
            "--runs".into(),
            "2".into(),
            "--only".into(),
            "host".into(),
        ])
        .expect("parse")
        .expect("not help");
        assert_eq!((o.runs, o.vm, o.host), (2, false, true));
        assert_eq!(o.kernel, Kind::Single, "the firmware is the default");
        let o = parse(vec!["--kernel".into(), "modular".into()])
            .expect("parse")
            .expect("not help");
        assert_eq!(o.kernel, Kind::Modular);
        assert!(parse(vec!["--kernel".into(), "xen".into()]).is_err());
        assert!(parse(vec!["--runs".into(), "0".into()]).is_err());
        assert!(parse(vec!["--frob".into()]).is_err());
        assert!(parse(vec!["--help".into()]).expect("help").is_none());
    }
}
