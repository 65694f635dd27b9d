//! Getting the hooks into the user's shell, the way kitty and VS Code get
//! their shell integration in: after the user's own startup files, without
//! touching them.
//!
//! - bash is started with `--posix` and `ENV` naming `custos.bash`: in posix
//!   mode bash reads only `$ENV`, and the script turns posix mode off and
//!   reads the files bash would have read (it stays a login shell, so
//!   `logout` and `shopt login_shell` behave).
//! - zsh is started with `ZDOTDIR` naming a directory of ours whose startup
//!   files read the user's and hand over at the end (see `custos.zsh`).
//! - Without a terminal (`BatchHooks`, see `gate::batch`) there is no line
//!   editor to hook: bash reads `batch.bash` through `BASH_ENV`, zsh reads
//!   `batch.zsh` as the `.zshenv` of a `ZDOTDIR` of ours, which stays ours
//!   in the environment so that every zsh the script starts reads it too.
//!
//! The scripts are files in the repository (`src/gate/hooks/`), embedded in
//! the binary and written at session start to a fresh directory that the
//! recorder owns and removes. The gate is one end of a socket pair whose
//! other end the child puts on [`GATE_FD`] before exec: nothing listens,
//! so nothing else can connect (see `socket`). The shell proves it is the
//! session's shell with a token passed in its environment, which the hooks
//! remove at once, and hands the descriptor to a relay of its own (a
//! coprocess, whose pipes bash and zsh keep from every program the shell
//! starts), so no other program inherits it.

use std::ffi::OsString;
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub const BASH_HOOKS: &str = include_str!("hooks/custos.bash");
pub const ZSH_HOOKS: &str = include_str!("hooks/custos.zsh");
pub const BATCH_HOOKS: &str = include_str!("hooks/batch.bash");

/// The line install.sh puts at the top of `/etc/bash.bashrc`. A bash that
/// sshd runs at shell level 1 (which `exec bash -c` reaches) or with a
/// socket on stdin reads `/etc/bash.bashrc` and `~/.bashrc` *instead of*
/// `BASH_ENV`, and an interactive bash (`bash -i` on a pipe, python's
/// `pty.spawn`, `script`) never reads `BASH_ENV`: inside a session without
/// a terminal, this line loads the script gate there too. Elsewhere
/// `BASH_ENV` is not our hooks file and it does nothing.
pub const BASHRC_HOOK: &str = r#"case ${BASH_ENV-} in /tmp/custos-gate-*/batch.bash) . "$BASH_ENV" ;; esac"#;
pub const BATCH_ZSH_HOOKS: &str = include_str!("hooks/batch.zsh");
/// The batch gate's ZDOTDIR: `batch.zsh` is its `.zshenv`; the others read
/// the user's own files of the same name.
const BATCH_ZDOTDIR_FILES: [(&str, &str); 5] = [
    (".zshenv", BATCH_ZSH_HOOKS),
    (".zprofile", include_str!("hooks/batch-zdotdir/.zprofile")),
    (".zshrc", include_str!("hooks/batch-zdotdir/.zshrc")),
    (".zlogin", include_str!("hooks/batch-zdotdir/.zlogin")),
    (".zlogout", include_str!("hooks/batch-zdotdir/.zlogout")),
];
const ZDOTDIR_FILES: [(&str, &str); 4] = [
    (".zshenv", include_str!("hooks/zdotdir/.zshenv")),
    (".zprofile", include_str!("hooks/zdotdir/.zprofile")),
    (".zshrc", include_str!("hooks/zdotdir/.zshrc")),
    (".zlogin", include_str!("hooks/zdotdir/.zlogin")),
];

/// The descriptor the hooks find the gate on when the shell starts.
pub const GATE_FD: i32 = 9;

/// The shells the gate has hooks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellKind {
    Bash,
    Zsh,
}

impl ShellKind {
    /// By the program's name: `bash`, `zsh` (versioned names too).
    pub fn of(shell: &Path) -> Option<Self> {
        let name = shell.file_name()?.to_str()?;
        if name == "bash" || name.starts_with("bash-") || name.starts_with("bash5") {
            Some(ShellKind::Bash)
        } else if name == "zsh" || name.starts_with("zsh-") {
            Some(ShellKind::Zsh)
        } else {
            None
        }
    }
}

/// A prepared injection: the directory, the socket pair, the token, and
/// what the shell's command line and environment must carry.
pub struct Injection {
    pub kind: ShellKind,
    /// The recorder's end of the gate's socket pair.
    pub gate: UnixStream,
    pub token: String,
    /// The shell's end, until the fork has handed it over.
    shell_end: Option<OwnedFd>,
    // Removed when the session ends (dropped last).
    dir: tempfile::TempDir,
}

impl Injection {
    /// Writes the hooks for `kind` and opens the gate's socket.
    pub fn prepare(kind: ShellKind) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("custos-gate-").tempdir_in("/tmp")?;
        // Others may pass through to the socket (its peer's uid is checked)
        // but not list the directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
        let readable = |path: &Path, text: &str| -> std::io::Result<()> {
            std::fs::write(path, text)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        };
        match kind {
            ShellKind::Bash => readable(&dir.path().join("custos.bash"), BASH_HOOKS)?,
            ShellKind::Zsh => {
                let z = dir.path().join("zsh");
                std::fs::create_dir(&z)?;
                std::fs::set_permissions(&z, std::fs::Permissions::from_mode(0o755))?;
                for (name, text) in ZDOTDIR_FILES {
                    readable(&z.join(name), text)?;
                }
                readable(&z.join("custos.zsh"), ZSH_HOOKS)?;
            }
        }
        // Both ends close-on-exec: the child's dup2 onto GATE_FD makes the
        // one copy the shell keeps.
        let (gate, shell) = UnixStream::pair()?;
        let mut raw = [0u8; 24];
        super::fill_random(&mut raw);
        let token = raw.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { kind, gate, token, shell_end: Some(OwnedFd::from(shell)), dir })
    }

    /// The descriptor the child puts on [`GATE_FD`] (valid until
    /// [`Injection::handed_over`]).
    pub fn shell_fd(&self) -> Option<RawFd> {
        self.shell_end.as_ref().map(|fd| fd.as_raw_fd())
    }

    /// After the fork: the recorder keeps no copy of the shell's end, so
    /// that the shell is the only process holding it.
    pub fn handed_over(&mut self) {
        self.shell_end = None;
    }

    /// The directory the hooks were written to.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Arguments that go before the user's own.
    pub fn args(&self) -> Vec<OsString> {
        match self.kind {
            ShellKind::Bash => vec!["--posix".into()],
            ShellKind::Zsh => Vec::new(),
        }
    }

    /// Environment the shell starts with (the hooks remove or restore it).
    /// `args` are the user's arguments: bash's `--norc` and `--noprofile`
    /// are passed on for the script to honour.
    pub fn env(&self, args: &[OsString]) -> Vec<(String, String)> {
        let mut env = vec![("CUSTOS_GATE_TOKEN".to_owned(), self.token.clone())];
        for (flag, var) in [("--norc", "CUSTOS_BASH_NORC"), ("--noprofile", "CUSTOS_BASH_NOPROFILE")] {
            if self.kind == ShellKind::Bash && args.iter().any(|a| a == flag) {
                env.push((var.into(), "1".into()));
            }
        }
        match self.kind {
            ShellKind::Bash => {
                if let Ok(orig) = std::env::var("ENV") {
                    env.push(("CUSTOS_ENV_ORIG".into(), orig));
                }
                env.push(("ENV".into(), self.dir.path().join("custos.bash").display().to_string()));
                // In posix mode bash names its history `~/.sh_history`
                // when the environment names none: the script puts bash's
                // own name back in that case only.
                if std::env::var_os("HISTFILE").is_none() {
                    env.push(("CUSTOS_HISTFILE_UNSET".into(), "1".into()));
                }
            }
            ShellKind::Zsh => {
                if let Ok(orig) = std::env::var("ZDOTDIR") {
                    env.push(("CUSTOS_ZDOTDIR_ORIG".into(), orig));
                }
                env.push(("ZDOTDIR".into(), self.dir.path().join("zsh").display().to_string()));
            }
        }
        env
    }
}

/// The gate for bash and zsh without a terminal (see `gate::batch`): the
/// hooks of both written to a directory of ours, the loopback socket they
/// ask on, the token, and the environment that points each shell at them.
///
/// Both shells' hooks are set up whichever shell the session starts, so a
/// bash started from a zsh script (or a zsh from a bash script) is gated
/// as well: `BASH_ENV` names `batch.bash`, `ZDOTDIR` a directory whose
/// `.zshenv` is `batch.zsh`.
pub struct BatchHooks {
    pub listener: std::net::TcpListener,
    pub token: String,
    bash: PathBuf,
    zdotdir: PathBuf,
    // Removed when the session ends.
    _dir: tempfile::TempDir,
}

impl BatchHooks {
    pub fn prepare() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("custos-gate-").tempdir_in("/tmp")?;
        // The user's shells read the files but cannot list or change them.
        let private = |path: &Path| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711));
        let readable = |path: &Path, text: &str| -> std::io::Result<()> {
            std::fs::write(path, text)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        };
        private(dir.path())?;
        let bash = dir.path().join("batch.bash");
        readable(&bash, BATCH_HOOKS)?;
        let zdotdir = dir.path().join("zsh");
        std::fs::create_dir(&zdotdir)?;
        private(&zdotdir)?;
        for (name, text) in BATCH_ZDOTDIR_FILES {
            readable(&zdotdir.join(name), text)?;
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let mut raw = [0u8; 24];
        super::fill_random(&mut raw);
        let token = raw.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { listener, token, bash, zdotdir, _dir: dir })
    }

    /// The shell's environment: `BASH_ENV` and `ZDOTDIR` (the user's own
    /// kept for the hooks to read), the port, the token, and what a
    /// refusal does.
    pub fn env(&self, exit_on_refusal: bool) -> std::io::Result<Vec<(String, String)>> {
        let port = self.listener.local_addr()?.port();
        let mut env = vec![
            ("BASH_ENV".to_owned(), self.bash.display().to_string()),
            ("ZDOTDIR".to_owned(), self.zdotdir.display().to_string()),
            ("CUSTOS_GATE_PORT".to_owned(), port.to_string()),
            ("CUSTOS_GATE_TOKEN".to_owned(), self.token.clone()),
            ("CUSTOS_GATE_EXIT".to_owned(), if exit_on_refusal { "1" } else { "0" }.to_owned()),
        ];
        for (var, kept) in [("BASH_ENV", "CUSTOS_BASH_ENV_ORIG"), ("ZDOTDIR", "CUSTOS_ZDOTDIR_ORIG")] {
            if let Some(orig) = std::env::var_os(var) {
                env.push((kept.to_owned(), orig.to_string_lossy().into_owned()));
            }
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn install_sh_writes_the_bashrc_hook_and_it_matches_our_hooks_path() {
        // install.sh and the Debian package both write it from host.sh.
        let host = include_str!("../../install/host.sh");
        assert!(host.contains(&format!("echo '{BASHRC_HOOK}'")), "install/host.sh and BASHRC_HOOK differ");
        assert!(include_str!("../../install.sh").contains(". \"$here/install/host.sh\""), "install.sh sources install/host.sh");
        let hooks = BatchHooks::prepare().unwrap();
        let path = hooks.bash.display().to_string();
        let dir = path.strip_prefix("/tmp/custos-gate-").unwrap();
        assert!(dir.ends_with("/batch.bash") && !dir.trim_end_matches("/batch.bash").contains('/'), "{path}");
    }

    #[test]
    fn shells_are_known_by_name() {
        assert_eq!(ShellKind::of(Path::new("/bin/bash")), Some(ShellKind::Bash));
        assert_eq!(ShellKind::of(Path::new("/usr/local/bin/zsh")), Some(ShellKind::Zsh));
        assert_eq!(ShellKind::of(Path::new("/bin/sh")), None);
        assert_eq!(ShellKind::of(Path::new("/usr/bin/fish")), None);
    }

    #[test]
    fn prepared_directory_holds_the_hooks_and_goes_away() {
        let mut inj = Injection::prepare(ShellKind::Zsh).unwrap();
        let dir = inj.dir().to_owned();
        assert!(!dir.join("gate.sock").exists(), "the gate must not listen on a path");
        assert!(inj.shell_fd().is_some());
        inj.handed_over();
        assert!(inj.shell_fd().is_none());
        assert!(dir.join("zsh/.zshenv").is_file());
        assert_eq!(std::fs::read_to_string(dir.join("zsh/custos.zsh")).unwrap(), ZSH_HOOKS);
        let env = inj.env(&[]);
        assert!(env.iter().any(|(k, v)| k == "ZDOTDIR" && v.ends_with("/zsh")));
        assert_eq!(inj.token.len(), 48);
        drop(inj);
        assert!(!dir.exists());
    }

    #[test]
    fn batch_hooks_serve_bash_and_zsh_from_one_directory() {
        let hooks = BatchHooks::prepare().unwrap();
        let env: std::collections::HashMap<_, _> = hooks.env(true).unwrap().into_iter().collect();
        let zdotdir = Path::new(&env["ZDOTDIR"]);
        assert_eq!(std::fs::read_to_string(zdotdir.join(".zshenv")).unwrap(), BATCH_ZSH_HOOKS);
        assert_eq!(std::fs::read_to_string(&env["BASH_ENV"]).unwrap(), BATCH_HOOKS);
        for dir in [zdotdir, zdotdir.parent().unwrap()] {
            assert_eq!(std::fs::metadata(dir).unwrap().permissions().mode() & 0o777, 0o711, "{}", dir.display());
        }
        for name in [".zshenv", ".zprofile", ".zshrc", ".zlogin", ".zlogout"] {
            assert_eq!(std::fs::metadata(zdotdir.join(name)).unwrap().permissions().mode() & 0o777, 0o644, "{name}");
        }
        assert_eq!(env["CUSTOS_GATE_EXIT"], "1");
        let dir = zdotdir.parent().unwrap().to_owned();
        drop(hooks);
        assert!(!dir.exists());
    }
}
