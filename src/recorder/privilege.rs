//! The privileged stage: all of `custos-shell`'s root code, and nothing else.
//!
//! `custos-shell` is installed setuid root, like `login`, `su` and `sudo`,
//! because a few acts that keep the recording complete need root and nothing
//! else can do them. This module performs exactly those acts, each in a
//! function of its own, and every one of them is listed here. Review it like
//! kernel code: an act that fails fails the login (closed), nothing of the
//! user's environment is read (no variable, no path, no locale), and every
//! path it touches is fixed here or derived from the kernel.
//!
//! The acts, in the order a login meets them ([`Act`] names each one; with
//! `[session] debug = true` each is written to stderr as it happens, and
//! `tests/system.rs` fails on any act not in this list):
//!
//! 1. `setup-ids`: at start, the supplementary groups are cleared and the
//!    effective ids become the `custos` service user's; the saved uid stays
//!    root. Everything up to the split (configuration, identity, policy,
//!    the recording's start) runs with these ids, exactly as before the
//!    stage existed.
//! 2. `read-recorder`: to decide nesting, the `/proc` entries of the
//!    recorder a registration names are read as root (a recorder is not
//!    dumpable, so only root may read its descriptors). See `nesting`.
//! 3. `repair-terminal`: a terminal taken by a session whose warden no
//!    longer runs (root SIGKILLed it) is given back to the owner and mode
//!    remembered under [`STATE_DIR`].
//! 4. `take-terminal`: the user's outer terminal is given to `custos`, mode
//!    0600, so no process of the user can open it, write to it or change
//!    its modes behind the recorder; the original owner and mode are kept
//!    in memory and under [`STATE_DIR`].
//!    Descriptors opened before the take are not revoked by it: see act 7.
//! 5. `create-cgroup`: a cgroup v2 of the session's own is made beside this
//!    process's cgroup, and its `cgroup.kill` and `cgroup.freeze` are given
//!    to `custos`, so the recorder can freeze, list and end what is left.
//! 6. `become-warden`: the parent, the process `sshd` or `login` waits for,
//!    becomes root on every id and does nothing but wait for the recorder,
//!    pass on root's SIGTERM and the terminal's SIGHUP, and at the end:
//!    Right after the fork, `evict-terminal-holders`: a process of the
//!    user's that holds the taken terminal open (opened in the moment
//!    between `sshd` giving the user the new terminal and the take, from
//!    another session) is killed. (`vhangup`, which `login` uses to revoke
//!    such descriptors, also hangs up the PTY master `sshd` reads, and the
//!    session's output is lost.)
//! 7. `end-cgroup`: kills what is left in the session's cgroup (when the
//!    recorder ended abnormally, or `[session] leftovers = "kill"`) and
//!    removes it;
//! 8. `restore-terminal`: gives the terminal its owner and mode back.
//! 9. `open-pty-as-user`: the recorder opens the inner PTY with the user's
//!    effective ids, so the user owns their terminal device, as with any
//!    login.
//! 10. `join-cgroup` and `become-user`: the shell's child (and the approvals
//!     pane's launcher) is forked into the session's cgroup (clone3 with
//!     `CLONE_INTO_CGROUP`, as root; where the kernel lacks it, the child
//!     moves itself in) and drops to the user for good, with the user's
//!     groups (`getgrouplist`), before exec.
//! 11. `become-service`: the recorder drops to `custos` for good, with no
//!     supplementary groups.
//!
//! 12. `install-exec-filter`: in the shell's child, as root and before
//!     `become-user`, the exec backstop's seccomp filter (`backstop`) is
//!     installed with a new listener, without `no_new_privs` (so `sudo`
//!     keeps working under it), and the listener is handed to the recorder
//!     over a socket pair and closed: the user's processes never hold it.
//! 13. `become-exec-reader`: the backstop's reader (`backstop::reader`), a
//!     process forked from the recorder, becomes the service user for good
//!     keeping only `CAP_SYS_PTRACE` (to read an exec's arguments out of
//!     the caller, `sudo` and root's processes under it included) and
//!     `CAP_KILL` (to end a process whose exec landed other than checked);
//!     `no_new_privs`, not dumpable, and it never execs. It also decides
//!     each exec with the policy it was forked with (safe Rust over the
//!     exec's words; a panic ends it, and every exec then fails), so once
//!     dropped it also confines itself with a filter of its own
//!     (`backstop::filter::reader_program`): no `ptrace`, no writing into
//!     another process or opening one's files for writing, no exec, no
//!     sockets, no `prctl`. It keeps the capability to read.
//!
//! Without the setuid bit (development, tests, `custos demo`) the stage is
//! off: real and effective ids are equal, there is nothing to separate,
//! and every act above is skipped. A binary that runs setuid or setgid to
//! anyone but root is refused: that is an installation this code does not
//! know how to keep safe.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use nix::unistd::{getegid, geteuid, getgid, getuid, setresgid, setresuid, Gid, Pid, Uid, User};

/// The service user the recorder runs as.
pub const SERVICE_USER: &str = "custos";

/// Root's own state: the terminals taken by live sessions.
pub const STATE_DIR: &str = "/run/custos";

/// Every privileged act the stage can perform (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    SetupIds,
    ReadRecorder,
    RepairTerminal,
    TakeTerminal,
    EvictTerminalHolders,
    CreateCgroup,
    BecomeWarden,
    EndCgroup,
    RestoreTerminal,
    OpenPtyAsUser,
    JoinCgroup,
    BecomeUser,
    BecomeService,
    InstallExecFilter,
    BecomeExecReader,
}

impl Act {
    pub const ALL: [Act; 15] = [
        Act::SetupIds,
        Act::ReadRecorder,
        Act::RepairTerminal,
        Act::TakeTerminal,
        Act::EvictTerminalHolders,
        Act::CreateCgroup,
        Act::BecomeWarden,
        Act::EndCgroup,
        Act::RestoreTerminal,
        Act::OpenPtyAsUser,
        Act::JoinCgroup,
        Act::BecomeUser,
        Act::BecomeService,
        Act::InstallExecFilter,
        Act::BecomeExecReader,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Act::SetupIds => "setup-ids",
            Act::ReadRecorder => "read-recorder",
            Act::RepairTerminal => "repair-terminal",
            Act::TakeTerminal => "take-terminal",
            Act::EvictTerminalHolders => "evict-terminal-holders",
            Act::CreateCgroup => "create-cgroup",
            Act::BecomeWarden => "become-warden",
            Act::EndCgroup => "end-cgroup",
            Act::RestoreTerminal => "restore-terminal",
            Act::OpenPtyAsUser => "open-pty-as-user",
            Act::JoinCgroup => "join-cgroup",
            Act::BecomeUser => "become-user",
            Act::BecomeService => "become-service",
            Act::InstallExecFilter => "install-exec-filter",
            Act::BecomeExecReader => "become-exec-reader",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("custos-shell is installed setuid root but runs without root (is its file system mounted nosuid?)")]
    NotRoot,
    #[error("custos-shell runs setuid or setgid to an account other than root; reinstall it with install.sh")]
    ForeignSetuid,
    #[error("the service user {SERVICE_USER:?} does not exist; run install.sh")]
    NoServiceUser,
    #[error("uid {0} has no entry in the user database")]
    UnknownUser(u32),
    #[error("cannot {what}: {source}")]
    Os { what: &'static str, source: nix::Error },
    #[error("cannot {what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
    #[error("no cgroup v2 hierarchy is mounted, so the session's processes cannot be contained")]
    NoCgroup2,
}

fn os(what: &'static str) -> impl FnOnce(nix::Error) -> StageError {
    move |source| StageError::Os { what, source }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> StageError {
    move |source| StageError::Io { what, source }
}

/// The ids this login runs with, and whether the stage is on.
#[derive(Clone, Debug)]
pub struct Privilege {
    pub user_uid: u32,
    pub user_gid: u32,
    pub service_uid: u32,
    pub service_gid: u32,
    /// Installed setuid root: the stage is on.
    root: bool,
    /// The user's groups, looked up before any fork.
    user_groups: Vec<Gid>,
    /// Write each act to stderr (`[session] debug`).
    debug: bool,
    /// The session's cgroup, which the child joins before it drops.
    cgroup_procs: Option<CString>,
    /// The same cgroup's directory, for a child born inside it.
    cgroup_dir: Option<PathBuf>,
}

/// Set in a child that `fork_contained` started inside the session's
/// cgroup: it has nothing left to join.
static BORN_CONTAINED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `struct clone_args` of clone3(2), as far as CLONE_INTO_CGROUP needs.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Kept for the old name of the error a drop returns.
pub type DropError = StageError;

impl Privilege {
    /// Starts the stage. Installed setuid root: clears the groups and
    /// switches the effective ids to `custos` (act 1). Otherwise: the
    /// process's own ids, and the stage stays off.
    pub fn begin() -> Result<Self, StageError> {
        let exe = std::fs::metadata("/proc/self/exe").map_err(io("inspect /proc/self/exe"))?;
        let setuid_root = exe.mode() & libc::S_ISUID != 0 && exe.uid() == 0;
        let (ruid, rgid) = (getuid().as_raw(), getgid().as_raw());
        if !setuid_root {
            // SAFETY: getauxval has no preconditions.
            if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
                return Err(StageError::ForeignSetuid);
            }
            return Ok(Self {
                user_uid: ruid,
                user_gid: rgid,
                service_uid: geteuid().as_raw(),
                service_gid: getegid().as_raw(),
                root: false,
                user_groups: Vec::new(),
                debug: false,
                cgroup_procs: None,
                cgroup_dir: None,
            });
        }
        if !geteuid().is_root() {
            return Err(StageError::NotRoot);
        }
        let service = User::from_name(SERVICE_USER).ok().flatten().ok_or(StageError::NoServiceUser)?;
        let user = User::from_uid(Uid::from_raw(ruid)).ok().flatten().ok_or(StageError::UnknownUser(ruid))?;
        let name = CString::new(user.name.as_bytes()).map_err(|_| StageError::UnknownUser(ruid))?;
        let user_groups = nix::unistd::getgrouplist(&name, user.gid).unwrap_or_else(|_| vec![user.gid]);
        let stage = Self {
            user_uid: ruid,
            user_gid: rgid,
            service_uid: service.uid.as_raw(),
            service_gid: service.gid.as_raw(),
            root: true,
            user_groups,
            debug: false,
            cgroup_procs: None,
            cgroup_dir: None,
        };
        stage.setup_ids()?;
        Ok(stage)
    }

    /// Turns the act log on (from the root-owned configuration only).
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.debug = debug && self.root;
        // Act 1 ran before the configuration could say so.
        self.log(Act::SetupIds, &format!("uid {} gid {}", self.service_uid, self.service_gid));
        self
    }

    /// Installed setuid root: configuration and paths come only from
    /// root-owned places, and the acts above are performed.
    pub fn is_privileged(&self) -> bool {
        self.root
    }

    fn log(&self, act: Act, detail: &str) {
        if self.debug {
            eprintln!("custos-shell: privileged act: {} {detail}", act.name());
        }
    }

    /// For the fork-to-exec window: a fixed message, no allocation.
    fn log_raw(&self, msg: &[u8]) {
        if self.debug {
            // SAFETY: write(2) on stderr is async-signal-safe.
            unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        }
    }

    /// Act 1.
    fn setup_ids(&self) -> Result<(), StageError> {
        nix::unistd::setgroups(&[]).map_err(os("clear the supplementary groups"))?;
        self.set_effective(self.service_uid, self.service_gid, "take the service user's effective ids")
    }

    /// Effective ids to `uid`/`gid`, through root (the saved uid).
    fn set_effective(&self, uid: u32, gid: u32, what: &'static str) -> Result<(), StageError> {
        let keep_g = Gid::from_raw(u32::MAX);
        let keep_u = Uid::from_raw(u32::MAX);
        setresuid(keep_u, Uid::from_raw(0), keep_u).map_err(os(what))?;
        setresgid(keep_g, Gid::from_raw(gid), keep_g).map_err(os(what))?;
        setresuid(keep_u, Uid::from_raw(uid), keep_u).map_err(os(what))
    }

    /// Runs `f` as root, then goes back to the service ids. A failure to
    /// go back ends the process: nothing may run on with root by mistake.
    fn as_root<T>(&self, f: impl FnOnce() -> T) -> Result<T, StageError> {
        setresuid(Uid::from_raw(u32::MAX), Uid::from_raw(0), Uid::from_raw(u32::MAX)).map_err(os("regain root"))?;
        let out = f();
        if self.set_effective(self.service_uid, self.service_gid, "return to the service ids").is_err() {
            // SAFETY: _exit is always sound.
            unsafe { libc::_exit(126) }
        }
        Ok(out)
    }

    /// Act 9: runs `f` with the user's effective ids (opening the PTY, so
    /// the user owns their terminal device), then returns to the service
    /// ids.
    pub fn as_user<T>(&self, f: impl FnOnce() -> T) -> Result<T, StageError> {
        if !self.root {
            return Ok(f());
        }
        self.log(Act::OpenPtyAsUser, "");
        self.set_effective(self.user_uid, self.user_gid, "take the user's effective ids")?;
        let out = f();
        if self.set_effective(self.service_uid, self.service_gid, "return to the service ids").is_err() {
            // SAFETY: _exit is always sound.
            unsafe { libc::_exit(126) }
        }
        Ok(out)
    }

    /// The same ids, with the child joining `cgroup` before it drops.
    pub fn contained_in(mut self, cgroup: &Cgroup) -> Self {
        self.cgroup_procs = CString::new(cgroup.dir.join("cgroup.procs").as_os_str().as_encoded_bytes()).ok();
        self.cgroup_dir = Some(cgroup.dir.clone());
        self
    }

    /// Act 10, first half: forks a child that starts inside the session's
    /// cgroup (clone3 with `CLONE_INTO_CGROUP`, as root). Moving a running
    /// process into a cgroup waits for an RCU grace period, a few
    /// milliseconds on every login; a child born inside costs nothing.
    /// Where clone3 is refused (older kernels), a plain fork, and the child
    /// joins in `drop_to_user`.
    ///
    /// # Safety
    ///
    /// As `fork`: the process must be single-threaded, and the child may
    /// only make system calls until it execs or exits (the raw clone does
    /// not run the C library's fork handlers).
    pub unsafe fn fork_contained(&self) -> nix::Result<nix::unistd::ForkResult> {
        use nix::unistd::ForkResult;
        let Some(dir) = self.cgroup_dir.as_ref().filter(|_| self.root) else {
            // SAFETY: the caller's promise.
            return unsafe { nix::unistd::fork() };
        };
        let Ok(path) = CString::new(dir.as_os_str().as_encoded_bytes()) else { return Err(nix::Error::EINVAL) };
        self.log(Act::JoinCgroup, &format!("born in {}", dir.display()));
        let cloned = self.as_root(|| {
            // SAFETY: open/clone3/close with valid arguments; the caller
            // guarantees a single-threaded process.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(nix::Error::last());
                }
                let mut args = CloneArgs {
                    flags: CLONE_INTO_CGROUP,
                    exit_signal: libc::SIGCHLD as u64,
                    cgroup: fd as u64,
                    ..CloneArgs::default()
                };
                let pid = libc::syscall(libc::SYS_clone3, &raw mut args, std::mem::size_of::<CloneArgs>());
                let err = nix::Error::last();
                libc::close(fd);
                if pid < 0 {
                    Err(err)
                } else {
                    Ok(pid)
                }
            }
        });
        match cloned {
            Ok(Ok(0)) => {
                BORN_CONTAINED.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(ForkResult::Child)
            }
            Ok(Ok(pid)) => Ok(ForkResult::Parent { child: Pid::from_raw(i32::try_from(pid).map_err(|_| nix::Error::EINVAL)?) }),
            // SAFETY: the caller's promise.
            Ok(Err(nix::Error::ENOSYS | nix::Error::EINVAL | nix::Error::E2BIG)) => unsafe { nix::unistd::fork() },
            Ok(Err(e)) => Err(e),
            Err(_) => Err(nix::Error::EPERM),
        }
    }

    /// Act 10, in a forked child before exec: join the session's cgroup
    /// (when there is one) and become the user for good. Only system calls.
    pub fn drop_to_user(&self) -> Result<(), StageError> {
        if self.root {
            setresuid(Uid::from_raw(u32::MAX), Uid::from_raw(0), Uid::from_raw(u32::MAX)).map_err(os("regain root"))?;
            if let Some(procs) = self.cgroup_procs.as_ref().filter(|_| !BORN_CONTAINED.load(std::sync::atomic::Ordering::Relaxed)) {
                self.log_raw(b"custos-shell: privileged act: join-cgroup\n");
                // SAFETY: open/write/close on a path we own, no allocation.
                let joined = unsafe {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    let ok = fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                    if fd >= 0 {
                        libc::close(fd);
                    }
                    ok
                };
                if !joined {
                    return Err(StageError::Os { what: "join the session's cgroup", source: nix::Error::last() });
                }
            }
            self.log_raw(b"custos-shell: privileged act: become-user\n");
            nix::unistd::setgroups(&self.user_groups).map_err(os("take the user's groups"))?;
        }
        set_all(self.user_uid, self.user_gid, "drop to the user's ids")
    }

    /// Act 11, in the recorder: become the service user for good, with no
    /// supplementary groups.
    pub fn drop_to_service(&self) -> Result<(), StageError> {
        if !self.root {
            return Ok(());
        }
        self.log_raw(b"custos-shell: privileged act: become-service\n");
        setresuid(Uid::from_raw(u32::MAX), Uid::from_raw(0), Uid::from_raw(u32::MAX)).map_err(os("regain root"))?;
        nix::unistd::setgroups(&[]).map_err(os("clear the supplementary groups"))?;
        set_all(self.service_uid, self.service_gid, "drop to the service ids")?;
        // Already so after the id change; said again, as it must hold.
        // SAFETY: prctl with constant arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        Ok(())
    }

    /// Act 12, in the shell's forked child before `drop_to_user`: installs
    /// `program` with a new listener and sends the listener over `to`
    /// (one end of a socket pair), then closes both. Only system calls.
    /// Without the stage the kernel requires `no_new_privs` for a filter,
    /// so the session's `sudo` cannot gain privileges there (development
    /// and `custos demo` only).
    pub fn install_exec_filter(&self, program: &[libc::sock_filter], to: i32) -> Result<(), StageError> {
        if self.root {
            setresuid(Uid::from_raw(u32::MAX), Uid::from_raw(0), Uid::from_raw(u32::MAX)).map_err(os("regain root"))?;
            self.log_raw(b"custos-shell: privileged act: install-exec-filter\n");
        } else {
            // SAFETY: prctl with constant arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(StageError::Os { what: "set no_new_privs for the exec filter", source: nix::Error::last() });
            }
        }
        let len = u16::try_from(program.len()).map_err(|_| StageError::Os { what: "install the exec filter", source: nix::Error::E2BIG })?;
        let prog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
        // SAFETY: seccomp(2) reads `prog`, which outlives the call.
        let fd = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER, &raw const prog) };
        if fd < 0 {
            return Err(StageError::Os { what: "install the exec filter", source: nix::Error::last() });
        }
        let fd = fd as i32;
        let sent = send_fd(to, fd);
        // SAFETY: closing descriptors this child owns.
        unsafe {
            libc::close(fd);
            libc::close(to);
        }
        if !sent {
            return Err(StageError::Os { what: "hand the exec filter's listener to the recorder", source: nix::Error::last() });
        }
        Ok(())
    }

    /// Act 13, in the backstop's reader (forked from the recorder, still
    /// holding root as its saved uid): the service user for good, keeping
    /// `CAP_SYS_PTRACE` and `CAP_KILL` and nothing else.
    pub fn become_exec_reader(&self) -> Result<(), StageError> {
        if !self.root {
            return Ok(());
        }
        self.log_raw(b"custos-shell: privileged act: become-exec-reader\n");
        setresuid(Uid::from_raw(u32::MAX), Uid::from_raw(0), Uid::from_raw(u32::MAX)).map_err(os("regain root"))?;
        nix::unistd::setgroups(&[]).map_err(os("clear the supplementary groups"))?;
        // SAFETY: prctl with constant arguments.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
            return Err(StageError::Os { what: "keep capabilities across the drop", source: nix::Error::last() });
        }
        set_all(self.service_uid, self.service_gid, "drop to the service ids")?;
        const CAP_KILL: u32 = 5;
        const CAP_SYS_PTRACE: u32 = 19;
        let keep = (1 << CAP_KILL) | (1 << CAP_SYS_PTRACE);
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header { version: 0x2008_0522, pid: 0 };
        let data = [Data { effective: keep, permitted: keep, inheritable: 0 }, Data { effective: 0, permitted: 0, inheritable: 0 }];
        // SAFETY: capset(2) with a version-3 header and its two data words.
        let set = unsafe { libc::syscall(libc::SYS_capset, &raw const header, data.as_ptr()) };
        // SAFETY: prctl with constant arguments.
        let sealed = unsafe {
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) == 0
                && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
        };
        if set != 0 || !sealed {
            return Err(StageError::Os { what: "keep only the reader's capabilities", source: nix::Error::last() });
        }
        Ok(())
    }

    /// Act 13's second half, with or without the stage: the reader puts
    /// its own filter on itself (`backstop::filter::reader_program`), so
    /// what it keeps, `CAP_SYS_PTRACE`, can only read. `no_new_privs`
    /// first (set already with the stage; without it, what lets an
    /// unprivileged process install a filter), since the filter refuses
    /// `prctl` after. `None`: an architecture the filter is not built for.
    pub fn confine_exec_reader(&self, program: Option<&[libc::sock_filter]>) -> Result<(), StageError> {
        let Some(program) = program else { return Ok(()) };
        let len = u16::try_from(program.len()).map_err(|_| StageError::Os { what: "confine the exec reader", source: nix::Error::E2BIG })?;
        let prog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
        // SAFETY: prctl with constant arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(StageError::Os { what: "set no_new_privs for the exec reader", source: nix::Error::last() });
        }
        // SAFETY: seccomp(2) reads `prog`, which outlives the call.
        if unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &raw const prog) } != 0 {
            return Err(StageError::Os { what: "confine the exec reader", source: nix::Error::last() });
        }
        Ok(())
    }

    /// Act 2: what `/proc` says of process `pid`'s descriptor `fd`, read as
    /// root (see `nesting`). `None` when anything is missing.
    pub fn read_recorder(&self, pid: i32, fd: i32) -> Option<RecorderFacts> {
        let read = || {
            let base = PathBuf::from(format!("/proc/{pid}"));
            let status = std::fs::read_to_string(base.join("status")).ok()?;
            let exe = std::fs::metadata(base.join("exe")).ok()?;
            let link = std::fs::read_link(base.join(format!("fd/{fd}"))).ok()?;
            let fdinfo = std::fs::read_to_string(base.join(format!("fdinfo/{fd}"))).ok()?;
            Some(RecorderFacts { status, exe: (exe.dev(), exe.ino()), fd_link: link, fdinfo })
        };
        if !self.root {
            return read();
        }
        self.log(Act::ReadRecorder, &format!("pid {pid} fd {fd}"));
        self.as_root(read).ok().flatten()
    }

    /// Acts 3 and 4: gives back terminals left taken by a crashed session,
    /// then takes the terminals among `fds` from the user. `None` when the
    /// stage is off.
    pub fn take_terminal(&self, fds: &[BorrowedFd<'_>]) -> Result<Option<Taken>, StageError> {
        if !self.root {
            return Ok(None);
        }
        self.as_root(|| {
            std::fs::create_dir_all(STATE_DIR).map_err(io("create /run/custos"))?;
            std::fs::set_permissions(STATE_DIR, std::os::unix::fs::PermissionsExt::from_mode(0o700)).map_err(io("protect /run/custos"))?;
            self.repair_terminals();
            let mut taken = Taken { terminals: Vec::new() };
            for fd in fds {
                if !nix::unistd::isatty(fd).unwrap_or(false) {
                    continue;
                }
                let st = nix::sys::stat::fstat(fd.as_fd()).map_err(os("inspect the terminal"))?;
                if taken.terminals.iter().any(|t| t.rdev == st.st_rdev) {
                    continue;
                }
                let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(io("name the terminal"))?;
                let own = nix::unistd::dup(fd.as_fd()).map_err(os("keep the terminal"))?;
                let t = TakenTerminal { fd: own, path, rdev: st.st_rdev, uid: st.st_uid, gid: st.st_gid, mode: st.st_mode & 0o7777 };
                std::fs::write(t.record_path(), t.record(std::process::id())).map_err(io("remember the terminal's owner"))?;
                self.log(Act::TakeTerminal, &format!("{} (was uid {} gid {} mode {:o})", t.path.display(), t.uid, t.gid, t.mode));
                nix::unistd::fchown(&t.fd, Some(Uid::from_raw(self.service_uid)), None).map_err(os("take the terminal"))?;
                nix::sys::stat::fchmod(&t.fd, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(os("take the terminal"))?;
                taken.terminals.push(t);
            }
            Ok(Some(taken))
        })?
    }

    /// Act 3 (see [`repair_left_terminals`]).
    fn repair_terminals(&self) {
        repair_left_terminals(self.service_uid, |path| self.log(Act::RepairTerminal, &path.display().to_string()));
    }

    /// Act 5: a cgroup for the session, beside this process's own.
    /// Fails closed when there is no cgroup v2 hierarchy.
    pub fn create_cgroup(&self, session_id: &str) -> Result<Option<Cgroup>, StageError> {
        if !self.root {
            return Ok(None);
        }
        let dir = session_cgroup_dir(session_id).ok_or(StageError::NoCgroup2)?;
        self.log(Act::CreateCgroup, &dir.display().to_string());
        self.as_root(|| {
            std::fs::create_dir(&dir).map_err(io("create the session's cgroup"))?;
            for file in ["cgroup.kill", "cgroup.freeze"] {
                nix::unistd::chown(&dir.join(file), Some(Uid::from_raw(self.service_uid)), None).map_err(os("delegate the session's cgroup"))?;
            }
            Ok(Cgroup { dir })
        })?
        .map(Some)
    }

    /// Act 6 and, at the end, acts 7 and 8: the parent process waits for
    /// the recorder (`pid`) as root and cleans up after it. Never returns:
    /// exits with the recorder's status.
    pub fn become_warden(&self, recorder: Pid, taken: Option<Taken>, cgroup: Option<Cgroup>, keep_leftovers: bool) -> ! {
        use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
        self.log(Act::BecomeWarden, &format!("recorder pid {recorder}"));
        let root = Uid::from_raw(0);
        let rootg = Gid::from_raw(0);
        if setresuid(root, root, root).is_err() || setresgid(rootg, rootg, rootg).is_err() {
            // Cannot be root: end the recorder, and so the session.
            let _ = kill(recorder, Signal::SIGKILL);
        }
        let mut set = SigSet::empty();
        for sig in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGCHLD, Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU, Signal::SIGPIPE, Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGALRM] {
            set.add(sig);
        }
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
        if let Some(taken) = &taken {
            self.evict_terminal_holders(recorder, taken);
        }
        let status = loop {
            match nix::sys::wait::waitpid(recorder, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => break Ok(code),
                Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => break Err(sig as i32),
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(_) => break Err(libc::SIGKILL),
            }
            if let Ok(sig @ (Signal::SIGHUP | Signal::SIGTERM)) = set.wait() {
                let _ = kill(recorder, sig);
            }
        };
        let abnormal = status.is_err();
        if let Some(cgroup) = cgroup {
            self.log(Act::EndCgroup, &cgroup.dir.display().to_string());
            cgroup.end(abnormal || !keep_leftovers);
        }
        if let Some(taken) = taken {
            for t in &taken.terminals {
                self.log(Act::RestoreTerminal, &t.path.display().to_string());
                t.restore();
            }
        }
        let code = match status {
            Ok(code) => code,
            Err(sig) => 128 + sig,
        };
        // SAFETY: _exit is always sound.
        unsafe { libc::_exit(code) }
    }
}

/// Sends descriptor `fd` over the socket `to` (`SCM_RIGHTS`), with
/// buffers on the stack: this runs between fork and exec.
fn send_fd(to: i32, fd: i32) -> bool {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // Aligned for cmsghdr; CMSG_SPACE(4) is 24 bytes on 64-bit, 16 on 32-bit.
    let mut control = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; the pointers set below point at
    // the locals above, which outlive sendmsg; CMSG_* stay inside
    // `control`, which is larger than CMSG_SPACE(sizeof(int)).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        if cmsg.is_null() {
            return false;
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd);
        libc::sendmsg(to, &raw const msg, libc::MSG_NOSIGNAL) == 1
    }
}

fn set_all(uid: u32, gid: u32, what: &'static str) -> Result<(), StageError> {
    let g = Gid::from_raw(gid);
    let u = Uid::from_raw(uid);
    setresgid(g, g, g).map_err(os(what))?;
    setresuid(u, u, u).map_err(os(what))?;
    // Fail closed: verify the drop took, on every id.
    let ids = nix::unistd::getresuid().map_err(os(what))?;
    let gids = nix::unistd::getresgid().map_err(os(what))?;
    if ids.real != u || ids.effective != u || ids.saved != u || gids.real != g || gids.effective != g || gids.saved != g {
        return Err(StageError::Os { what, source: nix::Error::EPERM });
    }
    // Root cannot be regained.
    if uid != 0 && setresuid(Uid::from_raw(u32::MAX), Uid::from_raw(0), Uid::from_raw(u32::MAX)).is_ok() {
        return Err(StageError::Os { what, source: nix::Error::EPERM });
    }
    Ok(())
}

/// A recorder's `/proc` entries, for `nesting` to judge.
pub struct RecorderFacts {
    pub status: String,
    /// (device, inode) of its executable.
    pub exe: (u64, u64),
    pub fd_link: PathBuf,
    pub fdinfo: String,
}

/// The terminals taken from the user for the session.
pub struct Taken {
    terminals: Vec<TakenTerminal>,
}

impl Taken {
    /// What the recording says of them.
    pub fn describe(&self, service_uid: u32) -> Vec<String> {
        self.terminals
            .iter()
            .map(|t| format!("{} taken (owner uid {} gid {} mode {:o} until the session ends; now uid {service_uid} mode 600)", t.path.display(), t.uid, t.gid, t.mode))
            .collect()
    }
}

struct TakenTerminal {
    fd: OwnedFd,
    path: PathBuf,
    rdev: u64,
    uid: u32,
    gid: u32,
    mode: u32,
}

impl TakenTerminal {
    fn record_path(&self) -> PathBuf {
        Path::new(STATE_DIR).join(format!("terminal-{}-{}", libc::major(self.rdev), libc::minor(self.rdev)))
    }

    fn record(&self, warden: u32) -> String {
        format!("{}\n{} {} {} {:o} {}\n", self.path.display(), self.rdev, self.uid, self.gid, self.mode, warden)
    }

    /// Act 8.
    fn restore(&self) {
        let _ = nix::unistd::fchown(&self.fd, Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)));
        let _ = nix::sys::stat::fchmod(&self.fd, nix::sys::stat::Mode::from_bits_truncate(self.mode));
        let _ = std::fs::remove_file(self.record_path());
    }
}

/// A remembered terminal, as `repair_terminals` reads it back.
#[derive(Debug, PartialEq, Eq)]
struct TerminalRecord {
    path: PathBuf,
    rdev: u64,
    uid: u32,
    gid: u32,
    mode: u32,
    warden: i32,
}

impl TerminalRecord {
    fn parse(text: &str) -> Option<Self> {
        let (path, rest) = text.split_once('\n')?;
        let mut f = rest.split_whitespace();
        let rec = Self {
            path: PathBuf::from(path),
            rdev: f.next()?.parse().ok()?,
            uid: f.next()?.parse().ok()?,
            gid: f.next()?.parse().ok()?,
            mode: u32::from_str_radix(f.next()?, 8).ok()? & 0o7777,
            warden: f.next()?.parse().ok()?,
        };
        (path.starts_with("/dev/") && !path.contains("..")).then_some(rec)
    }
}

impl Privilege {
    /// Act 6, right after the fork: kills every process of the user's,
    /// other than the recorder, that holds a taken terminal open. Runs in
    /// the warden (root), beside the session's start, so it costs the
    /// login no time. Root's sessions are left alone: root's processes may
    /// hold anything.
    fn evict_terminal_holders(&self, recorder: Pid, taken: &Taken) {
        if self.user_uid == 0 {
            return;
        }
        let devices: Vec<u64> = taken.terminals.iter().map(|t| t.rdev).collect();
        let me = std::process::id();
        let Ok(procs) = std::fs::read_dir("/proc") else { return };
        let mut evicted = Vec::new();
        for pid in procs.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
            if pid == recorder.as_raw() || u32::try_from(pid).is_ok_and(|p| p == me) {
                continue;
            }
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
            let users: Vec<u32> =
                status.lines().find_map(|l| l.strip_prefix("Uid:")).map(|ids| ids.split_whitespace().filter_map(|v| v.parse().ok()).collect()).unwrap_or_default();
            if !users.contains(&self.user_uid) {
                continue;
            }
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
            let holds = fds.flatten().any(|fd| {
                std::fs::metadata(fd.path()).is_ok_and(|m| m.file_type().is_char_device() && devices.contains(&m.rdev()))
            });
            if holds {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                evicted.push(pid.to_string());
            }
        }
        self.log(Act::EvictTerminalHolders, &format!("killed [{}]", evicted.join(" ")));
    }
}

/// Gives back every terminal whose record under [`STATE_DIR`] names a
/// warden that no longer runs, if it is still the same device and still
/// the service user's; removes those records. Needs root: the login's
/// stage (act 3) and `custos doctor` call it. Returns the terminals given
/// back.
pub fn repair_left_terminals(service_uid: u32, mut repaired: impl FnMut(&Path)) -> Vec<PathBuf> {
    let mut done = Vec::new();
    let Ok(entries) = std::fs::read_dir(STATE_DIR) else { return done };
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        let Some(rec) = TerminalRecord::parse(&text) else {
            let _ = std::fs::remove_file(entry.path());
            continue;
        };
        if warden_alive(rec.warden) {
            continue;
        }
        if let Ok(meta) = std::fs::symlink_metadata(&rec.path) {
            if meta.rdev() == rec.rdev && meta.uid() == service_uid {
                repaired(&rec.path);
                let _ = nix::unistd::chown(&rec.path, Some(Uid::from_raw(rec.uid)), Some(Gid::from_raw(rec.gid)));
                let _ = std::fs::set_permissions(&rec.path, std::os::unix::fs::PermissionsExt::from_mode(rec.mode));
                done.push(rec.path.clone());
            }
        }
        let _ = std::fs::remove_file(entry.path());
    }
    done
}

/// The terminals live sessions have taken now (their wardens run).
pub fn terminals_taken() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(STATE_DIR) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| TerminalRecord::parse(&std::fs::read_to_string(e.path()).ok()?))
        .filter(|r| warden_alive(r.warden))
        .map(|r| r.path)
        .collect()
}

/// Whether a cgroup v2 hierarchy is mounted (the stage refuses logins
/// without one), and where.
pub fn cgroup2() -> Option<PathBuf> {
    cgroup2_mount(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)
}

/// A warden still runs under `pid` when that process is this same program.
fn warden_alive(pid: i32) -> bool {
    let (Ok(theirs), Ok(ours)) = (std::fs::metadata(format!("/proc/{pid}/exe")), std::fs::metadata("/proc/self/exe")) else { return false };
    theirs.dev() == ours.dev() && theirs.ino() == ours.ino()
}

/// The session's cgroup.
#[derive(Debug, Clone)]
pub struct Cgroup {
    pub dir: PathBuf,
}

impl Cgroup {
    /// Act 7: kill what is left (when `kill`), wait for it to go, remove
    /// the cgroup. A cgroup with processes kept stays.
    fn end(&self, kill: bool) {
        if kill {
            let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            if !kill {
                return;
            }
            // Killed processes take a moment to leave.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// `<cgroup2 mount><this process's cgroup>/custos-<session>`.
fn session_cgroup_dir(session_id: &str) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = cgroup2_mount(&mountinfo)?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let safe: String = session_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    Some(mount.join(path.trim_start_matches('/')).join(format!("custos-{safe}")))
}

/// The mount point of the first cgroup2 file system in `mountinfo`.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_among_v1_mounts() {
        let info = "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro\n\
                    31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    40 30 0:35 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(info), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount("31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n"), None);
    }

    #[test]
    fn a_terminal_record_reads_back_and_a_forged_one_does_not() {
        let t = "/dev/pts/3\n34819 1001 5 620 4242\n";
        assert_eq!(
            TerminalRecord::parse(t),
            Some(TerminalRecord { path: "/dev/pts/3".into(), rdev: 34819, uid: 1001, gid: 5, mode: 0o620, warden: 4242 })
        );
        assert_eq!(TerminalRecord::parse("/etc/shadow\n1 0 0 777 1\n"), None);
        assert_eq!(TerminalRecord::parse("/dev/../etc/shadow\n1 0 0 777 1\n"), None);
        assert_eq!(TerminalRecord::parse("/dev/pts/3\nnot numbers\n"), None);
        assert_eq!(TerminalRecord::parse(""), None);
    }

    /// The calls that change ids, owners, modes or cgroups. Outside this
    /// module only `custos` subcommands (never setuid) may make them.
    const PRIVILEGED_CALLS: [&str; 15] = [
        "setresuid(",
        "setresgid(",
        "setgroups(",
        "initgroups(",
        "setuid(",
        "setgid(",
        "fchown(",
        "chown(",
        "fchmod(",
        "cgroup.kill",
        "loginuid",
        "PR_SET_DUMPABLE",
        "SYS_capset",
        "SYS_seccomp",
        "PR_SET_KEEPCAPS",
    ];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_other_module_of_the_shell_makes_a_privileged_call() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let allowed = |p: &Path| {
            let rel = p.strip_prefix(&src).unwrap();
            rel == Path::new("recorder/privilege.rs")
                // `custos` subcommands run as whoever starts them, never setuid.
                || rel.starts_with("cmd")
                || rel.starts_with("bin/custos.rs")
                // The recorder writes "1" to the cgroup.kill root gave it.
                || rel == Path::new("recorder/leftovers.rs")
        };
        let mut found = Vec::new();
        for file in files.iter().filter(|f| !allowed(f)) {
            let text = std::fs::read_to_string(file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for call in PRIVILEGED_CALLS {
                    if code.contains(call) {
                        found.push(format!("{}:{}: {call}", file.display(), n + 1));
                    }
                }
            }
        }
        assert!(found.is_empty(), "privileged calls outside recorder/privilege.rs:\n{}", found.join("\n"));
        assert!(files.len() > 50, "the source tree was not found");
    }

    /// In a forked child: confined, it still reads another process's
    /// memory and `/proc` files, and can no longer trace, write into or
    /// open for writing.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn a_confined_reader_reads_but_cannot_trace_or_write() {
        // Made before the fork: the child only makes system calls.
        let privilege = Privilege::begin().unwrap();
        let program = crate::backstop::filter::reader_program().unwrap();
        let secret = *b"readable";
        let path = c"/proc/self/mem";
        let stat = c"/proc/self/stat";
        // SAFETY: the child makes raw system calls only and ends with _exit.
        match unsafe { libc::fork() } {
            0 => unsafe {
                let code = (|| {
                    if privilege.confine_exec_reader(Some(&program)).is_err() {
                        return 10;
                    }
                    let parent = libc::getppid();
                    let mut buf = [0u8; 8];
                    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: 8 };
                    let remote = libc::iovec { iov_base: secret.as_ptr() as *mut libc::c_void, iov_len: 8 };
                    if libc::process_vm_readv(parent, &raw const local, 1, &raw const remote, 1, 0) != 8 || buf != secret {
                        return 11;
                    }
                    if libc::open(stat.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) < 0 {
                        return 12;
                    }
                    if libc::open(path.as_ptr(), libc::O_RDWR) >= 0 || *libc::__errno_location() != libc::EPERM {
                        return 13;
                    }
                    if libc::process_vm_writev(parent, &raw const local, 1, &raw const remote, 1, 0) >= 0 {
                        return 14;
                    }
                    if libc::ptrace(libc::PTRACE_ATTACH, parent, 0, 0) >= 0 || *libc::__errno_location() != libc::EPERM {
                        return 15;
                    }
                    if libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) >= 0 {
                        return 16;
                    }
                    0
                })();
                libc::_exit(code)
            },
            child => {
                let mut status = 0;
                // SAFETY: waitpid on our own child.
                unsafe { libc::waitpid(child, &raw mut status, 0) };
                assert!(libc::WIFEXITED(status), "status {status}");
                assert_eq!(libc::WEXITSTATUS(status), 0, "the step that failed (see the code)");
            }
        }
    }

    #[test]
    fn every_act_has_a_distinct_name() {
        let names: std::collections::BTreeSet<_> = Act::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names.len(), Act::ALL.len());
    }

    #[test]
    fn without_the_setuid_bit_the_stage_is_off() {
        let p = Privilege::begin().unwrap();
        assert!(!p.is_privileged());
        assert_eq!(p.user_uid, getuid().as_raw());
        assert!(p.create_cgroup("x").unwrap().is_none());
    }
}
