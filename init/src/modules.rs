//! Kernel module load planning from the text of modules.dep, modules.softdep,
//! modules.alias and modules.builtin (the files depmod writes under
//! `/lib/modules/<release>/`).
//!
//! This module is pure: it takes file contents and returns a plan, and it must never read
//! files, call the kernel or panic on any input. PID 1 reads the files and carries out the
//! plan with finit_module; `cargo xtask image` uses the same plan to choose which modules
//! to ship.
//!
//! The order follows kmod's modprobe: a module's dependencies are loaded in the reverse
//! of their order on its modules.dep line (depmod lists the farthest dependency last),
//! each module's `pre:` soft dependencies are loaded before it and its `post:` soft
//! dependencies after it, and every module appears once. A soft dependency may name an
//! alias (`softdep libcrc32c pre: crc32c`, with `alias crc32c crc32c_generic`); every
//! module the alias names is planned, as modprobe does. Modules reached only through a
//! soft dependency are marked optional: one of them failing to load (crc32c_intel on a
//! CPU without SSE4.2) must not stop the boot. Tokens of a softdep line that come before
//! any `pre:` or `post:` are ignored, as kmod ignores them.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};

/// A module name in the kernel's spelling: `-` becomes `_`.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a path in modules.dep or modules.builtin:
/// `kernel/drivers/net/virtio_net.ko` gives `virtio_net`, and a compressed
/// `foo-bar.ko.xz` gives `foo_bar`.
pub fn name_of_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = match base.find(".ko") {
        Some(i) => base.get(..i).unwrap_or(base),
        None => base,
    };
    normalize(stem)
}

/// One module as modules.dep lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// The path relative to `/lib/modules/<release>/`.
    path: String,
    /// Dependency names in the order of the modules.dep line.
    deps: Vec<String>,
}

/// The parsed module database: modules.dep, modules.softdep, modules.alias and
/// modules.builtin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModDb {
    modules: BTreeMap<String, Entry>,
    pre: BTreeMap<String, Vec<String>>,
    post: BTreeMap<String, Vec<String>>,
    /// Normalized alias to the module names it stands for, in file order.
    aliases: BTreeMap<String, Vec<String>>,
    /// Alias patterns with wildcards (`pci:v00001AF4d*...`), kept apart so that an exact
    /// look-up stays a map access.
    patterns: Vec<(String, String)>,
    builtin: BTreeSet<String>,
}

/// What to do for a set of requested modules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Modules to load, in this order.
    pub load: Vec<ModFile>,
    /// Requested or soft-dependency names that are built into the kernel: nothing to load.
    pub builtin: Vec<String>,
    /// Requested names that are neither a module, a built-in nor an alias, as given.
    pub missing: Vec<String>,
}

/// One module file to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModFile {
    /// The module name (normalized, as in /proc/modules).
    pub name: String,
    /// The path relative to `/lib/modules/<release>/`, as in modules.dep.
    pub path: String,
    /// Reached only through a soft dependency: a failure to load it is a warning, never
    /// fatal.
    pub optional: bool,
}

impl ModDb {
    /// Parses the four files. Lines that do not fit the format are skipped; a missing file
    /// can be given as `""`.
    pub fn parse(
        modules_dep: &str,
        modules_softdep: &str,
        modules_alias: &str,
        modules_builtin: &str,
    ) -> ModDb {
        let mut db = ModDb::default();
        for line in modules_dep.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            if path.is_empty() {
                continue;
            }
            let deps = deps.split_whitespace().map(name_of_path).collect();
            db.modules.insert(
                name_of_path(path),
                Entry {
                    path: path.to_string(),
                    deps,
                },
            );
        }
        for line in modules_softdep.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(module) = words.next() else {
                continue;
            };
            let module = normalize(module);
            let mut mode = None;
            for word in words {
                match word {
                    "pre:" => mode = Some(true),
                    "post:" => mode = Some(false),
                    other => {
                        let list = match mode {
                            Some(true) => db.pre.entry(module.clone()).or_default(),
                            Some(false) => db.post.entry(module.clone()).or_default(),
                            None => continue,
                        };
                        list.push(normalize(other));
                    }
                }
            }
        }
        for line in modules_alias.lines() {
            let mut words = line.split_whitespace();
            let (Some("alias"), Some(alias), Some(module)) =
                (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let module = normalize(module);
            if alias.contains(['*', '?', '[']) {
                db.patterns.push((alias.to_string(), module));
            } else {
                let list = db.aliases.entry(normalize(alias)).or_default();
                if !list.contains(&module) {
                    list.push(module);
                }
            }
        }
        for line in modules_builtin.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                db.builtin.insert(name_of_path(line));
            }
        }
        db
    }

    /// Load order for `names`: every dependency and pre-softdep before its user, each
    /// module once.
    pub fn plan(&self, names: &[String]) -> Plan {
        let mut planner = Planner {
            db: self,
            plan: Plan::default(),
            visited: BTreeSet::new(),
            placed: BTreeMap::new(),
        };
        for name in names {
            let found = planner.request(name, false);
            if !found && !planner.plan.missing.contains(name) {
                planner.plan.missing.push(name.clone());
            }
        }
        planner.plan
    }

    /// Whether `name` (either spelling) is a module in modules.dep.
    pub fn has_module(&self, name: &str) -> bool {
        self.modules.contains_key(&normalize(name))
    }

    /// Whether `name` (either spelling) is built into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize(name))
    }

    /// The modules an alias stands for: exact aliases first, then wildcard patterns, each
    /// module once.
    pub fn resolve_alias(&self, alias: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .aliases
            .get(&normalize(alias))
            .cloned()
            .unwrap_or_default();
        for (pattern, module) in &self.patterns {
            if glob(pattern.as_bytes(), alias.as_bytes()) && !out.contains(module) {
                out.push(module.clone());
            }
        }
        out
    }
}

/// The state of one `plan` call.
struct Planner<'a> {
    db: &'a ModDb,
    plan: Plan,
    /// Modules whose dependencies have been (or are being) planned; guards against
    /// softdep cycles.
    visited: BTreeSet<String>,
    /// Index into `plan.load` of each module already placed.
    placed: BTreeMap<String, usize>,
}

impl Planner<'_> {
    /// Plans a name that may be a module, a built-in or an alias. Returns false when it is
    /// none of them.
    fn request(&mut self, name: &str, optional: bool) -> bool {
        let norm = normalize(name);
        if self.db.modules.contains_key(&norm) {
            self.visit(&norm, optional);
            return true;
        }
        if self.db.builtin.contains(&norm) {
            if !self.plan.builtin.contains(&norm) {
                self.plan.builtin.push(norm);
            }
            return true;
        }
        let targets = self.db.resolve_alias(name);
        let mut found = false;
        for target in &targets {
            // A module reached through an alias that names several modules may fail on
            // this machine (a CPU-specific implementation); only a sole target keeps the
            // caller's need.
            let opt = optional || targets.len() > 1;
            found |= self.request_resolved(target, opt);
        }
        found
    }

    /// Like `request` for a name that came out of an alias: no second alias look-up, so an
    /// alias that names itself cannot loop.
    fn request_resolved(&mut self, norm: &str, optional: bool) -> bool {
        if self.db.modules.contains_key(norm) {
            self.visit(norm, optional);
            true
        } else if self.db.builtin.contains(norm) {
            if !self.plan.builtin.iter().any(|b| b == norm) {
                self.plan.builtin.push(norm.to_string());
            }
            true
        } else {
            false
        }
    }

    /// Places a module after its dependencies and soft dependencies (kmod's
    /// `__kmod_module_get_probe_list`).
    fn visit(&mut self, name: &str, optional: bool) {
        self.visit_at(name, optional, 0);
    }

    fn visit_at(&mut self, name: &str, optional: bool, depth: usize) {
        if !self.visited.insert(name.to_string()) {
            // Already planned (or being planned further up a softdep cycle). A hard need
            // makes an earlier optional placement, and its dependencies, required.
            if !optional {
                self.make_required(name);
            }
            return;
        }
        let Some(entry) = self.db.modules.get(name) else {
            return;
        };
        // depmod writes each line's full closure, farthest dependency last, so loading
        // the line backwards is a valid order. Visiting each dependency as well also
        // orders a hand-written, non-transitive file; the depth cap keeps a pathological
        // chain from exhausting PID 1's stack (the line order still holds past it).
        for dep in entry.deps.iter().rev() {
            if depth < MAX_DEPTH {
                self.visit_at(dep, optional, depth + 1);
            } else if self.visited.insert(dep.clone()) {
                self.with_softdeps(dep, optional, depth + 1);
            }
        }
        self.with_softdeps(name, optional, depth);
    }

    /// Places `name` between its pre- and post-softdeps (kmod's `__kmod_module_fill_softdep`).
    fn with_softdeps(&mut self, name: &str, optional: bool, depth: usize) {
        let soft = depth < MAX_DEPTH;
        if let Some(pre) = self.db.pre.get(name).filter(|_| soft) {
            for dep in pre {
                self.request(dep, true);
            }
        }
        self.place(name, optional);
        if let Some(post) = self.db.post.get(name).filter(|_| soft) {
            for dep in post {
                self.request(dep, true);
            }
        }
    }

    fn place(&mut self, name: &str, optional: bool) {
        if let Some(&i) = self.placed.get(name) {
            if !optional && let Some(m) = self.plan.load.get_mut(i) {
                m.optional = false;
            }
            return;
        }
        let Some(entry) = self.db.modules.get(name) else {
            return;
        };
        self.placed.insert(name.to_string(), self.plan.load.len());
        self.plan.load.push(ModFile {
            name: name.to_string(),
            path: entry.path.clone(),
            optional,
        });
    }

    /// Marks a placed module and the modules on its modules.dep line as required.
    fn make_required(&mut self, name: &str) {
        let deps = self
            .db
            .modules
            .get(name)
            .map(|e| e.deps.as_slice())
            .unwrap_or(&[]);
        for n in deps.iter().map(String::as_str).chain(std::iter::once(name)) {
            if let Some(&i) = self.placed.get(n)
                && let Some(m) = self.plan.load.get_mut(i)
            {
                m.optional = false;
            }
        }
    }
}

/// How deep `plan` follows dependencies by recursion before trusting the modules.dep
/// line order alone. Real chains are a handful of modules deep.
const MAX_DEPTH: usize = 32;

/// fnmatch(3) without flags, for modules.alias patterns: `*`, `?` and `[...]` classes
/// (with `!` or `^` negation and ranges). Iterative, so no input can exhaust the stack.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pattern, p, text[t]),
            Some(&c) if c == text[t] => Some(p + 1),
            _ => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Matches `c` against the class starting at `pattern[open] == b'['`; returns the index
/// after the class when it matches. An unterminated class matches a literal `[`.
fn class(pattern: &[u8], open: usize, c: u8) -> Option<usize> {
    let mut i = open + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = pattern.get(i)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-')
            && let Some(&hi) = pattern.get(i + 2)
            && hi != b']'
        {
            matched |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    (matched != negate).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    // An excerpt of Debian 6.1's files, trimmed to what the cases need.
    const DEP: &str = "\
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/net/netfilter/nfnetlink.ko:
kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko kernel/lib/libcrc32c.ko
kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko:
kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:
kernel/net/netfilter/nf_conntrack.ko: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nft_ct.ko: kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nfnetlink.ko kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/arch/x86/events/amd/amd-uncore.ko:
";
    const SOFTDEP: &str = "\
# Soft dependencies extracted from modules themselves.
softdep libcrc32c pre: crc32c
softdep cifs gcm
softdep nf_tables post: nft_fake
";
    const ALIAS: &str = "\
# Aliases extracted from modules themselves.
alias crypto-crc32c-intel crc32c_intel
alias crc32c-intel crc32c_intel
alias crypto-crc32c crc32c_intel
alias crc32c crc32c_intel
alias crypto-crc32c-generic crc32c_generic
alias crc32c-generic crc32c_generic
alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias crypto-crc32 crc32_generic
";
    const BUILTIN: &str = "\
kernel/lib/crc32.ko
kernel/crypto/crc32_generic.ko
kernel/net/unix/unix.ko
kernel/net/packet/af_packet.ko
";

    fn db() -> ModDb {
        ModDb::parse(DEP, SOFTDEP, ALIAS, BUILTIN)
    }

    fn names(plan: &Plan) -> Vec<&str> {
        plan.load.iter().map(|m| m.name.as_str()).collect()
    }

    fn pos(plan: &Plan, name: &str) -> usize {
        plan.load
            .iter()
            .position(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} not in plan {:?}", names(plan)))
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normalize_and_path_names() {
        assert_eq!(normalize("virtio-net"), "virtio_net");
        assert_eq!(
            name_of_path("kernel/arch/x86/crypto/crc32c-intel.ko"),
            "crc32c_intel"
        );
        assert_eq!(name_of_path("kernel/fs/ext4/ext4.ko.xz"), "ext4");
        assert_eq!(name_of_path("evdev"), "evdev");
    }

    #[test]
    fn libcrc32c_loads_crc32c_implementations_first_through_the_alias() {
        let plan = db().plan(&strings(&["libcrc32c"]));
        assert_eq!(
            names(&plan),
            ["crc32c_intel", "crc32c_generic", "libcrc32c"]
        );
        // The alias names two modules: either may fail on this CPU.
        assert!(plan.load[0].optional && plan.load[1].optional);
        assert!(!plan.load[2].optional);
        assert_eq!(plan.load[2].path, "kernel/lib/libcrc32c.ko");
        assert!(plan.missing.is_empty() && plan.builtin.is_empty());
    }

    #[test]
    fn nf_tables_chain_orders_every_dependency_before_its_user() {
        let plan = db().plan(&strings(&["nft_ct"]));
        let order = names(&plan);
        assert_eq!(order.last(), Some(&"nft_ct"));
        assert!(pos(&plan, "crc32c_generic") < pos(&plan, "libcrc32c"));
        assert!(pos(&plan, "libcrc32c") < pos(&plan, "nf_conntrack"));
        assert!(pos(&plan, "nf_defrag_ipv4") < pos(&plan, "nf_conntrack"));
        assert!(pos(&plan, "nf_defrag_ipv6") < pos(&plan, "nf_conntrack"));
        assert!(pos(&plan, "nfnetlink") < pos(&plan, "nf_tables"));
        assert!(pos(&plan, "nf_tables") < pos(&plan, "nft_ct"));
        // Each module once.
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), order.len());
        // A post softdep that names nothing known is skipped, not reported.
        assert!(plan.missing.is_empty());
    }

    #[test]
    fn virtio_net_brings_failover_in_order() {
        let plan = db().plan(&strings(&["virtio_net"]));
        assert_eq!(
            names(&plan),
            [
                "virtio_ring",
                "virtio",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        assert!(plan.load.iter().all(|m| !m.optional));
    }

    #[test]
    fn dash_and_underscore_name_the_same_module() {
        let a = db().plan(&strings(&["amd-uncore"]));
        let b = db().plan(&strings(&["amd_uncore"]));
        assert_eq!(a.load, b.load);
        assert_eq!(a.load[0].path, "kernel/arch/x86/events/amd/amd-uncore.ko");
        assert_eq!(
            names(&db().plan(&strings(&["virtio-pci"]))).last().copied(),
            Some("virtio_pci")
        );
    }

    #[test]
    fn builtin_is_skipped_and_unknown_is_reported() {
        let plan = db().plan(&strings(&[
            "af_packet",
            "no_such_mod",
            "virtio_net",
            "unix",
        ]));
        assert_eq!(plan.builtin, ["af_packet", "unix"]);
        assert_eq!(plan.missing, ["no_such_mod"]);
        assert_eq!(names(&plan).last(), Some(&"virtio_net"));
    }

    #[test]
    fn alias_names_resolve_and_an_alias_to_a_builtin_counts_as_builtin() {
        let db = db();
        assert_eq!(
            db.resolve_alias("pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"),
            ["virtio_pci"]
        );
        let plan = db.plan(&strings(&["crypto-crc32"]));
        assert_eq!(plan.builtin, ["crc32_generic"]);
        assert!(plan.load.is_empty() && plan.missing.is_empty());
    }

    #[test]
    fn a_module_wanted_both_softly_and_hard_is_required_and_listed_once() {
        let plan = db().plan(&strings(&["libcrc32c", "crc32c_generic"]));
        assert_eq!(
            names(&plan),
            ["crc32c_intel", "crc32c_generic", "libcrc32c"]
        );
        assert!(plan.load[0].optional);
        assert!(!plan.load[1].optional);
    }

    #[test]
    fn softdep_cycles_and_garbage_do_not_hang_or_panic() {
        let db = ModDb::parse(
            "a.ko:\nb.ko:\n: junk\nnot a line\n",
            "softdep a pre: b\nsoftdep b pre: a\nsoftdep\nsoftdep x pre:\n",
            "alias\nalias only\nalias [ a\n",
            "\n# comment\n",
        );
        let plan = db.plan(&strings(&["a"]));
        assert_eq!(names(&plan), ["b", "a"]);
        assert!(ModDb::parse("", "", "", "").plan(&strings(&["x"])).missing == ["x"]);
    }

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob(b"pci:v*d*", b"pci:v1d2"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"x[0-9]y", b"x5y"));
        assert!(!glob(b"x[!0-9]y", b"x5y"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"abc", b"abcd"));
        assert!(glob(b"a*b*c", b"aXXbYYc"));
    }

    /// The real database of the host's kernel, when there is one: the default appliance
    /// modules all resolve, and libcrc32c comes after crc32c_generic.
    #[test]
    fn real_modules_dep_when_present() {
        let Ok(dir) = std::fs::read_dir("/lib/modules") else {
            crate::applets::not_run(
                "no /lib/modules on this machine (apt-get install linux-image-amd64)",
            );
            return;
        };
        let mut tested = 0;
        for release in dir.flatten() {
            let base = release.path();
            let read = |f: &str| std::fs::read_to_string(base.join(f)).unwrap_or_default();
            let dep = read("modules.dep");
            if dep.is_empty() {
                continue;
            }
            let db = ModDb::parse(
                &dep,
                &read("modules.softdep"),
                &read("modules.alias"),
                &read("modules.builtin"),
            );
            let want = strings(&[
                "virtio_net",
                "nf_tables",
                "nft_ct",
                "nft_reject_inet",
                "evdev",
                "ext4",
            ]);
            let plan = db.plan(&want);
            assert!(
                plan.missing.is_empty(),
                "{}: missing {:?}",
                base.display(),
                plan.missing
            );
            for m in &plan.load {
                assert!(
                    base.join(&m.path).is_file(),
                    "{}: no file {}",
                    base.display(),
                    m.path
                );
            }
            if db.has_module("libcrc32c") && db.has_module("crc32c_generic") {
                assert!(pos(&plan, "crc32c_generic") < pos(&plan, "libcrc32c"));
            }
            tested += 1;
        }
        eprintln!("checked {tested} kernel release(s)");
    }
}
