//! Enter-to-output in a live bash session under `custos-shell`, with the
//! command gate's hooks and without them (`[gate] enabled = false`), so the
//! difference is what the gate adds to every Enter: readline's macro, the
//! round trip on the gate's socket, the policy check, the marker and audit
//! record, and the heartbeat before the next prompt.
//!
//! `cargo bench --bench enter`. Each round types `echo R$((N+1))Z` and times
//! from the write of Enter to the first sight of `R<N+1>Z` (which only the
//! command's output contains). The two configurations alternate round by
//! round, so machine noise falls on both alike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 400;

struct Shell {
    master: std::fs::File,
    child: Child,
    seen: Vec<u8>,
}

impl Shell {
    fn start(dir: &std::path::Path, gate: bool) -> Self {
        let config = dir.join(if gate { "gate.toml" } else { "nogate.toml" });
        std::fs::write(
            &config,
            format!(
                "[shell]\ndefault = \"/bin/bash\"\n[recording]\nspool_dir = \"{}\"\n[gate]\nenabled = {gate}\n",
                dir.join("spool").display()
            ),
        )
        .unwrap();
        let size = nix::pty::Winsize { ws_row: 24, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let slave: OwnedFd = pty.slave;
        let raw = slave.as_raw_fd();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos-shell"));
        cmd.arg("--norc")
            .env_clear()
            .env("CUSTOS_CONFIG", &config)
            .env("TERM", "xterm-256color")
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir)
            .env("PS1", "PRMT> ")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and TIOCSCTTY are async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                libc::ioctl(raw, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let mut shell = Shell { master: std::fs::File::from(pty.master), child, seen: Vec::new() };
        shell.wait_for(b"PRMT>");
        shell
    }

    fn wait_for(&mut self, needle: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 65536];
        loop {
            if let Some(at) = self.seen.windows(needle.len()).position(|w| w == needle) {
                // Keep what came after the match for the next wait.
                self.seen.drain(..at + needle.len());
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {:?}", String::from_utf8_lossy(needle));
            let n = self.master.read(&mut buf).unwrap();
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    /// One round: type the line, then time Enter to output.
    fn round(&mut self, n: usize) -> Duration {
        self.master.write_all(format!("echo R$(({n}+1))Z").as_bytes()).unwrap();
        self.wait_for(b"Z");
        let t = Instant::now();
        self.master.write_all(b"\r").unwrap();
        self.wait_for(format!("R{}Z", n + 1).as_bytes());
        let d = t.elapsed();
        self.wait_for(b"PRMT>");
        d
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.master.write_all(b"exit\r");
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut with = Shell::start(dir.path(), true);
    let mut without = Shell::start(dir.path(), false);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for n in 0..ROUNDS {
        a.push(with.round(n));
        b.push(without.round(n));
    }
    a.sort();
    b.sort();
    println!("Enter to output, live bash under custos-shell, {ROUNDS} rounds each, alternating:");
    for (name, t) in [("gate on", &a), ("gate off", &b)] {
        println!("  {name:<9} p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}", percentile(t, 0.5), percentile(t, 0.99), t[t.len() - 1]);
    }
    println!(
        "  added     p50 {:>8.2?}  p99 {:>8.2?}",
        percentile(&a, 0.5).saturating_sub(percentile(&b, 0.5)),
        percentile(&a, 0.99).saturating_sub(percentile(&b, 0.99))
    );
}
