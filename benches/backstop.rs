//! The exec backstop's work per program start, piece by piece: the
//! reader's copy of a caller (`/proc` and `process_vm_readv`, here of this
//! process, reading its own "exec"), the policy's verdict under every name
//! the program has, and the record's frame to the recorder. The first two
//! and the kernel's two wake-ups are what an exec waits for; the frame is
//! written after the answer (see `bench/exec_backstop.py` for the whole).
//!
//! `cargo bench --bench backstop`. Compare figures from one run; the
//! machine is shared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::ffi::CString;
use std::hint::black_box;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use custos::backstop::decide::{decide, Mode};
use custos::backstop::reader::read_call;
use custos::backstop::wire::{self, ExecRecord, FromReader};
use custos::policy::{Policy, Subject};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!("{name:<52} p50 {:>10.1?}  p99 {:>10.1?}", percentile(&times, 0.50), percentile(&times, 0.99));
}

fn time(iterations: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

fn main() {
    let pid = std::process::id() as i32;
    let path = CString::new("/bin/true").unwrap();
    let args: Vec<CString> = ["true", "--version"].iter().map(|a| CString::new(*a).unwrap()).collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let call = [path.as_ptr() as u64, argv.as_ptr() as u64, 0, 0, 0, 0];
    let execve = libc::SYS_execve as i32;
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

    let req = read_call(pid, AUDIT_ARCH_X86_64, execve, &call);
    assert_eq!(req.argv, ["true", "--version"], "{req:?}");
    report(
        "reader: one exec read out of a live caller",
        time(5000, || {
            black_box(read_call(pid, AUDIT_ARCH_X86_64, execve, black_box(&call)));
        }),
    );

    let policy = Policy::default_policy().for_execs();
    let who = Subject { user: "alice".into(), groups: vec!["staff".into()], oidc_groups: vec![] };
    report(
        "verdict: /bin/true --version under its names",
        time(5000, || {
            black_box(decide(&policy, &who, "/home/alice", black_box(&req), Mode::Enforce, |_| false));
        }),
    );

    report(
        "reader's path: read, then decide (what an exec waits for)",
        time(5000, || {
            let req = read_call(pid, AUDIT_ARCH_X86_64, execve, black_box(&call));
            black_box(decide(&policy, &who, "/home/alice", &req, Mode::Enforce, |_| false));
        }),
    );

    let (mut a, mut b) = UnixStream::pair().unwrap();
    let v = decide(&policy, &who, "/home/alice", &req, Mode::Enforce, |_| false);
    let frame = FromReader::Decided(ExecRecord::new(&req, &v, Mode::Enforce, "ran", None));
    report(
        "wire: the record's frame, after the answer",
        time(5000, || {
            wire::write(&mut a, &frame).unwrap();
            black_box(wire::read::<FromReader>(&mut b).unwrap());
        }),
    );
}
