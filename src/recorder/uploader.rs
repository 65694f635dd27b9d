//! Streaming a live session to the collector: the recorder starts
//! `custos upload --follow SESSION` beside itself.
//!
//! Why a separate process: the uploader needs HTTP, TLS and an async
//! runtime, none of which belongs in `custos-shell`, which is on every
//! login's critical path. The recorder only writes chunks to the spool; the
//! uploader reads them from there, sends them in order, and deletes each
//! one after the collector acknowledges it. Either can die without losing
//! anything: chunks wait in the spool, and the uploader of the next session
//! (or the systemd timer's `custos upload`) delivers them, sealing a
//! session whose recorder was killed.
//!
//! The uploader is the `custos` binary next to `custos-shell`, never one
//! named by the environment (the recorder runs as the service user, and the
//! user controls the environment). It gets a session of its own, no
//! terminal, a clean environment, and no descriptor of ours: it must not
//! keep the PTY open or receive the terminal's hang-up.

use std::path::Path;
use std::process::{Command, Stdio};

/// Starts `custos upload --follow session` for the chunks in `spool`,
/// delivering to `server`. Returns once it runs; it outlives the recorder.
pub fn spawn_follow(spool: &Path, server: &str, key: &Path, config: Option<&Path>, session: &str) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(crate::layout::custos_binary()?);
    cmd.arg("upload")
        .arg("--follow")
        .arg(session)
        .arg("--spool")
        .arg(spool)
        .arg("--server")
        .arg(server)
        .arg("--key")
        .arg(key)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/");
    if let Some(config) = config {
        cmd.env("CUSTOS_CONFIG", config);
    }
    // SAFETY: between fork and exec the closure only makes two system
    // calls, both async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // stdin, stdout and stderr are already /dev/null; nothing else
            // of the recorder's (the PTY master above all) may stay open.
            libc::close_range(3, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // Reaped when it ends, so no zombie waits for the recorder to exit.
    std::thread::Builder::new().name("uploader-reaper".into()).spawn(move || {
        let _ = child.wait();
    })?;
    Ok(())
}
