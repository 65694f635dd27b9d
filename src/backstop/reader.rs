//! The reader: the one process that reads the memory of the session's
//! processes, so that the recorder never has to be able to, and the one
//! that answers the kernel for each exec, so that an exec waits for one
//! process, not two.
//!
//! The kernel hands each exec to whoever holds the seccomp listener; the
//! call's path and argv are pointers into the caller's memory. Reading it
//! needs ptrace rights over the caller, and the callers include setuid
//! programs (`sudo`) and root's processes under them. So the reader is a
//! process of its own, forked from the recorder before it drops, that
//! keeps exactly `CAP_SYS_PTRACE` (to read) and `CAP_KILL` (to end a
//! process whose exec landed other than checked), runs as the service
//! user, is not dumpable and never execs (see `privilege`, act
//! `become-exec-reader`).
//!
//! It decides too (`decide`, pure, with the policy it was forked with),
//! answers the kernel, and only then tells the recorder what happened: an
//! exec's wait is the kernel's wake-up of this process and its answer,
//! with no second hop to the recorder in between (every wake-up is a time
//! slice to wait for on a busy machine). What it parses is the policy's
//! shell parser over the exec's words, in safe Rust; if it panics, the
//! reader ends and the backstop fails closed. An exec that needs approval
//! is the exception: the reader hands it to the recorder unanswered.
//!
//! The recorder's word comes back on the same link: grants given at the
//! prompt (read before every exec is decided, so a line let go after its
//! grant finds it here) and held execs to watch land as approved.
//!
//! The records of programs that simply ran are held back briefly and sent
//! together ([`HOLD_IDLE`], [`HOLD_MAX`]): a loop of short programs would
//! otherwise wake the recorder once per start, and on a machine of two
//! cores that wake-up competes with the very programs being started.
//! Anything else (a refusal, a held exec, a kill) is sent at once, after
//! what was held back, so the order is kept. At the end of a session the
//! recorder asks for the rest ([`ToReader::Flush`]) and reads until
//! [`FromReader::Flushed`]: no record is lost to the session ending.
//!
//! If the reader dies, the recorder closes its listener too, and every
//! exec of the session fails from then on (the kernel's answer for a
//! filter without a listener): the backstop fails closed.

use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, FromRawFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::decide::{decide, Action, Mode, Settings};
use super::filter::{classify, Abi, Call};
use super::wire::{self, ExecRecord, FromReader, Request, ToReader, WireError};
use crate::evidence::marker::Outcome;
use crate::policy::{RuleRef, Verdict};

/// The longest path the kernel takes (PATH_MAX).
const MAX_PATH: usize = 4096;
/// The longest single argument the kernel takes (MAX_ARG_STRLEN).
const MAX_ARG: usize = 128 * 1024;
/// All of argv together, and how many arguments, the reader reads; past
/// this the exec is unreadable (refused in enforce).
const MAX_ARGV_BYTES: usize = 4 << 20;
const MAX_ARGS: usize = 1 << 17;
/// How much of the caller's own command line is kept (it is context).
const MAX_CALLER: usize = 64 * 1024;
/// How long an allowed exec is watched for landing as checked.
const VERIFY_FOR: Duration = Duration::from_secs(5);
/// Records of programs that ran are sent when no exec came for this long,
const HOLD_IDLE: Duration = Duration::from_millis(2);
/// or when the oldest has waited this long, or when this many bytes wait.
const HOLD_MAX: Duration = Duration::from_millis(20);
const HOLD_BYTES: usize = 64 * 1024;

const AT_FDCWD: i32 = -100;
const AT_EMPTY_PATH: u64 = 0x1000;

/// An allowed exec being watched (see [`ToReader::Verify`]).
struct Watch {
    tgid: i32,
    path: String,
    argv: Vec<u8>,
    caller: Vec<u8>,
    checked: Vec<String>,
    strict: bool,
    until: Instant,
}

impl Watch {
    fn new(tgid: i32, path: String, argv: Vec<String>, caller: &[String], strict: bool) -> Self {
        Self { tgid, path, argv: joined(&argv), caller: joined(caller), checked: argv, strict, until: Instant::now() + VERIFY_FOR }
    }
}

/// What the reader keeps between execs.
struct Reader {
    listener: OwnedFd,
    link: UnixStream,
    settings: Settings,
    grants: Vec<String>,
    watches: Vec<Watch>,
    /// Framed records held back, and since when (see [`HOLD_MAX`]).
    unsent: Vec<u8>,
    unsent_since: Option<Instant>,
}

/// Runs the reader until the recorder goes away. Never returns.
pub fn run(listener: OwnedFd, link: UnixStream, settings: Settings) -> ! {
    let grants = settings.granted.clone();
    let mut r = Reader { listener, link, settings, grants, watches: Vec::new(), unsent: Vec::new(), unsent_since: None };
    loop {
        let timeout = if !r.watches.is_empty() {
            PollTimeout::from(1u8)
        } else if r.unsent_since.is_some() {
            PollTimeout::from(HOLD_IDLE.as_millis() as u8)
        } else {
            PollTimeout::NONE
        };
        let (notified, told) = {
            let mut fds = [PollFd::new(r.listener.as_fd(), PollFlags::POLLIN), PollFd::new(r.link.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(_) => exit(),
            }
            let ev = |i: usize| fds.get(i).and_then(PollFd::revents).unwrap_or(PollFlags::empty());
            (ev(0).contains(PollFlags::POLLIN), ev(1).intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
        };
        // The recorder's word first, and again just before an exec is
        // decided: a grant written before a line was let go is already
        // in the socket when that line's first exec arrives.
        if (told || notified) && r.heed().is_err() {
            exit();
        }
        if notified {
            if let Some(req) = receive(&r.listener) {
                r.answer(req);
            }
        }
        // Idle, or held back long enough: send what waits.
        let due = r.unsent_since.is_some_and(|since| !notified || since.elapsed() >= HOLD_MAX || r.unsent.len() >= HOLD_BYTES);
        if due && r.flush().is_err() {
            exit();
        }
        if !r.watches.is_empty() {
            if r.flush().is_err() {
                exit();
            }
            let (link, mode) = (&mut r.link, r.settings.mode);
            r.watches.retain(|w| !settle(w, link, mode));
        }
    }
}

impl Reader {
    /// Takes every frame the recorder has sent, without waiting.
    fn heed(&mut self) -> Result<(), WireError> {
        loop {
            let mut fds = [PollFd::new(self.link.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::ZERO).map_err(std::io::Error::from)?;
            let ev = fds.first().and_then(PollFd::revents).unwrap_or(PollFlags::empty());
            if ready == 0 || !ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                return Ok(());
            }
            match wire::read::<ToReader>(&mut self.link)? {
                ToReader::Verify { tgid, path, argv, caller, strict } => self.watches.push(Watch::new(tgid, path, argv, &caller, strict)),
                ToReader::Grant(rule) => self.grants.push(rule),
                ToReader::Revoke => self.grants.clear(),
                ToReader::Flush => self.send(&FromReader::Flushed)?,
            }
        }
    }

    /// Decides one exec, answers the kernel, then tells the recorder.
    fn answer(&mut self, mut req: Request) {
        if let Some(errno) = req.missing {
            answer_kernel(&self.listener, req.id, -errno, 0);
            return;
        }
        let s = &self.settings;
        let grants = &self.grants;
        let v = decide(&s.policy, &s.subject, &s.home, &req, s.mode, |rule| grants.iter().any(|g| g == rule));
        let (mode, id) = (s.mode, req.id);
        let frame = match &v.action {
            Action::Run => {
                if req.threads > 1 && req.call != "listener" {
                    // Another thread can rewrite argv between now and the
                    // exec: watch it land as checked.
                    self.watches.push(Watch::new(req.tgid, req.path.clone(), req.argv.clone(), &req.caller, true));
                }
                respond(&self.listener, id, true);
                FromReader::Decided(ExecRecord::new(&req, &v, mode, Outcome::Ran.as_str(), None))
            }
            Action::Refuse(message) => {
                respond(&self.listener, id, false);
                FromReader::Decided(ExecRecord::new(&req, &v, mode, Outcome::Refused.as_str(), Some(message.clone())))
            }
            Action::Hold => {
                // The watch after approval compares with the caller's
                // command line as `/proc` shows it.
                if let Ok(caller) = std::fs::read(format!("/proc/{}/cmdline", req.pid)) {
                    req.caller = split_words(&caller);
                }
                let rule = v.rule.clone().unwrap_or_else(|| RuleRef {
                    name: "custos:approve".into(),
                    message: "needs approval".into(),
                    action: Verdict::Approve,
                    approvers: None,
                    quorum: 1,
                    timeout: Duration::from_secs(300),
                    reason: false,
                    line: 0,
                });
                let record = ExecRecord::new(&req, &v, mode, Outcome::Held.as_str(), Some(rule.message.clone()));
                FromReader::Held { id, record, rule }
            }
        };
        let sent = match frame {
            FromReader::Decided(ref record) if record.outcome == Outcome::Ran.as_str() => self.hold(&frame),
            _ => self.send(&frame),
        };
        if sent.is_err() {
            exit();
        }
    }

    /// Keeps a record of a program that ran, to send with others.
    fn hold(&mut self, frame: &FromReader) -> Result<(), WireError> {
        wire::write(&mut self.unsent, frame)?;
        self.unsent_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Sends what was held back, then `frame`: the recorder reads them in
    /// the order they were decided.
    fn send(&mut self, frame: &FromReader) -> Result<(), WireError> {
        wire::write(&mut self.unsent, frame)?;
        self.flush()
    }

    fn flush(&mut self) -> Result<(), WireError> {
        if !self.unsent.is_empty() {
            self.link.write_all(&self.unsent)?;
            self.unsent.clear();
        }
        self.unsent_since = None;
        Ok(())
    }
}

/// Answers the kernel: run the exec, or fail it with `EACCES`.
pub fn respond(listener: &OwnedFd, id: u64, run: bool) {
    if run {
        answer_kernel(listener, id, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32);
    } else {
        answer_kernel(listener, id, -libc::EACCES, 0);
    }
}

fn answer_kernel(listener: &OwnedFd, id: u64, error: i32, flags: u32) {
    let mut resp = libc::seccomp_notif_resp { id, val: 0, error, flags };
    // SAFETY: SEND reads one seccomp_notif_resp we own. An error means the
    // caller died meanwhile; there is nobody left to answer.
    unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND as _, &raw mut resp) };
}

fn exit() -> ! {
    // SAFETY: _exit is always sound.
    unsafe { libc::_exit(0) }
}

fn joined(args: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in args {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    out
}

/// NUL-separated words, as `/proc/PID/cmdline` gives them.
fn split_words(raw: &[u8]) -> Vec<String> {
    raw.split(|c| *c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

/// One look at a watched exec; true when it is settled. In `audit`, an
/// exec that landed other than checked is recorded, not killed.
fn settle(w: &Watch, link: &mut UnixStream, mode: Mode) -> bool {
    let Ok(now) = std::fs::read(format!("/proc/{}/cmdline", w.tgid)) else { return true };
    if now == w.argv || landed_as_script(&now, &w.path, &w.checked) {
        return true;
    }
    // Still the caller (not landed, or failed), or empty: between the
    // kernel swapping in the new memory and laying out its arguments,
    // `cmdline` reads nothing. Look again.
    if now == w.caller || (now.is_empty() && !w.strict) {
        return Instant::now() > w.until;
    }
    // The exec landed with other arguments than were checked.
    if mode == Mode::Enforce {
        // SAFETY: kill(2) with a pid and a constant signal.
        unsafe { libc::kill(w.tgid, libc::SIGKILL) };
    }
    let _ = wire::write(&mut *link, &FromReader::Killed { tgid: w.tgid, checked: w.checked.clone(), ran: split_words(&now), mode });
    let _ = link.flush();
    true
}

/// Whether `now` (a command line, NUL-separated) is how the kernel runs
/// the script `path` with `checked` arguments: `INTERPRETER [ARG] PATH
/// ARGV[1..]` (argv[0] is replaced by the path).
pub fn landed_as_script(now: &[u8], path: &str, checked: &[String]) -> bool {
    let words: Vec<&[u8]> = now.split(|b| *b == 0).collect();
    // The trailing NUL leaves an empty last word.
    let words = words.strip_suffix(&[&b""[..]]).unwrap_or(&words);
    let tail = checked.get(1..).unwrap_or_default();
    let Some(start) = words.len().checked_sub(tail.len() + 1) else { return false };
    if !(1..=2).contains(&start) || words.get(start) != Some(&path.as_bytes()) {
        return false;
    }
    words.get(start + 1..).is_some_and(|rest| rest.iter().zip(tail).all(|(w, t)| *w == t.as_bytes()))
}

/// Takes one notification and reads its call; `None` when there was
/// nothing to take (interrupted, or the caller died meanwhile).
fn receive(listener: &OwnedFd) -> Option<Request> {
    // SAFETY: an all-zero seccomp_notif is valid (and RECV requires it).
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV writes one seccomp_notif into the buffer we own.
    let rc = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV as _, &raw mut notif) };
    if rc < 0 {
        return None;
    }
    let pid = i32::try_from(notif.pid).ok()?;
    let mut req = read_call(pid, notif.data.arch, notif.data.nr, &notif.data.args);
    req.id = notif.id;
    // The pid was still this caller while we read: the notification is
    // still pending, so the memory we read was its.
    let mut id = notif.id;
    // SAFETY: ID_VALID reads one u64 we own.
    let valid = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _, &raw mut id) } == 0;
    valid.then_some(req)
}

/// What `/proc/PID/stat` says of a process, as far as an exec needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub ppid: i32,
    pub threads: u32,
    /// Where the process's own arguments lie in its memory (0 when the
    /// kernel did not show them).
    pub arg_start: u64,
    pub arg_end: u64,
}

impl Stat {
    /// Parses `/proc/PID/stat`. The command name (field 2) is in
    /// parentheses and may hold anything, spaces and `)` included, so the
    /// fields are counted from its last `)`.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.get(text.rfind(')')? + 1..)?;
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        // `fields[0]` is field 3 (the state).
        let field = |n: usize| fields.get(n - 3).copied();
        Some(Self {
            ppid: field(4)?.parse().ok()?,
            threads: field(20)?.parse().ok()?,
            arg_start: field(48).and_then(|f| f.parse().ok()).unwrap_or(0),
            arg_end: field(49).and_then(|f| f.parse().ok()).unwrap_or(0),
        })
    }
}

/// Reads what process `pid` asked for; failures are recorded in
/// `unreadable`, never guessed around.
///
/// This is on every exec's path, so it reads as little of `/proc` as will
/// do, through one descriptor of the process's directory: `stat` (parent,
/// threads, and where the caller's own arguments lie, which are then
/// copied like the exec's), `cwd`, and whether the program's file is a
/// symlink; `status` and `cmdline` only for a threaded caller, whose exec
/// is watched against `cmdline`.
pub fn read_call(pid: i32, arch: u32, nr: i32, args: &[u64; 6]) -> Request {
    let mut req = Request { pid, tgid: pid, threads: 1, ..Request::default() };
    let Some(dir) = ProcDir::open(pid) else {
        req.unreadable = Some(format!("/proc/{pid}"));
        return req;
    };
    // The command name in `stat` is any bytes the process chose.
    let Some(stat) = dir.read("stat").and_then(|t| Stat::parse(&String::from_utf8_lossy(&t))) else {
        req.unreadable = Some(format!("/proc/{pid}/stat"));
        return req;
    };
    let mem = Mem { pid };
    req.ppid = stat.ppid;
    req.threads = stat.threads.max(1);
    if req.threads > 1 {
        // A thread's id is not its process's: `status` has the group.
        let status = dir.read("status").unwrap_or_default();
        let status = String::from_utf8_lossy(&status);
        req.tgid = status.lines().find_map(|l| l.strip_prefix("Tgid:")).and_then(|v| v.trim().parse().ok()).unwrap_or(pid);
        req.caller = split_words(&dir.read("cmdline").unwrap_or_default());
    } else {
        let raw = read_span(&mem, stat.arg_start, stat.arg_end, MAX_CALLER).or_else(|| dir.read("cmdline"));
        req.caller = split_words(&raw.unwrap_or_default());
    }
    req.cwd = dir.link("cwd").unwrap_or_default();
    let Some((call, abi)) = classify(arch, nr) else {
        req.call = format!("syscall {nr}");
        req.unreadable = Some(format!("system call {nr} of architecture {arch:#x} is not one the backstop knows"));
        return req;
    };
    let arg = |i: usize| args.get(i).copied().unwrap_or(0);
    let (dirfd, path_ptr, argv_ptr, flags) = match call {
        Call::Execve => (AT_FDCWD, arg(0), arg(1), 0),
        Call::Execveat => (arg(0) as u32 as i32, arg(1), arg(2), arg(4)),
        Call::NewListener => {
            req.call = "listener".into();
            return req;
        }
    };
    req.call = if call == Call::Execve { "execve" } else { "execveat" }.into();
    let width = if abi == Abi::Bits64 { 8 } else { 4 };
    match read_cstr(&mem, path_ptr, MAX_PATH) {
        Ok(p) => req.path = p,
        Err(e) => {
            req.unreadable = Some(format!("the program's path: {e}"));
            return req;
        }
    }
    match read_argv(&mem, argv_ptr, width) {
        Ok(a) => req.argv = a,
        Err(e) => {
            req.unreadable = Some(format!("the arguments: {e}"));
            return req;
        }
    }
    let base = if req.path.starts_with('/') {
        None
    } else if dirfd == AT_FDCWD {
        Some(req.cwd.clone())
    } else {
        match descriptor_path(pid, dirfd) {
            Ok(p) => Some(p),
            Err(e) => {
                req.unreadable = Some(format!("execveat's directory (descriptor {dirfd}): {e}"));
                return req;
            }
        }
    };
    req.resolved = match base {
        None => req.path.clone(),
        Some(dir) if req.path.is_empty() && flags & AT_EMPTY_PATH != 0 => dir,
        Some(dir) => format!("{}/{}", dir.trim_end_matches('/'), req.path),
    };
    // Symlinks followed inside the caller's root, as the kernel will.
    // Only a symlink as the last part can give the program another name
    // (a linked directory does not change it), so that alone is resolved.
    match dir.file_type(&format!("root{}", req.resolved)) {
        Ok(kind) if kind == libc::S_IFLNK => {
            req.real = std::fs::canonicalize(format!("/proc/{pid}/root{}", req.resolved)).ok().map(|p| p.to_string_lossy().into_owned());
        }
        // Only for an absolute `execve` path: a relative one is resolved
        // here against a `cwd` that may read `… (deleted)`, and a
        // descriptor's (`fexecve`, a memfd) may name no file at all.
        Err(errno @ (nix::Error::ENOENT | nix::Error::ENOTDIR)) if call == Call::Execve && req.path.starts_with('/') => {
            req.missing = Some(errno as i32);
        }
        _ => {}
    }
    req
}

/// A process's `/proc` directory, held open: each file of it is one
/// lookup from here, not a walk from `/proc`.
struct ProcDir(OwnedFd);

impl ProcDir {
    fn open(pid: i32) -> Option<Self> {
        use nix::fcntl::{open, OFlag};
        let fd = open(format!("/proc/{pid}").as_str(), OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ok()?;
        Some(Self(fd))
    }

    /// A whole file of it (the ones read here are small; `cmdline` is
    /// capped at [`MAX_CALLER`]).
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        use nix::fcntl::{openat, OFlag};
        let fd = openat(&self.0, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ok()?;
        let mut out = vec![0u8; 4096];
        let mut len = 0;
        loop {
            if len == out.len() {
                if len >= MAX_CALLER {
                    break;
                }
                out.resize(len * 2, 0);
            }
            match nix::unistd::read(&fd, out.get_mut(len..)?) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(nix::Error::EINTR) => {}
                Err(_) => return None,
            }
        }
        out.truncate(len);
        Some(out)
    }

    fn link(&self, name: &str) -> Option<String> {
        nix::fcntl::readlinkat(&self.0, name).ok().map(|p| p.to_string_lossy().into_owned())
    }

    /// The kind of file `name` is (`S_IFLNK` for a symlink: not followed).
    fn file_type(&self, name: &str) -> nix::Result<libc::mode_t> {
        nix::sys::stat::fstatat(&self.0, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).map(|st| st.st_mode & libc::S_IFMT)
    }
}

/// Another process's memory, read with `process_vm_readv`: that needs
/// ptrace rights only (the reader's `CAP_SYS_PTRACE`), where
/// `/proc/PID/mem` of a process that is not dumpable (a setuid program, or
/// `custos-shell`'s own child before its exec) is also a root-owned file.
struct Mem {
    pid: i32,
}

impl Mem {
    fn read_at(&self, buf: &mut [u8], addr: u64) -> std::io::Result<usize> {
        let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        let remote = libc::iovec { iov_base: addr as usize as *mut libc::c_void, iov_len: buf.len() };
        // SAFETY: the local iovec covers `buf`, which we own; the remote
        // one is only read by the kernel, on the other process's behalf.
        let n = unsafe { libc::process_vm_readv(self.pid, &raw const local, 1, &raw const remote, 1, 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

/// Where process `pid`'s descriptor `fd` points: the descriptor itself is
/// taken (`pidfd_getfd`, ptrace rights only) and its path read from our
/// own `/proc/self/fd`, since `/proc/PID/fd` of a process that is not
/// dumpable is root's.
fn descriptor_path(pid: i32, fd: i32) -> std::io::Result<String> {
    // SAFETY: pidfd_open with a pid and no flags.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: pidfd_getfd with a descriptor we own and no flags.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    let copy = unsafe { OwnedFd::from_raw_fd(copy as i32) };
    let path = std::fs::read_link(format!("/proc/self/fd/{}", copy.as_raw_fd()))?;
    Ok(path.to_string_lossy().into_owned())
}

/// The bytes from `start` to `end` (at most `max`) of `mem`; `None` when
/// the span is not shown or not readable.
fn read_span(mem: &Mem, start: u64, end: u64, max: usize) -> Option<Vec<u8>> {
    if start == 0 || end <= start {
        return None;
    }
    let len = usize::try_from(end - start).ok()?.min(max);
    let mut buf = vec![0u8; len];
    let n = mem.read_at(&mut buf, start).ok()?;
    buf.truncate(n);
    (n > 0).then_some(buf)
}

/// A NUL-terminated string at `addr`, read page by page (a string may end
/// just before an unmapped page).
fn read_cstr(mem: &Mem, addr: u64, max: usize) -> Result<String, String> {
    if addr == 0 {
        return Err("a null pointer".into());
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        let to_page = 4096 - (at % 4096) as usize;
        let mut buf = vec![0u8; to_page.min(max - out.len())];
        let n = mem.read_at(&mut buf, at).map_err(|e| format!("unreadable at {at:#x}: {e}"))?;
        if n == 0 {
            return Err(format!("unreadable at {at:#x}"));
        }
        let chunk = buf.get(..n).unwrap_or_default();
        if let Some(end) = memchr::memchr(0, chunk) {
            out.extend_from_slice(chunk.get(..end).unwrap_or_default());
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(chunk);
        at = at.checked_add(n as u64).ok_or("the address wraps")?;
    }
    Err(format!("longer than {max} bytes"))
}

/// The argument vector at `addr`: the pointers read a page's worth at a
/// time (one copy for a usual argv, not one per argument), then each
/// string.
fn read_argv(mem: &Mem, addr: u64, width: usize) -> Result<Vec<String>, String> {
    let mut argv = Vec::new();
    if addr == 0 {
        return Ok(argv);
    }
    let mut total = 0usize;
    let mut at = addr;
    let mut chunk = vec![0u8; 4096];
    loop {
        // Up to the end of the page, never across it: the next page may
        // not be mapped even where the list has ended.
        let to_page = 4096 - (at % 4096) as usize;
        let want = (to_page / width).max(1) * width;
        let buf = chunk.get_mut(..want).ok_or("the argument list")?;
        let n = mem.read_at(buf, at).map_err(|e| format!("the argument list at {at:#x}: {e}"))?;
        if n < width {
            return Err(format!("the argument list at {at:#x}: unreadable"));
        }
        for slot in buf.get(..n - n % width).unwrap_or_default().chunks_exact(width) {
            let mut raw = [0u8; 8];
            raw.get_mut(..width).ok_or("the argument list")?.copy_from_slice(slot);
            let ptr = u64::from_le_bytes(raw);
            if ptr == 0 {
                return Ok(argv);
            }
            if argv.len() >= MAX_ARGS {
                return Err(format!("more than {MAX_ARGS} arguments"));
            }
            let s = read_cstr(mem, ptr, MAX_ARG)?;
            total += s.len() + 1;
            if total > MAX_ARGV_BYTES {
                return Err(format!("more than {MAX_ARGV_BYTES} bytes of arguments"));
            }
            argv.push(s);
        }
        at = at.checked_add((n - n % width) as u64).ok_or("the address wraps")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_read_past_a_command_name_that_lies() {
        let mut fields = vec!["S".to_owned(); 50];
        fields[1] = "4242".into(); // field 4, the parent
        fields[17] = "3".into(); // field 20, the threads
        fields[45] = "1000".into(); // field 48
        fields[46] = "1016".into(); // field 49
        let text = format!("77 (evil) 1 2 (x) {}\n", fields.join(" "));
        let stat = Stat::parse(&text).unwrap();
        assert_eq!(stat, Stat { ppid: 4242, threads: 3, arg_start: 1000, arg_end: 1016 });
        assert_eq!(Stat::parse("77 (no close"), None);
        assert_eq!(Stat::parse("77 (x) S"), None, "too few fields is named, not guessed");
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let own = Stat::parse(&own).unwrap();
        assert_eq!(own.ppid, nix::unistd::getppid().as_raw());
        assert!(own.threads >= 1);
    }

    #[test]
    fn a_script_lands_with_its_interpreter_in_front_and_nothing_else_passes() {
        let checked = vec!["bump".to_owned(), "via-script".to_owned()];
        assert!(landed_as_script(b"/bin/sh\0/opt/bin/bump\0via-script\0", "/opt/bin/bump", &checked));
        assert!(landed_as_script(b"/usr/bin/env\0python3\0./bump\0via-script\0", "./bump", &checked));
        assert!(!landed_as_script(b"/bin/sh\0/opt/bin/bump\0rm-rf\0", "/opt/bin/bump", &checked));
        assert!(!landed_as_script(b"/opt/bin/bump\0via-script\0", "/opt/bin/bump", &checked), "no interpreter: not a script");
        assert!(!landed_as_script(b"/bin/sh\0/tmp/other\0via-script\0", "/opt/bin/bump", &checked));
        assert!(!landed_as_script(b"", "/opt/bin/bump", &checked));
    }
}
