//! `custos demo`: a recorded shell with everything (configuration, spool)
//! under a fresh directory in `/tmp`, no root needed.
//!
//! In a terminal it is the real thing: your shell, recorded, with the status
//! line, until you type `exit`. Without a terminal (CI, a pipe), it plays a
//! short scripted session in a PTY it owns, acting as the user's terminal,
//! and prints the screen the recording replays to. Either way it ends by
//! saying where the recording is and how to play it.
//!
//! The directory is kept so the recording can be played afterwards.

use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::config::Config;
use crate::privilege::Privilege;
use crate::record::Cast;
use crate::screen::{Screen, Size};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The real shell to record.
    #[arg(long, default_value = "/bin/bash")]
    pub shell: PathBuf,
    /// Play the scripted session even in a terminal.
    #[arg(long)]
    pub scripted: bool,
    /// Internal: run the recorded shell itself (used by the scripted mode).
    #[arg(long, hide = true)]
    pub inner: Option<PathBuf>,
}

/// What the scripted session types, with a pause after each line.
const SCRIPT: &[&str] = &[
    "echo \"hello from a recorded shell: $(id -un)@$(hostname)\"",
    // Fake secrets, masked on screen and in the recording.
    "echo 'export DB_PASSWORD=Tr0ub4dor-3; card 4111 1111 1111 1111'",
    "printf '\\e[1;32mgreen\\e[0m \\e[38;5;208morange\\e[0m 漢字 🙂\\n'",
    "seq 1 3",
    // Refused by the command gate before it runs; the line stays in the
    // editor, so the next line clears it first (C-u).
    "sudo rm -rf --no-preserve-root /",
    "\u{15}exit 0",
];

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(config_path) = &args.inner {
        let config = Config::read(config_path)?;
        let argv = vec!["custos-shell".into(), "--norc".into(), "--noprofile".into(), "-i".into()];
        let outcome = crate::shell::run(&argv, &config, Privilege::current())?;
        return Ok(exit_code(outcome.status));
    }

    let dir = tempfile::Builder::new().prefix("custos-demo-").tempdir()?.keep();
    let config_path = dir.join("custos.toml");
    let spool = dir.join("spool");
    std::fs::write(
        &config_path,
        format!(
            "# custos demo configuration\n[shell]\ndefault = {shell:?}\n\n[status_line]\nenabled = true\n\n[recording]\nspool_dir = {spool:?}\n",
            shell = args.shell.display().to_string(),
            spool = spool.display().to_string(),
        ),
    )?;
    let config = Config::read(&config_path)?;

    let interactive = crate::pty::is_terminal(std::io::stdin().as_fd()) && crate::pty::is_terminal(std::io::stdout().as_fd());
    let status = if interactive && !args.scripted {
        println!("custos demo: starting a recorded shell ({}). Type `exit` to end it.", args.shell.display());
        let argv = vec!["custos-shell".into(), "-l".into()];
        crate::shell::run(&argv, &config, Privilege::current())?.status
    } else {
        println!("custos demo: no terminal here, so playing a scripted session in a PTY.");
        scripted(&config_path)?
    };

    let recordings = crate::spool::recording_path(&spool, "x");
    let rec_dir = recordings.parent().unwrap_or(&spool);
    let newest = newest_file(rec_dir).context("the session left no recording")?;
    if !interactive || args.scripted {
        let text = std::fs::read_to_string(&newest)?;
        let cast = Cast::parse(&text)?;
        println!("\nThe recording replays to this screen:\n");
        for line in replayed_text(&cast).lines() {
            println!("  | {line}");
        }
    }
    println!("\ncustos demo: the shell exited with status {status}.");
    println!("Recording (asciicast v3): {}", newest.display());
    println!("Play it:   asciinema play {}", newest.display());
    println!("Config and spool of this demo: {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status & 0xff).unwrap_or(u8::MAX))
}

fn newest_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// The final screen a recording replays to, as text.
pub fn replayed_text(cast: &Cast) -> String {
    let mut screen = Screen::new(Size { rows: cast.header.term.rows, cols: cast.header.term.cols });
    for (_, code, data) in &cast.events {
        if code == "o" {
            screen.process(data.as_bytes());
        }
    }
    screen.text()
}

/// Runs `custos demo --inner` in a PTY we own and types [`SCRIPT`] into it.
fn scripted(config_path: &Path) -> anyhow::Result<i32> {
    let ws = nix::pty::Winsize { ws_row: 16, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
    let pair = nix::pty::openpty(Some(&ws), None).context("cannot open a PTY")?;
    let slave = pair.slave;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["demo", "--inner"])
        .arg(config_path)
        .env("TERM", "xterm-256color")
        .env("PS1", "demo$ ")
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the demo shell")?;
    drop(slave);
    drop(cmd);
    let mut reader = std::fs::File::from(pair.master.try_clone()?);
    let mut writer = std::fs::File::from(pair.master);
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
    });
    std::thread::sleep(Duration::from_millis(500));
    for line in SCRIPT {
        writer.write_all(line.as_bytes())?;
        writer.write_all(b"\r")?;
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status.code().unwrap_or(1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("the scripted demo session did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(writer);
    let _ = drain.join();
    Ok(status)
}
