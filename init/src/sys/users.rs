//! User and group names to numeric ids, from /etc/passwd and /etc/group.
//!
//! Resolved in the parent before a fork (the child must not read files or allocate). The
//! parsers are pure and take the file text; `resolve` reads the two files. No NSS: the
//! appliance's users are the ones in its /etc. Must not panic on any file content.

use crate::sys::spawn::Creds;

/// One /etc/passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// One /etc/group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Parses /etc/passwd text; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<User> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(User {
                name: (*f.first()?).to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// Parses /etc/group text; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: (*f.first()?).to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `user` and `group` (names or numbers) against the two files' text.
///
/// The group defaults to the user's primary group from passwd; a numeric user with no
/// entry defaults to the group of the same number. Supplementary groups are the groups
/// that list the user by name. Errors say which name was not found, and where.
pub fn resolve_in(
    user: Option<&str>,
    group: Option<&str>,
    passwd: &str,
    groups: &str,
) -> Result<Creds, String> {
    let users = parse_passwd(passwd);
    let all_groups = parse_group(groups);
    let (uid, primary, name) = match user {
        None => (0, Some(0), Some("root".to_string())),
        Some(u) => match users.iter().find(|e| e.name == u) {
            Some(e) => (e.uid, Some(e.gid), Some(e.name.clone())),
            None => match u.parse::<u32>() {
                Ok(n) => {
                    let e = users.iter().find(|e| e.uid == n);
                    (n, e.map(|e| e.gid), e.map(|e| e.name.clone()))
                }
                Err(_) => {
                    return Err(format!(
                        "user {u:?} is not in /etc/passwd; add it to the image or use a number"
                    ));
                }
            },
        },
    };
    let gid = match group {
        None => primary.unwrap_or(uid),
        Some(g) => match all_groups.iter().find(|e| e.name == g) {
            Some(e) => e.gid,
            None => g.parse::<u32>().map_err(|_| {
                format!("group {g:?} is not in /etc/group; add it to the image or use a number")
            })?,
        },
    };
    let mut supplementary: Vec<u32> = match &name {
        Some(n) => all_groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == n))
            .map(|g| g.gid)
            .collect(),
        None => Vec::new(),
    };
    supplementary.sort_unstable();
    supplementary.dedup();
    Ok(Creds {
        uid,
        gid,
        groups: supplementary,
    })
}

/// Resolves against /etc/passwd and /etc/group (a missing file counts as empty).
pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Creds, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_in(user, group, &passwd, &groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        sshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n\
        broken line\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nnet:x:20:app,other\n\
        log:x:21:app\nbad:x:zz:app\n";

    #[test]
    fn names_resolve_with_primary_and_supplementary_groups() {
        let c = resolve_in(Some("app"), None, PASSWD, GROUP);
        assert_eq!(
            c,
            Ok(Creds {
                uid: 1000,
                gid: 1000,
                groups: vec![20, 21]
            })
        );
        let c = resolve_in(Some("sshd"), Some("net"), PASSWD, GROUP);
        assert_eq!(
            c,
            Ok(Creds {
                uid: 101,
                gid: 20,
                groups: vec![]
            })
        );
    }

    #[test]
    fn numbers_work_without_entries() {
        let c = resolve_in(Some("4242"), None, PASSWD, GROUP);
        assert_eq!(
            c,
            Ok(Creds {
                uid: 4242,
                gid: 4242,
                groups: vec![]
            })
        );
        let c = resolve_in(Some("1000"), Some("7"), PASSWD, GROUP);
        assert_eq!(
            c.map(|c| (c.uid, c.gid, c.groups)),
            Ok((1000, 7, vec![20, 21]))
        );
        let c = resolve_in(None, Some("app"), PASSWD, GROUP);
        assert_eq!(c.map(|c| (c.uid, c.gid)), Ok((0, 1000)));
    }

    #[test]
    fn unknown_names_are_explained() {
        let e = resolve_in(Some("nobody2"), None, PASSWD, GROUP).unwrap_err();
        assert!(e.contains("\"nobody2\" is not in /etc/passwd"), "{e}");
        let e = resolve_in(Some("app"), Some("wheel"), PASSWD, GROUP).unwrap_err();
        assert!(e.contains("\"wheel\" is not in /etc/group"), "{e}");
    }
}
