//! `custos-shell` is setuid root and runs every privileged login, so it
//! links no HTTP client or server, no TLS, no async runtime, no SQL and no
//! TUI: those live in the `custos` binary (`serve`, `upload`, the identity
//! helper, `replay`, `approve`), which the shell only ever spawns. This
//! test keeps that true by construction rather than by convention: it reads
//! the binary's symbols with `nm -C` and fails if a forbidden crate's code
//! is in it.
//!
//! Unreferenced code is not linked (`--gc-sections`), so a crate shows up
//! in the symbols exactly when something `custos-shell` can reach calls it.
//! The debug binary Cargo builds for this test is always checked; the
//! release binary too when `target/release/custos-shell` exists and is
//! newer than the sources.
//!
//! The check is shown to be able to fail: the same reading of the `custos`
//! binary must find `tokio` and `reqwest`, and the shell's own symbols must
//! include crates it does use (`alacritty_terminal`, `zstd`), so an `nm`
//! that prints nothing cannot pass for a clean binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Crates whose code must never be linked into `custos-shell`.
const FORBIDDEN: &[&str] = &["reqwest", "hyper", "rustls", "tokio", "sqlx", "axum", "ratatui", "crossterm", "clap_complete", "clap_mangen", "tracing_subscriber"];

/// Crates `custos-shell` does use: their symbols prove `nm` read it.
const USED: &[&str] = &["alacritty_terminal", "zstd"];

/// The demangled symbol names of `binary`.
fn symbols(binary: &Path) -> Vec<String> {
    let out = Command::new("nm")
        .arg("-C")
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm (install binutils): {e}"));
    assert!(out.status.success(), "nm -C {} failed: {}", binary.display(), String::from_utf8_lossy(&out.stderr));
    // `ADDRESS TYPE NAME` or, for undefined symbols, `TYPE NAME`.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let typed = match line.split_once(' ') {
                Some((address, rest)) if address.len() > 1 => rest,
                _ => line,
            };
            typed.split_once(' ').map(|(_, name)| name.to_owned())
        })
        .collect()
}

/// Whether `symbol` has a path in crate `name` (`name::…`, also inside
/// generics and trait impls: `<name::X as …>`), and not merely a crate
/// whose name ends in it.
fn mentions(symbol: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    symbol.match_indices(&needle).any(|(at, _)| {
        let before = symbol[..at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The crates of `names` that have symbols in `syms`, each with an example.
fn found<'a>(syms: &[String], names: &[&'a str]) -> Vec<(&'a str, String)> {
    names
        .iter()
        .filter_map(|name| syms.iter().find(|s| mentions(s, name)).map(|s| (*name, s.clone())))
        .collect()
}

fn assert_lean(binary: &Path) {
    let syms = symbols(binary);
    let used = found(&syms, USED);
    assert_eq!(
        used.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        USED,
        "nm found {} symbols in {} but not those of every crate it uses: is it stripped?",
        syms.len(),
        binary.display()
    );
    let forbidden = found(&syms, FORBIDDEN);
    assert!(
        forbidden.is_empty(),
        "{} links code it must not (each with one of its symbols):\n{}",
        binary.display(),
        forbidden.iter().map(|(n, s)| format!("  {n}: {s}")).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn custos_shell_links_no_http_tls_async_runtime_sql_or_tui() {
    assert_lean(Path::new(env!("CARGO_BIN_EXE_custos-shell")));
}

/// The newest modification time of the files a build reads.
fn newest_source() -> SystemTime {
    fn walk(dir: &Path, newest: &mut SystemTime) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else {
                *newest = (*newest).max(entry.metadata().unwrap().modified().unwrap());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = SystemTime::UNIX_EPOCH;
    for file in ["Cargo.toml", "Cargo.lock"] {
        newest = newest.max(std::fs::metadata(root.join(file)).unwrap().modified().unwrap());
    }
    for dir in ["src", "defaults"] {
        walk(&root.join(dir), &mut newest);
    }
    newest
}

#[test]
fn a_release_custos_shell_built_from_these_sources_is_lean_too() {
    let release = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/custos-shell");
    let Ok(built) = std::fs::metadata(&release).and_then(|m| m.modified()) else {
        eprintln!("SKIP: no {} (cargo build --release checks it too)", release.display());
        return;
    };
    if built < newest_source() {
        eprintln!("SKIP: {} is older than the sources", release.display());
        return;
    }
    assert_lean(&release);
}

/// The check can fail: the `custos` binary does link the async runtime and
/// the HTTP client, and the same reading of its symbols finds them.
#[test]
fn the_same_check_finds_tokio_and_reqwest_in_custos() {
    let syms = symbols(Path::new(env!("CARGO_BIN_EXE_custos")));
    let found: Vec<&str> = found(&syms, &["tokio", "reqwest"]).into_iter().map(|(n, _)| n).collect();
    assert_eq!(found, ["tokio", "reqwest"]);
}

#[test]
fn a_crate_is_named_by_its_path_not_by_a_suffix() {
    assert!(mentions("tokio::runtime::Runtime::new", "tokio"));
    assert!(mentions("<hyper::body::Incoming as core::fmt::Debug>::fmt", "hyper"));
    assert!(mentions("core::ptr::drop_in_place<axum::routing::Router>", "axum"));
    assert!(!mentions("hyper_util::client::legacy::Client::new", "hyper"));
    assert!(!mentions("my_tokio::spawn", "tokio"));
    assert!(!mentions("custos::recorder::shell::run", "tokio"));
}
