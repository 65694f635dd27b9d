//! Debian's real sshd, started for one test on a free loopback port, with
//! its own configuration, host key and pid file in a temporary directory.
//!
//! The configuration is Debian's default where it matters to custos:
//! `UsePAM yes` (with `UsePAM no`, sshd refuses key logins to accounts
//! whose password is locked, as `useradd` leaves them), and the external
//! `sftp-server`, which sshd starts through the user's login shell, so sftp
//! and modern scp are recorded. (`internal-sftp` would bypass the login
//! shell; `custos doctor` warns about it.)

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    user: String,
}

impl Sshd {
    /// Starts sshd and authorizes a fresh client key for `user`.
    pub fn start(user: &str, home: &Path) -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install Debian's openssh-server (apt-get install -y openssh-server rsync; .ci/run does this)"
        );
        let dir = tempfile::tempdir().unwrap();
        let keygen = |file: &str| {
            let path = dir.path().join(file);
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&path)
                .status()
                .unwrap();
            assert!(st.success(), "ssh-keygen failed");
        };
        keygen("host_key");
        keygen("client_key");
        // Shown by a client that logs at INFO (the tests' clients log only
        // errors), before the login shell starts: what a login's message
        // of the day is to the terminal.
        std::fs::write(dir.path().join("banner"), format!("{BANNER}\n")).unwrap();

        let ssh_dir = home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        std::fs::copy(dir.path().join("client_key.pub"), ssh_dir.join("authorized_keys")).unwrap();
        let st = Command::new("chown").args(["-R", &format!("{user}:{user}")]).arg(&ssh_dir).status().unwrap();
        assert!(st.success());
        let st = Command::new("chmod").args(["-R", "go-rwx"]).arg(&ssh_dir).status().unwrap();
        assert!(st.success());
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();

        // The port is free when we look; if another process takes it before
        // sshd binds, sshd exits and we try another.
        for _ in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
            let config = dir.path().join("sshd_config");
            std::fs::write(&config, config_text(dir.path(), port, user)).unwrap();
            let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                    return Self { dir, child, port, user: user.to_owned() };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start; its log:\n{}",
            std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
        );
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// Client options shared by ssh, scp and rsync's `-e`: this key only,
    /// no agent, no host-key prompt, no user configuration.
    pub fn client_options(&self) -> Vec<String> {
        [
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            "-i",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([self.key().display().to_string()])
        .collect()
    }

    pub fn host(&self) -> String {
        format!("{}@127.0.0.1", self.user)
    }

    /// `ssh [options] user@127.0.0.1`; append the remote command.
    pub fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.client_options()).args(["-p", &self.port.to_string()]).arg(self.host());
        cmd
    }

    /// The arguments of an interactive `ssh -tt`.
    pub fn ssh_tt_args(&self) -> Vec<String> {
        let mut args = vec!["-tt".to_owned()];
        args.extend(self.client_options());
        args.extend(["-p".to_owned(), self.port.to_string(), self.host()]);
        args
    }

    /// `scp [options]`, in legacy mode (`scp -t`/`-f` through the login
    /// shell) when `legacy`, else over the sftp subsystem.
    pub fn scp(&self, legacy: bool) -> Command {
        let mut cmd = Command::new("scp");
        if legacy {
            cmd.arg("-O");
        }
        cmd.args(["-q", "-P", &self.port.to_string()]).args(self.client_options());
        cmd
    }

    /// The `-e` value for rsync.
    pub fn rsync_shell(&self) -> String {
        let mut parts = vec!["ssh".to_owned()];
        parts.extend(self.client_options());
        parts.extend(["-p".to_owned(), self.port.to_string()]);
        parts.join(" ")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// The pre-login banner sshd shows (see `Sshd::start`).
pub const BANNER: &str = "custos system tests: authorised use only";

fn config_text(dir: &Path, port: u16, user: &str) -> String {
    format!(
        "# sshd for custos system tests\n\
         Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {dir}/host_key\n\
         PidFile {dir}/sshd.pid\n\
         UsePAM yes\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         AllowUsers {user}\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         Banner {dir}/banner\n\
         Subsystem sftp /usr/lib/openssh/sftp-server\n",
        dir = dir.display()
    )
}
