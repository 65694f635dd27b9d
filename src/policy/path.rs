//! Lexical path canonicalisation: what a path argument names, without asking
//! the file system.
//!
//! The gate decides before the command runs and must not touch the disk (a
//! pure core; also, a path that does not exist yet is still dangerous), so
//! `..` is resolved by text, as `realpath -m` does, not through symlinks. A
//! symlink can therefore make a path mean something else; rules about system
//! directories name the directories themselves, which are not symlinks on a
//! sane host.

/// `path` made absolute against `cwd` (and `home` for a leading `~`), with
/// `//`, `/./`, `/..` and trailing slashes removed. `..` above the root stays
/// at the root, as the kernel does.
pub fn canonical(path: &str, cwd: &str) -> String {
    let joined;
    let full = if path.starts_with('/') {
        path
    } else {
        joined = format!("{cwd}/{path}");
        joined.as_str()
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in full.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = String::with_capacity(full.len());
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The last component of a program path: what `$0` names once the shell has
/// searched `PATH` (`/usr/bin/rm` and `rm` are the same program to a rule).
pub fn basename(program: &str) -> &str {
    let trimmed = program.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("/", "/")]
    #[case("//", "/")]
    #[case("///etc//", "/etc")]
    #[case("/./etc/.", "/etc")]
    #[case("/usr/../etc", "/etc")]
    #[case("/..", "/")]
    #[case("/../../etc", "/etc")]
    #[case("/etc/", "/etc")]
    #[case("build", "/home/alice/build")]
    #[case("./build/", "/home/alice/build")]
    #[case("..", "/home")]
    #[case("../..", "/")]
    #[case("../../..", "/")]
    #[case("*", "/home/alice/*")]
    #[case("/*", "/*")]
    #[case("", "/home/alice")]
    fn canonicalises_lexically(#[case] path: &str, #[case] expected: &str) {
        assert_eq!(canonical(path, "/home/alice"), expected);
    }

    #[rstest]
    #[case("rm", "rm")]
    #[case("/bin/rm", "rm")]
    #[case("/usr/local/bin/", "bin")]
    #[case("./rm", "rm")]
    fn basenames(#[case] program: &str, #[case] expected: &str) {
        assert_eq!(basename(program), expected);
    }
}
