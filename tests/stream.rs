//! The recorder's evidence path end to end: a real `custos-shell` in a PTY
//! writes signed chunks to its spool and streams them with `custos upload
//! --follow` to a real `custos serve` on loopback. Covers live streaming,
//! a recorder killed mid-session, a collector that is down while a session
//! runs, and a full spool (throttle and end).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;
#[path = "support/collector.rs"]
mod collector;

use std::path::{Path, PathBuf};
use std::time::Duration;

use collector::{host_key, wait_for, Server};
use shell::{Pty, Setup};
use custos::evidence::{verify_chain, HostKey, SessionDir};

/// A host key, a collector with the key enrolled, and a shell config that
/// streams to it with short chunks.
struct Rig {
    dir: tempfile::TempDir,
    key: HostKey,
    key_path: PathBuf,
    server: Option<Server>,
    setup: Setup,
}

impl Rig {
    fn new(evidence: &str, url: Option<&str>) -> Rig {
        Self::new_with(evidence, url, "")
    }

    /// As [`Rig::new`], with more `[collector]` keys.
    fn new_with(evidence: &str, url: Option<&str>, collector: &str) -> Rig {
        Self::build("", evidence, url, collector)
    }

    /// As [`Rig::new`], with more `[recording]` keys.
    fn with_recording(recording: &str) -> Rig {
        Self::build(recording, "", None, "")
    }

    fn build(recording: &str, evidence: &str, url: Option<&str>, collector: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let (key, key_path) = host_key(dir.path());
        let server = url.is_none().then(|| Server::start(&dir.path().join("collector")));
        let url = url.map(str::to_owned).or_else(|| server.as_ref().map(|s| s.url.clone())).unwrap();
        // Setup's config starts with its [recording] table.
        let setup = Setup::new(&format!(
            "{recording}\n[shell]\ndefault = \"/bin/bash\"\n[evidence]\nkey = \"{}\"\nchunk_seconds = 0.3\n{evidence}\n[collector]\nurl = \"{url}\"\n{collector}\n",
            key_path.display()
        ));
        if let Some(s) = &server {
            s.enroll(&setup.config(), &key_path);
        }
        Rig { dir, key, key_path, server, setup }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    fn shell(&self) -> Pty {
        let mut cmd = self.setup.command(&["--norc", "--noprofile"]);
        cmd.env("PS1", "rec> ");
        let pty = Pty::spawn(cmd, 24, 160);
        pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "rec>"));
        pty
    }

    fn spool_sessions(&self) -> Vec<PathBuf> {
        let root = self.setup.dir.path().join("spool/chunks");
        let mut v: Vec<PathBuf> = std::fs::read_dir(root).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
        v.sort();
        v
    }

    /// Session ids the collector lists.
    fn collected(&self) -> Vec<String> {
        let list = self.server().json("/v1/sessions");
        list["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
    }

    fn cast(&self, id: &str) -> String {
        let r = self.server().get(&format!("/v1/sessions/{id}/cast"), Some(self.server().token()));
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    }

    fn complete(&self, id: &str) -> bool {
        let r = self.server().get(&format!("/v1/sessions/{id}/head"), Some(self.server().token()));
        r.status == 200 && r.json()["final"] == true
    }

    /// Verifies what the collector stored on disk (copied out of its
    /// store), offline, with the key.
    fn verify_stored(&self, id: &str) -> custos::evidence::Report {
        let copy = tempfile::tempdir().unwrap();
        collector::copy_stored_sessions(&self.dir.path().join("collector"), copy.path());
        let dir = SessionDir::open(&copy.path().join(id)).unwrap();
        let public = self.key.public();
        verify_chain(dir.found().unwrap(), Some(id.parse().unwrap()), |k| (public.id() == *k).then_some(public))
    }
}

fn only(ids: Vec<String>) -> String {
    assert_eq!(ids.len(), 1, "expected one session: {ids:?}");
    ids.into_iter().next().unwrap()
}

#[test]
fn a_live_session_streams_to_the_collector_while_it_runs() {
    let rig = Rig::new("", None);
    let mut pty = rig.shell();
    pty.line("echo streamed-$((6*7))");
    pty.wait_text("streamed-42");
    // Still running: the collector already has the output, not the end.
    let mut id = String::new();
    wait_for(20, "the live output at the collector", || {
        let ids = rig.collected();
        if let Some(first) = ids.first() {
            id = first.clone();
            rig.cast(&id).contains("streamed-42")
        } else {
            false
        }
    });
    assert!(!rig.complete(&id), "the session is still running");
    pty.line("exit 3");
    assert_eq!(pty.wait_exit(), 3);
    wait_for(20, "the final chunk at the collector", || rig.complete(&id));
    let report = rig.verify_stored(&id);
    assert!(report.is_intact() && report.is_complete(), "{:?}", report.problems);
    let cast = custos::evidence::asciicast::Cast::parse(&rig.cast(&id)).unwrap();
    assert_eq!(cast.exit_status(), Some(3));
    assert_eq!(cast.header.custos.session_id, id);
    assert!(cast.markers().iter().any(|m| m.contains("echo streamed-$((6*7))")), "{:?}", cast.markers());
    // Acknowledged chunks leave the spool; the uploader removes the session.
    wait_for(10, "the spool to empty", || rig.spool_sessions().is_empty());
    // `custos verify` against the collector agrees.
    let out = collector::custos(&rig.setup.config())
        .args(["verify", "--server", &rig.server().url, "--token", rig.server().token(), "--key"])
        .arg(&rig.key_path)
        .arg(&id)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// With `[recording] keep_local`, a delivered session stays in the spool's
/// `delivered/` for that long: whole, verifiable offline and listed by
/// `custos replay`'s source, while the collector has it too. Copies older
/// than that go at the next pass of `custos upload`.
#[test]
fn keep_local_keeps_a_delivered_copy_for_its_time_then_prunes_it() {
    let rig = Rig::with_recording("keep_local = \"7d\"");
    let mut pty = rig.shell();
    pty.line("echo kept-$((6*7))");
    pty.wait_text("kept-42");
    pty.line("exit 4");
    assert_eq!(pty.wait_exit(), 4);
    wait_for(20, "the session at the collector", || !rig.collected().is_empty());
    let id = only(rig.collected());
    wait_for(20, "the final chunk at the collector", || rig.complete(&id));
    wait_for(10, "the spool's waiting sessions to empty", || rig.spool_sessions().is_empty());

    let spool = rig.setup.dir.path().join("spool");
    let copy = spool.join("delivered").join(&id);
    let dir = SessionDir::open(&copy).unwrap_or_else(|e| panic!("no delivered copy at {}: {e}", copy.display()));
    let public = rig.key.public();
    let report = verify_chain(dir.found().unwrap(), Some(id.parse().unwrap()), |k| (public.id() == *k).then_some(public));
    assert!(report.is_intact() && report.is_complete(), "the local copy: {:?}", report.problems);
    let out = collector::custos(&rig.setup.config()).arg("verify").arg("--key").arg(&rig.key_path).arg(&copy).output().unwrap();
    assert!(out.status.success(), "custos verify of the copy: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let listed = custos::tui::replay::source::LocalSource::new(&spool, None).files().unwrap();
    assert_eq!(listed, vec![copy.clone()], "custos replay of the spool lists the delivered copy");

    // Eight days later, the next pass removes it.
    let old = std::time::SystemTime::now() - Duration::from_secs(8 * 86_400);
    std::fs::File::open(&copy).unwrap().set_modified(old).unwrap();
    let out = collector::custos(&rig.setup.config()).args(["upload", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!copy.exists(), "a copy older than keep_local is pruned");
    assert!(rig.complete(&id), "the collector's copy is untouched");
}

#[test]
fn a_killed_recorder_loses_nothing_and_the_session_is_marked_abnormal() {
    let rig = Rig::new("", None);
    let mut pty = rig.shell();
    pty.line("echo before-the-kill");
    pty.wait_text("before-the-kill");
    let mut id = String::new();
    wait_for(20, "the output at the collector", || {
        id = rig.collected().first().cloned().unwrap_or_default();
        !id.is_empty() && rig.cast(&id).contains("before-the-kill")
    });
    pty.child.kill().unwrap();
    let _ = pty.child.wait();
    // The follower sees the live lock released, seals the session with an
    // "ended abnormally" final chunk, and delivers it.
    wait_for(30, "the sealed session at the collector", || rig.complete(&id));
    let report = rig.verify_stored(&id);
    assert!(report.is_intact() && report.is_complete(), "{:?}", report.problems);
    let cast = custos::evidence::asciicast::Cast::parse(&rig.cast(&id)).unwrap();
    assert!(cast.output().contains("before-the-kill"));
    assert!(
        cast.markers().iter().any(|m| m.contains(custos::evidence::spool::ORPHAN_MARKER)),
        "no abnormal-end marker: {:?}",
        cast.markers()
    );
}

#[test]
fn a_session_recorded_while_the_collector_is_down_is_delivered_by_the_next_one() {
    // A port nobody listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let mut rig = Rig::new("", Some(&url));
    let mut pty = rig.shell();
    pty.line("echo while-down");
    pty.wait_text("while-down");
    pty.line("exit");
    assert_eq!(pty.wait_exit(), 0);
    let first = only(rig.spool_sessions().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect());
    // The chunks wait in the spool, final chunk included.
    let report = {
        let dir = SessionDir::open(&rig.spool_sessions()[0]).unwrap();
        let public = rig.key.public();
        verify_chain(dir.found().unwrap(), None, |k| (public.id() == *k).then_some(public))
    };
    assert!(report.is_intact() && report.is_complete(), "{:?}", report.problems);
    let local: String = report.chunks.iter().map(|c| String::from_utf8(c.payload().unwrap()).unwrap()).collect();

    // The collector comes up on that port; the next session's uploader
    // delivers both.
    let server = Server::start_with(&rig.dir.path().join("collector"), &format!("127.0.0.1:{port}"), &[], None);
    server.enroll(&rig.setup.config(), &rig.key_path);
    rig.server = Some(server);
    let mut pty = rig.shell();
    pty.line("echo next-session");
    pty.wait_text("next-session");
    pty.line("exit");
    assert_eq!(pty.wait_exit(), 0);
    wait_for(30, "both sessions at the collector", || rig.collected().len() == 2 && rig.collected().iter().all(|id| rig.complete(id)));
    // What the collector serves is the local recording, byte for byte.
    assert_eq!(rig.cast(&first), local, "the collector's cast differs from the local recording");
    assert!(local.contains("while-down"));
    assert!(rig.verify_stored(&first).is_intact());
    wait_for(10, "the spool to empty", || rig.spool_sessions().is_empty());
}

/// While the collector is not reached, the status line says how much
/// waits in the spool. A collector that does not know the host yet leaves
/// it there; once the host is enrolled, the session's own uploader
/// delivers and the news goes.
#[test]
fn the_status_line_shows_what_waits_while_the_collector_is_down() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let mut rig = Rig::new_with("", Some(&url), "backlog_warn_seconds = 1");
    let mut pty = rig.shell();
    pty.line("echo while-down");
    let status = |pty: &Pty| pty.rows().last().cloned().unwrap_or_default();
    pty.wait_for("the backlog on the status line", |s| s.contains("COLLECTOR NOT REACHED"));
    let line = status(&pty);
    assert!(line.contains("wait in the spool, the oldest for") && line.contains("KiB"), "{line}");

    // The collector comes up before this host is enrolled: the uploader
    // is refused (unknown key) and keeps trying while the session runs.
    let server = Server::start_with(&rig.dir.path().join("collector"), &format!("127.0.0.1:{port}"), &[], None);
    wait_for(60, "the uploader to be refused as not enrolled", || {
        server.stderr.lock().unwrap().iter().any(|l| l.contains("unknown_key"))
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(status(&pty).contains("COLLECTOR NOT REACHED"), "{}", status(&pty));
    server.enroll(&rig.setup.config(), &rig.key_path);
    rig.server = Some(server);
    wait_for(60, "the backlog news to go once the collector takes the chunks", || !status(&pty).contains("COLLECTOR NOT REACHED"));
    pty.line("exit");
    assert_eq!(pty.wait_exit(), 0);
}

/// Spool bytes in chunk files.
fn spool_bytes(spool_chunks: &Path) -> u64 {
    let mut total = 0;
    for session in std::fs::read_dir(spool_chunks).unwrap() {
        for f in std::fs::read_dir(session.unwrap().path()).unwrap() {
            let f = f.unwrap();
            if f.file_name().to_string_lossy().ends_with(".chunk") {
                total += f.metadata().unwrap().len();
            }
        }
    }
    total
}

const QUOTA: u64 = 256 * 1024;

/// A flood of incompressible output with nobody to upload to.
fn flood(when_full: &str) -> (Rig, Pty) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rig = Rig::new(
        &format!("chunk_bytes = 16384\nspool_quota_bytes = {QUOTA}\nwhen_full = \"{when_full}\""),
        Some(&format!("http://127.0.0.1:{port}")),
    );
    let mut pty = rig.shell();
    pty.line("head -c 100000000 /dev/urandom | base64 -w 200");
    (rig, pty)
}

#[test]
fn a_full_spool_pauses_the_output_and_never_passes_the_quota() {
    let (rig, mut pty) = flood("throttle");
    pty.wait_for("the paused status line", |s| s.contains("OUTPUT PAUSED"));
    let spool = rig.setup.dir.path().join("spool/chunks");
    let used = spool_bytes(&spool);
    assert!(used <= QUOTA, "the spool holds {used} bytes, over the quota {QUOTA}");
    // Paused means paused: the shell's output waits in the PTY.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(spool_bytes(&spool) <= QUOTA);
    // The user can still end it; the end is recorded over the quota.
    pty.send(b"\x03");
    pty.line("exit 5");
    assert_eq!(pty.wait_exit(), 5);
    let dir = SessionDir::open(&rig.spool_sessions()[0]).unwrap();
    let public = rig.key.public();
    let report = verify_chain(dir.found().unwrap(), None, |k| (public.id() == *k).then_some(public));
    assert!(report.is_intact() && report.is_complete(), "{:?}", report.problems);
}

#[test]
fn a_full_spool_ends_the_session_when_configured_so() {
    let (rig, mut pty) = flood("end");
    let status = pty.wait_exit();
    let said = String::from_utf8_lossy(&pty.raw_output()).into_owned();
    assert!(said.contains("custos: ending the session: evidence spool full"), "the user was not told why");
    assert_ne!(status, 0, "a session ended for a full spool does not look like success");
    let dir = SessionDir::open(&rig.spool_sessions()[0]).unwrap();
    let public = rig.key.public();
    let report = verify_chain(dir.found().unwrap(), None, |k| (public.id() == *k).then_some(public));
    assert!(report.is_intact() && report.is_complete(), "{:?}", report.problems);
}

/// A session without a terminal (`ssh host cmd`) floods a spool nobody
/// uploads from: with `throttle` the relays stop taking the command's
/// output (it blocks on its writes) and the spool stays under its quota;
/// with `end` the command is ended and the recording says why. Both stay
/// verifiable.
#[test]
fn a_full_spool_throttles_or_ends_a_session_without_a_terminal() {
    use std::io::Read as _;
    use std::process::Stdio;
    for when_full in ["throttle", "end"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let rig = Rig::new(
            &format!("chunk_bytes = 16384\nspool_quota_bytes = {QUOTA}\nwhen_full = \"{when_full}\""),
            Some(&format!("http://127.0.0.1:{port}")),
        );
        let mut cmd = rig.setup.command(&["-c", "head -c 100000000 /dev/urandom | base64 -w 200"]);
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut out = child.stdout.take().unwrap();
        let passed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = passed.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let spool = rig.setup.dir.path().join("spool/chunks");
        if when_full == "throttle" {
            // The output stops while the recording has no room.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let stalled = loop {
                let before = passed.load(std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1500));
                let after = passed.load(std::sync::atomic::Ordering::Relaxed);
                if after == before && after > 0 {
                    break true;
                }
                if std::time::Instant::now() > deadline {
                    break false;
                }
            };
            assert!(stalled, "the output never paused ({} bytes passed)", passed.load(std::sync::atomic::Ordering::Relaxed));
            assert!(child.try_wait().unwrap().is_none(), "throttle does not end the session");
            assert!(spool_bytes(&spool) <= QUOTA, "the spool went over its quota");
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            let status = child.wait().unwrap();
            assert!(!status.success(), "a session ended for a full spool does not look like success");
        }
        reader.join().unwrap();
        let dir = SessionDir::open(&rig.spool_sessions()[0]).unwrap();
        let public = rig.key.public();
        let report = verify_chain(dir.found().unwrap(), None, |k| (public.id() == *k).then_some(public));
        if when_full == "end" {
            assert!(report.is_intact() && report.is_complete(), "{when_full}: {:?}", report.problems);
            let cast: String = report.chunks.iter().map(|c| String::from_utf8(c.payload().unwrap()).unwrap()).collect();
            assert!(cast.contains("the recording is full"), "the recording says why it ended");
        } else {
            assert!(report.is_intact_so_far(), "{when_full}: {:?}", report.problems);
        }
    }
}
