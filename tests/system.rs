//! System tests: custos installed for real, as root, and used by a real
//! unprivileged user.
//!
//! A privileged `custos-shell` reads only `/etc/custos/custos.toml` and
//! records only into `/var/lib/custos`, so these tests cannot use private
//! temporary paths: they install onto the real system paths with
//! `install.sh --binaries target/debug --prefix <tempdir>`, create the user
//! `custos-t1`, and undo both afterwards (also when a test fails: [`System`]
//! cleans up in `Drop`). They are serialized by a mutex and, against other
//! test processes, by a file lock. They refuse to run on a host that has a
//! real custos installation, which they would overwrite.
//!
//! Not root: each test prints SKIP and passes. CI runs them as root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;
#[path = "system/sshd.rs"]
mod sshd;
#[path = "system/term.rs"]
mod term;
#[path = "system/escapes.rs"]
mod escapes;
#[path = "system/channel.rs"]
mod channel;
#[path = "system/backstop.rs"]
mod backstop;
#[path = "support/stored.rs"]
mod stored;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;

use term::Term;

const SHELL_BIN: &str = env!("CARGO_BIN_EXE_custos-shell");
const CUSTOS_BIN: &str = env!("CARGO_BIN_EXE_custos");
const INSTALL_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh");
const DEFAULT_CONFIG: &str = include_str!("../defaults/custos.toml");

const USER: &str = "custos-t1";
const CONFIG: &str = "/etc/custos/custos.toml";
const SPOOL: &str = "/var/lib/custos";
const RECORDINGS: &str = "/var/lib/custos/recordings";
const CHUNKS: &str = "/var/lib/custos/chunks";
const HOST_PUBLIC_KEY: &str = "/var/lib/custos/host.key.pub";
const STATE: &str = "/var/lib/custos-install";
/// Written by these tests next to install.sh's state: the installation on
/// this host is theirs and may be purged.
const MARKER: &str = "/var/lib/custos-install/system-tests";
/// The user's login shell before install.sh replaces it. Not bash, so a
/// restored shell is told apart from a default.
const ORIGINAL_SHELL: &str = "/bin/sh";

const SHORT: Duration = Duration::from_secs(15);

static LOCK: Mutex<()> = Mutex::new(());

// ------------------------------------------------------------ the fixture

/// custos installed into a temporary prefix, with the test user assigned
/// to it. Dropping it uninstalls, purges and removes the user.
struct System {
    prefix: tempfile::TempDir,
    uid: u32,
    _file_lock: Flock<File>,
    _lock: MutexGuard<'static, ()>,
}

impl System {
    /// None (after printing SKIP) when not root.
    fn setup(test: &str) -> Option<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("SKIP {test}: needs root (it installs setuid binaries and creates users)");
            return None;
        }
        // A failed test poisons the mutex; the next one still needs it.
        let lock = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let file = File::options().create(true).truncate(false).write(true).open("/tmp/custos-system-tests.lock").unwrap();
        let file_lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e).unwrap();

        let ours = Path::new(MARKER).exists();
        assert!(
            ours || !(Path::new(CONFIG).exists() || Path::new(SPOOL).exists()),
            "this host has a custos installation ({CONFIG} or {SPOOL}) that these tests did not make; \
             they would overwrite it, so they refuse to run here"
        );
        remove_user();
        if ours {
            // Left by a run that could not clean up.
            for dir in ["/etc/custos", SPOOL, STATE] {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        run_ok(Command::new("useradd").args(["-m", "-s", ORIGINAL_SHELL, USER]));
        let uid = nix::unistd::User::from_name(USER).unwrap().unwrap().uid.as_raw();

        // The user must be able to reach and exec the binary.
        let prefix = tempfile::tempdir().unwrap();
        chmod(prefix.path(), 0o755);
        let system = Self { prefix, uid, _file_lock: file_lock, _lock: lock };
        let out = system.install(&["--user", USER]);
        assert!(out.status.success(), "install.sh failed:\n{}", text(&out));
        std::fs::write(MARKER, "custos system tests\n").unwrap();
        Some(system)
    }

    fn prefix(&self) -> &Path {
        self.prefix.path()
    }

    fn shell(&self) -> PathBuf {
        self.prefix().join("bin/custos-shell")
    }

    fn custos(&self) -> PathBuf {
        self.prefix().join("bin/custos")
    }

    /// Runs install.sh with the debug binaries and this prefix.
    fn install(&self, args: &[&str]) -> Output {
        // install.sh --binaries takes both from one directory.
        let binaries = Path::new(SHELL_BIN).parent().unwrap();
        assert_eq!(Path::new(CUSTOS_BIN).parent(), Some(binaries));
        Command::new("bash")
            .arg(INSTALL_SH)
            .arg("--binaries")
            .arg(binaries)
            .arg("--prefix")
            .arg(self.prefix())
            .args(args)
            .output()
            .unwrap()
    }

    fn uninstall(&self, args: &[&str]) -> Output {
        Command::new("bash").arg(INSTALL_SH).arg("--uninstall").arg("--prefix").arg(self.prefix()).args(args).output().unwrap()
    }

    fn doctor(&self) -> Output {
        Command::new(self.custos()).args(["doctor", "--prefix"]).arg(self.prefix()).output().unwrap()
    }

    /// An interactive login of the test user on a fresh terminal, as
    /// `login` would start it, with the prompt ready.
    fn login(&self) -> Term {
        let shell = self.shell();
        let mut term = Term::spawn("runuser", &["-u", USER, "--", shell.to_str().unwrap(), "-l"], 50, 200);
        term.run("true");
        term
    }

    fn service_ids(&self) -> (u32, u32) {
        let user = nix::unistd::User::from_name("custos").unwrap().expect("the custos user");
        (user.uid.as_raw(), user.gid.as_raw())
    }
}

impl Drop for System {
    fn drop(&mut self) {
        kill_user_processes(self.uid);
        // Uploaders still following a session of a collector the test
        // stopped: they run as the service user, which --purge removes.
        if let Ok(Some(service)) = nix::unistd::User::from_name("custos") {
            kill_user_processes(service.uid.as_raw());
        }
        let out = self.uninstall(&["--purge"]);
        if !out.status.success() {
            eprintln!("cleanup: install.sh --uninstall --purge failed:\n{}", text(&out));
        }
        remove_user();
    }
}

fn remove_user() {
    if let Ok(Some(user)) = nix::unistd::User::from_name(USER) {
        kill_user_processes(user.uid.as_raw());
        let _ = Command::new("userdel").args(["-r", "-f", USER]).stderr(Stdio::null()).status();
    }
}

/// Kills the processes whose real uid is `uid`, found in /proc: exactly
/// the test user's, nothing matched by name.
fn kill_user_processes(uid: u32) {
    for pid in processes_of(uid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_of(uid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn processes_of(uid: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| proc_ids(*pid, "Uid:").is_some_and(|ids| ids[0] == uid))
        .collect()
}

/// The four ids (real, effective, saved, filesystem) on a `Uid:`/`Gid:`
/// line of /proc/PID/status.
fn proc_ids(pid: i32, key: &str) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    Some(line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect())
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    out
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

fn owner(path: &Path) -> (u32, u32) {
    let m = std::fs::metadata(path).unwrap();
    (m.uid(), m.gid())
}

fn login_shell(user: &str) -> PathBuf {
    nix::unistd::User::from_name(user).unwrap().unwrap().shell
}

// ------------------------------------------------------------ recordings

/// A recording file, checked line by line as JSON without custos' own
/// parser: a second reader of the format.
struct Recording {
    path: PathBuf,
    header: Value,
    events: Vec<(f64, String, String)>,
}

impl Recording {
    /// A `.cast` file, or a session's directory of signed chunks (the
    /// host has a key, which install.sh makes), whose payloads in order
    /// are the same text.
    fn read(path: &Path) -> Self {
        let raw = if path.is_dir() { chunked_cast(path) } else { std::fs::read_to_string(path).unwrap() };
        let mut lines = raw.lines();
        let header: Value = serde_json::from_str(lines.next().expect("a header line")).unwrap();
        assert!(header.is_object(), "{}: the header is not an object", path.display());
        let events = lines
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str::<(f64, String, String)>(line)
                    .unwrap_or_else(|e| panic!("{} line {}: {e}: {line}", path.display(), i + 2))
            })
            .collect();
        Self { path: path.to_owned(), header, events }
    }

    fn custos(&self, key: &str) -> &Value {
        &self.header["custos"][key]
    }

    /// The labels of the `m` events, in order.
    fn markers(&self) -> Vec<String> {
        self.events.iter().filter(|e| e.1 == "m").map(|e| e.2.clone()).collect()
    }

    /// What a player shows: the output replayed on an emulator of the
    /// recorded size, every line including scrollback.
    fn screen(&self) -> String {
        let size = |v: &Value| u16::try_from(v.as_u64().unwrap()).unwrap();
        let mut emulator = term::Emulator::new(size(&self.header["term"]["rows"]), size(&self.header["term"]["cols"]));
        for (_, code, data) in &self.events {
            match code.as_str() {
                "o" => emulator.process(data.as_bytes()),
                "r" => {
                    let (cols, rows) = data.split_once('x').unwrap();
                    emulator.resize(rows.parse().unwrap(), cols.parse().unwrap());
                }
                _ => {}
            }
        }
        emulator.lines().join("\n")
    }

    /// The exit status of the final `x` event, which must be the last line.
    fn exit_status(&self) -> i32 {
        let last = self.events.last().unwrap_or_else(|| panic!("{}: no events", self.path.display()));
        assert_eq!(last.1, "x", "{}: the last event is not the exit status: {last:?}", self.path.display());
        last.2.parse().unwrap()
    }

    /// Checks what every recording of the test user must be.
    fn assert_session(&self, uid: u32, mode: &str, command: Option<&str>, status: i32) {
        assert_eq!(self.header["version"], 3);
        assert_eq!(self.custos("user"), USER, "{}", self.path.display());
        assert_eq!(self.custos("uid"), uid);
        assert_eq!(self.custos("mode"), mode, "{}", self.path.display());
        assert_eq!(self.custos("command").as_str(), command, "{}", self.path.display());
        assert_eq!(self.exit_status(), status, "{}", self.path.display());
        // The user can neither read nor change it.
        assert_eq!(mode_of(&self.path) & 0o077, 0, "{} is readable by others", self.path.display());
    }
}

fn mode_of(path: &Path) -> u32 {
    mode(path)
}

/// Every recording in the spool: plain `.cast` files and chunk directories.
fn recordings() -> BTreeSet<PathBuf> {
    [RECORDINGS, CHUNKS]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect::<Vec<_>>()).unwrap_or_default())
        .collect()
}

/// The cast text of a chunk directory, after checking that the chunks
/// verify, in order, with the key install.sh made.
fn chunked_cast(dir: &Path) -> String {
    let public = custos::evidence::PublicKey::load(Path::new(HOST_PUBLIC_KEY)).unwrap();
    let found = custos::evidence::SessionDir::open(dir).unwrap().found().unwrap();
    let report = custos::evidence::verify_chain(found, None, |id| (public.id() == *id).then_some(public));
    assert!(report.is_intact_so_far(), "{}: {:?}", dir.display(), report.problems);
    report.chunks.iter().map(|c| String::from_utf8(c.payload().unwrap()).unwrap()).collect()
}

/// The test user's recordings that are not in `before`, oldest first,
/// waiting briefly for each to be complete.
fn new_recordings(before: &BTreeSet<PathBuf>) -> Vec<Recording> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let paths: Vec<PathBuf> = recordings().difference(before).cloned().collect();
        // A session directory with no chunk yet is a recording still being
        // made: look again.
        let started = |p: &PathBuf| {
            !p.is_dir() || std::fs::read_dir(p).is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".chunk")))
        };
        if !paths.iter().all(started) && Instant::now() <= deadline {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let found: Vec<Recording> = paths
            .iter()
            .map(|p| Recording::read(p))
            .filter(|r| r.custos("user") == USER)
            .collect();
        let complete = found.iter().all(|r| r.events.last().is_some_and(|e| e.1 == "x"));
        if complete || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn only_new_recording(before: &BTreeSet<PathBuf>, what: &str) -> Recording {
    let mut found = new_recordings(before);
    assert_eq!(found.len(), 1, "{what}: expected one new recording, found {:?}", found.iter().map(|r| &r.path).collect::<Vec<_>>());
    found.remove(0)
}

// ------------------------------------------------------------ install.sh and doctor

#[test]
fn install_sets_owners_and_modes_and_uninstall_restores_the_login_shell() {
    let Some(sys) = System::setup("install") else { return };
    let (custos_uid, custos_gid) = sys.service_ids();
    assert_ne!(custos_uid, 0);

    assert_eq!(mode(&sys.shell()), 0o4755, "custos-shell must be setuid root");
    assert_eq!(owner(&sys.shell()), (0, 0));
    assert_eq!(mode(&sys.custos()), 0o711, "custos is not readable by users (its processes are not dumpable)");
    assert_eq!(owner(&sys.custos()), (0, 0));
    assert_eq!(mode(Path::new(CONFIG)), 0o644);
    assert_eq!(owner(Path::new(CONFIG)), (0, 0));
    assert_eq!(std::fs::read_to_string(CONFIG).unwrap(), DEFAULT_CONFIG, "the config is the embedded default");
    assert_eq!(mode(Path::new(SPOOL)), 0o700);
    assert_eq!(owner(Path::new(SPOOL)), (custos_uid, custos_gid));
    assert_eq!(login_shell(USER), sys.shell());
    // Man pages and completions, where man, bash-completion, zsh and fish
    // look; the user's bash completes with them.
    let share = sys.prefix().join("share");
    let docs = ["man/man1/custos.1", "man/man1/custos-shell.1", "man/man1/custos-serve.1", "bash-completion/completions/custos", "zsh/site-functions/_custos", "fish/vendor_completions.d/custos.fish"];
    for doc in docs {
        assert_eq!(mode(&share.join(doc)), 0o644, "{doc}");
    }
    let completion = share.join("bash-completion/completions/custos");
    let offered = Command::new("runuser")
        .args(["-u", USER, "--", "bash", "--norc", "-c"])
        .arg(format!(". {}; COMP_WORDS=(custos rep); COMP_CWORD=1; _custos custos rep custos; echo \"${{COMPREPLY[*]}}\"", completion.display()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&offered.stdout).trim(), "replay", "{}", text(&offered));
    let etc_shells = std::fs::read_to_string("/etc/shells").unwrap_or_default();
    assert!(!etc_shells.contains("custos-shell"), "install.sh must not list custos-shell in /etc/shells");

    // Because custos-shell is not in /etc/shells, the user cannot chsh away
    // from the recorder.
    let chsh = Command::new("runuser")
        .args(["-u", USER, "--", "chsh", "-s", "/bin/bash"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!chsh.status.success(), "chsh succeeded:\n{}", text(&chsh));
    assert_eq!(login_shell(USER), sys.shell());

    // Twice is fine: same result, an edited config is kept, and the
    // original shell is still the one remembered.
    let edited = format!("{DEFAULT_CONFIG}# edited by the admin\n");
    std::fs::write(CONFIG, &edited).unwrap();
    let again = sys.install(&["--user", USER]);
    assert!(again.status.success(), "second install failed:\n{}", text(&again));
    assert!(text(&again).contains("no problems found"), "install.sh ends with doctor:\n{}", text(&again));
    assert_eq!(std::fs::read_to_string(CONFIG).unwrap(), edited);
    assert_eq!(mode(&sys.shell()), 0o4755);
    assert_eq!(owner(&sys.shell()), (0, 0));

    // doctor: clean, then a missing setuid bit is a FAIL that names it.
    let good = sys.doctor();
    assert_eq!(good.status.code(), Some(0), "{}", text(&good));
    assert!(!text(&good).contains("FAIL"), "{}", text(&good));
    chmod(&sys.shell(), 0o0755);
    let bad = sys.doctor();
    chmod(&sys.shell(), 0o4755);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let report = text(&bad);
    let fail = report.lines().find(|l| l.starts_with("FAIL")).unwrap_or_else(|| panic!("no FAIL line:\n{report}"));
    assert!(fail.contains("setuid bit is missing"), "{fail}");
    assert!(fail.contains(sys.shell().to_str().unwrap()), "{fail}");
    assert!(report.contains(&format!("fix: chmod u+s {}", sys.shell().display())), "{report}");
    assert_eq!(sys.doctor().status.code(), Some(0));

    // Uninstall restores the shell and removes the binaries, keeps the
    // configuration and the spool; --purge removes those and the user.
    let out = sys.uninstall(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(login_shell(USER), Path::new(ORIGINAL_SHELL));
    assert!(!sys.shell().exists() && !sys.custos().exists());
    for doc in docs {
        assert!(!share.join(doc).exists(), "{doc} was left behind");
    }
    assert!(Path::new(CONFIG).exists() && Path::new(SPOOL).exists());
    let out = sys.uninstall(&["--purge"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!Path::new("/etc/custos").exists() && !Path::new(SPOOL).exists());
    assert!(nix::unistd::User::from_name("custos").unwrap().is_none());
}

/// `install.sh --collector` sets up the collector from nothing: its user,
/// its data prepared by `custos serve init` (the admin token printed once,
/// and the steps to enroll hosts), a configuration and a unit; the
/// collector then starts as that user from that configuration, and
/// `--uninstall --purge` removes it all.
#[test]
fn install_collector_prepares_a_collector_that_starts_as_its_own_user() {
    let Some(sys) = System::setup("install --collector") else { return };
    let out = sys.install(&["--collector"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("Admin token (shown once") && report.contains("custos enroll --server"), "{report}");
    let user = nix::unistd::User::from_name("custos-collector").unwrap().expect("the collector's user");
    let data = Path::new("/var/lib/custos-collector");
    assert_eq!(mode(data), 0o700);
    assert_eq!(owner(data).0, user.uid.as_raw());
    assert_eq!(owner(&data.join("custos.db")).0, user.uid.as_raw(), "serve init ran as the collector's user");
    let config = Path::new("/etc/custos/collector.toml");
    assert_eq!((mode(config), owner(config)), (0o644, (0, 0)));
    let unit = std::fs::read_to_string("/etc/systemd/system/custos-collector.service").unwrap();
    assert!(unit.contains(&format!("ExecStart={} serve --config /etc/custos/collector.toml", sys.custos().display())), "{unit}");
    assert!(unit.contains("User=custos-collector"), "{unit}");

    // Again: the data is kept, and no second admin token is made.
    let again = sys.install(&["--collector"]);
    assert!(again.status.success() && text(&again).contains("It was prepared before"), "{}", text(&again));

    // As the unit starts it (another address, as 8470 may be taken here).
    let mut serve = Command::new("runuser")
        .args(["-u", "custos-collector", "--"])
        .arg(sys.custos())
        .args(["serve", "--config", "/etc/custos/collector.toml", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        use std::io::BufRead as _;
        std::io::BufReader::new(serve.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
    }
    let health = first.trim().strip_prefix("http://").map(|addr| {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    });
    let _ = serve.kill();
    let _ = serve.wait();
    let health = health.unwrap_or_else(|| panic!("no address from the collector: {first:?}"));
    assert!(health.starts_with("HTTP/1.1 200") && health.contains("\"ok\""), "{health}");

    let out = sys.uninstall(&["--purge"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!data.exists() && !Path::new("/etc/systemd/system/custos-collector.service").exists());
    assert!(nix::unistd::User::from_name("custos-collector").unwrap().is_none());
}

// ------------------------------------------------------------ privilege separation

#[test]
fn the_user_cannot_signal_trace_or_read_the_recorder_and_killing_everything_keeps_the_recording() {
    let Some(sys) = System::setup("privilege separation") else { return };
    let (custos_uid, custos_gid) = sys.service_ids();
    let before = recordings();
    let mut t = sys.login();

    // The shell's parent is the recorder; check from outside that it runs
    // as custos on every id.
    let seen = t.run("printf 'r%sc=<%s>\\n' e $PPID");
    let recorder: i32 = between(&seen, "rec=<", ">").parse().unwrap();
    assert_eq!(proc_ids(recorder, "Uid:").unwrap(), vec![custos_uid; 4], "recorder uids");
    assert_eq!(proc_ids(recorder, "Gid:").unwrap(), vec![custos_gid; 4], "recorder gids");
    assert_eq!(std::fs::read_link(format!("/proc/{recorder}/exe")).unwrap(), sys.shell());

    let seen = t.run("kill -0 $PPID");
    assert!(seen.contains("Operation not permitted"), "kill -0 on the recorder:\n{seen}");

    // PTRACE_ATTACH (16) on the recorder fails, while the same call on the
    // user's own process works: it is privilege separation, not a global
    // ptrace restriction.
    let attach = "python3 -c 'import ctypes,os,sys; l=ctypes.CDLL(None,use_errno=True); \
                  r=l.ptrace(16,int(sys.argv[1]),0,0); print(\"ptrace-attach\", r, os.strerror(ctypes.get_errno()))'";
    let seen = t.run(&format!("{attach} $PPID"));
    assert!(seen.contains("ptrace-attach -1 Operation not permitted"), "ptrace on the recorder:\n{seen}");
    let seen = t.run(&format!("sleep 300 & {attach} $!; kill -9 $!"));
    assert!(seen.contains("ptrace-attach 0 Success"), "ptrace on the user's own process:\n{seen}");
    let seen = t.run("cat /proc/$PPID/environ");
    assert!(seen.contains("Permission denied"), "reading the recorder's memory-backed files:\n{seen}");

    // The spool is out of reach.
    let seen = t.run("ls /var/lib/custos");
    assert!(seen.contains("cannot open directory '/var/lib/custos': Permission denied"), "{seen}");
    let seen = t.run("echo forged > /var/lib/custos/recordings/forged.cast");
    assert!(seen.contains("Permission denied"), "{seen}");
    let seen = t.run("rm -rf /var/lib/custos/recordings");
    assert!(seen.contains("Permission denied"), "{seen}");
    assert!(!Path::new(RECORDINGS).join("forged.cast").exists());

    // Kill everything the user may: the recorder survives and keeps
    // recording. The user's kill also takes the shell's relay to the gate
    // (its coprocess): the shell's next check either dies of SIGPIPE or
    // finds the gate unavailable and runs nothing more. Either way the
    // session ends (Ctrl-D) and is recorded to its end.
    t.line("kill -9 -1; printf 'af%ser-%s\\n' t kill");
    std::thread::sleep(Duration::from_millis(1500));
    // The recorder may be gone only because the session ended (the shell
    // died of SIGPIPE): then its recording is complete, which a killed
    // recorder's would not be (checked below).
    let _ = recorder;
    t.send(b"\x15\x04");
    std::thread::sleep(Duration::from_millis(500));
    t.send(b"\x04");
    let status = t.wait(SHORT).code().unwrap_or(-1);
    assert!(status >= 0, "the login ended without a status:\n{}", t.transcript());

    let rec = only_new_recording(&before, "the killed session");
    rec.assert_session(sys.uid, "interactive", None, status);
    let output = rec.screen();
    for shown in ["kill: ", "Operation not permitted", "ptrace-attach -1", "Permission denied", "kill -9 -1"] {
        assert!(output.contains(shown), "the recording lacks {shown:?}:\n{output}");
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.rfind(start).unwrap_or_else(|| panic!("{start:?} not in {text:?}")) + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

// ------------------------------------------------------------ nesting

#[test]
fn custos_shell_inside_a_recorded_session_does_not_record_twice() {
    let Some(sys) = System::setup("nesting") else { return };
    let before = recordings();
    let mut t = sys.login();
    let shell = sys.shell();
    let seen = t.run(&format!("{} -c 'printf \"nes%s-ok\\n\" ted'", shell.display()));
    assert!(seen.contains("nested-ok"), "{seen}");
    // Stdin and stdout redirected: still the same session, because the
    // check uses the controlling terminal, not stdin.
    let seen = t.run(&format!("{} -c 'printf \"pip%s-ok\\n\" ed' </dev/null | cat", shell.display()));
    assert!(seen.contains("piped-ok"), "{seen}");
    t.line("exit 4");
    assert_eq!(t.wait(SHORT).code(), Some(4));

    let rec = only_new_recording(&before, "a session with nested custos-shells");
    rec.assert_session(sys.uid, "interactive", None, 4);
    let screen = rec.screen();
    assert!(screen.contains("nested-ok") && screen.contains("piped-ok"), "the outer recording shows the nested output:\n{screen}");
}

// ------------------------------------------------------------ sshd end to end

#[test]
fn ssh_commands_keep_their_exit_status_and_output() {
    let Some(sys) = System::setup("ssh commands") else { return };
    let sshd = sshd::Sshd::start(USER, &home());

    let before = recordings();
    let out = sshd.ssh().arg("exit 7").output().unwrap();
    assert_eq!(out.status.code(), Some(7), "ssh 'exit 7': {}\nsshd log:\n{}", text(&out), sshd.log());
    only_new_recording(&before, "ssh 'exit 7'").assert_session(sys.uid, "data", Some("exit 7"), 7);

    let before = recordings();
    let out = sshd.ssh().arg("echo hi").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    only_new_recording(&before, "ssh 'echo hi'").assert_session(sys.uid, "data", Some("echo hi"), 0);

    // The built-in policy refuses a remote `rm -rf /` before anything runs.
    let before = recordings();
    let out = sshd.ssh().arg("touch gate-ran; rm -rf /").output().unwrap();
    assert_eq!(out.status.code(), Some(126), "ssh 'rm -rf /': {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused by rule rm-root"), "{}", text(&out));
    assert!(!home().join("gate-ran").exists(), "a refused line ran in part");
    only_new_recording(&before, "ssh 'rm -rf /'").assert_session(sys.uid, "data", Some("touch gate-ran; rm -rf /"), 126);
}

#[test]
fn ssh_data_channel_is_byte_exact_and_passes_end_of_file() {
    let Some(sys) = System::setup("ssh data channel") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let output = dir.path().join("out.bin");
    random_file(&input, 50 << 20);

    let before = recordings();
    let mut child = sshd
        .ssh()
        .arg("cat")
        .stdin(File::open(&input).unwrap())
        .stdout(File::create(&output).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `cat` ends only if the end of its input reaches it through sshd and
    // the recorder.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ssh host cat did not end: end of file did not propagate");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "ssh host cat: {status}");
    assert_eq!(sha256(&output), sha256(&input), "50 MiB through ssh host cat changed");
    only_new_recording(&before, "ssh host cat").assert_session(sys.uid, "data", Some("cat"), 0);
}

#[test]
fn ssh_interactive_session_is_recorded_with_its_exit_status() {
    let Some(sys) = System::setup("ssh -tt") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    let before = recordings();
    let args = sshd.ssh_tt_args();
    let mut t = Term::spawn("ssh", &args.iter().map(String::as_str).collect::<Vec<_>>(), 50, 200);
    t.run("true");
    t.line("printf 'interactive-%s\\n' ok; exit 5");
    t.expect("interactive-ok", SHORT);
    let status = t.wait(SHORT);
    assert_eq!(status.code(), Some(5), "ssh -tt:\n{}\nsshd log:\n{}", t.transcript(), sshd.log());

    let rec = only_new_recording(&before, "ssh -tt");
    rec.assert_session(sys.uid, "interactive", None, 5);
    let screen = rec.screen();
    assert!(screen.lines().any(|l| l == "interactive-ok"), "the recording shows the output:\n{screen}");
}

/// Automation that forces a terminal (`ssh -tt host cmd`) gets the
/// command's own output: the bytes plain bash gives for the same command
/// on a terminal, with no cursor addressing, status line or blank rows; and
/// the command is still recorded and masked.
#[test]
fn ssh_tt_command_output_is_the_commands_own() {
    let Some(sys) = System::setup("ssh -tt cmd") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    let run = |program: &str, args: &[&str]| {
        let mut t = Term::spawn(program, args, 24, 80);
        let status = t.wait(SHORT);
        (status, t)
    };
    for command in ["echo hi", "printf 'one\\ntwo\\n'; printf '%0150d\\n' 7", "seq 1 60", "printf 'no line end'"] {
        let before = recordings();
        let mut args = sshd.ssh_tt_args();
        args.push(command.to_owned());
        let (status, mut remote) = run("ssh", &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(status.success(), "ssh -tt host {command:?}: {status}\n{}\nsshd log:\n{}", remote.transcript(), sshd.log());
        let (_, plain) = run("bash", &["--norc", "--noprofile", "-c", command]);
        assert_eq!(String::from_utf8_lossy(remote.raw()), String::from_utf8_lossy(plain.raw()), "ssh -tt host {command:?}");
        let rec = only_new_recording(&before, command);
        rec.assert_session(sys.uid, "interactive", Some(command), 0);
    }

    // Colours, a progress line redrawn with `\r` and a secret: the terminal
    // shows what plain bash shows, but for the secret, masked there too.
    let secret = "ghp_R4nd0mTestTokenValue0123456789abcdEF";
    let command = format!("printf '\\033[1;32mok\\033[0m\\n'; for p in 10 50 100; do printf '\\rload %3d%%' $p; done; echo; echo token {secret}");
    let mut args = sshd.ssh_tt_args();
    args.push(command.clone());
    let (status, mut remote) = run("ssh", &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(status.success(), "{}", remote.transcript());
    let (_, mut plain) = run("bash", &["--norc", "--noprofile", "-c", &command]);
    let shown = remote.transcript();
    assert!(!shown.contains(secret) && shown.contains("token "), "{shown}");
    assert_eq!(shown.lines().count(), plain.transcript().lines().count(), "{shown}");
    assert_eq!(shown.lines().take(2).collect::<Vec<_>>(), vec!["ok", "load 100%"], "{shown}");
    let raw = String::from_utf8_lossy(remote.raw()).into_owned();
    assert!(!raw.contains(";1H") && !raw.contains("\x1b[H") && !raw.contains("REC"), "no cursor addressing or status line: {raw:?}");
}

/// What the terminal shows before the login shell starts (here sshd's
/// banner; on most hosts the message of the day) stays in view: the shell
/// starts below it.
#[test]
fn an_ssh_login_starts_below_what_the_terminal_already_shows() {
    let Some(_sys) = System::setup("ssh banner") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    // A client that shows the banner, as an interactive ssh does.
    let mut args = vec!["-tt".to_owned(), "-o".to_owned(), "LogLevel=INFO".to_owned()];
    args.extend(sshd.ssh_tt_args().into_iter().skip(1));
    let mut t = Term::spawn("ssh", &args.iter().map(String::as_str).collect::<Vec<_>>(), 30, 120);
    t.run("true");
    let lines = t.screen_lines();
    let banner = lines.iter().position(|l| l.contains(sshd::BANNER)).unwrap_or_else(|| panic!("the banner is not in view:\n{}", lines.join("\n")));
    let prompt = lines.iter().rposition(|l| !l.trim().is_empty() && !l.contains("REC")).unwrap();
    assert!(banner < prompt, "{}", lines.join("\n"));
    t.line("exit");
    let _ = t.wait(SHORT);
}

fn home() -> PathBuf {
    nix::unistd::User::from_name(USER).unwrap().unwrap().dir
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

fn with_args<const N: usize>(mut cmd: Command, args: [String; N]) -> Command {
    cmd.args(args);
    cmd
}

fn rsync(sshd: &sshd::Sshd, from: &str, to: &str) -> Command {
    let mut cmd = Command::new("rsync");
    cmd.args(["-a", "-e", &sshd.rsync_shell(), from, to]);
    cmd
}

fn random_file(path: &Path, len: u64) {
    let mut src = File::open("/dev/urandom").unwrap().take(len);
    let mut dst = File::create(path).unwrap();
    assert_eq!(std::io::copy(&mut src, &mut dst).unwrap(), len);
}

fn sha256(path: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

// ------------------------------------------------------------ approvals pane

/// Puts the embedded default configuration back, whatever the test did.
struct RestoreConfig;

impl Drop for RestoreConfig {
    fn drop(&mut self) {
        let _ = std::fs::write(CONFIG, DEFAULT_CONFIG);
    }
}

/// Pids of processes whose command line is exactly `line`: a job that
/// has exec'd its program, not the `nohup` (or subshell) that is about to.
fn pids_running(line: &str) -> Vec<i32> {
    pids_where(|cmdline| cmdline.trim_end() == line)
}

fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    pids_where(|cmdline| cmdline.contains(needle))
}

/// Pids whose command line (words joined by spaces) passes `test`.
fn pids_where(test: impl Fn(&str) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            test(&String::from_utf8_lossy(&cmdline).replace('\0', " ")).then_some(pid)
        })
        .collect()
}

#[test]
fn the_approvals_pane_of_an_installed_shell_runs_as_the_user_in_a_fresh_process() {
    let Some(sys) = System::setup("approvals pane") else { return };
    let _restore = RestoreConfig;
    // A collector on loopback with this host's key enrolled.
    let data = tempfile::tempdir().unwrap();
    let mut serve = KillOnDrop(
        Command::new(sys.custos())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    {
        use std::io::BufRead as _;
        std::io::BufReader::new(serve.0.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
    }
    let url = first.trim().to_owned();
    let token = run_ok(Command::new(sys.custos()).args(["serve", "token", "--data-dir"]).arg(data.path()));
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    run_ok(Command::new(sys.custos()).args(["enroll", "--server", &url, "--token", &token, "--key", "/var/lib/custos/host.key"]));
    // An approver whose key the test user owns.
    let key = custos::evidence::HostKey::generate();
    let key_dir = tempfile::tempdir().unwrap();
    chmod(key_dir.path(), 0o755);
    let key_path = key_dir.path().join("alice.key");
    key.save(&key_path).unwrap();
    nix::unistd::chown(&key_path, Some(nix::unistd::Uid::from_raw(sys.uid)), None).unwrap();
    let approver = run_ok(Command::new(sys.custos()).args(["serve", "approver", "--data-dir"]).arg(data.path()).args([
        "--name",
        "alice",
        "--groups",
        "custos-approvers",
        "--public-key",
        &key.public().to_string(),
        "--unix-user",
        "alice",
    ]));
    let approver_token = String::from_utf8_lossy(&approver.stdout).trim().to_owned();
    let configured = DEFAULT_CONFIG.replace("# url = \"https://collector.example.com:8470\"", &format!("url = \"{url}\""));
    assert_ne!(configured, DEFAULT_CONFIG, "the default config's collector url line moved");
    std::fs::write(CONFIG, &configured).unwrap();

    let shell = sys.shell();
    let mut t = Term::spawn(
        "runuser",
        &[
            "-u",
            USER,
            "--",
            "env",
            &format!("CUSTOS_APPROVER_TOKEN={approver_token}"),
            "CUSTOS_APPROVER_NAME=alice",
            &format!("CUSTOS_APPROVER_KEY={}", key_path.display()),
            shell.to_str().unwrap(),
            "-l",
        ],
        50,
        200,
    );
    t.run("true");
    t.send(b"\x1da");
    t.expect("pending approvals: 0", SHORT);
    // The launcher and `custos approve` run as the user, on every id, from
    // the installed custos binary: fresh images, not forks of the recorder.
    let launchers = pids_with_cmdline("pane-launcher -- approve");
    assert_eq!(launchers.len(), 1, "{launchers:?}");
    let approves: Vec<i32> = pids_with_cmdline("approve --server").into_iter().filter(|p| !launchers.contains(p)).collect();
    assert_eq!(approves.len(), 1, "{approves:?}");
    for pid in [launchers[0], approves[0]] {
        assert_eq!(proc_ids(pid, "Uid:").unwrap(), vec![sys.uid; 4], "pid {pid}");
        assert_eq!(std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(), sys.custos(), "pid {pid}");
    }
    // The user cannot take the pane's processes over: ptrace (what would
    // change what the launcher execs) is refused, though they run as the
    // user, because custos is not readable by them. Tried from another
    // process of the user's.
    let attach = "import ctypes,os,sys; l=ctypes.CDLL(None,use_errno=True); \
                  r=l.ptrace(16,int(sys.argv[1]),0,0); print('ptrace-attach', r, os.strerror(ctypes.get_errno()))";
    for pid in [launchers[0], approves[0]] {
        let out = run_ok(Command::new("runuser").args(["-u", USER, "--", "python3", "-c", attach, &pid.to_string()]));
        assert!(text(&out).contains("ptrace-attach -1 Operation not permitted"), "ptrace on pane process {pid}:\n{}", text(&out));
    }
    t.send(b"\x1da");
    // The shell has its keys back once the pane is closed.
    let marker = std::env::temp_dir().join(format!("custos-pane-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        t.pump(Duration::from_millis(50));
    }
    t.line(&format!("touch {}", marker.display()));
    let deadline = Instant::now() + SHORT;
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the shell did not run a command after the pane closed:\n{}", t.transcript());
        // Keep reading the terminal: a recorder whose terminal is not read
        // blocks on its writes (by design) and reads no keys meanwhile.
        t.pump(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(&marker);
    t.line("exit");
    assert_eq!(t.wait(SHORT).code(), Some(0), "{}", t.transcript());

    // What the pane showed is in the recording, as its own stream: read
    // from the collector, to which the session streamed its chunks.
    let deadline = Instant::now() + SHORT;
    let rec = loop {
        let copy = tempfile::tempdir().unwrap();
        let found = stored::copy_stored_sessions(data.path(), copy.path())
            .into_iter()
            .map(|p| Recording::read(&p))
            .find(|r| r.events.last().is_some_and(|e| e.1 == "x"));
        if let Some(rec) = found {
            break rec;
        }
        assert!(Instant::now() < deadline, "the session did not reach the collector");
        std::thread::sleep(Duration::from_millis(100));
    };
    let pane: String = rec.events.iter().filter(|e| e.1 == "p").map(|e| e.2.as_str()).collect();
    assert!(pane.contains("pending approvals: 0"), "the pane's stream: {pane:?}");
    assert!(!rec.screen().contains("pending approvals"), "the pane is not in the shell's screen");
    assert!(rec.markers().iter().any(|m| m.starts_with("approvals pane opened (")), "{:?}", rec.markers());
    drop(serve);
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}


// ------------------------------------------------------------ Debian package

/// The Debian package this host installed and must purge, and the test
/// user with its custos-shell as login shell.
struct Package {
    _file_lock: Flock<File>,
    _lock: MutexGuard<'static, ()>,
}

impl Drop for Package {
    fn drop(&mut self) {
        remove_user();
        if let Ok(Some(service)) = nix::unistd::User::from_name("custos") {
            kill_user_processes(service.uid.as_raw());
        }
        let out = Command::new("dpkg").args(["--purge", "custos"]).output().unwrap();
        if !out.status.success() {
            eprintln!("cleanup: dpkg --purge custos failed:\n{}", text(&out));
        }
        let _ = std::fs::remove_dir_all(STATE);
    }
}

/// The Debian package built by `install/deb.sh` installs what install.sh
/// installs, with the same owners and modes; a login through sshd into its
/// `/usr/bin/custos-shell` is recorded, with and without a terminal; and
/// `dpkg --purge` leaves neither the binaries, the configuration, the
/// spool, the bashrc hook nor the service user.
#[test]
fn the_debian_package_installs_records_logins_through_sshd_and_purges_clean() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("dpkg").arg("--version").output().is_err() {
        println!("SKIP the Debian package: needs root and dpkg");
        return;
    }
    let lock = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let file = File::options().create(true).truncate(false).write(true).open("/tmp/custos-system-tests.lock").unwrap();
    let file_lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e).unwrap();
    let ours = Path::new(MARKER).exists();
    let installed = Command::new("dpkg").args(["-s", "custos"]).output().unwrap().status.success();
    assert!(
        ours || !(installed || Path::new(CONFIG).exists() || Path::new(SPOOL).exists() || Path::new("/usr/bin/custos-shell").exists()),
        "this host has a custos installation these tests did not make; they refuse to replace it"
    );
    let package = Package { _file_lock: file_lock, _lock: lock };
    remove_user();

    let out_dir = tempfile::tempdir().unwrap();
    let binaries = Path::new(SHELL_BIN).parent().unwrap();
    let build = run_ok(
        Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install/deb.sh"))
            .arg("--binaries")
            .arg(binaries)
            .arg("--out")
            .arg(out_dir.path())
            .arg("--fast"),
    );
    let deb = String::from_utf8(build.stdout).unwrap().trim().to_owned();
    std::fs::create_dir_all(STATE).unwrap();
    std::fs::write(MARKER, "custos system tests\n").unwrap();
    let install = run_ok(Command::new("dpkg").args(["-i", &deb]));
    assert!(text(&install).contains("host key"), "postinst prepared the host:\n{}", text(&install));

    let (shell, custos) = (Path::new("/usr/bin/custos-shell"), Path::new("/usr/bin/custos"));
    assert_eq!((mode(shell), owner(shell)), (0o4755, (0, 0)), "custos-shell is setuid root");
    assert_eq!((mode(custos), owner(custos)), (0o711, (0, 0)), "custos is not readable by users");
    assert_eq!((mode(Path::new(CONFIG)), owner(Path::new(CONFIG))), (0o644, (0, 0)));
    let service = nix::unistd::User::from_name("custos").unwrap().expect("postinst made the custos user");
    assert_eq!((mode(Path::new(SPOOL)), owner(Path::new(SPOOL))), (0o700, (service.uid.as_raw(), service.gid.as_raw())));
    assert!(Path::new(HOST_PUBLIC_KEY).exists(), "postinst made the host key");
    for doc in ["man/man1/custos-shell.1.gz", "bash-completion/completions/custos", "zsh/vendor-completions/_custos", "fish/vendor_completions.d/custos.fish"] {
        assert_eq!(mode(&Path::new("/usr/share").join(doc)), 0o644, "{doc}");
    }
    assert!(std::fs::read_to_string("/etc/bash.bashrc").unwrap().contains("custos-gate-"), "the bashrc hook");

    run_ok(Command::new("useradd").args(["-m", "-s", "/usr/bin/custos-shell", USER]));
    let uid = nix::unistd::User::from_name(USER).unwrap().unwrap().uid.as_raw();
    let sshd = sshd::Sshd::start(USER, &home());
    let before = recordings();
    let out = sshd.ssh().arg("echo deb-ok").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "deb-ok\n", "{}\nsshd log:\n{}", text(&out), sshd.log());
    only_new_recording(&before, "ssh 'echo deb-ok'").assert_session(uid, "data", Some("echo deb-ok"), 0);

    let before = recordings();
    let mut args = sshd.ssh_tt_args();
    args.push("printf 'deb-%s\\n' tty; exit 3".to_owned());
    let mut t = Term::spawn("ssh", &args.iter().map(String::as_str).collect::<Vec<_>>(), 24, 80);
    assert_eq!(t.wait(SHORT).code(), Some(3), "{}", t.transcript());
    assert_eq!(t.raw(), b"deb-tty\r\n");
    let rec = only_new_recording(&before, "ssh -tt");
    rec.assert_session(uid, "interactive", Some("printf 'deb-%s\\n' tty; exit 3"), 3);
    assert!(rec.screen().lines().any(|l| l == "deb-tty"), "{}", rec.screen());
    drop(sshd);

    remove_user();
    kill_user_processes(service.uid.as_raw());
    let purge = run_ok(Command::new("dpkg").args(["--purge", "custos"]));
    for gone in [shell, custos, Path::new(CONFIG), Path::new(SPOOL), Path::new("/usr/lib/custos/host.sh")] {
        assert!(!gone.exists(), "{} is left after dpkg --purge:\n{}", gone.display(), text(&purge));
    }
    assert!(nix::unistd::User::from_name("custos").unwrap().is_none(), "the custos user is left");
    assert!(!std::fs::read_to_string("/etc/bash.bashrc").unwrap().contains("custos-gate-"), "the bashrc hook is left");
    drop(package);
}
