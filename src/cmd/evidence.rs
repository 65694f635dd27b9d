//! `custos keygen`, `custos verify` and `custos export`: the evidence
//! subcommands, over local files (a spool, a session's chunk directory, a
//! chunk file).
//!
//! Exit codes: 0 when the key was made, the evidence is intact and complete,
//! or the export was written; 1 when verification found a problem (the
//! report says which chunk and why) or the command failed; 2 for usage
//! errors (clap).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};

use crate::evidence::export::{self, Format};
use crate::evidence::spool::{self, SessionDir};
use crate::evidence::{verify_chain, Chunk, Found, HostKey, KeyId, Problem, PublicKey, Report};
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key (default: `[evidence] key` in the
    /// configuration). The public key goes to the same path plus `.pub`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing key. Recordings signed with the old key then
    /// verify only with the old public key: keep it.
    #[arg(long)]
    pub force: bool,
    /// When the key exists, keep it and print its public key (install
    /// scripts).
    #[arg(long, conflicts_with = "force")]
    pub if_missing: bool,
    /// Give the key files to this user and its group (install.sh: `custos`).
    #[arg(long)]
    pub owner: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A session's chunk directory (`<spool>/chunks/<session-id>`), one
    /// chunk file, or a spool directory (every session in it).
    pub path: PathBuf,
    /// A public key (`ed25519:<base64>`) or a key file (`host.key.pub` or
    /// the host key itself); repeat for several hosts. Default: the
    /// configured host key's `.pub` file, else the key.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// With --server: PATH is a session id on that collector (`crate::client::download`).
    #[command(flatten)]
    pub remote: crate::cmd::collector::Remote,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A session's chunk directory (`<spool>/chunks/<session-id>`).
    pub path: PathBuf,
    #[arg(long, value_enum, default_value = "cast")]
    pub format: Format,
    /// Write here instead of standard output.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Public keys, as for `custos verify`.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// Export even when verification fails or no key is at hand: chunks that
    /// do not parse are left out, and nothing vouches for the rest.
    #[arg(long)]
    pub unverified: bool,
    /// Export only from this time on: a position in the session (1:30,
    /// 90s, 1h2m, 50%), or a point in time (2026-11-26 10:30Z, @UNIX,
    /// '2 hours ago'). Positions are tried first. The excerpt opens with
    /// the screen as it was then.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Export only up to this time (the same forms as --from).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// With --server: PATH is a session id on that collector (`crate::client::download`).
    #[command(flatten)]
    pub remote: crate::cmd::collector::Remote,
}

/// Reads one end of `--from`/`--to` as microseconds from the recording's
/// start: a position in it, else a point in time (which needs the
/// recording's start time); clamped to the recording.
pub fn range_point(text: &str, bounds: export::Bounds, now: i64) -> anyhow::Result<u64> {
    let duration = bounds.duration_us as f64 / 1e6;
    // Seconds to whole microseconds; both are far inside u64's range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let micros = |secs: f64| ((secs.max(0.0) * 1e6).round() as u64).min(bounds.duration_us);
    if let Ok(secs) = crate::when::parse_offset(text, 0.0, duration) {
        if !text.trim_start().starts_with(['+', '-']) {
            return Ok(micros(secs));
        }
    }
    let at = crate::when::parse_time(text, now)?;
    let Some(start) = bounds.start else {
        bail!("{text:?} is a point in time, but the recording does not say when it started: give a position (1:30, 90s, 50%)");
    };
    Ok(micros(at.saturating_sub(start) as f64))
}

/// The `--from`/`--to` range of `cast`, when one was asked for.
fn excerpt(cast: Vec<u8>, args: &ExportArgs) -> anyhow::Result<Vec<u8>> {
    if args.from.is_none() && args.to.is_none() {
        return Ok(cast);
    }
    let bounds = export::bounds(&cast)?;
    let now = crate::when::unix_now_i64();
    let from = args.from.as_deref().map(|t| range_point(t, bounds, now)).transpose().context("--from")?.unwrap_or(0);
    let to = args.to.as_deref().map(|t| range_point(t, bounds, now)).transpose().context("--to")?;
    if let Some(to) = to {
        if to < from {
            bail!("--to ({} s) is before --from ({} s)", to as f64 / 1e6, from as f64 / 1e6);
        }
    }
    Ok(export::slice(&cast, from, to)?)
}

fn config() -> anyhow::Result<Config> {
    let env = std::env::var("CUSTOS_CONFIG").ok();
    Ok(Config::load(false, env.as_deref())?)
}

fn public_key_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

pub fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let path = match &args.out {
        Some(p) => p.clone(),
        None => config()?.evidence.key,
    };
    if path.exists() && !args.force {
        if args.if_missing {
            let key = HostKey::load(&path)?;
            println!("{}", key.public());
            eprintln!("custos: kept the existing host key {} (key id {})", path.display(), key.public().id());
            return Ok(ExitCode::SUCCESS);
        }
        bail!("{} exists; keep it, or replace it with --force (recordings it signed then need its old public key)", path.display());
    }
    let key = HostKey::try_generate()?;
    key.save(&path)?;
    let public = key.public();
    let pub_path = public_key_path(&path);
    let pub_text = format!("# custos host key {}: verify with custos verify --key {}\n{public}\n", public.id(), pub_path.display());
    crate::evidence::key::write_atomically(&pub_path, pub_text.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", pub_path.display()))?;
    if let Some(owner) = &args.owner {
        let user = nix::unistd::User::from_name(owner)
            .with_context(|| format!("cannot look up user {owner}"))?
            .with_context(|| format!("no such user: {owner}"))?;
        for p in [&path, &pub_path] {
            std::os::unix::fs::chown(p, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .with_context(|| format!("cannot give {} to {owner}", p.display()))?;
        }
    }
    println!("{public}");
    eprintln!("custos: wrote host key {} (key id {}) and {}", path.display(), public.id(), pub_path.display());
    Ok(ExitCode::SUCCESS)
}

/// Public keys from `--key` values, or the configured host key's.
pub fn resolve_keys(given: &[String]) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for value in given {
        keys.push(read_key(value)?);
    }
    if keys.is_empty() {
        let key = config()?.evidence.key;
        let pub_path = public_key_path(&key);
        let found = PublicKey::load(&pub_path).or_else(|_| HostKey::load(&key).map(|k| k.public()));
        match found {
            Ok(k) => keys.push(k),
            Err(e) => bail!(
                "no public key to verify with: {e}\n  give one with --key ed25519:<base64> or --key <file> (the host's {} holds it)",
                pub_path.display()
            ),
        }
    }
    Ok(keys)
}

/// `ed25519:<base64>`, or a file holding a public key or a host key.
fn read_key(value: &str) -> anyhow::Result<PublicKey> {
    if value.starts_with("ed25519:") {
        return Ok(value.parse()?);
    }
    let path = Path::new(value);
    match PublicKey::load(path) {
        Ok(k) => Ok(k),
        Err(public_err) => match HostKey::load(path) {
            Ok(k) => Ok(k.public()),
            Err(_) => Err(anyhow::Error::new(public_err).context(format!("--key {value}: not a public key or a key file"))),
        },
    }
}

fn lookup(keys: &[PublicKey]) -> impl Fn(&KeyId) -> Option<PublicKey> + '_ {
    move |id| keys.iter().find(|k| k.id() == *id).copied()
}

/// What a verify path is.
enum Target {
    Chunk(PathBuf),
    Session(SessionDir),
    Spool(PathBuf),
}

fn classify(path: &Path) -> anyhow::Result<Target> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        return Ok(Target::Chunk(path.to_owned()));
    }
    if let Ok(dir) = SessionDir::open(path) {
        return Ok(Target::Session(dir));
    }
    if spool::chunks_dir(path).is_dir() {
        return Ok(Target::Spool(path.to_owned()));
    }
    bail!(
        "{} is not a chunk file, a session directory (named by its session id) or a spool (holding chunks/)",
        path.display()
    )
}

/// Verifies one session directory.
pub fn verify_session(dir: &SessionDir, keys: &[PublicKey]) -> anyhow::Result<Report> {
    let found = dir.found()?;
    Ok(verify_chain(found, Some(dir.session()), lookup(keys)))
}

/// The report as shown to a person: a summary line, then one line per
/// problem.
pub fn describe(report: &Report, label: &str) -> String {
    let session = report.session.map_or_else(|| "?".to_owned(), |s| s.to_string());
    let mut out = format!("session {session} ({label}): ");
    if report.is_intact() {
        let span = report.chunks.last().map_or(0, |c| c.envelope().last_us);
        let key = report.key_id.map(|k| k.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "intact and complete: {} chunks, signed by key {key}, {}.{:06} s",
            report.chunks.len(),
            span / 1_000_000,
            span % 1_000_000
        ));
    } else {
        let n = report.problems.len();
        out.push_str(&format!("NOT intact ({n} problem{}):", if n == 1 { "" } else { "s" }));
        for p in &report.problems {
            out.push_str(&format!("\n  - {p}"));
        }
    }
    out
}

/// `verify --server`: the collector's copy, checked here like a local one.
fn verify_remote(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let collector = args.remote.connect()?;
    let got = crate::client::download::session(&collector, &args.path.to_string_lossy(), &args.keys)?;
    let keys = resolve_keys(&got.keys)?;
    let report = verify_session(&SessionDir::open(&got.dir)?, &keys)?;
    println!("{}", describe(&report, &format!("{}, checked with {}", collector.base(), got.key_source)));
    Ok(if report.is_intact() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    if args.remote.server.is_some() {
        return verify_remote(args);
    }
    let keys = resolve_keys(&args.keys)?;
    let ok = match classify(&args.path)? {
        Target::Chunk(path) => verify_one_chunk(&path, &keys)?,
        Target::Session(dir) => {
            let report = verify_session(&dir, &keys)?;
            println!("{}", describe(&report, &dir.path().display().to_string()));
            report.is_intact()
        }
        Target::Spool(path) => {
            let sessions = spool::list_sessions(&path)?;
            if sessions.is_empty() {
                println!("no sessions in {}", spool::chunks_dir(&path).display());
            }
            let mut all_ok = true;
            for dir in sessions {
                let report = verify_session(&dir, &keys)?;
                let label = dir.path().display().to_string();
                if !report.is_intact() && report.is_intact_so_far() && dir.is_live() {
                    // A session still being recorded has no end yet; that is
                    // not damage.
                    println!("session {} ({label}): recording, intact so far ({} chunks)", dir.session(), report.chunks.len());
                } else {
                    println!("{}", describe(&report, &label));
                    all_ok &= report.is_intact();
                }
            }
            all_ok
        }
    };
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn verify_one_chunk(path: &Path, keys: &[PublicKey]) -> anyhow::Result<bool> {
    let label = path.display().to_string();
    let Found { bytes, .. } = spool::read_found(path, None)?;
    let chunk = match Chunk::parse(bytes) {
        Ok(c) => c,
        Err(error) => {
            println!("{}", Problem::Malformed { label, place: None, error });
            return Ok(false);
        }
    };
    let e = chunk.envelope();
    let Some(key) = lookup(keys)(&e.key_id) else {
        println!("{}", Problem::UnknownKey { label, seq: e.seq, key_id: e.key_id });
        return Ok(false);
    };
    if chunk.verify(&key).is_err() {
        println!("{}", Problem::BadSignature { label, seq: e.seq });
        return Ok(false);
    }
    if let Err(error) = chunk.payload() {
        println!("{}", Problem::BadPayload { label, seq: e.seq, error });
        return Ok(false);
    }
    println!(
        "chunk {} of session {} ({label}): signature valid{}; {}.{:06}..{}.{:06} s; hash {}; prev {}",
        e.seq,
        e.session,
        if e.is_final { ", final" } else { "" },
        e.first_us / 1_000_000,
        e.first_us % 1_000_000,
        e.last_us / 1_000_000,
        e.last_us % 1_000_000,
        chunk.hash(),
        e.prev
    );
    println!("(one chunk: its place in the chain is checked by verifying the session directory)");
    Ok(true)
}

/// The session's chunks in order for export: verified, or (unverified)
/// whatever parses.
fn chunks_for_export(dir: &SessionDir, args: &ExportArgs) -> anyhow::Result<Vec<Chunk>> {
    let keys = match resolve_keys(&args.keys) {
        Ok(k) => k,
        Err(e) if args.unverified => {
            eprintln!("custos: warning: exporting unverified: {e:#}");
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let report = verify_session(dir, &keys)?;
    if report.is_intact() {
        return Ok(report.chunks);
    }
    let label = dir.path().display().to_string();
    if report.is_intact_so_far() {
        eprintln!("custos: warning: {}", describe(&report, &label).replace('\n', "\ncustos: "));
        eprintln!("custos: exporting the chunks so far (the session has no end)");
        return Ok(report.chunks);
    }
    if !args.unverified {
        eprintln!("{}", describe(&report, &label));
        bail!("refusing to export evidence that does not verify (--unverified exports it anyway)");
    }
    if !keys.is_empty() {
        eprintln!("custos: warning: {}", describe(&report, &label).replace('\n', "\ncustos: "));
    }
    let mut chunks: Vec<Chunk> = dir.found()?.into_iter().filter_map(|f| Chunk::parse(f.bytes).ok()).collect();
    chunks.sort_by_key(|c| c.envelope().seq);
    chunks.dedup_by_key(|c| c.envelope().seq);
    Ok(chunks)
}

/// `export --server`: the collector's copy, exported like a local one.
fn export_remote(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let collector = args.remote.connect()?;
    let got = crate::client::download::session(&collector, &args.path.to_string_lossy(), &args.keys)?;
    let local = ExportArgs {
        path: got.dir.clone(),
        format: args.format,
        output: args.output.clone(),
        keys: got.keys.clone(),
        unverified: args.unverified,
        from: args.from.clone(),
        to: args.to.clone(),
        remote: crate::cmd::collector::Remote::default(),
    };
    export(&local)
}

pub fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    if args.remote.server.is_some() {
        return export_remote(args);
    }
    let dir = SessionDir::open(&args.path).with_context(|| "export reads a session's chunk directory".to_owned())?;
    let chunks = chunks_for_export(&dir, args)?;
    let cast = excerpt(export::concatenate(&chunks)?, args)?;
    let bytes = export::export(&cast, args.format)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("custos: wrote {} ({} bytes, {} chunks)", path.display(), bytes.len(), chunks.len());
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&bytes).and_then(|()| out.flush()) {
                // A closed pipe (`| head`) is the reader's choice, not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.context("cannot write to standard output")?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
