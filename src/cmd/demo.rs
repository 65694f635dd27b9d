//! `custos demo`: a recorded shell with everything (configuration, spool)
//! under a fresh directory in `/tmp`, no root needed.
//!
//! In a terminal it is the real thing: your shell, recorded, with the status
//! line, until you type `exit`. Without a terminal (CI, a pipe), it plays a
//! short scripted session in a PTY it owns, acting as the user's terminal,
//! and prints the screen the recording replays to. Either way it ends by
//! saying where the recording is and how to verify, export and play it.
//!
//! It is the whole path, on loopback: a host key is made, a collector
//! (`custos serve`) started on a free port and the key enrolled with it;
//! the recorder writes signed chunks to the spool and streams them with
//! `custos upload --follow`; the screen shown at the end is the
//! collector's copy, whose chain has been verified.
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
use crate::recorder::privilege::Privilege;
use crate::evidence::asciicast::Cast;
use crate::term::screen::{Screen, Size};

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
        let outcome = crate::recorder::shell::run(&argv, &config, Privilege::begin()?)?;
        return Ok(exit_code(outcome.status));
    }

    let dir = tempfile::Builder::new().prefix("custos-demo-").tempdir()?.keep();
    let exe = std::env::current_exe()?;
    let config_path = dir.join("custos.toml");
    let spool = dir.join("spool");
    let key = dir.join("host.key");
    let data_dir = dir.join("collector");
    // A host key, a collector on loopback, and the key enrolled with it:
    // what `install.sh` and an admin do on a real fleet.
    run_quiet(Command::new(&exe).arg("keygen").arg("--out").arg(&key), "custos keygen")?;
    let mut collector = Collector::start(&exe, &data_dir)?;
    let token = capture(Command::new(&exe).args(["serve", "token", "--data-dir"]).arg(&data_dir), "custos serve token")?;
    run_quiet(
        Command::new(&exe).args(["enroll", "--server", &collector.url, "--token", token.trim(), "--key"]).arg(&key),
        "custos enroll",
    )?;
    std::fs::write(
        &config_path,
        format!(
            "# custos demo configuration\n[shell]\ndefault = {shell:?}\n\n[status_line]\nenabled = true\n\n\
             [recording]\nspool_dir = {spool:?}\n\n[evidence]\nkey = {key:?}\n# short chunks, so even this short session is a chain\nchunk_seconds = 0.5\n\n[collector]\nurl = {url:?}\n",
            shell = args.shell.display().to_string(),
            spool = spool.display().to_string(),
            key = key.display().to_string(),
            url = collector.url,
        ),
    )?;
    let config = Config::read(&config_path)?;
    println!("custos demo: collector {} (data in {}), host key enrolled.", collector.url, data_dir.display());

    let interactive = crate::recorder::pty::is_terminal(std::io::stdin().as_fd()) && crate::recorder::pty::is_terminal(std::io::stdout().as_fd());
    let status = if interactive && !args.scripted {
        println!("custos demo: starting a recorded shell ({}). Type `exit` to end it.", args.shell.display());
        let argv = vec!["custos-shell".into(), "-l".into()];
        crate::recorder::shell::run(&argv, &config, Privilege::begin()?)?.status
    } else {
        println!("custos demo: no terminal here, so playing a scripted session in a PTY.");
        scripted(&config_path)?
    };

    // The recorder streamed the session as it ran; wait for the last chunk
    // to reach the collector (the spool keeps nothing acknowledged).
    let (stored, chunks) = wait_for_session(&data_dir, &dir.join("collector-copy"), &key, Duration::from_secs(20))
        .context("the collector did not receive the whole session")?;
    let id = stored.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    collector.stop();
    let cast_bytes = crate::evidence::export::concatenate(&chunks)?;
    let cast = Cast::parse(&String::from_utf8_lossy(&cast_bytes))?;
    if !interactive || args.scripted {
        println!("\nThe collector's copy replays to this screen:\n");
        for line in replayed_text(&cast).lines() {
            println!("  | {line}");
        }
    }
    let cast_path = dir.join(format!("{id}.cast"));
    std::fs::write(&cast_path, &cast_bytes)?;
    let exe = exe.display();
    let public = format!("{}.pub", key.display());
    println!("\ncustos demo: the shell exited with status {status}.");
    let n = chunks.len();
    println!("Session {id}: {n} signed chunk{}, all acknowledged by the collector.", if n == 1 { "" } else { "s" });
    println!("Recording (asciicast v3): {}", cast_path.display());
    println!("Verify the signed chain:  {exe} verify --key {public} {}", stored.display());
    println!("Export it:                {exe} export --key {public} --format txt {}", stored.display());
    println!("Replay it:                {exe} replay {}", cast_path.display());
    println!("Play it with asciinema:   asciinema play {}", cast_path.display());
    println!("Config, spool, key and collector data of this demo: {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The demo's `custos serve`, a child process on a free loopback port.
struct Collector {
    child: std::process::Child,
    url: String,
}

impl Collector {
    fn start(exe: &Path, data_dir: &Path) -> anyhow::Result<Collector> {
        use std::io::BufRead as _;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start custos serve")?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let mut reader = std::io::BufReader::new(out);
            reader.read_line(&mut line)?;
            // Keep reading, so the collector never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        }
        let url = line.trim().to_owned();
        if !url.starts_with("http://") {
            let _ = child.kill();
            anyhow::bail!("custos serve did not start (it printed {line:?})");
        }
        Ok(Collector { child, url })
    }

    fn stop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_quiet(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    capture(cmd, what).map(drop)
}

fn capture(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        anyhow::bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The demo session as the collector stored it, once its final chunk is
/// there and the chain verifies with the demo's key: its chunks, copied out
/// of the collector's store (which keeps most of them in its database)
/// into a directory of `copy_to` that `custos verify` and `export` read
/// after the demo's collector is gone. The demo's collector holds this one
/// session.
fn wait_for_session(data_dir: &Path, copy_to: &Path, key: &Path, wait: Duration) -> anyhow::Result<(PathBuf, Vec<crate::evidence::Chunk>)> {
    let public = crate::evidence::HostKey::load(key)?.public();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store = runtime.block_on(crate::serve::store::Store::open(data_dir))?;
    let deadline = Instant::now() + wait;
    loop {
        let dir = runtime.block_on(copy_newest_session(&store, copy_to))?;
        let report = dir.as_ref().and_then(|d| crate::evidence::SessionDir::open(d).ok()).map(|d| -> anyhow::Result<_> {
            Ok(crate::evidence::verify_chain(d.found()?, None, |id| (public.id() == *id).then_some(public)))
        });
        match (dir, report.transpose()?) {
            (Some(dir), Some(r)) if r.is_intact() && r.is_complete() => return Ok((dir, r.chunks)),
            (Some(dir), Some(r)) if Instant::now() > deadline => {
                anyhow::bail!("{}", crate::cmd::evidence::describe(&r, &dir.display().to_string()))
            }
            _ if Instant::now() > deadline => anyhow::bail!("no session arrived at the collector in {}", data_dir.display()),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Copies the newest session's stored chunks into `<out>/<session id>/`,
/// as a spool holds them; `None` while there is none.
async fn copy_newest_session(store: &crate::serve::store::Store, out: &Path) -> anyhow::Result<Option<PathBuf>> {
    let filter = crate::serve::store::SessionFilter { limit: Some(1), ..Default::default() };
    let Some(session) = store.search(&filter).await?.into_iter().next() else { return Ok(None) };
    let dir = out.join(&session.id);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    crate::layout::ensure_private_dir(&dir)?;
    for row in store.chunks(&session.id).await? {
        let seq = u64::try_from(row.seq)?;
        let bytes = store.read_chunk(&session.id, seq).await?;
        std::fs::write(crate::serve::store::chunk_file(out, &session.id, seq), bytes)?;
    }
    Ok(Some(dir))
}

fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status & 0xff).unwrap_or(u8::MAX))
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
