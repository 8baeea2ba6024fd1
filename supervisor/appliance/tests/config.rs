//! Config validation: every error kind with its line and column, and the shipped config.

use appliance::{CloudSource, Kind, Leftovers, OnGiveUp, Ready, Restart, Sig};
use std::time::Duration;

mod common;
use common::{errors, one};

#[test]
fn shipped_appliance_config_is_valid() {
    let text = include_str!("../../../configs/appliance.toml");
    let c = common::parse_file(text, "configs/appliance.toml");
    assert!(!c.services.is_empty());
    assert!(c.services.iter().filter(|s| s.console).count() <= 1);
}

#[test]
fn a_full_service_parses_with_every_field() {
    let c = appliance::parse(
        r#"
[services.net]
exec = ["/sbin/keel", "network"]
kind = "oneshot"
restart = "on-failure"

[services.sshd]
exec = ["/usr/sbin/sshd", "-D"]
env = { LANG = "C", A = "1" }
user = "root"
group = 0
capabilities = ["net_bind_service", "CAP_SETUID"]
needs = ["net"]
after = []
ready = "tcp:2222"
restart = "always"
backoff = { initial = "100ms", factor = 1.5, cap = 10, jitter = 0, reset_after = "2m" }
crash_loop = { limit = 3, within = "10s" }
on_give_up = "reboot"
stop_signal = "SIGHUP"
stop_timeout = 2.5
console = false
"#,
        "t.toml",
    )
    .unwrap();
    let net = &c.services[0];
    assert_eq!(
        (net.kind, net.ready, net.restart),
        (Kind::Oneshot, Ready::Exit, Restart::OnFailure)
    );
    let s = &c.services[1];
    assert_eq!(
        s.env,
        vec![("A".into(), "1".into()), ("LANG".into(), "C".into())]
    );
    assert_eq!(s.group.as_deref(), Some("0"));
    assert_eq!(
        s.capabilities,
        Some(vec!["CAP_NET_BIND_SERVICE".into(), "CAP_SETUID".into()])
    );
    assert_eq!(s.ready, Ready::Tcp(2222));
    assert_eq!(s.backoff.initial, Duration::from_millis(100));
    assert_eq!(s.backoff.factor_milli, 1500);
    assert_eq!(s.backoff.cap, Duration::from_secs(10));
    assert_eq!(s.backoff.jitter_milli, 0);
    assert_eq!(s.backoff.reset_after, Duration::from_secs(120));
    assert_eq!(
        (s.crash_loop.limit, s.crash_loop.within),
        (3, Duration::from_secs(10))
    );
    assert_eq!(s.on_give_up, OnGiveUp::Reboot);
    assert_eq!(s.stop_signal, Sig::HUP);
    assert_eq!(s.stop_timeout, Duration::from_millis(2500));
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = appliance::parse("[services.a]\nexec = [\"/bin/a\"]\n", "t.toml").unwrap();
    let s = &c.services[0];
    assert_eq!(
        (s.kind, s.ready, s.restart),
        (Kind::Longrun, Ready::Started, Restart::Always)
    );
    assert_eq!(s.backoff.initial, Duration::from_millis(200));
    assert_eq!(s.backoff.cap, Duration::from_secs(30));
    assert_eq!(s.backoff.reset_after, Duration::from_secs(60));
    assert_eq!(
        (s.crash_loop.limit, s.crash_loop.within),
        (5, Duration::from_secs(60))
    );
    assert_eq!(
        (s.stop_signal, s.stop_timeout),
        (Sig::TERM, Duration::from_secs(5))
    );
    assert_eq!(s.on_give_up, OnGiveUp::RetrySlowly);
}

#[test]
fn unknown_service_field_suggests_the_closest() {
    one(
        "[services.a]\nexec = [\"/bin/a\"]\nrestrat = \"always\"\n",
        "3:1",
        "unknown field `restrat` in [services.a]; did you mean `restart`?",
    );
    one(
        "[services.a]\nexec = [\"/bin/a\"]\nbackoff = { intial = \"1s\" }\n",
        "3:13",
        "did you mean `initial`?",
    );
    one("[sevices.a]\n", "1:2", "did you mean `services`?");
}

#[test]
fn unknown_dependency_is_named_with_a_suggestion() {
    one(
        "[services.net]\nexec = [\"/a\"]\n[services.b]\nexec = [\"/b\"]\nneeds = [\"nett\"]\n",
        "5:10",
        "needs \"nett\", which is not a service; did you mean \"net\"?",
    );
}

#[test]
fn dependency_cycle_prints_its_path() {
    let text = "[services.a]\nexec = [\"/a\"]\nneeds = [\"b\"]\n[services.b]\nexec = [\"/b\"]\nafter = [\"a\"]\n";
    one(text, "6:10", "dependency cycle: a -> b -> a");
}

#[test]
fn bad_values_name_the_allowed_ones() {
    one(
        "[services.a]\nexec = [\"/a\"]\nrestart = \"alwys\"\n",
        "3:11",
        "use one of \"always\", \"on-failure\", \"never\" (did you mean \"always\"?)",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nready = \"tcp:99999\"\n",
        "3:9",
        "port must be a number from 1 to 65535",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nready = \"soon\"\n",
        "3:9",
        "\"started\", \"notify\", \"tcp:PORT\", \"exit\"",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nstop_signal = \"TERMINATE\"\n",
        "3:15",
        "use a name like \"TERM\"",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nstop_timeout = \"5 parsecs\"\n",
        "3:16",
        "\"200ms\", \"1.5s\", \"1m30s\" or \"1h\"",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nkind = 3\n",
        "3:8",
        "`kind` must be a string, found an integer",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\ncapabilities = [\"CAP_NET_ADMN\"]\n",
        "3:17",
        "did you mean \"CAP_NET_ADMIN\"?",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nbackoff = { factor = 0.5 }\n",
        "3:22",
        "from 1 to 100",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nbackoff = { initial = \"1m\" }\n",
        "3:11",
        "below `backoff.initial`",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\ncrash_loop = { limit = 0 }\n",
        "3:24",
        "from 1 to 1000",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\non_give_up = \"panic\"\n",
        "3:14",
        "\"retry-slowly\", \"reboot\", \"emergency\"",
    );
    one(
        "[system]\nhostname = \"bad host\"\n",
        "2:12",
        "is not valid",
    );
}

#[test]
fn duplicates_are_refused() {
    let e = errors("[services.a]\nexec = [\"/a\"]\n[services.a]\nexec = [\"/b\"]\n");
    assert!(
        e[0].starts_with("3:11: duplicate key; it is already defined above"),
        "{e:?}"
    );
    one(
        "[services.n]\nexec = [\"/n\"]\n[services.a]\nexec = [\"/a\"]\nneeds = [\"n\", \"n\"]\n",
        "5:15",
        "\"n\" is listed twice in `needs`",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nneeds = [\"a\"]\n",
        "3:10",
        "lists itself in `needs`",
    );
}

#[test]
fn exec_must_be_a_non_empty_absolute_argv() {
    one(
        "[services.a]\nexec = []\n",
        "2:8",
        "`exec` of [services.a] is empty",
    );
    one(
        "[services.a]\nexec = \"/bin/sh -c x\"\n",
        "2:8",
        "write exec = [\"/bin/sh\", \"-c\", \"x\"]",
    );
    one(
        "[services.a]\nexec = [\"sshd\"]\n",
        "2:9",
        "not an absolute path",
    );
    one(
        "[services.a]\nkind = \"oneshot\"\n",
        "1:11",
        "has no `exec`",
    );
}

#[test]
fn kind_specific_rules() {
    one(
        "[services.a]\nexec = [\"/a\"]\nkind = \"oneshot\"\nrestart = \"always\"\n",
        "4:11",
        "oneshot and cannot have restart = \"always\"",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nkind = \"oneshot\"\nready = \"notify\"\n",
        "4:9",
        "remove `ready` or set it to \"exit\"",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nready = \"exit\"\n",
        "3:9",
        "or add kind = \"oneshot\"",
    );
    one(
        "[services.a]\nexec = [\"/a\"]\nconsole = true\n[services.b]\nexec = [\"/b\"]\nconsole = true\n",
        "6:11",
        "\"a\" already owns the console",
    );
}

#[test]
fn every_error_is_reported_in_file_order() {
    let e = errors(
        "[services.a]\nexec = []\nrestrat = 1\n[services.b]\nexec = [\"/b\"]\nneeds = [\"zz\"]\nkind = \"daemon\"\n",
    );
    assert_eq!(e.len(), 4, "{e:#?}");
    let places: Vec<&str> = e
        .iter()
        .map(|l| l.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(places, ["2:8", "3:1", "6:10", "7:8"]);
}

#[test]
fn toml_syntax_errors_have_a_place() {
    let e = errors("[services.a\nexec = [\"/a\"]\n");
    assert!(!e.is_empty());
    assert!(e[0].starts_with("1:"), "{e:?}");
}

#[test]
fn shipped_config_has_the_appliance_graph() {
    // The default appliance: what sshd waits for, and what the console must not wait for.
    let text = include_str!("../../../configs/appliance.toml");
    let c = common::parse_file(text, "configs/appliance.toml");
    let svc = |name: &str| match c.services.iter().find(|s| s.name == name) {
        Some(s) => s,
        None => panic!("no service {name} in configs/appliance.toml"),
    };
    let mut sshd_needs = svc("sshd").needs.clone();
    sshd_needs.sort();
    // Not the network: sshd listens on every address, so a dhclient restart must not stop it.
    assert_eq!(sshd_needs, ["firewall", "hostkeys"]);
    assert_eq!(svc("network").needs, ["firewall"]);
    let mut hostkey_needs = svc("hostkeys").needs.clone();
    hostkey_needs.sort();
    assert_eq!(hostkey_needs, ["entropy", "state"]);
    // Console login goes on without the network, entropy or the firewall.
    assert!(svc("getty").needs.is_empty(), "{:?}", svc("getty").needs);
    assert!(
        !svc("getty")
            .after
            .iter()
            .any(|a| a == "network" || a == "entropy")
    );
}

#[test]
fn a_nul_in_exec_or_env_is_an_error_where_it_is_written() {
    // TOML can spell a NUL (\u0000); execve cannot pass one, so it must fail here, not at
    // spawn.
    one(
        "[services.a]\nexec = [\"/bin/echo\", \"a\\u0000b\"]\n",
        "2:22",
        "`exec[1]` of [services.a] contains a NUL character",
    );
    one(
        "[services.a]\nexec = [\"/bin/true\"]\nenv = { X = \"1\\u00002\" }\n",
        "3:13",
        "`env.X` of [services.a] contains a NUL character",
    );
}

#[test]
fn limits_parse_with_their_defaults() {
    let cfg = common::parse_config(
        r#"
[services.web]
exec = ["/web"]
memory_max = "64M"
pids_max = 64
cpu_weight = 200
rlimits = { nofile = 4096, core = 0, stack = "infinity" }
umask = "027"
workdir = "/var/lib/web"
[services.plain]
exec = ["/plain"]
"#,
    );
    use appliance::limits::Rlimit;
    let l = &cfg.services[0].limits;
    assert_eq!(l.memory_max, Some(64 << 20));
    assert_eq!(l.pids_max, Some(64));
    assert_eq!(l.cpu_weight, Some(200));
    assert_eq!(
        l.rlimits,
        [
            (Rlimit::Nofile, 4096),
            (Rlimit::Core, 0),
            (Rlimit::Stack, u64::MAX)
        ]
    );
    assert_eq!(l.umask, Some(0o27));
    assert_eq!(l.workdir.as_deref(), Some("/var/lib/web"));
    assert_eq!(cfg.services[1].limits, appliance::Limits::default());
}

#[test]
fn bad_limits_are_errors_at_their_place() {
    let svc = "[services.a]\nexec = [\"/a\"]\n";
    common::one(
        &format!("{svc}memory_max = \"64MB\"\n"),
        "3:14",
        "like \"64M\"",
    );
    common::one(&format!("{svc}memory_max = \"4K\"\n"), "3:14", "below 1M");
    common::one(&format!("{svc}pids_max = 0\n"), "3:12", "from 1 to 4194304");
    common::one(
        &format!("{svc}cpu_weight = 20000\n"),
        "3:14",
        "from 1 to 10000",
    );
    common::one(
        &format!("{svc}umask = \"999\"\n"),
        "3:9",
        "not an octal mask",
    );
    common::one(
        &format!("{svc}workdir = \"var/x\"\n"),
        "3:11",
        "absolute path",
    );
    common::one(
        &format!("{svc}rlimits = {{ nofiles = 10 }}\n"),
        "3:13",
        "not a limit keel knows; use one of nofile",
    );
    common::one(
        &format!("{svc}rlimits = {{ nofile = -1 }}\n"),
        "3:22",
        "at least 0, or \"infinity\"",
    );
}

#[test]
fn watchdog_parses_with_defaults_and_checks_its_needs() {
    use std::time::Duration;
    let svc = "[services.sshd]\nexec = [\"/sshd\"]\n";
    let cfg = common::parse_config(&format!("[watchdog]\n{svc}"));
    let w = cfg.watchdog.expect("a watchdog");
    assert_eq!(w.device, "/dev/watchdog");
    assert_eq!(w.timeout, Duration::from_secs(30));
    assert_eq!(w.interval(), Duration::from_secs(10));
    assert!(w.needs.is_empty());
    assert_eq!(common::parse_config(svc).watchdog, None);
    let cfg = common::parse_config(&format!(
        "[watchdog]\ndevice = \"/dev/watchdog1\"\ntimeout = \"10s\"\nneeds = [\"sshd\"]\n{svc}"
    ));
    let w = cfg.watchdog.expect("a watchdog");
    assert_eq!(
        (w.device.as_str(), w.timeout),
        ("/dev/watchdog1", Duration::from_secs(10))
    );
    assert_eq!(w.needs, ["sshd"]);
    one(
        &format!("[watchdog]\nneeds = [\"ssdh\"]\n{svc}"),
        "2:10",
        "\"ssdh\", which is not a service; did you mean sshd?",
    );
    one(
        "[watchdog]\ntimeout = \"1.5s\"\n",
        "2:11",
        "whole seconds from 2s",
    );
    one(
        "[watchdog]\ndevice = \"watchdog\"\n",
        "2:10",
        "a device under /dev",
    );
    one("[watchdog]\ntimeot = \"5s\"\n", "2:1", "timeout");
}

#[test]
fn leftovers_are_stopped_unless_released() {
    let text =
        "[services.a]\nexec = [\"/a\"]\n[services.b]\nexec = [\"/b\"]\nleftovers = \"release\"\n";
    let cfg = appliance::parse(text, "t.toml").expect("valid");
    assert_eq!(cfg.services[0].leftovers, Leftovers::Stop);
    assert_eq!(cfg.services[1].leftovers, Leftovers::Release);
    one(
        "[services.a]\nexec = [\"/a\"]\nleftovers = \"relase\"\n",
        "3:13",
        "`leftovers` = \"relase\" is not allowed; use one of \"stop\", \"release\" (did you mean \"release\"?)",
    );
}

#[test]
fn cloud_sources_and_timeout() {
    let none = appliance::parse("", "t.toml").expect("valid");
    assert_eq!(
        none.cloud.sources,
        [CloudSource::NoCloud, CloudSource::Linode]
    );
    assert_eq!(none.cloud.timeout, Duration::from_secs(10));
    let one_src = appliance::parse(
        "[cloud]\nsources = [\"linode\"]\ntimeout = \"3s\"\n",
        "t.toml",
    )
    .expect("valid");
    assert_eq!(one_src.cloud.sources, [CloudSource::Linode]);
    assert_eq!(one_src.cloud.timeout, Duration::from_secs(3));
    let off = appliance::parse("[cloud]\nsources = []\n", "t.toml").expect("valid");
    assert!(off.cloud.sources.is_empty());
    one(
        "[cloud]\nsources = [\"nocloud\", \"aws\"]\n",
        "2:23",
        "[cloud] `sources` has \"aws\", which is not a source; use \"nocloud\", \"linode\", or [] for none",
    );
    one(
        "[cloud]\nsources = [\"linode\", \"linode\"]\n",
        "2:22",
        "names \"linode\" twice",
    );
    one(
        "[cloud]\ntimeot = \"1s\"\n",
        "2:1",
        "did you mean `timeout`?",
    );
}
