//! The data channel's byte path: a session without a terminal, with the
//! recorder between the connection and the shell.
//!
//! Three relays copy the shell's stdin, stdout and stderr, each on a thread
//! of its own with blocking reads and writes, so a shell that does not read
//! its stdin never stalls its output (the deadlock a single poll loop has to
//! avoid by hand). Every byte is passed on as it came, and a copy goes to
//! this thread, which owns the recording: the copies become events through
//! `channel::stream` (masked text, binary runs as hashes, a screen) or, for
//! a recognised transfer, a `channel::transfer` record. The relays wait
//! for the recording when it falls behind (a bounded queue), so memory
//! stays bounded and no byte passes unrecorded.
//!
//! End-of-file is passed on as soon as the shell closes a stream: the
//! relay closes our copy of the connection's descriptor, so `ssh` sees it
//! then, not when the recorder exits.
//!
//! The command gate for a shell without a terminal (`gate::batch`) asks on
//! loopback connections; each is read on a thread of its own and answered
//! here, so its records are in the recording in order with the output.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::channel::stream::{BinaryPolicy, Piece, Stream};
use crate::channel::transfer::Observer;
use crate::evidence::asciicast::Event;
use crate::evidence::marker::Marker;
use crate::evidence::sink::Sink;
use crate::gate::batch::BatchGate;
use crate::gate::wire::{Decoder, Message};
use crate::mask::MaskingConfig;
use crate::recorder::leftovers::Containment;

/// Bytes per read.
const READ: usize = 64 * 1024;
/// Reads queued for the recording before the relays wait.
const QUEUE: usize = 64;
/// How long a question to the gate may take to arrive.
const QUESTION_WAIT: Duration = Duration::from_secs(10);
/// After the shell exits with leftovers kept, how long its streams may
/// stay open before the recording ends without them.
const KEPT_DRAIN: Duration = Duration::from_secs(1);
/// How long the end waits for the exec backstop's last records (the
/// reader answers at once unless the machine is starved).
const FLUSH_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Stdin,
    Stdout,
    Stderr,
}

const DIRS: [Dir; 3] = [Dir::Stdin, Dir::Stdout, Dir::Stderr];

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Stdin => "stdin",
            Dir::Stdout => "stdout",
            Dir::Stderr => "stderr",
        }
    }
}

enum Msg {
    /// A read of `len` bytes, in a buffer that goes back to its relay.
    Data(Dir, Vec<u8>, usize),
    Eof(Dir),
    Exited(i32),
    Question(Message, TcpStream),
    /// A program start the exec backstop decided (or holds).
    Exec(Box<crate::backstop::supervisor::Event>),
}

/// The connection's ends and the shell's ends of its three pipes.
pub struct Ends {
    /// Our stdin, stdout, stderr (duplicates: the originals are the
    /// caller's to close).
    pub connection: [OwnedFd; 3],
    /// The write end of the shell's stdin, the read ends of its stdout and
    /// stderr.
    pub shell: [OwnedFd; 3],
}

/// What the loop needs besides the bytes.
pub struct Options {
    pub masking: MaskingConfig,
    pub binary: BinaryPolicy,
    /// A recognised transfer: described, its bytes not recorded.
    pub transfer: Option<Observer>,
    /// Its stderr is the server's log, not for the client.
    pub swallow_stderr: bool,
    /// The gate for the shell's commands, and the socket it asks on.
    pub gate: Option<(BatchGate, TcpListener)>,
    pub containment: Option<Containment>,
    pub keep_leftovers: bool,
    /// The exec backstop, started (its reader forked) but not yet running.
    pub backstop: Option<crate::backstop::launch::Started>,
}

/// How often a full recording is looked at again for room.
const FULL_RETRY: Duration = Duration::from_millis(100);

/// How the channel ended.
pub struct Ended {
    pub status: i32,
}

/// Relays and records until the shell has exited and its output streams
/// have ended. Call as the service user, after the fork.
pub fn run(sink: &mut Sink, started: Instant, child: Pid, ends: Ends, options: Options) -> anyhow::Result<Ended> {
    let Options { masking, binary, mut transfer, swallow_stderr, gate, containment, keep_leftovers, backstop } = options;
    let (tx, rx) = sync_channel::<Msg>(QUEUE);
    let responder = match backstop {
        Some(started) => {
            let tx = tx.clone();
            let responder = started.spawn_with(move |event| {
                let _ = tx.send(Msg::Exec(Box::new(event)));
            })?;
            Some(responder)
        }
        None => None,
    };
    let [c_in, c_out, c_err] = ends.connection;
    let [s_in, s_out, s_err] = ends.shell;
    // Each relay's buffers come back to it once recorded, so a read is
    // neither copied nor a fresh allocation (whose first touch faults).
    let (spare_in, pool_in) = sync_channel::<Vec<u8>>(QUEUE);
    let (spare_out, pool_out) = sync_channel::<Vec<u8>>(QUEUE);
    let (spare_err, pool_err) = sync_channel::<Vec<u8>>(QUEUE);
    let spare = [spare_in, spare_out, spare_err];
    spawn_relay(Dir::Stdin, c_in, Some(s_in), tx.clone(), pool_in);
    spawn_relay(Dir::Stdout, s_out, Some(c_out), tx.clone(), pool_out);
    spawn_relay(Dir::Stderr, s_err, (!swallow_stderr).then_some(c_err), tx.clone(), pool_err);
    let mut gate = match gate {
        Some((gate, listener)) => {
            spawn_listener(listener, tx.clone());
            Some(gate)
        }
        None => None,
    };
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let status = wait_exit(child);
            let _ = tx.send(Msg::Exited(status));
        });
    }
    drop(tx);

    let mut streams = [
        Stream::new(&masking, binary, false)?,
        Stream::new(&masking, binary, true)?,
        Stream::new(&masking, binary, true)?,
    ];
    let mut rec = Recorder { sink, started, masker: crate::channel::stream::LineMasker::new(&masking)? };
    let mut open = [true, true, true];
    let mut exited: Option<(i32, Instant)> = None;
    // The spool is full (its quota, the disk, a collector away long enough):
    // `throttle` stops taking from the relays, so the shell blocks on its
    // writes (and on the gate's answers) until there is room, as an
    // interactive session stops reading its PTY; `end` ends the shell.
    let mut ended_full = false;
    loop {
        if let Some(why) = rec.sink.full() {
            match rec.sink.when_full() {
                crate::evidence::WhenFull::Throttle => {
                    std::thread::sleep(FULL_RETRY);
                    continue;
                }
                crate::evidence::WhenFull::End if !ended_full => {
                    ended_full = true;
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    rec.marker(&Marker::Ended(format!("the recording is full ({why}), so the session was ended")))?;
                }
                crate::evidence::WhenFull::End => {}
            }
        }
        let output_open = open[1] || open[2];
        if let Some((_, at)) = exited {
            if !output_open || (keep_leftovers && at.elapsed() >= KEPT_DRAIN) {
                break;
            }
        }
        let deadline = streams.iter().filter_map(Stream::deadline).min();
        let wait = match (deadline, exited) {
            (Some(d), _) => d.saturating_duration_since(Instant::now()),
            (None, Some(_)) => Duration::from_millis(100),
            (None, None) => Duration::from_secs(3600),
        };
        let msg = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let now = Instant::now();
        match msg {
            Some(Msg::Data(dir, buf, len)) => {
                let bytes = buf.get(..len).unwrap_or_default();
                match transfer.as_mut() {
                    Some(t) => match dir {
                        Dir::Stdin => t.input(bytes),
                        Dir::Stdout => t.output(bytes),
                        Dir::Stderr => t.log(bytes),
                    },
                    None => {
                        if let Some(stream) = streams.get_mut(dir as usize) {
                            let pieces = stream.feed(bytes, now);
                            rec.pieces(dir, pieces)?;
                        }
                    }
                }
                if let Some(back) = spare.get(dir as usize) {
                    let _ = back.try_send(buf);
                }
            }
            Some(Msg::Eof(dir)) => {
                if let (Some(open), Some(stream)) = (open.get_mut(dir as usize), streams.get_mut(dir as usize)) {
                    *open = false;
                    let pieces = stream.finish(now);
                    rec.pieces(dir, pieces)?;
                }
            }
            Some(Msg::Exited(status)) => {
                exited = Some((status, now));
                end_leftovers(&mut rec, containment.as_ref(), keep_leftovers)?;
            }
            Some(Msg::Question(message, mut conn)) => {
                if let Some(g) = gate.as_mut() {
                    let answer = g.answer(message);
                    if let Some(record) = &answer.record {
                        rec.command(record)?;
                    }
                    if let Some(reply) = answer.reply {
                        let _ = conn.write_all(&reply.encode());
                    }
                }
            }
            Some(Msg::Exec(event)) => rec.exec(*event, responder.as_ref())?,
            None => {}
        }
        for (dir, s) in DIRS.into_iter().zip(streams.iter_mut()) {
            let pieces = s.due(Instant::now());
            rec.pieces(dir, pieces)?;
        }
    }
    let now = Instant::now();
    for (dir, s) in DIRS.into_iter().zip(streams.iter_mut()) {
        let pieces = s.finish(now);
        rec.pieces(dir, pieces)?;
    }
    // The backstop's last records: the reader holds back those of
    // programs that ran, and the script may have ended before it sent them.
    if let Some(r) = responder.as_ref() {
        r.flush();
        let until = Instant::now() + FLUSH_WAIT;
        loop {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Msg::Exec(event)) => match *event {
                    crate::backstop::supervisor::Event::Flushed => break,
                    event => rec.exec(event, Some(r))?,
                },
                // Output that came after the end was already drained is
                // not the script's any more; the loop above stopped on it.
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    if let Some(t) = transfer {
        let record = t.finish();
        rec.marker(&Marker::Transfer(record.summary()))?;
        let mut json = serde_json::to_value(&record).unwrap_or_default();
        if let Some(obj) = json.as_object_mut() {
            obj.insert("kind".into(), "transfer".into());
        }
        rec.audit(&json)?;
    }
    let mut status = exited.map_or(crate::recorder::shell::EXIT_REFUSED, |(s, _)| s);
    if let Some(why) = gate.as_ref().and_then(BatchGate::stopped) {
        rec.marker(&Marker::Ended(format!("a refused command stopped the script: {why}")))?;
        status = crate::recorder::shell::EXIT_REFUSED;
    }
    Ok(Ended { status })
}

/// Writes what the channel produces to the recording.
struct Recorder<'a> {
    sink: &'a mut Sink,
    started: Instant,
    /// For command lines (each on its own, no context carried).
    masker: crate::channel::stream::LineMasker,
}

impl Recorder<'_> {
    fn write(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        self.sink.write(self.started.elapsed(), event)?;
        Ok(())
    }

    fn marker(&mut self, marker: &Marker) -> anyhow::Result<()> {
        self.write(&Event::Marker(&marker.label()))
    }

    fn audit(&mut self, json: &serde_json::Value) -> anyhow::Result<()> {
        self.write(&Event::Audit(&json.to_string()))
    }

    fn command(&mut self, record: &crate::gate::CommandRecord) -> anyhow::Result<()> {
        let line = self.masker.mask_alone(&record.line);
        self.marker(&record.marker(&line))?;
        self.audit(&record.audit(line))
    }

    /// A program start: its `a` record, and a marker unless it simply ran.
    /// Nothing can wait for approval here: a held one is refused.
    fn exec(&mut self, event: crate::backstop::supervisor::Event, responder: Option<&crate::backstop::supervisor::Responder>) -> anyhow::Result<()> {
        use crate::backstop::supervisor::Event as X;
        let record = match event {
            X::Exec(record) => record,
            X::Held { id, mut record, rule } => {
                record.outcome = crate::evidence::marker::Outcome::PendingRefused.as_str().into();
                record.message = Some(format!("{}; a session without a terminal cannot wait for approval", rule.message));
                if let Some(r) = responder {
                    r.answer(id, &record, false);
                }
                record
            }
            X::Gone(why) => {
                return self.marker(&Marker::Degraded(format!("the exec backstop stopped ({why}); every program start fails from now on")));
            }
            X::Flushed => return Ok(()),
        };
        let line = self.masker.mask_alone(&record.line);
        if record.outcome != crate::evidence::marker::Outcome::Ran.as_str() {
            self.marker(&Marker::Exec { outcome: record.outcome.clone(), rule: record.rule.clone(), line })?;
        }
        let json = record.audit(|s| self.masker.mask_alone(s));
        self.audit(&json)
    }

    fn pieces(&mut self, dir: Dir, pieces: Vec<Piece>) -> anyhow::Result<()> {
        for piece in pieces {
            match piece {
                Piece::Text(text) | Piece::Screen(text) => match dir {
                    Dir::Stdin => self.write(&Event::Input(&text))?,
                    Dir::Stdout => self.write(&Event::Output(&text))?,
                    Dir::Stderr => self.write(&Event::Error(&text))?,
                },
                Piece::Binary(run) => {
                    self.marker(&Marker::Binary { stream: dir.name(), bytes: run.bytes, sha256: run.sha256.clone() })?;
                    let json = serde_json::json!({
                        "kind": "binary",
                        "stream": dir.name(),
                        "bytes": run.bytes,
                        "sha256": run.sha256,
                        "content": run.content,
                        "truncated": run.truncated,
                    });
                    self.audit(&json)?;
                }
            }
        }
        Ok(())
    }
}

/// Whatever the shell left running (`nohup`, `setsid`) is listed and
/// ended, as in an interactive session; killing it closes the streams it
/// held.
fn end_leftovers(rec: &mut Recorder<'_>, containment: Option<&Containment>, keep: bool) -> anyhow::Result<()> {
    let Some(containment) = containment.filter(|c| !c.list().is_empty()) else { return Ok(()) };
    containment.freeze();
    let left = containment.list();
    if keep {
        containment.thaw();
    } else {
        containment.kill();
    }
    if !left.is_empty() {
        rec.marker(&Marker::Leftovers(crate::recorder::leftovers::describe(&left, keep)))?;
    }
    Ok(())
}

fn wait_exit(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(s) => {
                if let Some(code) = crate::recorder::child::exit_code(s) {
                    return code;
                }
            }
            Err(nix::Error::EINTR) => {}
            Err(_) => return crate::recorder::shell::EXIT_REFUSED,
        }
    }
}

/// Copies `from` to `to` (if any) and a copy to the recording, until
/// end-of-file. When `to` fails (the peer went away), the source is
/// closed, so the writer on the other side gets `EPIPE` as it would have
/// without us; what it wrote is still recorded up to then.
fn spawn_relay(dir: Dir, from: OwnedFd, to: Option<OwnedFd>, tx: SyncSender<Msg>, pool: Receiver<Vec<u8>>) {
    std::thread::spawn(move || {
        let mut from = std::fs::File::from(from);
        let mut to = to.map(std::fs::File::from);
        loop {
            let mut buf = pool.try_recv().unwrap_or_else(|_| vec![0u8; READ]);
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let bytes = buf.get(..n).unwrap_or_default();
            let passed = to.as_mut().is_none_or(|out| out.write_all(bytes).is_ok());
            if tx.send(Msg::Data(dir, buf, n)).is_err() {
                return;
            }
            if !passed {
                break;
            }
        }
        // End-of-file passes on now: closing our end of the connection
        // (or of the shell's stdin) is what the other side waits for.
        drop(to);
        drop(from);
        let _ = tx.send(Msg::Eof(dir));
    });
}

/// Accepts the gate's questions, each read on a thread of its own.
fn spawn_listener(listener: TcpListener, tx: SyncSender<Msg>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                if let Some(message) = read_question(&conn) {
                    let _ = tx.send(Msg::Question(message, conn));
                }
            });
        }
    });
}

fn read_question(mut conn: &TcpStream) -> Option<Message> {
    conn.set_read_timeout(Some(QUESTION_WAIT)).ok()?;
    let mut decoder = Decoder::default();
    let mut buf = [0u8; 8192];
    loop {
        let n = conn.read(&mut buf).ok().filter(|&n| n > 0)?;
        decoder.push(buf.get(..n).unwrap_or_default());
        match decoder.next_message() {
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) => return None,
            None => {}
        }
    }
}

