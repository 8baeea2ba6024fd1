//! Finds the shared libraries a program needs by reading ELF headers (PT_INTERP,
//! DT_NEEDED, DT_RPATH, DT_RUNPATH), the way the dynamic loader will look for them inside
//! the image. It never runs the program or ldd.
//!
//! The image has no /etc/ld.so.cache, so its loader only searches RPATH/RUNPATH and its
//! built-in system directories. Resolving with those same directories here (not the
//! host's ld.so.conf, which lists /usr/local/lib) means that what we find is what the
//! loader in the image will find.

use anyhow::{Context, Result, bail};
use goblin::elf::Elf;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// glibc's built-in search path on Debian x86_64, as `ld.so --help` prints it.
pub(crate) const SYSTEM_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// What the dynamic loader reads from one ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ElfInfo {
    pub interp: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    pub is_64: bool,
    pub machine: u16,
}

/// Reads the dynamic-linking facts of the ELF file at `path`.
pub(crate) fn read(path: &Path) -> Result<ElfInfo> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a readable ELF file", path.display()))
}

fn parse(bytes: &[u8]) -> Result<ElfInfo> {
    let elf = Elf::parse(bytes)?;
    let split = |list: &[&str]| -> Vec<String> {
        list.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    Ok(ElfInfo {
        interp: elf.interpreter.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpath: split(&elf.rpaths),
        runpath: split(&elf.runpaths),
        is_64: elf.is_64,
        machine: elf.header.e_machine,
    })
}

/// Whether the file is statically linked: no interpreter and no DT_NEEDED.
pub(crate) fn is_static(path: &Path) -> Result<bool> {
    let info = read(path)?;
    Ok(info.interp.is_none() && info.needed.is_empty())
}

/// Every library (and loader) the `programs` need, transitively, as absolute paths in the
/// search directory where the loader will find them (for example
/// `/lib/x86_64-linux-gnu/libc.so.6`, which may be a symlink on the host). Sorted.
#[cfg(test)]
pub(crate) fn closure(programs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(closure_by_user(programs)?.into_keys().collect())
}

/// [`closure`] with, for each library, the programs that need it (directly or through
/// another library).
pub(crate) fn closure_by_user(
    programs: &[PathBuf],
) -> Result<std::collections::BTreeMap<PathBuf, BTreeSet<PathBuf>>> {
    let mut found: std::collections::BTreeMap<PathBuf, BTreeSet<PathBuf>> =
        std::collections::BTreeMap::new();
    for program in programs {
        let top = read(program)?;
        // The executable's RPATH also applies to its dependencies unless they have a
        // RUNPATH of their own (ld.so(8)).
        let exe_rpath = expand(&top.rpath, program);
        let mut queue: VecDeque<(PathBuf, ElfInfo)> = VecDeque::new();
        if let Some(interp) = &top.interp {
            found
                .entry(PathBuf::from(interp))
                .or_default()
                .insert(program.clone());
        }
        queue.push_back((program.clone(), top.clone()));
        let mut seen: BTreeSet<String> = BTreeSet::new();
        while let Some((object, info)) = queue.pop_front() {
            for lib in &info.needed {
                if !seen.insert(lib.clone()) {
                    continue;
                }
                let path = locate(lib, &object, &info, &exe_rpath, &top).with_context(|| {
                    format!(
                        "{} needs {lib} (via {}), found in none of its RPATH/RUNPATH or {}",
                        program.display(),
                        object.display(),
                        SYSTEM_DIRS.join(", ")
                    )
                })?;
                let lib_info = read(&path)?;
                found
                    .entry(path.clone())
                    .or_default()
                    .insert(program.clone());
                queue.push_back((path, lib_info));
            }
        }
    }
    Ok(found)
}

/// Finds one DT_NEEDED entry for `object` in the loader's order.
fn locate(
    lib: &str,
    object: &Path,
    info: &ElfInfo,
    exe_rpath: &[PathBuf],
    exe: &ElfInfo,
) -> Result<PathBuf> {
    if lib.contains('/') {
        let p = PathBuf::from(lib);
        if p.is_file() {
            return Ok(p);
        }
        bail!("{lib} does not exist");
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if info.runpath.is_empty() {
        dirs.extend(expand(&info.rpath, object));
        dirs.extend(exe_rpath.iter().cloned());
    } else {
        dirs.extend(expand(&info.runpath, object));
    }
    dirs.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(lib);
        if !candidate.is_file() {
            continue;
        }
        // Skip a library of another class or machine (a 32-bit one in /usr/lib), as the
        // loader does.
        match read(&candidate) {
            Ok(c) if c.is_64 == exe.is_64 && c.machine == exe.machine => return Ok(candidate),
            _ => continue,
        }
    }
    bail!("not found")
}

/// Expands `$ORIGIN` (and `${ORIGIN}`) in RPATH/RUNPATH entries of `object`.
fn expand(entries: &[String], object: &Path) -> Vec<PathBuf> {
    let origin = object
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    entries
        .iter()
        .map(|e| PathBuf::from(e.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_libraries_are_found_by_reading_elf() {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            let why = "/usr/sbin/sshd is absent (apt-get install openssh-server)";
            // A test that cannot run must not pass under CI.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and this test cannot run: {why}"
            );
            eprintln!("NOT RUN: {why} (under CI=true this test fails)");
            return;
        }
        let info = read(sshd).expect("read sshd");
        assert_eq!(info.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert!(
            info.needed.iter().any(|n| n == "libc.so.6"),
            "{:?}",
            info.needed
        );
        let libs = closure(&[sshd.to_path_buf()]).expect("closure");
        let names: Vec<String> = libs
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        for want in [
            "ld-linux-x86-64.so.2",
            "libc.so.6",
            "libcrypto.so.3",
            "libz.so.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
        // libkrb5support is needed by libkrb5, not by sshd itself: the walk is transitive.
        if !info.needed.iter().any(|n| n == "libkrb5support.so.0") {
            assert!(
                names.iter().any(|n| n == "libkrb5support.so.0"),
                "{names:?}"
            );
        }
        assert!(libs.iter().all(|p| p.is_absolute() && p.exists()));
    }

    #[test]
    fn static_binaries_have_no_interpreter() {
        let busybox = Path::new("/bin/busybox");
        if busybox.exists() {
            assert!(is_static(busybox).expect("read busybox"));
        }
        if Path::new("/usr/sbin/sshd").exists() {
            assert!(!is_static(Path::new("/usr/sbin/sshd")).expect("read sshd"));
        }
    }

    #[test]
    fn origin_expands_to_the_objects_directory() {
        let got = expand(
            &["$ORIGIN/../lib".into(), "${ORIGIN}".into(), "/opt/x".into()],
            Path::new("/usr/bin/tool"),
        );
        assert_eq!(
            got,
            [
                PathBuf::from("/usr/bin/../lib"),
                "/usr/bin".into(),
                "/opt/x".into()
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"not an elf file at all").is_err());
        assert!(parse(&[]).is_err());
    }
}
