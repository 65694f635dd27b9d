//! The seccomp program the privileged stage installs on the session's
//! first process: which system calls the supervisor is asked about.
//!
//! Pure: it builds classic BPF instructions and interprets nothing. The
//! program sends to the listener (`SECCOMP_RET_USER_NOTIF`):
//!
//! - `execve` and `execveat`, in every ABI this kernel may run a program
//!   under (x86-64, its x32 variant and i386 on x86-64; AArch64 and its
//!   32-bit Arm on AArch64), so a static 32-bit binary using `int 0x80`
//!   is asked about like any other;
//! - `seccomp(SECCOMP_SET_MODE_FILTER, flags)` with
//!   `SECCOMP_FILTER_FLAG_NEW_LISTENER`: a filter of the user's own that
//!   notifies is the one the kernel asks first, so a program that stacked
//!   one could answer its own execs. The supervisor refuses and records it.
//!
//! Everything else is allowed without a round trip. A system call of an
//! architecture the program does not know is refused (`EPERM`), so an ABI
//! added later cannot be an unwatched way to exec.

use libc::sock_filter;

/// `AUDIT_ARCH_*` values (linux/audit.h).
pub const ARCH_X86_64: u32 = 0xc000_003e;
pub const ARCH_I386: u32 = 0x4000_0003;
pub const ARCH_AARCH64: u32 = 0xc000_00b7;
pub const ARCH_ARM: u32 = 0x4000_0028;

/// x32 system calls are x86-64's numbers with this bit set.
const X32_BIT: u32 = 0x4000_0000;

/// What a notified system call is, by architecture and number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Execve,
    Execveat,
    /// `seccomp(SECCOMP_SET_MODE_FILTER, …NEW_LISTENER…)`.
    NewListener,
}

/// The ABI of a notified call: how wide its pointers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    Bits64,
    Bits32,
}

/// One architecture's numbers.
struct Table {
    arch: u32,
    abi: Abi,
    execve: u32,
    execveat: u32,
    seccomp: u32,
}

const TABLES: [Table; 5] = [
    Table { arch: ARCH_X86_64, abi: Abi::Bits64, execve: 59, execveat: 322, seccomp: 317 },
    // x32: same arch value, numbers with the x32 bit (execve 520, execveat 545).
    Table { arch: ARCH_X86_64, abi: Abi::Bits32, execve: X32_BIT | 520, execveat: X32_BIT | 545, seccomp: X32_BIT | 317 },
    Table { arch: ARCH_I386, abi: Abi::Bits32, execve: 11, execveat: 358, seccomp: 354 },
    Table { arch: ARCH_AARCH64, abi: Abi::Bits64, execve: 221, execveat: 281, seccomp: 277 },
    Table { arch: ARCH_ARM, abi: Abi::Bits32, execve: 11, execveat: 387, seccomp: 383 },
];

/// What the notified call `nr` of `arch` is, and its pointer width.
pub fn classify(arch: u32, nr: i32) -> Option<(Call, Abi)> {
    let nr = nr as u32;
    TABLES.iter().filter(|t| t.arch == arch).find_map(|t| {
        if nr == t.execve {
            Some((Call::Execve, t.abi))
        } else if nr == t.execveat {
            Some((Call::Execveat, t.abi))
        } else if nr == t.seccomp {
            Some((Call::NewListener, t.abi))
        } else {
            None
        }
    })
}

// Classic BPF opcodes (linux/filter.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

// Offsets into `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// Low 32 bits of `args[0]` and `args[1]` (little-endian; the big-endian
/// case is not built).
const ARG0_LO: u32 = 16;
const ARG1_LO: u32 = 24;
const ARG2_LO: u32 = 32;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_NOTIFY: u32 = 0x7fc0_0000;
const RET_EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;

const SET_MODE_FILTER: u32 = 1;
const FLAG_NEW_LISTENER: u32 = 1 << 3;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The program. For each architecture: if the arch matches, look at the
/// number; a match on execve or execveat notifies, a `seccomp` call
/// notifies when it sets a filter with a new listener, anything else is
/// allowed. An unknown architecture is refused.
pub fn program() -> Vec<sock_filter> {
    let mut p = vec![stmt(LD_W_ABS, ARCH)];
    // Group the tables by arch value (x86-64 and x32 share one).
    let mut arches: Vec<u32> = Vec::new();
    for t in &TABLES {
        if !arches.contains(&t.arch) {
            arches.push(t.arch);
        }
    }
    for arch in arches {
        // A holds the arch here, and again after a skipped block.
        let mut block = vec![stmt(LD_W_ABS, NR)];
        for t in TABLES.iter().filter(|t| t.arch == arch) {
            block.push(jump(JEQ_K, t.execve, 0, 1));
            block.push(stmt(RET_K, RET_NOTIFY));
            block.push(jump(JEQ_K, t.execveat, 0, 1));
            block.push(stmt(RET_K, RET_NOTIFY));
            // seccomp(SET_MODE_FILTER, flags with NEW_LISTENER): notify;
            // any other seccomp call: allow.
            block.push(jump(JEQ_K, t.seccomp, 0, 6));
            block.push(stmt(LD_W_ABS, ARG0_LO));
            block.push(jump(JEQ_K, SET_MODE_FILTER, 0, 2));
            block.push(stmt(LD_W_ABS, ARG1_LO));
            block.push(jump(JSET_K, FLAG_NEW_LISTENER, 1, 0));
            block.push(stmt(RET_K, RET_ALLOW));
            block.push(stmt(RET_K, RET_NOTIFY));
        }
        block.push(stmt(RET_K, RET_ALLOW));
        let skip = u8::try_from(block.len()).unwrap_or(u8::MAX);
        p.push(jump(JEQ_K, arch, 0, skip));
        p.extend(block);
    }
    p.push(stmt(RET_K, RET_EPERM));
    p
}

/// `open` flags that write, create or truncate: `O_WRONLY | O_RDWR |
/// O_CREAT | O_TRUNC`.
const WRITE_FLAGS: u32 = 0o1 | 0o2 | 0o100 | 0o1000;

/// The reader's own confinement: its native architecture's numbers.
struct Confinement {
    arch: u32,
    /// Refused outright: tracing (`ptrace`), writing into or advising
    /// another process (`process_vm_writev`, `process_madvise`), running a
    /// program, opening by a struct the filter cannot read (`openat2`),
    /// sockets, `creat`, `io_uring` (whose operations seccomp never sees),
    /// and `prctl` (no undoing "not dumpable").
    refused: &'static [u32],
    /// `open`-like calls and the offset of their flags: refused when the
    /// flags write (`/proc/PID/mem` opened for writing is a way into any
    /// process the reader may trace).
    opens: &'static [(u32, u32)],
}

#[cfg(target_arch = "x86_64")]
const READER: Confinement = Confinement { arch: ARCH_X86_64, refused: &[101, 311, 440, 59, 322, 437, 41, 42, 85, 425, 157], opens: &[(2, ARG1_LO), (257, ARG2_LO)] };
#[cfg(target_arch = "aarch64")]
const READER: Confinement = Confinement { arch: ARCH_AARCH64, refused: &[117, 271, 440, 221, 281, 437, 198, 203, 425, 167], opens: &[(56, ARG2_LO)] };

/// The filter the reader puts on itself once it has dropped (see
/// `reader`): it keeps `CAP_SYS_PTRACE` to *read* the session's
/// processes and parses their exec words, so should that parsing ever be
/// subverted, what it could do with the capability is cut to reading. A
/// refused call fails with `EPERM`; another architecture's calls (x32's
/// numbers, `int 0x80`) are refused too. `None` on an architecture this
/// is not built for.
pub fn reader_program() -> Option<Vec<sock_filter>> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let c = &READER;
        let mut p = vec![stmt(LD_W_ABS, ARCH), jump(JEQ_K, c.arch, 1, 0), stmt(RET_K, RET_EPERM), stmt(LD_W_ABS, NR)];
        if c.arch == ARCH_X86_64 {
            p.push(jump(JGE_K, X32_BIT, 0, 1));
            p.push(stmt(RET_K, RET_EPERM));
        }
        for nr in c.refused {
            p.push(jump(JEQ_K, *nr, 0, 1));
            p.push(stmt(RET_K, RET_EPERM));
        }
        for (nr, flags) in c.opens {
            // Not this call: skip its four instructions. This call: load
            // its flags (A no longer holds the number, so it ends here).
            p.push(jump(JEQ_K, *nr, 0, 4));
            p.push(stmt(LD_W_ABS, *flags));
            p.push(jump(JSET_K, WRITE_FLAGS, 0, 1));
            p.push(stmt(RET_K, RET_EPERM));
            p.push(stmt(RET_K, RET_ALLOW));
        }
        p.push(stmt(RET_K, RET_ALLOW));
        Some(p)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic BPF interpreter for the few opcodes the program uses.
    fn run(p: &[sock_filter], arch: u32, nr: u32, args: [u64; 2]) -> u32 {
        run3(p, arch, nr, [args[0], args[1], 0])
    }

    fn run3(p: &[sock_filter], arch: u32, nr: u32, args: [u64; 3]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        data[16..24].copy_from_slice(&args[0].to_le_bytes());
        data[24..32].copy_from_slice(&args[1].to_le_bytes());
        data[32..40].copy_from_slice(&args[2].to_le_bytes());
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = p[pc];
            match i.code {
                LD_W_ABS => a = u32::from_le_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap()),
                RET_K => return i.k,
                JEQ_K | JSET_K | JGE_K => {
                    let hit = match i.code {
                        JEQ_K => a == i.k,
                        JGE_K => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += usize::from(if hit { i.jt } else { i.jf });
                }
                other => panic!("opcode {other:#x}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn execs_of_every_abi_notify_and_other_calls_pass() {
        let p = program();
        assert!(p.len() < 256);
        for (arch, nr) in [(ARCH_X86_64, 59), (ARCH_X86_64, 322), (ARCH_X86_64, X32_BIT | 520), (ARCH_X86_64, X32_BIT | 545), (ARCH_I386, 11), (ARCH_I386, 358), (ARCH_AARCH64, 221), (ARCH_AARCH64, 281), (ARCH_ARM, 11), (ARCH_ARM, 387)] {
            assert_eq!(run(&p, arch, nr, [0, 0]), RET_NOTIFY, "arch {arch:#x} nr {nr}");
            assert!(classify(arch, nr as i32).is_some_and(|(c, _)| c != Call::NewListener));
        }
        for (arch, nr) in [(ARCH_X86_64, 0), (ARCH_X86_64, 1), (ARCH_X86_64, 57), (ARCH_I386, 1), (ARCH_AARCH64, 63)] {
            assert_eq!(run(&p, arch, nr, [0, 0]), RET_ALLOW, "arch {arch:#x} nr {nr}");
        }
        assert_eq!(run(&p, 0x1234, 59, [0, 0]), RET_EPERM, "an unknown arch is refused");
    }

    #[test]
    fn only_a_filter_with_a_new_listener_is_asked_about() {
        let p = program();
        let nl = u64::from(FLAG_NEW_LISTENER);
        assert_eq!(run(&p, ARCH_X86_64, 317, [1, nl]), RET_NOTIFY);
        assert_eq!(run(&p, ARCH_X86_64, 317, [1, nl | 1]), RET_NOTIFY);
        assert_eq!(run(&p, ARCH_X86_64, 317, [1, 0]), RET_ALLOW, "a plain filter (e.g. a sandbox) is fine");
        assert_eq!(run(&p, ARCH_X86_64, 317, [2, nl]), RET_ALLOW, "other seccomp operations pass");
        assert_eq!(run(&p, ARCH_I386, 354, [1, nl]), RET_NOTIFY);
        assert_eq!(classify(ARCH_X86_64, 317), Some((Call::NewListener, Abi::Bits64)));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_reader_may_read_other_processes_but_never_write_trace_or_run() {
        let p = reader_program().unwrap();
        let (rdonly, rdwr, wronly, creat, trunc) = (0u64, 2, 1, 0o100, 0o1000);
        for (nr, what) in [(101, "ptrace"), (311, "process_vm_writev"), (59, "execve"), (322, "execveat"), (437, "openat2"), (41, "socket"), (425, "io_uring_setup"), (157, "prctl")] {
            assert_eq!(run(&p, ARCH_X86_64, nr, [0, 0]), RET_EPERM, "{what}");
        }
        for flags in [rdwr, wronly, creat, trunc] {
            assert_eq!(run3(&p, ARCH_X86_64, 257, [0, 0, flags]), RET_EPERM, "openat with {flags:#o}");
            assert_eq!(run3(&p, ARCH_X86_64, 2, [0, flags, 0]), RET_EPERM, "open with {flags:#o}");
        }
        assert_eq!(run3(&p, ARCH_X86_64, 257, [0, 0, rdonly | 0o2000000]), RET_ALLOW, "openat read-only (O_CLOEXEC)");
        for (nr, what) in [(310, "process_vm_readv"), (0, "read"), (1, "write"), (7, "poll"), (16, "ioctl"), (62, "kill"), (434, "pidfd_open"), (438, "pidfd_getfd"), (267, "readlinkat"), (262, "newfstatat"), (9, "mmap")] {
            assert_eq!(run(&p, ARCH_X86_64, nr, [0, 0]), RET_ALLOW, "{what}");
        }
        assert_eq!(run(&p, ARCH_X86_64, X32_BIT | 1, [0, 0]), RET_EPERM, "x32's numbers");
        assert_eq!(run(&p, ARCH_I386, 26, [0, 0]), RET_EPERM, "i386's ptrace");
    }
}
