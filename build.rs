//! Names the commit the binaries are built from, for `custos --version`:
//! an auditor holding a recording a year later can then say exactly which
//! code made it. Outside a git checkout (a source tarball) it says so.

use std::process::Command;

fn main() {
    // The commit checked out; changes not yet committed are not named
    // (watching every file for them would rebuild on every `git status`).
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CUSTOS_COMMIT={commit}");
    // Rebuilt when HEAD moves (a checkout, or a commit on the branch).
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Some(head) = std::fs::read_to_string(".git/HEAD").ok().and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_owned())) {
        // A branch whose ref was packed has no file of its own.
        let loose = format!(".git/{head}");
        let watched = if std::path::Path::new(&loose).exists() { loose } else { ".git/packed-refs".to_owned() };
        println!("cargo:rerun-if-changed={watched}");
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
