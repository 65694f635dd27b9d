//! `custos-shell`: the login shell's story, top to bottom.
//!
//! 1. Learn who we are (real uid) and whether we run privileged (setuid).
//! 2. Load the configuration from where that allows (see `config`).
//! 3. Pick the real shell from root's configuration, never the environment.
//! 4. If a live recorder already owns this session, exec the real shell
//!    unrecorded: the outer recording already sees everything.
//! 5. Otherwise record: with a terminal on stdin and stdout, an interactive
//!    session in a PTY (`session`); without one, a data channel whose bytes
//!    pass through untouched while the command, identity and exit status are
//!    recorded.
//!
//! Exit status policy, in one place: the real shell's status; 128+N when it
//! died of signal N (as bash reports); 126 when custos refuses to start the
//! shell (bad configuration, no recording possible: fail closed); 127 when
//! the real shell cannot be executed.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nix::unistd::{fork, ForkResult};

use crate::recorder::account::{host_name, Account};
use crate::recorder::child::ShellCommand;
use crate::config::Config;
use crate::gate::inject::{Injection, ShellKind};
use crate::gate::socket::GateSocket;
use crate::gate::Gate;
use crate::recorder::invocation::Invocation;
use crate::recorder::leftovers::Containment;
use crate::recorder::privilege::Privilege;
use crate::evidence::asciicast::{Header, SessionInfo};
use crate::term::render::Layout;
use crate::term::screen::Size;
use crate::recorder::session::{self, Signals, Terminal};
use crate::evidence::sink::Sink;

/// Status when custos refuses to start a shell.
pub const EXIT_REFUSED: i32 = 126;

/// What a finished `custos-shell` reports.
pub struct Outcome {
    pub status: i32,
    /// The recording, when one was made.
    pub recording: Option<PathBuf>,
}

/// Entry point of the `custos-shell` binary.
pub fn main(argv: Vec<OsString>) -> i32 {
    let privilege = match Privilege::begin() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("custos-shell: {e}\ncustos-shell: refusing to start an unrecorded shell");
            return EXIT_REFUSED;
        }
    };
    // A privileged shell never reads CUSTOS_CONFIG (see `Config::load`).
    let env_config = if privilege.is_privileged() { None } else { std::env::var("CUSTOS_CONFIG").ok() };
    let config = match Config::load(privilege.is_privileged(), env_config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("custos-shell: {e}\ncustos-shell: refusing to start an unrecorded shell");
            return EXIT_REFUSED;
        }
    };
    let privilege = privilege.with_debug(config.session.debug);
    match run(&argv, &config, privilege) {
        Ok(outcome) => outcome.status,
        Err(e) => {
            eprintln!("custos-shell: {e:#}");
            EXIT_REFUSED
        }
    }
}

/// Where recordings go: the configured spool, except for an unprivileged
/// run with no configuration file, which uses the user's own state
/// directory so a fresh build works without root.
pub fn spool_dir(config: &Config, privilege: &Privilege, account: &Account) -> PathBuf {
    if privilege.is_privileged() || config.source.is_some() {
        return config.recording.spool_dir.clone();
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| account.home.join(".local/state"))
        .join("custos")
}

/// Runs one shell invocation under `config`.
pub fn run(argv: &[OsString], config: &Config, privilege: Privilege) -> anyhow::Result<Outcome> {
    let account = Account::lookup(privilege.user_uid).context("cannot identify the user")?;
    let shell = config.shell_for(&account.name, &account.groups).to_owned();
    let inv = Invocation::parse(argv);
    let spool = spool_dir(config, &privilege, &account);
    crate::layout::ensure_private_dir(&spool.join("recordings"))
        .with_context(|| format!("cannot create the spool {}", spool.display()))?;

    if crate::recorder::nesting::is_nested(&spool, &privilege) {
        exec_unrecorded(&shell, &inv, &privilege);
    }

    let session_id = uuid::Uuid::now_v7().to_string();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let interactive = crate::recorder::pty::is_terminal(stdin.as_fd()) && crate::recorder::pty::is_terminal(stdout.as_fd());
    // Before anything runs: who is this, verified (or refuse, per mode).
    let identity = crate::recorder::identity::at_session_start(&config.identity, &account, &privilege, &spool, interactive)?;
    // Fail closed: no session starts without the masking the config asks
    // for. Built once (its detectors take about half a millisecond): the
    // header's command, a held command's request and the screen share it.
    let masker = crate::term::masker::Masker::new(&config.masking).context("the [masking] configuration")?;
    let info = SessionInfo {
        session_id: session_id.clone(),
        user: account.name.clone(),
        uid: account.uid,
        host: host_name(),
        shell: shell.display().to_string(),
        mode: if interactive { "interactive" } else { "data" }.into(),
        // The header is evidence like the rest: a secret on the command
        // line is masked there too.
        command: inv.describe().map(|c| masker.mask_text(&c)),
        identity: identity.header,
    };
    let cmd = ShellCommand::new(&shell, &inv, &[("CUSTOS_SESSION", &session_id)])?;
    // Read while still privileged: the key is readable only by custos.
    let key = crate::evidence::sink::host_key(&config.evidence).context("cannot sign this session's recording")?;
    let mut rec = Recording { spool: &spool, key, config, early: Vec::new() };
    let mut approved = None;
    let mut approved_rule = None;
    let policies = Policies::new(&privilege, config.collector.url.is_some());
    if let Some(line) = &inv.command {
        // Without a terminal, bash and zsh run the line under the batch
        // gate, which checks what `eval` and nested shells run as they run.
        let traced = !interactive && config.gate.enabled && ShellKind::of(&shell).is_some();
        match gate_command(line, &account, &identity.groups, &policies, traced)? {
            CommandCheck::Run => {}
            CommandCheck::Refuse(why) => return refuse(&rec, info, &why),
            CommandCheck::Approve(held) => {
                let who = (info.session_id.clone(), info.host.clone(), info.user.clone());
                let Some(settings) = crate::approval::link::Settings::for_session(config, &who, info.identity.as_ref()) else {
                    let why = format!("needs approval under rule {}; approvals are not available on this host (no [collector] url)", held.rule.name);
                    return refuse(&rec, info, &why);
                };
                let waited = crate::approval::command::wait(settings, &held, masker.mask_text(line));
                rec.early = waited.effects;
                if let Some((_, why)) = waited.refusal {
                    return refuse(&rec, info, &why);
                }
                approved = Some(line.clone());
                approved_rule = Some(held.rule.name.clone());
            }
        }
    }
    let gated = interactive && config.gate.enabled && inv.command.is_none() && inv.script.is_none();
    let gate = if gated { prepare_gate(&shell, &account, &identity.groups, &policies)? } else { None };
    let enforcing = config.gate.exec_mode(&account.name, &account.groups) == crate::backstop::Mode::Enforce;
    let gate = gate.map(|(inj, g)| (inj, g.with_exec_backstop(enforcing)));
    let cmd = match &gate {
        Some((inj, _)) => cmd.with_gate(&inj.args(), &inj.env(&inv.args), inj.shell_fd())?,
        None => cmd,
    };
    let (cmd, channel) = if interactive {
        (cmd, None)
    } else {
        let subject = crate::policy::Subject { user: account.name.clone(), groups: account.groups.clone(), oidc_groups: identity.groups.clone() };
        let (cmd, setup) = prepare_channel(config, &shell, &inv, subject, &account.home, &policies, cmd, approved)?;
        (cmd, Some(setup))
    };
    let backstop = prepare_backstop(config, &account, &identity.groups, &policies, approved_rule)?;
    let cmd = match &backstop {
        Some(b) => {
            let (program, to) = b.pending.child_end();
            cmd.with_exec_filter(program, to)
        }
        None => cmd,
    };
    let (privilege, stage) = split_off_warden(privilege, config, &info.session_id, interactive)?;
    match channel {
        None => {
            // A login or an interactive shell starts below what the terminal
            // shows; a command's output starts where it always did.
            let start_below = inv.command.is_none() && inv.script.is_none();
            interactive_session(config, privilege, &rec, info, &cmd, gate, stage, backstop, start_below, masker)
        }
        Some(setup) => data_channel(privilege, &rec, info, &cmd, stage, setup, backstop),
    }
}

/// The exec backstop, prepared before the shell's fork (see `backstop`).
struct BackstopPlan {
    pending: crate::backstop::launch::Pending,
    settings: crate::backstop::decide::Settings,
}

impl BackstopPlan {
    /// After the shell's fork, still single-threaded with root as the
    /// saved uid: takes the listener and forks the reader.
    fn start(self, privilege: &Privilege) -> anyhow::Result<crate::backstop::launch::Started> {
        Ok(self.pending.start(privilege, self.settings)?)
    }
}

fn prepare_backstop(config: &Config, account: &Account, oidc_groups: &[String], policies: &Policies<'_>, approved_rule: Option<String>) -> anyhow::Result<Option<BackstopPlan>> {
    let mode = config.gate.exec_mode(&account.name, &account.groups);
    if mode == crate::backstop::Mode::Off {
        return Ok(None);
    }
    let policy = policies.get()?.for_execs();
    let subject = crate::policy::Subject { user: account.name.clone(), groups: account.groups.clone(), oidc_groups: oidc_groups.to_vec() };
    let granted = approved_rule.iter().cloned().collect();
    let settings = crate::backstop::decide::Settings { policy, subject, home: account.home.display().to_string(), mode, granted };
    let pending = crate::backstop::launch::Pending::new()?;
    Ok(Some(BackstopPlan { pending, settings }))
}

/// What the privileged stage set up for the recorder.
struct Stage {
    /// Its acts, in words, for the recording.
    acts: Option<Vec<String>>,
    containment: Option<Containment>,
}

/// With the stage on: takes the terminal, makes the session's cgroup and
/// forks; the parent becomes the root warden (it never returns here), the
/// child goes on as the recorder, its shell to be contained in the
/// cgroup. With the stage off, nothing happens.
fn split_off_warden(privilege: Privilege, config: &Config, session_id: &str, interactive: bool) -> anyhow::Result<(Privilege, Stage)> {
    if !privilege.is_privileged() {
        return Ok((privilege, Stage { acts: None, containment: None }));
    }
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    let taken = if interactive { privilege.take_terminal(&[stdin.as_fd(), stdout.as_fd()])? } else { None };
    let cgroup = privilege.create_cgroup(session_id)?.context("no cgroup for the session")?;
    let mut acts = taken.as_ref().map(|t| t.describe(privilege.service_uid)).unwrap_or_default();
    acts.push(format!("session processes contained in cgroup {}", cgroup.dir.display()));
    // SAFETY: single-threaded here; the parent only waits and makes system
    // calls, the child goes on as the recorder.
    match unsafe { fork() }.context("cannot fork the recorder")? {
        ForkResult::Parent { child } => privilege.become_warden(child, taken, Some(cgroup), config.session.leftovers == crate::config::Leftovers::Keep),
        ForkResult::Child => {
            // The warden restores the terminal; the recorder's copy of the
            // record is dropped unused.
            drop(taken);
            let containment = Containment::Cgroup(cgroup.dir.clone());
            Ok((privilege.contained_in(&cgroup), Stage { acts: Some(acts), containment: Some(containment) }))
        }
    }
}

/// The command policy (see [`crate::policy::load_default`]: a privileged
/// shell trusts only a root-owned system file). `collector`: a collector
/// is configured, so `[policy] unknown` defaults to `approve` (someone can
/// decide) rather than `deny`.
pub fn load_policy(privilege: &Privilege, collector: bool) -> anyhow::Result<crate::policy::Policy> {
    crate::policy::load_default(privilege.is_privileged()).map(|p| p.with_collector(collector))
}

/// The command policy of one session, loaded at most once: the `-c`
/// check, the gate and the exec backstop each take a copy. Loading takes
/// milliseconds (the rules' patterns are compiled), and a session used to
/// load it two or three times before its shell started.
struct Policies<'a> {
    privilege: &'a Privilege,
    collector: bool,
    loaded: std::cell::OnceCell<crate::policy::Policy>,
}

impl<'a> Policies<'a> {
    fn new(privilege: &'a Privilege, collector: bool) -> Self {
        Self { privilege, collector, loaded: std::cell::OnceCell::new() }
    }

    fn get(&self) -> anyhow::Result<crate::policy::Policy> {
        if let Some(policy) = self.loaded.get() {
            return Ok(policy.clone());
        }
        let policy = load_policy(self.privilege, self.collector).context("the command policy")?;
        Ok(self.loaded.get_or_init(|| policy).clone())
    }
}

/// What the policy says of a `-c` command.
enum CommandCheck {
    Run,
    Refuse(String),
    /// It needs approval: the line as the gate would hold it.
    Approve(Box<crate::gate::Held>),
}

/// Checks a `-c` command line against the policy before anything runs, as
/// the gate checks an interactive line. `traced`: the batch gate will check
/// every command as it runs (see [`crate::policy::Env::traced`]).
fn gate_command(line: &str, account: &Account, oidc_groups: &[String], policies: &Policies<'_>, traced: bool) -> anyhow::Result<CommandCheck> {
    use crate::policy::{Env, Subject, Verdict};
    let policy = policies.get()?;
    let who = Subject { user: account.name.clone(), groups: account.groups.clone(), oidc_groups: oidc_groups.to_vec() };
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| account.home.display().to_string());
    let mut env = Env::new(&cwd, &account.home.display().to_string());
    env.vars = std::env::vars().collect();
    // A `-c` shell starts with this environment and no other variables.
    env.complete = true;
    env.traced = traced;
    let decision = policy.check(line, &who, &env);
    // Worded as the interactive gate words it (`gate::Gate`).
    let refusal = decision.rule.as_ref().map_or_else(|| "refused: no rule decided".to_owned(), |r| format!("refused by rule {}: {}", r.name, r.message));
    Ok(match (decision.verdict, decision.rule.clone()) {
        (Verdict::Allow, _) => CommandCheck::Run,
        (Verdict::Deny, _) | (Verdict::Approve, None) => CommandCheck::Refuse(refusal),
        (Verdict::Approve, Some(rule_ref)) => CommandCheck::Approve(Box::new(crate::gate::Held {
            record: crate::gate::CommandRecord {
                id: 1,
                line: line.to_owned(),
                cwd,
                source: "command",
                verdict: crate::gate::RecordVerdict::Pending,
                outcome: crate::evidence::marker::Outcome::Held,
                rule: Some(rule_ref.name.clone()),
                message: None,
                programs: decision.commands.iter().map(|c| c.program.clone()).collect(),
                unsafe_expansions: decision.unsafe_expansions.clone(),
            },
            rule: rule_ref,
        })),
    })
}

/// The gate for an interactive bash or zsh: hooks written, socket open,
/// policy loaded. `None` for shells the gate has no hooks for (their
/// sessions are recorded and masked, not gated).
fn prepare_gate(shell: &Path, account: &Account, oidc_groups: &[String], policies: &Policies<'_>) -> anyhow::Result<Option<(Injection, Gate)>> {
    let Some(kind) = ShellKind::of(shell) else { return Ok(None) };
    let policy = policies.get()?;
    let inj = Injection::prepare(kind).context("cannot prepare the command gate's hooks")?;
    let who = crate::policy::Subject { user: account.name.clone(), groups: account.groups.clone(), oidc_groups: oidc_groups.to_vec() };
    let gate = Gate::new(policy, who, account.home.display().to_string(), inj.token.clone(), std::time::Instant::now());
    Ok(Some((inj, gate)))
}

/// What a session's recording needs: the spool, the host key (if the
/// host has one) and the evidence and collector settings.
struct Recording<'a> {
    spool: &'a Path,
    key: Option<std::sync::Arc<crate::evidence::HostKey>>,
    config: &'a Config,
    /// What happened before the session began (a `-c` command's approval),
    /// written right after the header.
    early: Vec<crate::approval::link::Effect>,
}

impl Recording<'_> {
    fn open(&self, header: &Header) -> anyhow::Result<Sink> {
        use crate::approval::link::Effect;
        let mut sink = Sink::open(self.spool, header, self.key.clone(), &self.config.evidence)?;
        for effect in &self.early {
            let at = std::time::Duration::ZERO;
            match effect {
                Effect::Audit(json) => sink.write(at, &crate::evidence::asciicast::Event::Audit(&json.to_string()))?,
                Effect::Marker(marker) => sink.write(at, &crate::evidence::asciicast::Event::Marker(&marker.label()))?,
                Effect::Resolve(_) => {}
            }
        }
        Ok(sink)
    }

    /// Starts `custos upload --follow` for a chunked recording when a
    /// collector is configured. Call it as the service user.
    fn stream(&self, sink: &Sink) {
        if let (true, Some(url)) = (sink.is_chunked(), &self.config.collector.url) {
            let session = sink.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if let Err(e) = crate::recorder::uploader::spawn_follow(self.spool, url, &self.config.evidence.key, self.config.source.as_deref(), &session) {
                // The chunks stay in the spool for `custos upload`.
                eprintln!("custos-shell: cannot start streaming to the collector ({e}); the recording stays in the spool");
            }
        }
    }
}

/// Records a refused command (header, a marker saying why, exit 126) and
/// tells the user why on stderr. Nothing runs.
fn refuse(rec: &Recording<'_>, info: SessionInfo, reason: &str) -> anyhow::Result<Outcome> {
    // The prefix an interactive refusal has (the hooks print it).
    eprintln!("custos: {reason}");
    let header = Header::new(info, 80, 24, None, crate::when::unix_now());
    let mut sink = rec.open(&header)?;
    let marker = crate::evidence::marker::Marker::Refusal(reason.to_owned());
    sink.write(std::time::Duration::ZERO, &crate::evidence::asciicast::Event::Marker(&marker.label()))?;
    sink.write(std::time::Duration::ZERO, &crate::evidence::asciicast::Event::Exit(EXIT_REFUSED))?;
    sink.finish()?;
    // Not streamed from here (still privileged, and nothing is live): the
    // next session's uploader or `custos upload` delivers it.
    Ok(Outcome { status: EXIT_REFUSED, recording: Some(sink.path().to_owned()) })
}

fn exec_unrecorded(shell: &Path, inv: &Invocation, privilege: &Privilege) -> ! {
    match ShellCommand::new(shell, inv, &[]) {
        Ok(cmd) => cmd.exec_child(None, privilege),
        Err(e) => {
            eprintln!("custos-shell: {e}");
            // SAFETY: _exit is always sound.
            unsafe { libc::_exit(EXIT_REFUSED) }
        }
    }
}

#[allow(clippy::too_many_arguments)] // each is a different part of the session; a struct would only rename them
fn interactive_session(
    config: &Config,
    privilege: Privilege,
    rec: &Recording<'_>,
    info: SessionInfo,
    cmd: &ShellCommand,
    gate: Option<(Injection, Gate)>,
    stage: Stage,
    backstop: Option<BackstopPlan>,
    start_below: bool,
    masker: crate::term::masker::Masker,
) -> anyhow::Result<Outcome> {
    let approval_who = (info.session_id.clone(), info.host.clone(), info.user.clone());
    let approval_identity = info.identity.clone();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let size = crate::recorder::pty::get_size(stdout.as_fd())
        .or_else(|| crate::recorder::pty::get_size(stdin.as_fd()))
        .unwrap_or(Size { rows: 24, cols: 80 });
    // A command's output is drawn inline, without a status line unless
    // there is news (see `term::render::inline`).
    let status_text = (config.status_line && start_below)
        .then(|| format!(" \u{25cf} REC  custos  {}@{}  session {}", info.user, info.host, short_id(&info.session_id)));
    let layout = Layout::for_terminal(size.rows, size.cols, status_text.is_some());
    let pane = Size { rows: layout.pane_rows, cols: layout.cols };

    // The user owns their terminal device, as with any login.
    let pty = privilege.as_user(|| crate::recorder::pty::Pty::open(pane))??;
    let _registration = crate::recorder::nesting::register(rec.spool, &pty.master, &pty.slave).context("cannot register the session")?;
    let header = Header::new(info, pane.cols, pane.rows, std::env::var("TERM").ok(), crate::when::unix_now());
    let mut sink = rec.open(&header)?;
    let signals = Signals::register().context("cannot install signal handlers")?;

    // SAFETY: this process is single-threaded here; the child only makes
    // system calls before exec.
    let child = match unsafe { privilege.fork_contained() }.context("cannot fork")? {
        ForkResult::Child => cmd.exec_child(Some(&pty.slave), &privilege),
        ForkResult::Parent { child } => child,
    };
    // The shell holds the only copy of its end of the gate's pair.
    let mut gate = gate;
    if let Some((inj, _)) = gate.as_mut() {
        inj.handed_over();
    }
    // Still single-threaded and holding both identities: the only moment
    // the pane's launcher can be forked to run as the user (see `pane`).
    let pane = if start_below { approvals_pane(config, &privilege) } else { None };
    // Single-threaded still: the listener comes over, the reader forks.
    let backstop = backstop.map(|b| b.start(&privilege)).transpose()?;
    // From here the recorder is the service user for good. If that fails,
    // returning drops the master, which hangs up the shell: never an
    // unrecorded shell.
    privilege.drop_to_service()?;
    drop(pty.slave);
    rec.stream(&sink);

    let raw = crate::recorder::pty::RawMode::enter(stdin.as_fd()).context("cannot put the terminal in raw mode")?;
    let term = Terminal { input: stdin.as_fd(), output: stdout.as_fd() };
    // The injection's directory lives until the session ends; the socket
    // moves into the loop.
    let (injection, gate) = match gate {
        Some((inj, gate)) => {
            let stream = inj.gate.try_clone().context("the gate's socket")?;
            let socket = GateSocket::new(stream, child.as_raw());
            let (gate, approvals) = crate::approval::link::for_session(gate, config, &approval_who, approval_identity.as_ref());
            (Some(inj), Some(session::GateRuntime { gate, socket, on_degraded: config.gate.on_degraded, approvals }))
        }
        None => (None, None),
    };
    // Without the stage, the session is the shell's session id.
    let containment = stage.containment.unwrap_or(Containment::Session(child.as_raw()));
    let exec = match backstop {
        Some(started) => {
            let (responder, events) = started.events()?;
            Some(session::ExecRuntime::new(events, responder))
        }
        None => None,
    };
    let options = session::Options {
        status_line: status_text,
        record_input: config.recording.record_input,
        masker,
        gate,
        pane,
        containment,
        keep_leftovers: config.session.leftovers == crate::config::Leftovers::Keep,
        stage: stage.acts,
        exec,
        start_below,
        inline: !start_below,
        backlog: (sink.is_chunked() && config.collector.url.is_some()).then(|| (sink.path().to_owned(), config.collector.backlog_warn)),
    };
    let ending = session::run(term, pty.master, child, layout, &signals, &mut sink, options);
    drop(raw);
    drop(injection);
    let ending = ending.context("the session failed")?;
    Ok(Outcome { status: ending.status(), recording: Some(sink.path().to_owned()) })
}

/// The approvals pane's launcher, when a collector is configured and the
/// pane key is not turned off. Without it the prefix key is not
/// intercepted. A pane that cannot be prepared is reported and left out:
/// the session itself does not depend on it.
fn approvals_pane(config: &Config, privilege: &Privilege) -> Option<session::PaneSetup> {
    let (Some(url), Some(prefix)) = (config.collector.url.as_deref(), config.approvals.pane_key) else { return None };
    let prepared = crate::layout::custos_binary().map_err(|e| e.to_string()).and_then(|custos| {
        let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let (args, env) = crate::recorder::pane::approve_command(url, &env);
        let cmd = crate::recorder::pane::launcher::PaneCommand::new(&custos, &args, &env).map_err(|e| e.to_string())?;
        crate::recorder::pane::launcher::Launcher::start(privilege, &cmd).map_err(|e| e.to_string())
    });
    match prepared {
        Ok(launcher) => Some(session::PaneSetup { launcher, prefix }),
        Err(e) => {
            eprintln!("custos-shell: the approvals pane is unavailable: {e}");
            None
        }
    }
}

fn short_id(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

/// What a session without a terminal needs besides the shell: a
/// recognised transfer, and the gate for bash's and zsh's commands.
struct ChannelSetup {
    transfer: Option<crate::channel::transfer::Observer>,
    swallow_stderr: bool,
    gate: Option<(crate::gate::batch::BatchGate, std::net::TcpListener)>,
    /// The hooks' files, kept until the session ends.
    _hooks: Option<crate::gate::inject::BatchHooks>,
}

/// Recognises a transfer (its server may be started with its log on) or
/// prepares the gate for a bash or zsh that reads commands without a
/// terminal (both shells' hooks, whichever it is: see `BatchHooks`).
#[allow(clippy::too_many_arguments)] // each is a different part of the session; a struct would only rename them
fn prepare_channel(
    config: &Config,
    shell: &Path,
    inv: &Invocation,
    subject: crate::policy::Subject,
    home: &Path,
    policies: &Policies<'_>,
    cmd: ShellCommand,
    approved: Option<String>,
) -> anyhow::Result<(ShellCommand, ChannelSetup)> {
    if let Some(recognised) = inv.command.as_deref().and_then(crate::channel::transfer::recognise) {
        let mut cmd = cmd;
        if let (Some(old), Some(new)) = (inv.command.as_deref(), recognised.command_line()) {
            cmd = cmd.with_command(old, &new)?;
        }
        let swallow_stderr = recognised.log_on_stderr();
        let transfer = Some(crate::channel::transfer::Observer::new(recognised));
        return Ok((cmd, ChannelSetup { transfer, swallow_stderr, gate: None, _hooks: None }));
    }
    if !config.gate.enabled || ShellKind::of(shell).is_none() {
        return Ok((cmd, ChannelSetup { transfer: None, swallow_stderr: false, gate: None, _hooks: None }));
    }
    let policy = policies.get()?;
    let hooks = crate::gate::inject::BatchHooks::prepare().context("cannot prepare the command gate's hooks")?;
    let exit = config.gate.on_refusal_noninteractive == crate::config::OnRefusal::Exit;
    let cmd = cmd.with_env(&hooks.env(exit)?)?;
    let (subject_user, subject_groups) = (subject.user.clone(), subject.groups.clone());
    let gate = crate::gate::batch::BatchGate::new(policy, subject, home.display().to_string(), hooks.token.clone(), config.gate.on_refusal_noninteractive).with_approved(approved)
        .with_exec_backstop(config.gate.exec_mode(&subject_user, &subject_groups) == crate::backstop::Mode::Enforce);
    let listener = hooks.listener.try_clone().context("the gate's socket")?;
    Ok((cmd, ChannelSetup { transfer: None, swallow_stderr: false, gate: Some((gate, listener)), _hooks: Some(hooks) }))
}

/// No terminal: scp, rsync, git, `ssh host cmd`, a script on stdin, cron.
/// The recorder sits in the byte path (see `recorder::channel`): every
/// byte passes untouched and end-of-file reaches each side as it was sent,
/// while the recording gets the streams masked, binary runs as hashes,
/// transfers described, and each command a bash or zsh runs, checked.
fn data_channel(
    privilege: Privilege,
    rec: &Recording<'_>,
    info: SessionInfo,
    cmd: &ShellCommand,
    stage: Stage,
    setup: ChannelSetup,
    backstop: Option<BackstopPlan>,
) -> anyhow::Result<Outcome> {
    use nix::fcntl::OFlag;
    let keep = rec.config.session.leftovers == crate::config::Leftovers::Keep;
    let header = Header::new(info, crate::channel::stream::SCREEN.cols, crate::channel::stream::SCREEN.rows, None, crate::when::unix_now());
    let mut sink = rec.open(&header)?;
    let started = std::time::Instant::now();
    if let Some(acts) = &stage.acts {
        let marker = crate::evidence::marker::Marker::Stage(acts.clone());
        sink.write(std::time::Duration::ZERO, &crate::evidence::asciicast::Event::Marker(&marker.label()))?;
    }
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).context("cannot make the data channel's pipes");
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // SAFETY: single-threaded here; the child only makes system calls
    // before exec.
    let child = match unsafe { privilege.fork_contained() }.context("cannot fork")? {
        ForkResult::Child => cmd.exec_child_piped([&in_r, &out_w, &err_w], &privilege),
        ForkResult::Parent { child } => child,
    };
    drop((in_r, out_w, err_w));
    let backstop = backstop.map(|b| b.start(&privilege)).transpose()?;
    privilege.drop_to_service()?;
    rec.stream(&sink);
    // Ctrl-C in a pipeline reaches the shell; the recorder stays to record
    // how it ended.
    for sig in [nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGQUIT, nix::sys::signal::Signal::SIGHUP] {
        // SAFETY: ignoring a signal is always sound.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
    }
    let dup = |fd: i32| -> anyhow::Result<std::os::fd::OwnedFd> {
        // SAFETY: 0, 1 and 2 are open for the life of the process.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        borrowed.try_clone_to_owned().context("cannot take the connection's descriptors")
    };
    let connection = [dup(0)?, dup(1)?, dup(2)?];
    // The relays hold the only copies of the connection's stdin and
    // stdout, so closing them is what the peer sees as end-of-file.
    if let Ok(null) = std::fs::File::options().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
    let ends = crate::recorder::channel::Ends { connection, shell: [in_w, out_r, err_r] };
    let options = crate::recorder::channel::Options {
        masking: rec.config.masking.clone(),
        binary: rec.config.recording.binary,
        transfer: setup.transfer,
        swallow_stderr: setup.swallow_stderr,
        gate: setup.gate,
        containment: stage.containment,
        keep_leftovers: keep,
        backstop,
    };
    let ended = crate::recorder::channel::run(&mut sink, started, child, ends, options)?;
    sink.write(started.elapsed(), &crate::evidence::asciicast::Event::Exit(ended.status))?;
    sink.finish()?;
    Ok(Outcome { status: ended.status, recording: Some(sink.path().to_owned()) })
}
