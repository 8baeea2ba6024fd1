//! The parsers on real documents (a cloud-localds seed, Linode's documented JSON, HTTP
//! responses as servers send them) and on bad input: warnings or Err, never a panic.

use metadata::{Found, hostname_error, http, keys, linode, nocloud};

const ED: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKb+YBsJpazkqVkIBqygssxlbWPjLVwblITz10r57bw0 alice@laptop";
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDbz92/KXSwqHe8Okur0U8wHnt8ggsBTuReXw5/7s3E0nj6DBM/e3zPCYYMOvLV2OTo9rV9pooU9Ijk9iEfATGnB4M2EY0m/DwzXdNUaSUSZzSK0iJsGBJ9jvdY2CvcRvHNVCG6EHVmoHCb0OTR6MJfEFrDSloZqHv650VU3ro1MczoCZNAkr7GYpch6TzeTVz0afvTjpcWe24+sNBofiG+4ag1OSXnsEYFSsm25cfsEIG+vCo2e4qjNm18bnEiG6QCeZZ82ZCdNStgJkml2OIKGaQco/zEt0hA4a76ZnYz0N2At3Og29MEX1Oy3YLmRxpqRD4x77s7QbLivVnNANob bob@work";
const EC: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPYtTHvEFbBFfCXMOhWmLbE4ALV6vI8h+z1XVdUCe9LfbM1uWLwEmjtadXmFuosA1e+NObyng0HU4HKTRgRhd2Q= carol";

fn user_data(body: &str) -> String {
    format!("#cloud-config\n{body}")
}

#[test]
fn cloud_localds_seed() {
    let meta = "instance-id: iid-local01\nlocal-hostname: cloudimg\n";
    let user = user_data(&format!(
        "# a comment\nhostname: appliance-1\npassword: secret\nchpasswd: {{ expire: False }}\nssh_pwauth: True\n\
         ssh_authorized_keys:\n  - {ED}\n  - \"{RSA}\"\nusers:\n  - default\n  - name: root\n    lock_passwd: false\n    ssh_authorized_keys:\n      - {EC}\n      - {ED}\n  - name: bob\n    ssh_authorized_keys: [{RSA}]\n\
         packages: [htop]\nruncmd:\n  - [ls, -l]\nwrite_files:\n  - path: /etc/x\n    content: |\n      # not a comment\n      \tbad: tab\n"
    ));
    let f = nocloud::parse(meta.as_bytes(), Some(user.as_bytes()));
    assert_eq!(f.keys, [ED, RSA, EC]);
    assert_eq!(f.hostname.as_deref(), Some("appliance-1"));
    assert_eq!(f.instance_id.as_deref(), Some("iid-local01"));
    assert_eq!(
        f.warnings[0],
        "user-data: ignored keys password, chpasswd, ssh_pwauth, packages, runcmd, write_files: keel reads only ssh_authorized_keys, hostname, fqdn and users[].ssh_authorized_keys of root"
    );
    assert_eq!(
        f.warnings[1],
        "user-data: users other than root ignored: \"bob\""
    );
    assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
}

#[test]
fn meta_data_alone_and_as_json() {
    let f = nocloud::parse(b"instance-id: i-1\nlocal-hostname: box\n", None);
    assert_eq!(
        f,
        Found {
            hostname: Some("box".into()),
            instance_id: Some("i-1".into()),
            ..Found::default()
        }
    );
    let f = nocloud::parse(
        br#"{"instance-id": "i-\u00e9", "local-hostname": "box.example.org"}"#,
        None,
    );
    assert_eq!(f.instance_id.as_deref(), Some("i-\u{e9}"));
    assert_eq!(f.hostname.as_deref(), Some("box.example.org"));
    // user-data's host name wins; fqdn when there is no hostname.
    let f = nocloud::parse(
        b"local-hostname: box",
        Some(b"#cloud-config\nfqdn: a.example.org\n"),
    );
    assert_eq!(f.hostname.as_deref(), Some("a.example.org"));
    let f = nocloud::parse(
        b"local-hostname: box",
        Some(b"#cloud-config\nhostname: my_box\n"),
    );
    assert_eq!(f.hostname.as_deref(), Some("box"));
    assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
}

#[test]
fn yaml_forms() {
    // Flow lists, quoted keys, single quotes, a key wrapped over two lines, CRLF, `---`.
    let u = format!(
        "#cloud-config\r\n---\r\n\"ssh_authorized_keys\": ['{ED}', \"{EC}\"]\r\nusers:\r\n- name: 'root'\r\n  ssh_authorized_keys:\r\n  - {}\r\n    {}\r\n",
        &RSA[..RSA.len() - 9],
        &RSA[RSA.len() - 8..]
    );
    let f = nocloud::parse(b"", Some(u.as_bytes()));
    assert_eq!(f.keys, [ED, EC, RSA], "{:?}", f.warnings);
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    // A comment after a key, a '#' inside one.
    let u = format!("#cloud-config\nssh_authorized_keys:\n  - {ED} # mine\n  - \"{EC} #1\"\n");
    let f = nocloud::parse(b"", Some(u.as_bytes()));
    assert_eq!(f.keys, [ED.to_string(), format!("{EC} #1")]);
}

#[test]
fn bad_user_data_gives_a_warning_and_no_keys() {
    let cases: &[&[u8]] = &[
        b"#!/bin/sh\necho hi\n",
        b"Content-Type: multipart/mixed; boundary=x\nMIME-Version: 1.0\n",
        b"\x1f\x8b\x08\x00\x00\x00",
        b"#cloud-config\nssh_authorized_keys:\n\t- ssh-ed25519 AAAA\n",
        b"#cloud-config\nssh_authorized_keys:\n  - \"unterminated\n",
        b"#cloud-config\na:\n    b: 1\n  c: 2\n",
        b"#cloud-config\n\xff\xfe\n",
        b"#cloud-config\n- a\n- b\n",
        b"#cloud-configx\n",
    ];
    for c in cases {
        let f = nocloud::parse(b"instance-id: x", Some(c));
        assert!(f.keys.is_empty(), "{:?}", String::from_utf8_lossy(c));
        assert_eq!(
            f.warnings.len(),
            1,
            "{:?}: {:?}",
            String::from_utf8_lossy(c),
            f.warnings
        );
    }
    // Absent and empty user-data say nothing.
    assert!(nocloud::parse(b"", None).warnings.is_empty());
    assert!(nocloud::parse(b"", Some(b"")).warnings.is_empty());
    assert!(
        nocloud::parse(b"", Some(b"#cloud-config\n"))
            .warnings
            .is_empty()
    );
}

#[test]
fn bad_keys_are_dropped_one_by_one() {
    let u = format!(
        "#cloud-config\nssh_authorized_keys:\n  - {ED}\n  - no-pty {ED}\n  - ssh-dss AAAAB3NzaC1kc3M=\n  - ssh-rsa {}\n  - [a, b]\n  - \"{ED}\\nssh-rsa x\"\n  - {EC}\n",
        &ED[12..]
    );
    let f = nocloud::parse(b"", Some(u.as_bytes()));
    assert_eq!(f.keys, [ED, EC]);
    assert_eq!(f.warnings.len(), 5, "{:?}", f.warnings);
    assert!(
        f.warnings[2].contains("not a ssh-rsa key"),
        "{}",
        f.warnings[2]
    );
}

#[test]
fn huge_deep_and_wrong_types() {
    let big = vec![b'a'; nocloud::MAX_FILE + 1];
    let f = nocloud::parse(&big, Some(&big));
    assert_eq!(f.warnings.len(), 2);
    let mut deep = String::from("#cloud-config\n");
    for i in 0..100 {
        deep.push_str(&" ".repeat(i));
        deep.push_str("a:\n");
    }
    let f = nocloud::parse(b"", Some(deep.as_bytes()));
    assert!(
        f.warnings[0].contains("nested too deep"),
        "{:?}",
        f.warnings
    );
    let dashes = format!("#cloud-config\nusers:\n{}root\n", "- ".repeat(5000));
    assert_eq!(
        nocloud::parse(b"", Some(dashes.as_bytes())).warnings.len(),
        1
    );
    let f = nocloud::parse(
        b"{\"instance-id\": [1]}",
        Some(b"#cloud-config\nhostname: [a]\nssh_authorized_keys: {a: b}\nusers: 3\n"),
    );
    assert!(f.keys.is_empty() && f.hostname.is_none() && f.instance_id.is_none());
    assert_eq!(f.warnings.len(), 4, "{:?}", f.warnings);
    let json_deep = "[".repeat(10_000);
    assert_eq!(nocloud::parse(json_deep.as_bytes(), None).warnings.len(), 1);
    assert!(linode::parse_ssh_keys(format!("{{\"users\":{json_deep}").as_bytes()).is_err());
}

#[test]
fn linode_documents() {
    let keys = format!(
        r#"{{"users": {{"root": ["{ED}", "{RSA}", "{ED}", "bogus"], "alice": ["{EC}"]}}}}"#
    );
    assert_eq!(linode::parse_ssh_keys(keys.as_bytes()).unwrap(), [ED, RSA]);
    let instance = br#"{
      "id": 123456,
      "host_uuid": "a631b16d14534d84e2830da16d1b28e1f08d36df",
      "label": "my-linode",
      "region": "us-mia",
      "type": "g6-standard-1",
      "tags": ["prod", "web"],
      "specs": {"vcpus": 1, "memory": 2048, "gpus": 0, "transfer": 2000, "disk": 51200},
      "backups": {"enabled": false, "status": null},
      "image": {"id": "linode/ubuntu24.04", "label": "Ubuntu 24.04 LTS"}
    }"#;
    assert_eq!(
        linode::parse_instance(instance).unwrap().as_deref(),
        Some("my-linode")
    );
    let f = linode::parse(keys.as_bytes(), Some(instance));
    assert_eq!(f.keys, [ED, RSA]);
    assert_eq!(f.hostname.as_deref(), Some("my-linode"));
    assert_eq!(f.instance_id.as_deref(), Some("123456"));
    assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
    assert!(f.warnings[1].contains("\"alice\""));
    // Wrong types and bad JSON.
    for bad in [
        &b"[]"[..],
        b"{\"users\": []}",
        b"{\"users\": {\"root\": \"ssh-ed25519 AAAA\"}}",
        b"{\"users\": {\"root\": [1]}}",
        b"{\"users\": {\"root\": [\"a\"]}",
        b"{\"users\": {\"root\": [\"\\ud800\"]}}",
        b"{\"users\": {\"root\": [\"\xff\"]}}",
        b"",
    ] {
        assert!(
            linode::parse_ssh_keys(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        linode::parse_ssh_keys(b"{\"users\": {}}").unwrap(),
        Vec::<String>::new()
    );
    assert!(linode::parse_instance(b"{\"label\": \"my_linode\"}").is_err());
    assert!(linode::parse_instance(b"{\"label\": 3}").is_err());
    assert_eq!(linode::parse_instance(b"{\"id\": 1}").unwrap(), None);
    let f = linode::parse(b"{\"users\": {}}", Some(b"{\"id\": 7, \"label\": \"a_b\"}"));
    assert_eq!(
        (f.instance_id.as_deref(), f.hostname, f.warnings.len()),
        (Some("7"), None, 1)
    );
}

#[test]
fn linode_requests_and_token() {
    assert_eq!(
        linode::token_request(linode::HOST, 300),
        b"PUT /v1/token HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata-Token-Expiry-Seconds: 300\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(
        linode::get_request(linode::HOST6, "/v1/ssh-keys", "abc\r\nX: y"),
        b"GET /v1/ssh-keys HTTP/1.1\r\nHost: [fd00:a9fe:a9fe::1]\r\nMetadata-Token: abcX: y\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(linode::parse_token(b" e80eb809\n").unwrap(), "e80eb809");
    assert!(linode::parse_token(b"\n").is_err());
    assert!(linode::parse_token(&[b'a'; 513]).is_err());
    assert!(linode::parse_token(b"a\x01b").is_err());
    assert!(linode::parse_token(b"\xc3\xa9").is_err());
}

#[test]
fn http_responses() {
    let r = http::parse_response(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\nhello",
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    let r = http::parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n").unwrap();
    assert_eq!(r.body, b"hello world");
    let r = http::parse_response(b"HTTP/1.0 401 Unauthorized\n\nno").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (401, &b"no"[..]));
    let r = http::parse_response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: http://x/\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(r.status, 302);
    for bad in [
        &b""[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 999 X\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n",
    ] {
        assert!(
            http::parse_response(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut huge = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    huge.resize(http::MAX_RESPONSE + 1, b'x');
    assert!(http::parse_response(&huge).unwrap_err().contains("64 KiB"));
}

#[test]
fn key_lines() {
    for k in [ED, RSA, EC, &ED[..ED.len() - 13]] {
        assert_eq!(keys::check_line(k), Ok(()), "{k}");
    }
    for bad in [
        "",
        " ssh-ed25519 AAAA",
        "ssh-ed25519",
        "ssh-ed25519 ",
        "ssh-ed25519 AAAA=A==",
        "ssh-ed25519 !!!!",
        "ssh-dss AAAAB3NzaC1kc3M=",
        "command=\"x\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKb+YBsJpazkqVkIBqygssxlbWPjLVwblITz10r57bw0",
        "ssh-ed25519\tAAAAC3NzaC1lZDI1NTE5AAAAIKb+YBsJpazkqVkIBqygssxlbWPjLVwblITz10r57bw0",
        "# comment",
    ] {
        assert!(keys::check_line(bad).is_err(), "{bad:?}");
    }
    assert!(keys::check_line(&format!("{ED} a\u{7}b")).is_err());
    assert!(keys::check_line(&format!("{ED} {}", "x".repeat(keys::LINE_MAX))).is_err());
    // Cut short at a base64 quantum: still base64, no longer a key.
    let cut = &RSA[..RSA.len() - 9 - 4 * 10];
    assert!(
        keys::check_line(cut).unwrap_err().contains("cut short"),
        "{cut}"
    );
    // The RSA blob under the ed25519 type.
    let swapped = format!("ssh-ed25519 {}", &RSA[8..]);
    assert!(
        keys::check_line(&swapped)
            .unwrap_err()
            .contains("not a ssh-ed25519 key")
    );
}

#[test]
fn merge_the_platform_block() {
    let keys = vec![ED.to_string(), EC.to_string()];
    let block = format!("{}nocloud)\n{ED}\n{EC}\n{}\n", keys::BEGIN, keys::END);
    assert_eq!(keys::merge("", "nocloud", &keys), block);
    let mine = format!("# mine\r\n{RSA}");
    let once = keys::merge(&mine, "nocloud", &keys);
    assert_eq!(once, format!("{mine}\n{block}"));
    assert_eq!(keys::merge(&once, "nocloud", &keys), once);
    // Replaced in place, the lines around it kept; then removed.
    let around = format!("a\n{}linode)\nold\n{}\nb\n", keys::BEGIN, keys::END);
    let replaced = keys::merge(&around, "nocloud", &keys);
    assert_eq!(replaced, format!("a\n{block}b\n"));
    assert_eq!(keys::merge(&replaced, "nocloud", &[]), "a\nb\n");
    assert_eq!(keys::merge("a\nb", "nocloud", &[]), "a\nb");
    // No END: the rest is the old block.
    let open = format!("a\n{}linode)\nold\nmore", keys::BEGIN);
    assert_eq!(keys::merge(&open, "nocloud", &keys), format!("a\n{block}"));
    // A key that could end the block early is left out.
    let evil = vec![format!("{ED}\n{}", keys::END), EC.to_string()];
    let m = keys::merge("", "x", &evil);
    assert_eq!(m.lines().count(), 3);
    assert_eq!(keys::merge(&m, "x", &evil), m);
}

#[test]
fn host_names() {
    for ok in ["a", "box-1", "a.example.org", "123", &"a".repeat(64)] {
        assert_eq!(hostname_error(ok), None, "{ok}");
    }
    for bad in [
        "",
        "-a",
        "a-",
        "a..b",
        "a.",
        ".a",
        "a_b",
        "a b",
        "é",
        &"a".repeat(65),
    ] {
        assert!(hostname_error(bad).is_some(), "{bad:?}");
    }
}

#[test]
fn linode_addresses_ipv6_first_each_with_its_host_header() {
    // cloud-init's Akamai datasource: IPv6 first, then IPv4.
    let [v6, v4] = linode::ENDPOINTS;
    assert_eq!(v6.addr.to_string(), "[fd00:a9fe:a9fe::1]:80");
    assert_eq!(v4.addr.to_string(), "169.254.169.254:80");
    for ep in linode::ENDPOINTS {
        // The Host header is the address without the port, brackets kept for IPv6.
        assert_eq!(
            Some(ep.host),
            ep.addr.to_string().strip_suffix(":80"),
            "{ep:?}"
        );
        let request = String::from_utf8(linode::token_request(ep.host, 60)).unwrap();
        assert!(
            request.contains(&format!("\r\nHost: {}\r\n", ep.host)),
            "{request}"
        );
    }
}

#[test]
fn linode_failures_name_every_address_tried() {
    let mut t = linode::Tried::default();
    assert_eq!(t.message(), "no answer: nothing tried");
    // Rounds keep only each address's last reason, in the order they first failed.
    t.failed(linode::HOST6, "cannot connect: Host is unreachable");
    t.failed(linode::HOST, "cannot connect: Connection refused");
    t.failed(linode::HOST6, "cannot connect: Network unreachable");
    t.failed(linode::HOST, "cannot connect: timed out");
    assert_eq!(
        t.message(),
        "no answer at [fd00:a9fe:a9fe::1] (cannot connect: Network unreachable), \
         nor at 169.254.169.254 (cannot connect: timed out)"
    );
    let mut one = linode::Tried::default();
    one.failed(linode::HOST6, "out of time");
    assert_eq!(
        one.message(),
        "no answer at [fd00:a9fe:a9fe::1] (out of time)"
    );
}

#[test]
fn linode_read_drops_bad_key_lines_with_a_warning_and_fails_on_a_bad_document() {
    let keys = format!(r#"{{"users": {{"root": ["{ED}", "ssh-ed25519 not-base64!", "{RSA}"]}}}}"#);
    let f = linode::read(keys.as_bytes(), Some(br#"{"id": 9, "label": "web1"}"#)).unwrap();
    assert_eq!(f.keys, [ED, RSA]);
    assert_eq!(f.hostname.as_deref(), Some("web1"));
    assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
    assert!(
        f.warnings[0].starts_with("ssh-keys: root's key 2 (\"ssh-ed25519 not-base64!\"): ")
            && f.warnings[0].ends_with(", key dropped"),
        "{:?}",
        f.warnings
    );
    assert_eq!(
        f,
        linode::parse(keys.as_bytes(), Some(br#"{"id": 9, "label": "web1"}"#))
    );
    // A document that is not one: Err (the caller keeps the keys it has); parse makes it
    // a warning.
    for bad in [&b"{\"users\": []}"[..], b"", b"\xff"] {
        let e = linode::read(bad, None).unwrap_err();
        assert_eq!(linode::parse(bad, None).warnings, [e]);
    }
    // A bad /v1/instance is only a warning.
    let f = linode::read(keys.as_bytes(), Some(b"[1]")).unwrap();
    assert_eq!((f.keys.len(), f.hostname, f.warnings.len()), (2, None, 2));
}
