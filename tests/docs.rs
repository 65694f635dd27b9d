//! What the ecosystem expects of a command-line tool: `--version` naming
//! the commit, completions that a real bash, zsh and fish load and use, and man
//! pages for `custos`, each subcommand and `custos-shell`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;

const CUSTOS: &str = env!("CARGO_BIN_EXE_custos");

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_names_the_commit_built_from() {
    let head = stdout(Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(env!("CARGO_MANIFEST_DIR")));
    let version = stdout(Command::new(CUSTOS).arg("--version"));
    assert_eq!(version.trim(), format!("custos {} (commit {})", env!("CARGO_PKG_VERSION"), head.trim()));
}

/// What bash's completion offers after `words` (the last one being typed),
/// with the script `custos completions bash` prints loaded.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        ". {script}; COMP_WORDS=({line}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT={point}; \
         $(complete -p custos | sed 's/.*-F \\([^ ]*\\) .*/\\1/') custos '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display(),
        cword = words.len() - 1,
        point = line.len(),
        cur = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    stdout(Command::new("bash").args(["--norc", "--noprofile", "-c", &program])).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_subcommands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("custos.bash");
    std::fs::write(&script, stdout(Command::new(CUSTOS).args(["completions", "bash"]))).unwrap();
    let subcommands = bash_completes(&script, &["custos", "se"]);
    assert!(subcommands.contains(&"serve".to_owned()) && subcommands.contains(&"sessions".to_owned()), "{subcommands:?}");
    assert!(!subcommands.iter().any(|s| s == "pane-launcher"), "a hidden subcommand is offered: {subcommands:?}");
    let options = bash_completes(&script, &["custos", "serve", "--li"]);
    assert_eq!(options, ["--listen"]);
}

#[test]
fn zsh_loads_the_completion_for_custos() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("_custos"), stdout(Command::new(CUSTOS).args(["completions", "zsh"]))).unwrap();
    // As zsh finds it in a directory on its fpath (where install.sh puts
    // it): compinit registers it for `custos` from its #compdef line.
    let program = format!(
        "fpath=({} $fpath); autoload -Uz compinit; compinit -u -d {}/zcompdump; print -r -- ${{_comps[custos]}}; autoload -Uz +X _custos; functions _custos",
        dir.path().display(),
        dir.path().display()
    );
    let out = stdout(Command::new("zsh").args(["-f", "-c", &program]));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("_custos"), "{out}");
    assert!(out.contains("serve") && out.contains("--listen"), "{out}");
}

#[test]
fn fish_completes_subcommands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("custos.fish");
    std::fs::write(&script, stdout(Command::new(CUSTOS).args(["completions", "fish"]))).unwrap();
    let complete = |line: &str| {
        let program = format!("source {}; complete -C '{line}'", script.display());
        let out = stdout(Command::new("fish").args(["--no-config", "-c", &program]));
        out.lines().map(|l| l.split('\t').next().unwrap_or_default().to_owned()).collect::<Vec<_>>()
    };
    let subcommands = complete("custos se");
    assert_eq!(subcommands, ["serve", "sessions"]);
    assert_eq!(complete("custos serve --li"), ["--listen"]);
}

#[test]
fn man_pages_cover_custos_its_subcommands_and_custos_shell() {
    let dir = tempfile::tempdir().unwrap();
    stdout(Command::new(CUSTOS).args(["man", "--out"]).arg(dir.path()));
    let page = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(page("custos.1").contains(&format!(".TH custos 1  \"custos {}", env!("CARGO_PKG_VERSION"))), "{}", page("custos.1"));
    assert!(page("custos.1").contains("custos\\-serve(1)"), "custos.1 lists its subcommands");
    assert!(page("custos-serve.1").contains("\\-\\-listen"));
    assert!(page("custos-shell.1").contains(".TH custos-shell 1") && page("custos-shell.1").contains("/etc/custos/policy.toml"));
    assert!(!dir.path().join("custos-pane-launcher.1").exists(), "a hidden subcommand has a page");
}
