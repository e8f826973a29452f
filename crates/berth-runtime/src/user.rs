//! `user[:group]` → uid, gid, supplementary groups and home, from passwd and group files, as
//! Docker resolves `--user` (for `create` against the image's files, for `exec` against the
//! files inside the running container).

/// A resolved `--user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub additional: Vec<u32>,
    /// Home directory.
    pub home: String,
}

/// Resolves `user[:group]` against the image's passwd and group files, as Docker does.
pub fn resolve_user(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entries: Vec<Vec<&str>> = passwd
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let (uid, mut gid, name, home) = match user.parse::<u32>() {
        Ok(uid) => match entries
            .iter()
            .find(|e| e[2].parse::<u32>().ok() == Some(uid))
        {
            Some(e) => (
                uid,
                e[3].parse().unwrap_or(0),
                Some(e[0].to_string()),
                e[5].to_string(),
            ),
            None => (uid, 0, None, "/".to_string()),
        },
        Err(_) => match entries.iter().find(|e| e[0] == user) {
            Some(e) => (
                e[2].parse()
                    .map_err(|_| format!("invalid uid for user {user} in /etc/passwd"))?,
                e[3].parse().unwrap_or(0),
                Some(user.to_string()),
                e[5].to_string(),
            ),
            None => {
                return Err(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                ))
            }
        },
    };
    if let Some(g) = grp.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|e| e[0] == g)
                .and_then(|e| e[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    let mut additional: Vec<u32> = Vec::new();
    if let Some(name) = &name {
        for e in &groups {
            let members = e.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name) {
                if let Ok(g) = e[2].parse::<u32>() {
                    if g != gid && !additional.contains(&g) {
                        additional.push(g);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional,
        home: if home.is_empty() { "/".into() } else { home },
    })
}
