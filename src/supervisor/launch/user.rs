//! Resolving a spec's or image's `user` ("name", "uid", "name:group",
//! "uid:gid") against the image's own /etc/passwd and /etc/group, read as
//! files: nothing from the image is ever executed to do it.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7).then(|| {
            Some(PasswdEntry {
                name: f[0],
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5],
            })
        })?
    })
}

/// (name, gid, members) for each line of /etc/group.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4).then(|| {
            Some((
                f[0],
                f[2].parse().ok()?,
                f[3].split(',').filter(|m| !m.is_empty()).collect(),
            ))
        })?
    })
}

/// Resolves `user` as Docker does: an unknown numeric uid runs with gid 0
/// and HOME=/; an unknown name is an error; with an explicit group the
/// supplementary groups are not looked up.
pub fn resolve_user(user: &str, passwd: &str, group: &str) -> Result<ResolvedUser, String> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (if user.is_empty() { "0" } else { user }, None),
    };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|e| e.uid == uid),
        Err(_) => Some(
            passwd_entries(passwd)
                .find(|e| e.name == user_part)
                .ok_or_else(|| {
                    format!("user {user_part:?} not found in the image's /etc/passwd")
                })?,
        ),
    };
    let uid = entry
        .as_ref()
        .map_or_else(|| user_part.parse().unwrap_or(0), |e| e.uid);
    let home = entry.as_ref().map_or("/", |e| e.home).to_string();
    if let Some(g) = group_part {
        let gid = resolve_group(g, group)?;
        return Ok(ResolvedUser {
            uid,
            gid,
            additional_gids: Vec::new(),
            home,
        });
    }
    let gid = entry.as_ref().map_or(0, |e| e.gid);
    let additional_gids = match &entry {
        Some(e) => group_entries(group)
            .filter(|(_, g, members)| *g != gid && members.contains(&e.name))
            .map(|(_, g, _)| g)
            .collect(),
        None => Vec::new(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// A group name from the image's /etc/group, or a numeric gid.
pub fn resolve_group(g: &str, group: &str) -> Result<u32, String> {
    match g.parse::<u32>() {
        Ok(gid) => Ok(gid),
        Err(_) => group_entries(group)
            .find(|(name, _, _)| *name == g)
            .map(|(_, gid, _)| gid)
            .ok_or_else(|| format!("group {g:?} not found in the image's /etc/group")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nbroken line\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\naudio:x:29:app,other\nvideo:x:44:other\n";

    #[test]
    fn names_and_numbers_resolve() {
        let app = resolve_user("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (
                app.uid,
                app.gid,
                app.additional_gids.as_slice(),
                app.home.as_str()
            ),
            (1000, 1000, &[29][..], "/home/app")
        );
        let root = resolve_user("", PASSWD, GROUP).unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        let n = resolve_user("1000", PASSWD, GROUP).unwrap();
        assert_eq!((n.uid, n.gid), (1000, 1000));
    }

    #[test]
    fn unknown_numeric_uid_gets_gid_zero_and_root_home() {
        let u = resolve_user("4242", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
    }

    #[test]
    fn explicit_group_skips_supplementary_groups() {
        let u = resolve_user("app:video", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.len()), (1000, 44, 0));
        let u = resolve_user("5:7", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (5, 7));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(
            resolve_user("nobody", PASSWD, GROUP)
                .unwrap_err()
                .contains("/etc/passwd")
        );
        assert!(
            resolve_user("app:nogroup", PASSWD, GROUP)
                .unwrap_err()
                .contains("/etc/group")
        );
    }
}
