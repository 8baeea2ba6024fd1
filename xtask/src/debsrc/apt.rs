//! Debian source packages through apt's own source mechanism, with a private apt state:
//! a `deb-src` twin of every Debian `deb` entry of the machine's sources, its index and the
//! downloaded files live in the build's own `$KEEL_CACHE/<build>/apt/` (sshd, busybox), so
//! nothing in /etc/apt changes and
//! no root is needed. apt checks the downloaded files against the signed index, as
//! `apt-get source` always does.

use crate::util::run;
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The index is refreshed when it is older than this (or with KEEL_APT_UPDATE=1), so a
/// Debian security update reaches the next build within a day.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

pub(crate) struct Apt {
    dir: PathBuf,
    /// Which build's lines these are (`sshd`, `busybox`).
    who: &'static str,
}

impl Apt {
    /// Writes the private sources and apt.conf under `dir` (`$KEEL_CACHE/sshd/apt`); `who`
    /// names the build in its progress lines.
    pub(crate) fn setup(dir: &Path, who: &'static str) -> Result<Apt> {
        for sub in ["parts", "lists/partial", "cache/archives/partial", "src"] {
            fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        let sources = deb_src_entries()?;
        if sources.is_empty() {
            bail!(
                "no Debian `deb` entry in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources: \
                 xtask makes its deb-src entries from them (add Debian 12's archive, e.g. \
                 `deb http://deb.debian.org/debian bookworm main`)"
            );
        }
        write_if_changed(&dir.join("parts").join("keel-deb-src.list"), &sources)?;
        let conf = format!(
            "Dir::Etc::SourceList \"/dev/null\";\n\
             Dir::Etc::SourceParts \"{parts}\";\n\
             Dir::State::Lists \"{lists}\";\n\
             Dir::Cache \"{cache}\";\n\
             APT::Get::Only-Source \"true\";\n\
             APT::Sandbox::User \"root\";\n",
            parts = dir.join("parts").display(),
            lists = dir.join("lists").display(),
            cache = dir.join("cache").display(),
        );
        write_if_changed(&dir.join("apt.conf"), &conf)?;
        Ok(Apt {
            dir: dir.to_path_buf(),
            who,
        })
    }

    fn phase(&self, msg: &str) {
        super::phase(self.who, msg);
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("APT_CONFIG", self.dir.join("apt.conf"))
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        c
    }

    /// Refreshes the deb-src index when it is missing or a day old. Offline with an
    /// index, the old index is used with a warning.
    pub(crate) fn update_if_stale(&self) -> Result<()> {
        let stamp = self.dir.join("updated");
        let age = fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        let forced = std::env::var("KEEL_APT_UPDATE").is_ok_and(|v| v == "1");
        if !forced && age.is_some_and(|a| a < MAX_AGE) {
            return Ok(());
        }
        self.phase("apt-get update (the private deb-src index in the cache)");
        let mut c = self.cmd("apt-get");
        c.args(["update", "-qq"]);
        match run(&mut c) {
            Ok(()) => {
                fs::write(&stamp, "")?;
                let _ = fs::remove_file(self.dir.join("unavailable"));
                Ok(())
            }
            Err(e) if age.is_some() => {
                self.phase(&format!(
                    "warning: cannot refresh the deb-src index ({e:#}); using the one from \
                     earlier, so a newer Debian source may be missed"
                ));
                Ok(())
            }
            Err(e) => Err(e).context(
                "cannot fetch Debian's source index (apt-get update with the private deb-src \
                 entries): the first build from Debian's sources needs the Debian archive",
            ),
        }
    }

    /// The versions of source package `pkg` the index lists, newest first.
    fn versions(&self, pkg: &str) -> Result<Vec<String>> {
        let out = self
            .cmd("apt-cache")
            .args(["showsrc", "--only-source", pkg])
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run apt-cache showsrc")?;
        let mut versions: Vec<String> = Vec::new();
        let mut current_pkg = String::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(p) = line.strip_prefix("Package: ") {
                current_pkg = p.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("Version: ") {
                let v = v.trim().to_owned();
                if current_pkg == pkg && !versions.contains(&v) {
                    versions.push(v);
                }
            }
        }
        // dpkg's order (epochs, ~, Debian revisions), newest first.
        let mut sorted: Vec<String> = Vec::new();
        for v in versions {
            let at = sorted
                .iter()
                .position(|s| version_gt(&v, s))
                .unwrap_or(sorted.len());
            sorted.insert(at, v);
        }
        Ok(sorted)
    }

    /// Downloads the newest version of source package `pkg` that the archive serves (a
    /// version listed in the index but missing from the mirror is skipped, with a word)
    /// and returns its version and .dsc. Downloads are kept; a kept version is not
    /// fetched again.
    pub(crate) fn fetch(&self, pkg: &str) -> Result<(String, PathBuf)> {
        let versions = self.versions(pkg)?;
        if versions.is_empty() {
            bail!(
                "the deb-src index lists no source package {pkg:?}: check the Debian entries \
                 of /etc/apt/sources.list(.d) (xtask copies them to {})",
                self.dir.join("parts").display()
            );
        }
        let unavailable_file = self.dir.join("unavailable");
        let unavailable = fs::read_to_string(&unavailable_file).unwrap_or_default();
        let src = self.dir.join("src");
        for (i, version) in versions.iter().enumerate() {
            let dsc = src.join(format!("{pkg}_{}.dsc", strip_epoch(version)));
            let done = src.join(format!("{pkg}_{}.keel-fetched", strip_epoch(version)));
            if done.exists() && dsc.exists() {
                return Ok((version.clone(), dsc));
            }
            let wanted = format!("{pkg}={version}");
            if unavailable.lines().any(|l| l == wanted) {
                continue;
            }
            self.phase(&format!("apt-get source --download-only {wanted}"));
            let mut c = self.cmd("apt-get");
            c.args(["source", "--download-only", "-qq", &wanted])
                .current_dir(&src);
            match run(&mut c) {
                Ok(()) if dsc.exists() => {
                    if i > 0 {
                        self.phase(&format!(
                            "note: {pkg} {} is listed but the archive does not serve its \
                             source; building {version}, the newest it does",
                            versions[0]
                        ));
                    }
                    fs::write(&done, "")?;
                    return Ok((version.clone(), dsc));
                }
                _ => {
                    self.phase(&format!(
                        "{wanted}: the archive does not serve this source; trying an older one"
                    ));
                    let mut list = unavailable.clone();
                    list.push_str(&wanted);
                    list.push('\n');
                    fs::write(&unavailable_file, list)?;
                }
            }
        }
        bail!(
            "no listed version of source package {pkg} ({}) could be downloaded",
            versions.join(", ")
        )
    }
}

/// `1:9.2p1-2` → `9.2p1-2`, as in the file names.
fn strip_epoch(version: &str) -> &str {
    version.split_once(':').map_or(version, |(_, v)| v)
}

/// `dpkg --compare-versions a gt b`.
fn version_gt(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .is_ok_and(|s| s.success())
}

/// The installed version of Debian package `pkg`, for the cache key.
pub(crate) fn installed(pkg: &str) -> Result<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", pkg])
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("cannot run dpkg-query for {pkg}"))?;
    if !out.status.success() {
        bail!("the Debian package {pkg} is not installed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// One-line `deb-src` entries for every enabled Debian `deb` entry of the machine.
fn deb_src_entries() -> Result<String> {
    let mut out = String::new();
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        out.push_str(&from_one_line(&text));
    }
    let mut files: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => out.push_str(&from_deb822(&text)),
            Some("list") => out.push_str(&from_one_line(&text)),
            _ => {}
        }
    }
    Ok(out)
}

/// Only Debian's own archives carry the sources xtask builds.
fn is_debian(uri: &str) -> bool {
    uri.contains("debian")
}

fn from_one_line(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let uri = rest
            .split_whitespace()
            .find(|w| w.contains("://"))
            .unwrap_or("");
        if is_debian(uri) {
            out.push_str(&format!("deb-src {}\n", rest.trim()));
        }
    }
    out
}

fn from_deb822(text: &str) -> String {
    let mut out = String::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                if !k.starts_with(' ') {
                    fields.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
        }
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let types = get("types").unwrap_or("");
        if !types.split_whitespace().any(|t| t == "deb") || get("enabled") == Some("no") {
            continue;
        }
        let signed = get("signed-by")
            .map(|s| format!("[signed-by={s}] "))
            .unwrap_or_default();
        let comps = get("components").unwrap_or("main");
        for uri in get("uris").unwrap_or("").split_whitespace() {
            if !is_debian(uri) {
                continue;
            }
            for suite in get("suites").unwrap_or("").split_whitespace() {
                out.push_str(&format!("deb-src {signed}{uri} {suite} {comps}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb_src_from_both_formats() {
        let deb822 = "Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\n\
                      Suites: bookworm bookworm-updates\nComponents: main\n\
                      Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                      Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n\n\
                      Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: x\n";
        assert_eq!(
            from_deb822(deb822),
            "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n\
             deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main\n"
        );
        let list = "# x\ndeb http://deb.debian.org/debian-security bookworm-security main\n\
                    deb https://packages.cloud.google.com/apt cloud-sdk main\n\
                    deb-src http://deb.debian.org/debian bookworm main\n";
        assert_eq!(
            from_one_line(list),
            "deb-src http://deb.debian.org/debian-security bookworm-security main\n"
        );
    }

    #[test]
    fn epochs_are_not_in_file_names() {
        assert_eq!(strip_epoch("1:9.2p1-2+deb12u10"), "9.2p1-2+deb12u10");
        assert_eq!(strip_epoch("3.0.20-1~deb12u2"), "3.0.20-1~deb12u2");
    }
}
