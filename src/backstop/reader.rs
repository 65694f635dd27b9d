//! The reader: the one process that reads the memory of the session's
//! processes, so that the recorder never has to be able to.
//!
//! The kernel hands each exec to whoever holds the seccomp listener; the
//! call's path and argv are pointers into the caller's memory. Reading it
//! needs ptrace rights over the caller, and the callers include setuid
//! programs (`sudo`) and root's processes under them. So the reader is a
//! process of its own, forked from the recorder before it drops, that
//! keeps exactly `CAP_SYS_PTRACE` (to read) and `CAP_KILL` (to end a
//! process whose exec landed other than checked), runs as the service
//! user, is not dumpable and never execs (see `privilege`, act
//! `become-exec-reader`). It parses nothing: it copies bytes and sends
//! them to the recorder, which decides and answers the kernel itself.
//!
//! If the reader dies, the recorder closes its listener too, and every
//! exec of the session fails from then on (the kernel's answer for a
//! filter without a listener): the backstop fails closed.

use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, FromRawFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::filter::{classify, Abi, Call};
use super::wire::{self, FromReader, Request, ToReader};

/// The longest path the kernel takes (PATH_MAX).
const MAX_PATH: usize = 4096;
/// The longest single argument the kernel takes (MAX_ARG_STRLEN).
const MAX_ARG: usize = 128 * 1024;
/// All of argv together, and how many arguments, the reader reads; past
/// this the exec is unreadable (refused in enforce).
const MAX_ARGV_BYTES: usize = 4 << 20;
const MAX_ARGS: usize = 1 << 17;
/// How long an allowed exec is watched for landing as checked.
const VERIFY_FOR: Duration = Duration::from_secs(5);

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

/// Runs the reader until the recorder goes away. Never returns.
pub fn run(listener: OwnedFd, mut link: UnixStream) -> ! {
    let mut watches: Vec<Watch> = Vec::new();
    loop {
        let timeout = if watches.is_empty() { PollTimeout::NONE } else { PollTimeout::from(1u8) };
        let (notified, told, closed) = {
            let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN), PollFd::new(link.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(_) => exit(),
            }
            let ev = |i: usize| fds.get(i).and_then(PollFd::revents).unwrap_or(PollFlags::empty());
            (ev(0).contains(PollFlags::POLLIN), ev(1).contains(PollFlags::POLLIN), ev(1).intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
        };
        if notified {
            if let Some(req) = receive(&listener) {
                if wire::write(&mut link, &FromReader::Exec(req)).is_err() {
                    exit();
                }
            }
        }
        if told {
            match wire::read::<ToReader>(&mut link) {
                Ok(ToReader::Verify { tgid, path, argv, caller, strict }) => watches.push(Watch {
                    strict,
                    tgid,
                    path,
                    argv: joined(&argv),
                    caller: joined(&caller),
                    checked: argv,
                    until: Instant::now() + VERIFY_FOR,
                }),
                Err(_) => exit(),
            }
        } else if closed {
            exit();
        }
        watches.retain(|w| !settle(w, &mut link));
    }
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

/// One look at a watched exec; true when it is settled.
fn settle(w: &Watch, link: &mut UnixStream) -> bool {
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
    // SAFETY: kill(2) with a pid and a constant signal.
    unsafe { libc::kill(w.tgid, libc::SIGKILL) };
    let ran = now.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    let _ = wire::write(&mut *link, &FromReader::Killed { tgid: w.tgid, checked: w.checked.clone(), ran });
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

/// Reads what process `pid` asked for; failures are recorded in
/// `unreadable`, never guessed around.
pub fn read_call(pid: i32, arch: u32, nr: i32, args: &[u64; 6]) -> Request {
    let mut req = Request { pid, ..Request::default() };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<i64>().ok());
    req.tgid = field("Tgid:").and_then(|v| i32::try_from(v).ok()).unwrap_or(pid);
    req.ppid = field("PPid:").and_then(|v| i32::try_from(v).ok()).unwrap_or(0);
    req.threads = field("Threads:").and_then(|v| u32::try_from(v).ok()).unwrap_or(1);
    req.cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    req.caller = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| b.split(|c| *c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
        .unwrap_or_default();
    let Some((call, abi)) = classify(arch, nr) else {
        req.call = format!("syscall {nr}");
        req.unreadable = Some(format!("system call {nr} of architecture {arch:#x} is not one the backstop knows"));
        return req;
    };
    let mem = Mem { pid };
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
    let in_root = format!("/proc/{pid}/root{}", req.resolved);
    req.real = std::fs::canonicalize(&in_root).ok().map(|p| p.to_string_lossy().into_owned());
    req
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

    fn read_exact_at(&self, buf: &mut [u8], addr: u64) -> std::io::Result<()> {
        if self.read_at(buf, addr)? == buf.len() {
            Ok(())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        }
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

fn read_argv(mem: &Mem, addr: u64, width: usize) -> Result<Vec<String>, String> {
    let mut argv = Vec::new();
    if addr == 0 {
        return Ok(argv);
    }
    let mut total = 0usize;
    for i in 0..MAX_ARGS {
        let mut raw = [0u8; 8];
        let slot = raw.get_mut(..width).unwrap_or_default();
        let at = addr.checked_add((i * width) as u64).ok_or("the address wraps")?;
        mem.read_exact_at(slot, at).map_err(|e| format!("the argument list at {at:#x}: {e}"))?;
        let ptr = u64::from_le_bytes(raw);
        if ptr == 0 {
            return Ok(argv);
        }
        let s = read_cstr(mem, ptr, MAX_ARG)?;
        total += s.len() + 1;
        if total > MAX_ARGV_BYTES {
            return Err(format!("more than {MAX_ARGV_BYTES} bytes of arguments"));
        }
        argv.push(s);
    }
    Err(format!("more than {MAX_ARGS} arguments"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
