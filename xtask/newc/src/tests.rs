use super::*;
use std::process::{Command, Stdio};

fn entries() -> [(&'static str, u32, Kind); 6] {
    [
        ("bin", 0o755, Kind::Dir),
        ("bin/hello", 0o755, Kind::File(b"hello, cpio\n".to_vec())),
        ("bin/sh", 0o777, Kind::Symlink("hello".into())),
        ("dev", 0o755, Kind::Dir),
        ("dev/console", 0o600, Kind::CharDev { major: 5, minor: 1 }),
        ("tmp", 0o1777, Kind::Dir),
    ]
}

fn archive(mtime: u32) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), mtime);
    for (path, perm, kind) in &entries() {
        w.entry(path, *perm, kind).expect("entry");
    }
    w.finish().expect("finish")
}

/// GNU cpio is the oracle (xtask's prerequisites install it; a missing one fails the test).
fn gnu_cpio(args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("cpio")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("GNU cpio runs (apt-get install cpio)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to cpio");
    let out = child.wait_with_output().expect("cpio output");
    assert!(
        out.status.success(),
        "cpio {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn layout_is_padded_and_ends_with_the_trailer() {
    let a = archive(1_700_000_000);
    assert_eq!(a.len() % 4, 0);
    assert!(a.starts_with(b"070701"));
    // First header: inode 1, a directory 0755, uid/gid 0, nlink 2, the fixed mtime.
    let h = std::str::from_utf8(&a[..HEADER_LEN]).expect("ascii header");
    assert_eq!(&h[6..14], "00000001");
    assert_eq!(&h[14..22], "000041ED");
    assert_eq!(&h[22..38], "0000000000000000");
    assert_eq!(&h[38..46], "00000002");
    assert_eq!(&h[46..54], format!("{:08X}", 1_700_000_000));
    let tail = String::from_utf8_lossy(&a[a.len() - 128..]).into_owned();
    assert!(tail.contains("TRAILER!!!"));
}

#[test]
fn same_entries_and_mtime_give_the_same_bytes_and_mtime_is_the_only_stamp() {
    assert_eq!(archive(1234), archive(1234));
    let (a, b) = (archive(1234), archive(5678));
    assert_eq!(a.len(), b.len());
    let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    let (entries, mtime) = read(&b).expect("read");
    assert_eq!(mtime, 5678);
    assert_eq!(entries.len(), 6);
    // Only bytes inside the mtime fields (offset 46..54 of each header, the trailer's too) differ.
    let parsed = parse(&a).expect("parse");
    let mut headers: Vec<usize> = parsed.records.iter().map(|r| r.span.start).collect();
    headers.push(parsed.trailer_at);
    for i in differ {
        assert!(
            headers.iter().any(|&h| (h + 46..h + 54).contains(&i)),
            "byte {i} differs outside an mtime field"
        );
    }
}

#[test]
fn writer_output_reads_back_entry_for_entry() {
    let bytes = archive(42);
    let (back, mtime) = read(&bytes).expect("read");
    assert_eq!(mtime, 42);
    let want: Vec<Entry> = entries()
        .into_iter()
        .map(|(p, perm, k)| (p.to_string(), perm, k))
        .collect();
    assert_eq!(back, want);
    assert!(read(&bytes[..bytes.len() - 140]).is_err(), "truncated");
    assert!(read(b"not a cpio archive").is_err());
}

#[test]
fn gnu_cpio_reads_back_dir_file_symlink_and_device() {
    let a = archive(1_700_000_000);
    let list = gnu_cpio(&["-itv", "--quiet"], &a);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 6, "{list}");
    let expect = [
        ("drwxr-xr-x", "bin"),
        ("-rwxr-xr-x", "bin/hello"),
        ("lrwxrwxrwx", "bin/sh -> hello"),
        ("drwxr-xr-x", "dev"),
        ("crw-------", "dev/console"),
        ("drwxrwxrwt", "tmp"),
    ];
    for (line, (mode, name)) in lines.iter().zip(expect) {
        assert!(line.starts_with(mode), "{line:?} should start with {mode}");
        assert!(line.ends_with(name), "{line:?} should end with {name}");
        assert!(line.contains(" root "), "{line:?} should be owned by root");
    }
    assert!(
        lines[4].contains("5,   1"),
        "device numbers in {:?}",
        lines[4]
    );
    let data = gnu_cpio(&["-i", "--quiet", "--to-stdout", "bin/hello"], &a);
    assert_eq!(data, "hello, cpio\n");
}

#[test]
fn bad_names_and_modes_are_refused() {
    let mut w = Writer::new(Vec::new(), 0);
    assert!(w.entry("/abs", 0o644, &Kind::Dir).is_err());
    assert!(w.entry("", 0o644, &Kind::Dir).is_err());
    assert!(w.entry("x", 0o100_644, &Kind::Dir).is_err());
}

#[test]
fn archive_puts_parents_first_as_directories() {
    let mut a = Archive::new();
    a.add("/etc/keel/appliance.toml", Kind::File(b"x".to_vec()), 0o644);
    a.add("/bin/busybox", Kind::File(vec![1, 2, 3]), 0o755);
    assert_eq!(
        a.paths(),
        [
            "bin",
            "bin/busybox",
            "etc",
            "etc/keel",
            "etc/keel/appliance.toml"
        ]
    );
    let parsed_bytes = a.to_bytes().expect("bytes");
    let back = parse(&parsed_bytes).expect("parse").records;
    assert_eq!(back[0].name, b"bin");
    assert_eq!(back[0].mode, 0o040_755);
    assert_eq!(back[4].name, b"etc/keel/appliance.toml");
    assert_eq!(back[4].mode, 0o100_644);
    assert_eq!(back[4].data, b"x");
}

#[test]
fn archive_symlinks_devices_and_odd_sizes_round_trip() {
    let mut a = Archive::new();
    a.add("/dev/console", Kind::CharDev { major: 5, minor: 1 }, 0o600);
    a.add("/bin/sh", Kind::Symlink("busybox".into()), 0o777);
    a.add("/a", Kind::File(b"12345".to_vec()), 0o600);
    let bytes = a.to_bytes().expect("bytes");
    assert_eq!(bytes.len() % 4, 0);
    let back = parse(&bytes).expect("parse").records;
    let names: Vec<_> = back.iter().map(|r| r.name).collect();
    assert_eq!(
        names,
        [&b"a"[..], b"bin", b"bin/sh", b"dev", b"dev/console"]
    );
    assert_eq!(back[0].data, b"12345");
    assert_eq!(back[2].mode, 0o120_777);
    assert_eq!(back[2].data, b"busybox");
    assert_eq!(back[4].mode, 0o020_600);
    assert_eq!(back[4].rdev, (5, 1), "rdev of /dev/console");
    let listed = gnu_cpio(&["-t", "--quiet"], &bytes);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["a", "bin", "bin/sh", "dev", "dev/console"]
    );
}

#[test]
fn archive_later_add_replaces_and_keeps_explicit_dir_modes() {
    let mut a = Archive::new();
    a.add("/root/.ssh", Kind::Dir, 0o700);
    a.add(
        "/root/.ssh/authorized_keys",
        Kind::File(b"old".to_vec()),
        0o600,
    );
    a.add(
        "/root/.ssh/authorized_keys",
        Kind::File(b"new".to_vec()),
        0o600,
    );
    let bytes = a.to_bytes().expect("bytes");
    let back = parse(&bytes).expect("parse").records;
    assert_eq!(back.len(), 3);
    assert_eq!(back[1].mode, 0o040_700, "explicit mode of /root/.ssh kept");
    assert_eq!(back[2].data, b"new");
}

#[test]
fn filter_copies_kept_records_byte_for_byte_and_the_tail() {
    let mut a = archive(7);
    a.extend_from_slice(b"\0\0\0\0next");
    let (out, dropped) = filter(&a, |r| !r.path().starts_with(b"dev")).expect("filter");
    assert_eq!(dropped.entries, 2);
    assert_eq!(dropped.bytes, 0);
    assert!(
        out.ends_with(b"\0\0\0\0next"),
        "what follows the trailer is kept"
    );
    let (back, _) = read(&out).expect("read");
    let names: Vec<&str> = back.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["bin", "bin/hello", "bin/sh", "tmp"]);
    let (same, none) = filter(&a, |_| true).expect("filter");
    assert_eq!(same, a);
    assert_eq!(none, Dropped::default());
}
