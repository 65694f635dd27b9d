#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
//! Just-in-time approvals end to end: a real `custos serve` on port 0, a
//! requester's `custos-shell` (real bash, hooks injected) in a PTY whose
//! held line waits for the collector, and approvers deciding through the
//! API with their own tokens and signing keys (and through `custos
//! approve` in a second PTY).

#[path = "support/shell.rs"]
mod shell;
#[path = "support/collector.rs"]
mod collector;

use std::path::{Path, PathBuf};
use std::time::Duration;

use collector::{http, Response, Server};
use shell::{Pty, Setup};
use custos::approval::decision::{Binding, Choice, Decision};
use custos::evidence::HostKey;

const POLICY: &str = r#"
version = 1

[[rule]]
name = "bump-needs-approval"
message = "bump changes production"
action = "approve"
approvers = "dba"
timeout = "60s"
program = ["bump"]

[[rule]]
name = "double-needs-two"
message = "double needs two people"
action = "approve"
approvers = "dba"
quorum = 2
program = ["double"]

[[rule]]
name = "short-lived"
message = "expires quickly"
action = "approve"
approvers = "dba"
timeout = "2s"
program = ["hurry"]

[[rule]]
name = "why-needed"
message = "say why"
action = "approve"
approvers = "dba"
reason = true
program = ["explain"]
"#;

/// An approver: name, token, signing key.
pub struct Approver {
    pub name: String,
    pub token: String,
    pub key: HostKey,
}

pub struct World {
    _dir: tempfile::TempDir,
    pub server: Server,
    pub root: PathBuf,
    pub setup: Setup,
    pub pty: Pty,
    pub work: PathBuf,
}

/// The host's pinned approver keys (`[approvals] trusted_keys`), under `root`.
fn pins(root: &Path) -> PathBuf {
    root.join("approver-keys")
}

/// The `[approvals]` section that names [`pins`], which it creates empty
/// if missing.
fn pins_config(root: &Path) -> String {
    let path = pins(root);
    if !path.exists() {
        std::fs::write(&path, "# pinned approver keys\n").unwrap();
    }
    format!("[approvals]\ntrusted_keys = \"{}\"\n", path.display())
}

/// Registers an approver at the collector as unix user `name`, and pins
/// their key on the host as the same person (what an admin does for both).
fn register(server: &Server, root: &Path, name: &str, groups: &str) -> Approver {
    register_as(server, root, name, groups, name, Some(name))
}

/// Registers `name` at the collector as unix user `unix_user`; pins the key
/// on the host as `pinned_as` (`None`: not pinned at all).
fn register_as(server: &Server, root: &Path, name: &str, groups: &str, unix_user: &str, pinned_as: Option<&str>) -> Approver {
    let key = HostKey::generate();
    let out = std::process::Command::new(collector::custos_bin())
        .args(["serve", "approver", "--data-dir"])
        .arg(&server.data_dir)
        .args(["--name", name, "--groups", groups, "--public-key", &key.public().to_string(), "--unix-user", unix_user])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    if let Some(person) = pinned_as {
        use std::io::Write as _;
        let _ = pins_config(root);
        let mut f = std::fs::OpenOptions::new().append(true).open(pins(root)).unwrap();
        writeln!(f, "approver {person} {}", key.public()).unwrap();
    }
    Approver { name: name.into(), token: String::from_utf8(out.stdout).unwrap().trim().into(), key }
}

/// A collector, an enrolled host key, and a requester's bash on a PTY whose
/// programs `bump`, `double`, `hurry` and `explain` each append a line to
/// `work/count`.
fn world() -> World {
    world_in("/bin/bash")
}

fn world_in(shell: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let server = Server::start(&root.join("data"));
    let (_, key_path) = collector::host_key(&root);
    server.enroll(&collector::empty_config(&root), &key_path);
    start_shell(dir, server, root, &key_path, shell)
}

fn start_shell(dir: tempfile::TempDir, server: Server, root: PathBuf, key_path: &Path, shell: &str) -> World {
    start_shell_with(dir, server, root, key_path, shell, "")
}

fn start_shell_with(dir: tempfile::TempDir, server: Server, root: PathBuf, key_path: &Path, shell: &str, extra: &str) -> World {
    let setup = Setup::new(&format!(
        "[shell]\ndefault = \"{shell}\"\n[collector]\nurl = \"{}\"\n[evidence]\nkey = \"{}\"\n{}{extra}",
        server.url,
        key_path.display(),
        pins_config(&root),
    ));
    let policy = setup.dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let work = setup.dir.path().join("work");
    let bin = setup.dir.path().join("bin");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    for prog in ["bump", "double", "hurry", "explain"] {
        let path = bin.join(prog);
        std::fs::write(&path, format!("#!/bin/sh\necho {prog} \"$@\" >> {}/count\necho {prog}-ran\n", work.display())).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for rc in [".bashrc", ".zshrc"] {
        std::fs::write(setup.dir.path().join(rc), format!("PS1='gate> '\nPATH={}:$PATH\n", bin.display())).unwrap();
    }
    let mut cmd = setup.command(&[]);
    cmd.env("CUSTOS_POLICY", &policy).current_dir(&work);
    let pty = Pty::spawn(cmd, 24, 120);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "gate>"));
    World { _dir: dir, server, root, setup, pty, work }
}

impl World {
    fn count(&self) -> String {
        std::fs::read_to_string(self.work.join("count")).unwrap_or_default()
    }

    /// The pending requests an approver sees.
    fn pending(&self, who: &Approver) -> Vec<serde_json::Value> {
        let r = self.server.get("/v1/approvals?state=pending", Some(&who.token));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["requests"].as_array().unwrap().clone()
    }

    /// Waits for exactly one pending request and returns it.
    fn one_pending(&self, who: &Approver) -> serde_json::Value {
        let mut found = Vec::new();
        collector::wait_for(20, "a pending request", || {
            found = self.pending(who);
            found.len() == 1
        });
        found.remove(0)
    }

    fn exit(mut self) -> custos::evidence::asciicast::Cast {
        self.pty.send(b"\x15exit\r");
        self.pty.wait_exit();
        // The recorder streamed the session; the collector holds it.
        let text = collector::stored_cast(&self.server.data_dir, &self.root.join("host.key"));
        custos::evidence::asciicast::Cast::parse(&text).unwrap()
    }
}

fn binding(request: &serde_json::Value) -> Binding {
    Binding {
        request_id: request["id"].as_str().unwrap().into(),
        session: request["session"].as_str().unwrap().into(),
        host: request["host"].as_str().unwrap().into(),
        line_sha256: request["line_sha256"].as_str().unwrap().into(),
    }
}

fn post_decision(server: &Server, request_id: &str, who: &Approver, decision: &Decision) -> Response {
    let body = serde_json::to_vec(decision).unwrap();
    let auth = format!("Bearer {}", who.token);
    http(
        &server.url,
        "POST",
        &format!("/v1/approvals/{request_id}/decide"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        &body,
    )
}

fn decide(server: &Server, request: &serde_json::Value, who: &Approver, verdict: Choice, reason: &str) -> Response {
    let d = Decision::sign(&who.key, binding(request), verdict, &who.name, reason).unwrap();
    post_decision(server, request["id"].as_str().unwrap(), who, &d)
}

/// The status of `GET /v1/sessions/{id}/follow`: read only the status
/// line, since a granted follow streams until the session ends.
fn follow_status(server: &Server, session: &str, token: &str) -> u16 {
    use std::io::{BufRead as _, Write as _};
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /v1/sessions/{session}/follow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n").unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line).unwrap();
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {line:?}"))
}

fn audits(cast: &custos::evidence::asciicast::Cast, event: &str) -> Vec<serde_json::Value> {
    cast.audits().into_iter().filter(|a| a["kind"] == "approval" && a["event"] == event).collect()
}

#[test]
fn an_approved_line_runs_once_unchanged_and_a_replayed_decision_is_rejected() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba,ops");
    let olga = register(&w.server, &w.root, "olga", "ops");
    w.pty.line("echo context-$((6*7))");
    w.pty.wait_text("context-42");
    w.pty.line("bump first");
    w.pty.wait_text("waiting for approval");
    // The line stays on the screen while it waits.
    w.pty.wait_for("the held line on the screen", |s| s.lines().any(|l| l.trim_end() == "gate> bump first"));
    let request = w.one_pending(&alice);
    let short = &request["id"].as_str().unwrap()[28..];
    w.pty.wait_text(short);
    assert_eq!(request["line"], "bump first");
    assert_eq!(request["user"], "root");
    // The approvers see what the requester saw when they asked.
    assert!(request["screen"].as_str().unwrap().contains("context-42"), "{}", request["screen"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "", "the held line ran before approval");
    // An approver of the pending request may follow the session live;
    // an approver of another group may not.
    let session = request["session"].as_str().unwrap();
    assert_eq!(follow_status(&w.server, session, &alice.token), 200);
    assert_eq!(follow_status(&w.server, session, &olga.token), 403);
    let r = decide(&w.server, &request, &alice, Choice::Approve, "ticket 42");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("bump-ran");
    // Redrawn in place once approved: the line once, on its own row.
    let rows = w.pty.all_lines();
    assert_eq!(rows.iter().filter(|l| l.contains("bump first")).count(), 1, "{rows:#?}");
    // Decided: nothing pending in the session, so no more watching.
    assert_eq!(follow_status(&w.server, session, &alice.token), 403);
    assert_eq!(w.count(), "bump first\n");

    // The same decision again: the request is no longer pending.
    let old = Decision::sign(&alice.key, binding(&request), Choice::Approve, "alice", "ticket 42").unwrap();
    let again = post_decision(&w.server, request["id"].as_str().unwrap(), &alice, &old);
    assert_eq!((again.status, again.code()), (409, "not_pending".into()), "{}", again.text());

    // A second run is a new request; the old approval does not release it.
    w.pty.line("bump first");
    w.pty.wait_text("waiting for approval");
    let second = w.one_pending(&alice);
    assert_ne!(second["id"], request["id"]);
    let replay = post_decision(&w.server, second["id"].as_str().unwrap(), &alice, &old);
    assert_eq!((replay.status, replay.code()), (400, "bad_decision".into()), "{}", replay.text());
    // Nor does one for another line (same request id, other hash).
    let mut other = binding(&second);
    other.line_sha256 = custos::approval::decision::line_hash("bump second");
    let forged = Decision::sign(&alice.key, other, Choice::Approve, "alice", "x").unwrap();
    let r = post_decision(&w.server, second["id"].as_str().unwrap(), &alice, &forged);
    assert_eq!((r.status, r.code()), (400, "bad_decision".into()), "{}", r.text());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "bump first\n", "a replayed decision released the line");

    // Denial: the line does not run and the user sees who and why.
    let r = decide(&w.server, &second, &alice, Choice::Deny, "not during the freeze");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("denied by alice: not during the freeze");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "bump first\n");

    let cast = w.exit();
    assert_eq!(audits(&cast, "requested").len(), 2, "{:?}", cast.audits());
    let approved = audits(&cast, "approved");
    assert_eq!(approved[0]["decisions"][0]["approver"], "alice");
    assert_eq!(audits(&cast, "denied").len(), 1);
    let markers = cast.markers();
    assert!(markers.iter().any(|m| m.starts_with("approved by alice (ticket 42): $ bump first")), "{markers:?}");
    assert!(markers.iter().any(|m| m.starts_with("denied: denied by alice")), "{markers:?}");
    let commands: Vec<_> = cast.audits().into_iter().filter(|a| a["kind"] == "command" && a["rule"] == "bump-needs-approval").collect();
    let outcomes: Vec<&str> = commands.iter().filter_map(|c| c["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["ran", "denied"], "{commands:?}");
}

#[test]
fn zsh_holds_an_approve_line_and_runs_it_once_approved() {
    let mut w = world_in("/usr/bin/zsh");
    let alice = register(&w.server, &w.root, "alice", "dba");
    w.pty.line("bump from-zsh");
    w.pty.wait_text("waiting for approval");
    w.pty.wait_for("the held line on the screen", |s| s.lines().any(|l| l.trim_end() == "gate> bump from-zsh"));
    let request = w.one_pending(&alice);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(w.count(), "");
    let r = decide(&w.server, &request, &alice, Choice::Approve, "zsh ok");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("bump-ran");
    assert_eq!(w.count(), "bump from-zsh\n");
    assert_eq!(w.pty.all_lines().iter().filter(|l| l.contains("bump from-zsh")).count(), 1, "{:#?}", w.pty.all_lines());
    w.pty.line("bump denied-zsh");
    let request = w.one_pending(&alice);
    let r = decide(&w.server, &request, &alice, Choice::Deny, "no");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("denied by alice: no");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(w.count(), "bump from-zsh\n");
    w.exit();
}

#[test]
fn quorum_needs_two_distinct_approvers_and_refuses_self_and_outsiders() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    let carol = register(&w.server, &w.root, "carol", "dba");
    let dave = register(&w.server, &w.root, "dave", "ops");
    let me = register(&w.server, &w.root, "root", "dba");
    w.pty.line("double it");
    let request = w.one_pending(&alice);
    // The requester cannot approve their own line.
    let r = decide(&w.server, &request, &me, Choice::Approve, "it is fine");
    assert_eq!((r.status, r.code()), (403, "self_approval".into()), "{}", r.text());
    // Someone outside the rule's group cannot either (and does not see it).
    assert!(w.pending(&dave).is_empty());
    let r = decide(&w.server, &request, &dave, Choice::Approve, "sure");
    assert_eq!((r.status, r.code()), (403, "not_approver".into()), "{}", r.text());
    // A decision signed with someone else's key is refused.
    let wrong_key = Decision::sign(&carol.key, binding(&request), Choice::Approve, "alice", "x").unwrap();
    let r = post_decision(&w.server, request["id"].as_str().unwrap(), &alice, &wrong_key);
    assert_eq!((r.status, r.code()), (403, "key_mismatch".into()), "{}", r.text());

    let r = decide(&w.server, &request, &alice, Choice::Approve, "one");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("1/2 approvals");
    let r = decide(&w.server, &request, &alice, Choice::Approve, "one again");
    assert_eq!((r.status, r.code()), (409, "already_decided".into()), "{}", r.text());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "", "one approval of two released the line");
    let r = decide(&w.server, &request, &carol, Choice::Approve, "two");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("double-ran");
    assert_eq!(w.count(), "double it\n");
    let cast = w.exit();
    let approved = audits(&cast, "approved");
    let names: Vec<&str> = approved[0]["decisions"].as_array().unwrap().iter().map(|d| d["approver"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "carol"]);
}

/// One person is one approver, whatever names they are registered under:
/// the requester (unix user root here) cannot approve their own line as
/// `ops-root`, and alice's second name adds nothing to her first. And when
/// the collector is wrong about who someone is (registered there as
/// mallory, pinned on this host as root), the recorder's own pins decide:
/// the requester's approval does not count toward the quorum.
#[test]
fn one_person_under_two_names_cannot_approve_their_own_line_and_counts_once() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    let alice_laptop = register_as(&w.server, &w.root, "alice-laptop", "dba", "alice", Some("alice"));
    let ops_root = register_as(&w.server, &w.root, "ops-root", "dba", "root", Some("root"));
    let sneaky = register_as(&w.server, &w.root, "sneaky", "dba", "mallory", Some("root"));
    w.pty.line("double it");
    let request = w.one_pending(&alice);
    assert_eq!(request["user"], "root");
    let r = decide(&w.server, &request, &ops_root, Choice::Approve, "my own, under another name");
    assert_eq!((r.status, r.code()), (403, "self_approval".into()), "{}", r.text());
    assert!(r.text().contains("unix user root"), "{}", r.text());
    let r = decide(&w.server, &request, &alice, Choice::Approve, "one");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("1/2 approvals");
    let r = decide(&w.server, &request, &alice_laptop, Choice::Approve, "one again, other name");
    assert_eq!((r.status, r.code()), (409, "already_decided".into()), "{}", r.text());
    assert!(r.text().contains("one person decides once"), "{}", r.text());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "", "one person under two names made a quorum of two");
    // The collector believes sneaky is mallory and approves the request;
    // this host pinned sneaky's key as root, the requester.
    let r = decide(&w.server, &request, &sneaky, Choice::Approve, "trust me");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "approved");
    w.pty.wait_text("1 of 2 approvers");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "", "the requester's own approval released the line");
    let cast = w.exit();
    let refused = audits(&cast, "error");
    assert!(refused.iter().any(|a| a["message"].as_str().unwrap().contains("1 of 2 approvers")), "{:?}", cast.audits());
    assert!(audits(&cast, "approved").is_empty());
}

/// A decision signed by a key this host never pinned is refused by the
/// recorder, even when the collector accepted it: here the collector has
/// an approver registered that the host's admin did not pin (what a
/// compromised collector would do to forge a quorum). Then a pin file with
/// a malformed line refuses approvals, saying which line.
#[test]
fn a_decision_signed_by_an_unpinned_key_is_refused_by_the_recorder() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    let rogue = register_as(&w.server, &w.root, "rogue", "dba", "rogue", None);
    w.pty.line("bump forged");
    let request = w.one_pending(&alice);
    let r = decide(&w.server, &request, &rogue, Choice::Approve, "forged quorum");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "approved", "the collector accepted it");
    w.pty.wait_text("has not pinned");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "", "a decision by an unpinned key released the line");
    // A pinned approver still works. (The refused line is left in the
    // editor: clear it first.)
    w.pty.send(b"\x15");
    w.pty.line("bump pinned");
    let request = w.one_pending(&alice);
    let r = decide(&w.server, &request, &alice, Choice::Approve, "ok");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("bump-ran");
    assert_eq!(w.count(), "bump pinned\n");
    // A broken pin file fails closed, naming the file and the line.
    std::fs::write(pins(&w.root), format!("approver alice {}\napprover carol ed25519:garbage\n", alice.key.public())).unwrap();
    w.pty.line("bump broken-pins");
    let request = w.one_pending(&alice);
    let r = decide(&w.server, &request, &alice, Choice::Approve, "ok");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("line 2");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "bump pinned\n");
    let cast = w.exit();
    let refused = audits(&cast, "error");
    let messages: Vec<&str> = refused.iter().filter_map(|a| a["message"].as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("rogue") && m.contains("has not pinned")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("approver-keys, line 2")), "{messages:?}");
}

/// An approver registered before approvers were bound to people (no unix
/// user in their row) is refused with a message naming the command that
/// binds one; after it, with the same token and key, they decide.
#[test]
fn a_registration_without_a_person_is_refused_until_the_admin_binds_one() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    // What an older collector's row looks like: no person columns filled.
    let db = w.server.data_dir.join("custos.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE approvers SET unix_user = NULL, oidc_issuer = NULL, oidc_subject = NULL WHERE name = 'alice';")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    w.pty.line("bump legacy");
    let request = w.one_pending(&alice);
    let r = decide(&w.server, &request, &alice, Choice::Approve, "ok");
    assert_eq!((r.status, r.code()), (403, "no_person".into()), "{}", r.text());
    assert!(r.text().contains("custos serve approver-person --name alice --unix-user"), "{}", r.text());
    // Binding an unknown name is a clear error; binding alice keeps her token and key.
    let bind = |name: &str| {
        std::process::Command::new(collector::custos_bin())
            .args(["serve", "approver-person", "--data-dir"])
            .arg(&w.server.data_dir)
            .args(["--name", name, "--unix-user", "alice"])
            .output()
            .unwrap()
    };
    let out = bind("nobody");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no approver is registered as \"nobody\""), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bind("alice");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = decide(&w.server, &request, &alice, Choice::Approve, "ok now");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("bump-ran");
    assert_eq!(w.count(), "bump legacy\n");
    w.exit();
}

/// A collector data directory from before people were bound: its
/// `approvers` table gains the person columns, and the old row can be bound.
#[test]
fn an_old_approvers_table_gains_the_person_columns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let sql = |q: &str| {
        let out = std::process::Command::new("sqlite3").arg(data.join("custos.db")).arg(q).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let key = HostKey::generate().public().to_string();
    sql(&format!(
        "CREATE TABLE approvers (name TEXT PRIMARY KEY, groups TEXT NOT NULL, public_key TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
         INSERT INTO approvers VALUES ('alice', 'dba', '{key}', 'old-hash', 0);"
    ));
    let out = std::process::Command::new(collector::custos_bin())
        .args(["serve", "approver-person", "--data-dir"])
        .arg(&data)
        .args(["--name", "alice", "--unix-user", "alice", "--oidc-issuer", "https://idp", "--oidc-subject", "alice-sub"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sql("SELECT unix_user, oidc_issuer, oidc_subject, token_hash FROM approvers WHERE name = 'alice'"), "alice|https://idp|alice-sub|old-hash");
}

/// A malformed pinned key in the configuration is a configuration error
/// that names the setting, before any session starts.
#[test]
fn a_malformed_pinned_collector_key_is_a_clear_config_error() {
    let setup = Setup::new("[approvals]\ncollector_key = \"ed25519:not-a-key\"\n");
    let out = setup.command(&["-c", "true"]).stdin(std::process::Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("approvals.collector_key") && err.contains("is not a public key"), "{err}");
}

#[test]
fn expiry_and_withdrawal_with_ctrl_c_leave_the_line_unrun_in_the_editor() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    w.pty.line("hurry up");
    w.pty.wait_text("waiting for approval");
    w.pty.wait_text("expired");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "");
    // The line is still in the editor.
    assert!(w.pty.screen_text().lines().any(|l| l.starts_with("gate> hurry up")), "{}", w.pty.screen_text());
    w.pty.send(b"\x15");

    w.pty.line("bump later");
    let request = w.one_pending(&alice);
    w.pty.send(b"\x03");
    w.pty.wait_text("withdrawn");
    collector::wait_for(10, "the collector to see the withdrawal", || {
        w.server.get(&format!("/v1/approvals/{}", request["id"].as_str().unwrap()), Some(&alice.token)).json()["state"] == "withdrawn"
    });
    // Too late to approve now.
    let r = decide(&w.server, &request, &alice, Choice::Approve, "ok");
    assert_eq!((r.status, r.code()), (409, "not_pending".into()));
    // Still in the editor: Enter sends it again, as a new request.
    assert!(w.pty.screen_text().lines().any(|l| l.starts_with("gate> bump later")), "{}", w.pty.screen_text());
    w.pty.send(b"\x15");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(w.count(), "");
    let cast = w.exit();
    assert_eq!(audits(&cast, "expired").len(), 1, "{:?}", cast.audits());
    assert_eq!(audits(&cast, "withdrawn").len(), 1, "{:?}", cast.audits());
}

#[test]
fn a_rule_that_wants_a_reason_asks_for_it_and_sends_it() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    w.pty.line("explain all");
    w.pty.wait_text("needs a reason");
    w.pty.send(b"INC-7 restore\r");
    let request = w.one_pending(&alice);
    assert_eq!(request["reason"], "INC-7 restore");
    let r = decide(&w.server, &request, &alice, Choice::Approve, "ok");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("explain-ran");
    assert_eq!(w.count(), "explain all\n");
    w.exit();
}

#[test]
fn a_command_given_with_c_waits_for_approval_then_runs_or_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let server = Server::start(&root.join("data"));
    let (_, key_path) = collector::host_key(&root);
    server.enroll(&collector::empty_config(&root), &key_path);
    let alice = register(&server, &root, "alice", "dba");
    let setup = Setup::new(&format!("[collector]\nurl = \"{}\"\n[evidence]\nkey = \"{}\"\n{}", server.url, key_path.display(), pins_config(&root)));
    let policy = setup.dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let bin = setup.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let count = setup.dir.path().join("count");
    std::fs::write(bin.join("bump"), format!("#!/bin/sh\necho bump \"$@\" >> {}\necho bump-ran\n", count.display())).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(bin.join("bump"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |line: &str| {
        let mut cmd = setup.command(&["-c", line]);
        cmd.env("CUSTOS_POLICY", &policy)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let counted = || std::fs::read_to_string(&count).unwrap_or_default();
    let pending = || {
        let mut found = Vec::new();
        collector::wait_for(20, "a pending request", || {
            let r = server.get("/v1/approvals?state=pending", Some(&alice.token));
            found = r.json()["requests"].as_array().unwrap().clone();
            found.len() == 1
        });
        found.remove(0)
    };

    // Approved: it waits, then runs once, recorded with its approval.
    let child = run("bump via-c");
    let request = pending();
    assert_eq!(request["line"], "bump via-c");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counted(), "", "the command ran before approval");
    assert_eq!(decide(&server, &request, &alice, Choice::Approve, "deploy window").status, 200);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("needs approval under rule bump-needs-approval") && err.contains("waiting for approval"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("bump-ran"));
    assert_eq!(counted(), "bump via-c\n");
    let cast = custos::evidence::asciicast::Cast::parse(&collector::stored_cast(&server.data_dir, &key_path)).unwrap();
    assert_eq!(audits(&cast, "approved")[0]["decisions"][0]["reason"], "deploy window", "{:?}", cast.audits());
    assert_eq!(cast.header.custos.command.as_deref(), Some("bump via-c"));

    // Denied: refused with who and why, and not run.
    let child = run("bump denied");
    let request = pending();
    assert_eq!(decide(&server, &request, &alice, Choice::Deny, "not on a friday").status, 200);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("denied by alice: not on a friday"), "{err}");
    assert_eq!(counted(), "bump via-c\n");

    // Interrupted (a cancelled job): the request is withdrawn.
    let child = run("bump cancelled");
    let request = pending();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(126), "{}", String::from_utf8_lossy(&out.stderr));
    let id = request["id"].as_str().unwrap();
    collector::wait_for(10, "the request to be withdrawn", || {
        server.get(&format!("/v1/approvals/{id}"), Some(&alice.token)).json()["state"] == "withdrawn"
    });
    assert_eq!(counted(), "bump via-c\n");
}

#[test]
fn with_the_status_line_off_a_held_line_still_shows_its_wait() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let server = Server::start(&root.join("data"));
    let (_, key_path) = collector::host_key(&root);
    server.enroll(&collector::empty_config(&root), &key_path);
    let mut w = start_shell_with(dir, server, root, &key_path, "/bin/bash", "[status_line]\nenabled = false\n");
    let alice = register(&w.server, &w.root, "alice", "dba");
    w.pty.line("echo rows=$(tput lines)");
    w.pty.wait_text("rows=24");
    w.pty.line("bump quietly");
    // The status line appears on the last row for the wait...
    w.pty.wait_for("the wait on the last row", |s| s.lines().nth(23).is_some_and(|l| l.contains("waiting for approval")));
    let request = w.one_pending(&alice);
    let r = decide(&w.server, &request, &alice, Choice::Approve, "fine");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("bump-ran");
    // ...and goes with it: the shell has all 24 rows again.
    w.pty.line("echo rows=$(tput lines) again");
    w.pty.wait_text("rows=24 again");
    assert!(!w.pty.screen_text().contains("waiting for approval"), "{}", w.pty.screen_text());
    let cast = w.exit();
    let resizes: Vec<&str> = cast.events.iter().filter(|(_, code, _)| code == "r").map(|(_, _, d)| d.as_str()).collect();
    assert_eq!(resizes, ["120x23", "120x24"], "{resizes:?}");
}

#[test]
fn a_recorder_killed_while_a_line_waits_withdraws_its_request() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    w.pty.line("bump orphan");
    w.pty.wait_text("waiting for approval");
    let request = w.one_pending(&alice);
    // SIGKILL: no goodbye from the recorder; its agent sees stdin close.
    w.pty.child.kill().unwrap();
    let id = request["id"].as_str().unwrap();
    collector::wait_for(10, "the request to be withdrawn", || {
        w.server.get(&format!("/v1/approvals/{id}"), Some(&alice.token)).json()["state"] == "withdrawn"
    });
    assert!(w.pending(&alice).is_empty());
    let r = decide(&w.server, &request, &alice, Choice::Approve, "too late");
    assert_eq!((r.status, r.code()), (409, "not_pending".into()), "{}", r.text());
    assert_eq!(w.count(), "");
}

#[test]
fn a_collector_restart_while_pending_is_survived() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    w.pty.line("bump after-restart");
    let request = w.one_pending(&alice);
    w.pty.wait_text("waiting for approval");
    // Kill the collector and bring it back on the same port and data.
    let addr = w.server.addr().to_owned();
    let data = w.server.data_dir.clone();
    w.server.kill();
    std::thread::sleep(Duration::from_secs(2));
    let server = Server::start_with(&data, &addr, &[], None);
    drop(std::mem::replace(&mut w.server, server));
    let again = w.one_pending(&alice);
    assert_eq!(again["id"], request["id"], "the request did not survive the restart");
    let r = decide(&w.server, &again, &alice, Choice::Approve, "after restart");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("bump-ran");
    assert_eq!(w.count(), "bump after-restart\n");
    w.exit();
}

#[test]
fn malformed_requests_and_decisions_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let alice = register(&server, dir.path(), "alice", "dba");
    // Unsigned creation.
    let r = http(&server.url, "POST", "/v1/approvals", &[], b"{}");
    assert_eq!((r.status, r.code()), (401, "unauthorized".into()));
    // A decision that is not JSON, for a request that does not exist.
    let auth = format!("Bearer {}", alice.token);
    let r = http(&server.url, "POST", "/v1/approvals/nope/decide", &[("Authorization", &auth)], b"{not json");
    assert_eq!((r.status, r.code()), (400, "malformed".into()), "{}", r.text());
    // A bad filter.
    let r = server.get("/v1/approvals?state=maybe", Some(&alice.token));
    assert_eq!((r.status, r.code()), (400, "malformed".into()), "{}", r.text());
    // A wrong token.
    let r = server.get("/v1/approvals", Some("cst_wrong"));
    assert_eq!(r.status, 401);
}

#[test]
fn a_line_held_past_the_hooks_read_timeout_still_runs_once_approved() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    w.pty.line("bump slowly");
    let request = w.one_pending(&alice);
    // The hooks give up on a silent recorder after 30 s; WAIT keeps them.
    std::thread::sleep(Duration::from_secs(33));
    assert!(!w.pty.screen_text().contains("unavailable"), "{}", w.pty.screen_text());
    let r = decide(&w.server, &request, &alice, Choice::Approve, "finally");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("bump-ran");
    assert_eq!(w.count(), "bump slowly\n");
    let cast = w.exit();
    let degraded: Vec<_> = cast.audits().into_iter().filter(|a| a["kind"] == "degraded").collect();
    assert!(degraded.is_empty(), "{degraded:?}");
}

#[test]
fn an_approver_decides_in_custos_approve_with_keystrokes() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    let key_path = w.root.join("alice.key");
    alice.key.save(&key_path).unwrap();
    let mut cmd = std::process::Command::new(collector::custos_bin());
    cmd.args(["approve", "--server", &w.server.url, "--name", "alice", "--key"])
        .arg(&key_path)
        .env_clear()
        .env("CUSTOS_APPROVER_TOKEN", &alice.token)
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8");
    let mut tui = Pty::spawn(cmd, 30, 120);
    tui.wait_text("pending approvals: 0");
    w.pty.line("echo live-$((6*7))");
    w.pty.wait_text("live-42");
    w.pty.line("bump via-tui");
    // The approver sees the request arrive, with its command and rule.
    tui.wait_text("bump via-tui");
    tui.wait_text("bump-needs-approval");
    // The requester's session is followed live: their earlier output is
    // there, and the held line, which stays on their screen while it waits.
    tui.wait_text("screen, live");
    tui.wait_for("the requester's output in the live screen", |s| s.lines().any(|l| l.contains("│live-42")));
    tui.wait_for("the held line in the live screen", |s| s.lines().any(|l| l.contains("│gate> bump via-tui")));
    tui.send(b"a");
    tui.wait_text("reason:");
    tui.send(b"checked the runbook\r");
    w.pty.wait_text("bump-ran");
    assert_eq!(w.count(), "bump via-tui\n");
    tui.wait_text("pending approvals: 0");
    // The second request is denied from the TUI; the requester sees why.
    w.pty.line("bump again");
    tui.wait_text("bump again");
    tui.send(b"d");
    tui.send(b"one is enough\r");
    w.pty.wait_text("denied by alice: one is enough");
    assert_eq!(w.count(), "bump via-tui\n");
    tui.send(b"q");
    tui.wait_exit();
    let cast = w.exit();
    assert_eq!(audits(&cast, "approved")[0]["decisions"][0]["reason"], "checked the runbook");
}

#[path = "support/oidc.rs"]
mod oidc;

#[test]
fn an_approver_signed_in_with_the_identity_provider_approves_in_custos_approve() {
    // No approver token or key anywhere: dana's `custos login` is all.
    let idp = oidc::Idp::start(&[("dana", &["dba", "approvers"])]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let serve_config = root.join("serve.toml");
    std::fs::write(&serve_config, format!("[identity]\nissuer = \"{}\"\n[identity.roles]\napprover = [\"approvers\"]\n", idp.issuer)).unwrap();
    let server = Server::start_with(&root.join("data"), "127.0.0.1:0", &["--config", serve_config.to_str().unwrap()], None);
    let (_, key_path) = collector::host_key(&root);
    server.enroll(&collector::empty_config(&root), &key_path);
    let mut w = start_shell(dir, server, root, &key_path, "/bin/bash");

    let me = custos::recorder::account::Account::lookup(nix::unistd::getuid().as_raw()).unwrap().name;
    let xdg = w.root.join("xdg");
    oidc::login(&idp, &xdg.join("custos"), &me, "dana");
    let client_config = w.root.join("approver.toml");
    std::fs::write(&client_config, format!("[identity]\nissuer = \"{}\"\n[collector]\nurl = \"{}\"\n", idp.issuer, w.server.url)).unwrap();
    let mut cmd = std::process::Command::new(collector::custos_bin());
    cmd.arg("approve")
        .env_clear()
        .env("CUSTOS_CONFIG", &client_config)
        .env("XDG_CACHE_HOME", &xdg)
        .env("HOME", &w.root)
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8");
    let mut tui = Pty::spawn(cmd, 30, 120);
    tui.wait_text("pending approvals: 0");
    w.pty.line("bump signed-in");
    tui.wait_text("bump signed-in");
    tui.send(b"a");
    tui.wait_text("reason:");
    tui.send(b"on call, checked\r");
    w.pty.wait_text("bump-ran");
    assert_eq!(w.count(), "bump signed-in\n");
    tui.send(b"q");
    tui.wait_exit();
    let cast = w.exit();
    // The recording holds the collector's attestation naming dana.
    let approved = audits(&cast, "approved");
    let decision = &approved[0]["decisions"][0];
    assert_eq!(decision["reason"], "on call, checked");
    assert_eq!(decision["attested"]["subject"], "dana", "{decision}");
    assert_eq!(decision["attested"]["issuer"], idp.issuer.as_str());
}

/// The collector's attestation key is pinned when the host enrolls; a
/// collector that later signs with another key (its key replaced, or an
/// impostor holding the data directory) is not believed: the attested
/// approval it sends is refused by the recorder and the line does not run.
#[test]
fn an_attestation_by_a_collector_key_the_host_did_not_pin_is_refused() {
    let idp = oidc::Idp::start(&[("dana", &["dba", "approvers"])]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let serve_config = root.join("serve.toml");
    std::fs::write(&serve_config, format!("[identity]\nissuer = \"{}\"\n[identity.roles]\napprover = [\"approvers\"]\n", idp.issuer)).unwrap();
    let args = ["--config", serve_config.to_str().unwrap()];
    let mut server = Server::start_with(&root.join("data"), "127.0.0.1:0", &args, None);
    let (_, key_path) = collector::host_key(&root);
    server.enroll(&collector::empty_config(&root), &key_path);
    let pinned = std::fs::read_to_string(root.join("collector.pub")).unwrap();
    let first = custos::evidence::HostKey::load(&root.join("data/attestation.key")).unwrap().public().to_string();
    assert!(pinned.contains(&first), "{pinned}");
    // The collector comes back with a new attestation key.
    server.kill();
    std::fs::remove_file(root.join("data/attestation.key")).unwrap();
    let server = Server::start_with(&root.join("data"), "127.0.0.1:0", &args, None);
    let mut w = start_shell(dir, server, root, &key_path, "/bin/bash");
    let cache = w.root.join("cache");
    oidc::login(&idp, &cache, "dana", "dana");
    let token = oidc::cached_id_token(&cache, "dana");
    w.pty.line("bump attested");
    let mut found = Vec::new();
    collector::wait_for(20, "a pending request", || {
        let r = w.server.get("/v1/approvals?state=pending", Some(&token));
        found = r.json()["requests"].as_array().unwrap().clone();
        found.len() == 1
    });
    let id = found[0]["id"].as_str().unwrap();
    let auth = format!("Bearer {token}");
    let body = serde_json::json!({"verdict": "approve", "reason": "on call"}).to_string();
    let r = http(&w.server.url, "POST", &format!("/v1/approvals/{id}/decide"), &[("Authorization", &auth), ("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "approved", "the collector attested it");
    assert_ne!(r.json()["decisions"][0]["public_key"], first.as_str());
    w.pty.wait_text("has not pinned");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "", "an attestation by an unpinned collector key released the line");
    let cast = w.exit();
    let refused = audits(&cast, "error");
    assert!(refused.iter().any(|a| a["message"].as_str().unwrap().contains("has not pinned")), "{:?}", cast.audits());
}

/// The approvals pane inside the approver's own `custos-shell`: Ctrl-] a
/// opens `custos approve` below the shell, keys go to it, the decision
/// releases another session's held line, Ctrl-] a closes it, and the
/// approver's recording holds the pane as a stream of its own (`p`,
/// between its markers), never in the shell's screen; replay shows it
/// only when asked.
#[test]
fn an_approver_decides_in_the_pane_of_their_own_custos_shell() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    let key_path = w.root.join("alice.key");
    alice.key.save(&key_path).unwrap();
    // Alice's session: the same collector, no host key, so her recording
    // stays a local .cast; keys are recorded, to show the pane's are not.
    let mine = Setup::with_recording("record_input = true", &format!("[shell]\ndefault = \"/bin/bash\"\n[collector]\nurl = \"{}\"\n", w.server.url));
    std::fs::write(mine.dir.path().join(".bashrc"), "PS1='mine> '\n").unwrap();
    let mut cmd = mine.command(&[]);
    cmd.env("CUSTOS_APPROVER_TOKEN", &alice.token).env("CUSTOS_APPROVER_NAME", "alice").env("CUSTOS_APPROVER_KEY", &key_path);
    // 30 rows: 29 for the shell and the status line; with the pane open,
    // 12 (40 %) for the pane, 1 divider, 16 for the shell.
    let mut me = Pty::spawn(cmd, 30, 100);
    me.wait_for("alice's prompt", |s| s.lines().any(|l| l.trim_end() == "mine>"));
    me.line("echo before=$(tput lines)");
    me.wait_text("before=29");

    me.send(b"\x1da");
    me.wait_text("pending approvals: 0");
    me.wait_text("C-] a closes");
    // The pane sits below the shell's 16 rows and the divider.
    let rows = me.rows();
    assert!(rows[16].contains("approvals") && rows[17].contains("pending approvals: 0"), "{rows:#?}");
    assert!(rows[29].contains("REC"), "the status line stays on the last row: {rows:#?}");
    // The launcher is a fresh `custos pane-launcher` process, not a fork
    // of the recorder still holding its memory.
    let launchers: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("pane-launcher") && c.contains("--name alice"))
        .collect();
    assert_eq!(launchers.len(), 1, "{launchers:?}");
    assert!(launchers[0].contains(" -- approve --server"), "{launchers:?}");

    w.pty.line("bump from-pane");
    w.pty.wait_text("waiting for approval");
    me.wait_text("bump from-pane");
    me.send(b"a");
    me.wait_text("reason:");
    // Pasted: the terminal brackets it, as bash asked; the pane gets it plain.
    me.send(b"\x1b[200~approved in my pane\x1b[201~\r");
    w.pty.wait_text("bump-ran");
    assert_eq!(w.count(), "bump from-pane\n");
    me.wait_text("pending approvals: 0");
    me.wait_text("sent");

    // Closed and opened again at once: a fresh pane, and the old one's
    // end is no news.
    me.send(b"\x1da\x1da");
    me.wait_for("a fresh pane", |s| s.contains("pending approvals: 0") && !s.contains("sent"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!me.screen_text().contains("exited with status"), "{}", me.screen_text());

    me.send(b"\x1da");
    me.wait_for("the pane to close", |s| !s.contains("pending approvals"));
    // The shell has its rows back, and took none of the pane's keys.
    me.line("echo after=$(tput lines)");
    me.wait_text("after=29");
    assert!(me.rows()[29].contains("REC"), "{:#?}", me.rows());
    me.line("exit");
    assert_eq!(me.wait_exit(), 0);

    let cast = mine.recording();
    let output = cast.output();
    assert!(output.contains("after=29"), "{output}");
    for pane_text in ["bump from-pane", "pending approvals", "approved in my pane", "a approve", "reason:", "C-] a closes"] {
        assert!(!output.contains(pane_text), "the recording shows the pane's {pane_text:?}:\n{output}");
    }
    let inputs: Vec<&str> = cast.events.iter().filter(|(_, code, _)| code == "i").map(|(_, _, d)| d.as_str()).collect();
    assert!(inputs.iter().any(|i| i.contains("echo after")), "{inputs:?}");
    assert!(!inputs.iter().any(|i| i.contains("approved in my pane") || i.contains('\x1d')), "the pane's keys were recorded: {inputs:?}");
    // The shell was resized for the pane and back, and the recording says so.
    let resizes: Vec<&str> = cast.events.iter().filter(|(_, code, _)| code == "r").map(|(_, _, d)| d.as_str()).collect();
    assert_eq!(resizes, ["100x16", "100x29", "100x16", "100x29"], "{resizes:?}");
    let replayed = shell::replay(&cast);
    assert!(replayed.screen().contents().contains("after=29"), "{}", replayed.screen().contents());
    for pane_text in ["pending approvals", "bump from-pane"] {
        assert!(!replayed.screen().contents().contains(pane_text), "{}", replayed.screen().contents());
    }

    // What the pane showed is recorded, as its own stream, framed by its
    // markers: two panes, each opened at 100x12 and closed by the user.
    let pane_markers: Vec<&str> = cast.markers().into_iter().filter(|m| m.starts_with("approvals pane")).collect();
    let framing: Vec<&str> = pane_markers.iter().copied().filter(|m| !m.contains("exited")).collect();
    assert_eq!(
        framing,
        ["approvals pane opened (100x12)", "approvals pane closed (by the user)", "approvals pane opened (100x12)", "approvals pane closed (by the user)"],
        "{pane_markers:?}"
    );
    assert!(pane_markers.iter().any(|m| m.starts_with("approvals pane: custos approve exited with status ")), "{pane_markers:?}");
    let pane_stream = cast.pane_output();
    assert!(!pane_stream.contains("after=29") && !pane_stream.contains("mine>"), "the shell is in the pane's stream: {pane_stream}");
    // Replayed, the pane's screen showed what the user saw in it; the
    // shell's screen never did.
    let path = &mine.recordings()[0];
    let recording = custos::evidence::asciicast::Recording::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pane_events: Vec<usize> = (0..recording.events.len()).filter(|&i| recording.events[i].kind == custos::evidence::asciicast::Kind::Pane).collect();
    let mut player = custos::tui::replay::player::Player::build(recording);
    assert!(player.has_pane());
    let mut seen_in_pane = String::new();
    for i in pane_events {
        player.seek_event(i + 1);
        let pane = player.pane_screen().expect("a p event is inside an open pane").text();
        seen_in_pane.push_str(&pane);
        assert!(!player.screen().text().contains("pending approvals"), "{}", player.screen().text());
    }
    // What the user waited for on the pane (the pasted reason may be sent
    // before the pane draws it, so it is not asked for).
    for pane_text in ["pending approvals: 0", "bump from-pane", "reason:", "sent"] {
        assert!(seen_in_pane.contains(pane_text), "the recorded pane never showed {pane_text:?}:\n{seen_in_pane}");
    }
    player.seek_event(usize::MAX);
    assert!(player.pane_screen().is_none(), "closed at the end");

    let cast = w.exit();
    assert_eq!(audits(&cast, "approved")[0]["decisions"][0]["reason"], "approved in my pane");
}

/// Without a collector the prefix key is not the shell's to take: it
/// reaches the program untouched.
#[test]
fn without_a_collector_the_prefix_key_passes_through() {
    let setup = Setup::new("[shell]\ndefault = \"/bin/bash\"\n");
    std::fs::write(setup.dir.path().join(".bashrc"), "PS1='plain> '\n").unwrap();
    let mut pty = Pty::spawn(setup.command(&[]), 24, 80);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "plain>"));
    // od shows the bytes it gets: Ctrl-] and `a` arrive as typed.
    pty.line("od -An -c");
    std::thread::sleep(Duration::from_millis(300));
    pty.send(b"\x1da\r\x04");
    pty.wait_text("035   a  \\n");
    assert!(!pty.screen_text().contains("approvals"), "{}", pty.screen_text());
    pty.line("exit");
    pty.wait_exit();
}

/// A terminal too short for the pane: it does not open, and the status
/// line says why.
#[test]
fn a_terminal_too_short_for_the_pane_is_refused_on_the_status_line() {
    let setup = Setup::new("[shell]\ndefault = \"/bin/bash\"\n[collector]\nurl = \"http://127.0.0.1:9\"\n");
    std::fs::write(setup.dir.path().join(".bashrc"), "PS1='short> '\n").unwrap();
    let mut pty = Pty::spawn(setup.command(&[]), 12, 100);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "short>"));
    pty.send(b"\x1da");
    pty.wait_text("approvals pane: terminal too small (12 rows, needs 15)");
    // The keys still reach the shell.
    pty.line("echo still=$(tput lines)");
    pty.wait_text("still=11");
    pty.line("exit");
    pty.wait_exit();
}

/// `custos approve` that cannot start (here: no approver credentials at
/// all): the pane closes by itself, the status line says why, and the
/// shell keeps its full size.
#[test]
fn a_pane_whose_approve_fails_closes_and_the_status_line_says_why() {
    let setup = Setup::new("[shell]\ndefault = \"/bin/bash\"\n[collector]\nurl = \"http://127.0.0.1:9\"\n");
    std::fs::write(setup.dir.path().join(".bashrc"), "PS1='fail> '\n").unwrap();
    let mut pty = Pty::spawn(setup.command(&[]), 30, 100);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "fail>"));
    pty.send(b"\x1da");
    pty.wait_text("approvals pane: custos approve exited with status");
    assert!(!pty.screen_text().contains("C-] a closes"), "{}", pty.screen_text());
    pty.line("echo full=$(tput lines)");
    pty.wait_text("full=29");
    pty.line("exit");
    pty.wait_exit();
    let cast = setup.recording();
    let output = cast.output();
    assert!(output.contains("full=29"), "{output}");
    assert!(!output.contains("exited with status"), "the status line was recorded: {output}");
    // The recording tells how the pane ended: by itself, and with what.
    let pane: Vec<&str> = cast.markers().into_iter().filter(|m| m.starts_with("approvals pane")).collect();
    assert_eq!(pane[..2], ["approvals pane opened (100x12)", "approvals pane closed (custos approve ended)"], "{pane:?}");
    assert!(pane[2].starts_with("approvals pane: custos approve exited with status ") && !pane[2].ends_with(" 0"), "{pane:?}");
    // The pane's raw output: a frame may be drawn between two reads of the
    // message, so only its words are looked for, not its whole line.
    assert!(cast.pane_output().contains("no approver credentials"), "{}", cast.pane_output());
}

/// The terminal resized while the pane is open: the split follows it, and
/// a terminal grown too short closes the pane and gives the shell every
/// row. (No collector listens: `custos approve` waits, connecting.)
#[test]
fn the_pane_follows_a_resize_and_closes_when_the_terminal_gets_too_short() {
    let setup = Setup::new("[shell]\ndefault = \"/bin/bash\"\n[collector]\nurl = \"http://127.0.0.1:9\"\n");
    std::fs::write(setup.dir.path().join(".bashrc"), "PS1='size> '\n").unwrap();
    let key_path = setup.dir.path().join("approver.key");
    HostKey::generate().save(&key_path).unwrap();
    let mut cmd = setup.command(&[]);
    cmd.env("CUSTOS_APPROVER_TOKEN", "cst_unused").env("CUSTOS_APPROVER_NAME", "alice").env("CUSTOS_APPROVER_KEY", &key_path);
    let mut pty = Pty::spawn(cmd, 30, 100);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "size>"));
    pty.send(b"\x1da");
    pty.wait_text("connecting");
    assert!(pty.rows()[16].contains("C-] a closes"), "{:#?}", pty.rows());
    // 40 rows: 16 for the pane, the divider on row 22.
    pty.resize(40, 100);
    pty.wait_for("the pane to move", |_| pty.rows()[22].contains("C-] a closes") && pty.rows()[23].contains("pending approvals: 0"));
    assert!(pty.rows()[39].contains("REC"), "{:#?}", pty.rows());
    pty.resize(12, 100);
    pty.wait_text("approvals pane closed: terminal too small (12 rows, needs 15)");
    pty.line("echo rows=$(tput lines)");
    pty.wait_text("rows=11");
    pty.line("exit");
    pty.wait_exit();
    let cast = setup.recording();
    let resizes: Vec<&str> = cast.events.iter().filter(|(_, code, _)| code == "r").map(|(_, _, d)| d.as_str()).collect();
    assert_eq!(resizes, ["100x16", "100x22", "100x11"], "{resizes:?}");
    assert!(!cast.output().contains("connecting"), "{}", cast.output());
    // The pane's own stream follows its size, and says why it closed.
    assert!(cast.pane_output().contains("connecting"), "{}", cast.pane_output());
    let pane: Vec<&str> = cast.markers().into_iter().filter(|m| m.starts_with("approvals pane") && !m.contains("exited")).collect();
    assert_eq!(
        pane,
        ["approvals pane opened (100x12)", "approvals pane resized (100x16)", "approvals pane closed (the terminal is too small)"],
        "{pane:?}"
    );
}

/// A request made through the API as a host would, signed with its key.
fn create_signed(server: &Server, key: &HostKey, timeout_secs: u64) -> Response {
    use base64::Engine as _;
    let body = serde_json::json!({
        "session": uuid::Uuid::now_v7().to_string(), "host": custos::recorder::account::host_name(), "user": "bob",
        "line": "bump x", "line_sha256": custos::approval::decision::line_hash("bump x"), "cwd": "/",
        "programs": ["bump"], "rule": "r", "rule_message": "m", "approvers": "dba", "quorum": 1,
        "timeout_secs": timeout_secs, "reason": null, "screen": ""
    })
    .to_string();
    let mut signed = b"custos-approval-request-v1\n".to_vec();
    signed.extend_from_slice(body.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&signed));
    let id = key.public().id().to_string();
    http(&server.url, "POST", "/v1/approvals", &[("X-Custos-Key", &id), ("X-Custos-Signature", &sig)], body.as_bytes())
}

#[test]
fn the_webhook_hears_requests_and_expiry_and_is_retried() {
    use std::io::{BufRead as _, Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let sink = bodies.clone();
    std::thread::spawn(move || {
        for (n, stream) in hook.incoming().enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            // The first delivery fails: the collector must retry it.
            let status = if n == 0 { "500 Internal Server Error" } else { "200 OK" };
            if n > 0 {
                sink.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            }
            let _ = stream.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes());
        }
    });
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, format!("approval_webhook = \"{hook_url}\"\n")).unwrap();
    let server = Server::start_with(&dir.path().join("data"), "127.0.0.1:0", &["--config", config.to_str().unwrap()], None);
    let (key, key_path) = collector::host_key(dir.path());
    server.enroll(&collector::empty_config(dir.path()), &key_path);
    let r = create_signed(&server, &key, 1);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    collector::wait_for(15, "the webhook to hear the request and its expiry", || {
        let seen = bodies.lock().unwrap();
        let events: Vec<&str> = seen.iter().filter(|b| b["request"]["id"] == id.as_str()).filter_map(|b| b["event"].as_str()).collect();
        events.contains(&"requested") && events.contains(&"expired")
    });
    // A request signed by a key the collector does not know is refused.
    let stranger = HostKey::generate();
    let r = create_signed(&server, &stranger, 60);
    assert_eq!((r.status, r.code()), (403, "unknown_host".into()), "{}", r.text());
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Benchmark (run by hand: `cargo test --test approvals -- --ignored
/// bench_decision --nocapture`): from the approver's decision leaving (the
/// keypress's effect) to the held command starting, over loopback.
#[test]
#[ignore]
fn bench_decision_to_command_start() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    // `bump` now stamps the time it started (scripts are read at exec).
    std::fs::write(w.setup.dir.path().join("bin/bump"), format!("#!/bin/sh\ndate +%s%N >> {}/stamps\n", w.work.display())).unwrap();
    let n = 60;
    let mut lat = Vec::new();
    for i in 0..n {
        w.pty.line("bump");
        let request = w.one_pending(&alice);
        let d = Decision::sign(&alice.key, binding(&request), Choice::Approve, "alice", "bench").unwrap();
        let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let r = post_decision(&w.server, request["id"].as_str().unwrap(), &alice, &d);
        assert_eq!(r.status, 200, "{}", r.text());
        collector::wait_for(10, "the stamp", || std::fs::read_to_string(w.work.join("stamps")).unwrap_or_default().lines().count() > i);
        let last: u128 = std::fs::read_to_string(w.work.join("stamps")).unwrap().lines().last().unwrap().parse().unwrap();
        lat.push((last.saturating_sub(t0)) as f64 / 1e6);
        // The prompt comes back right after the command.
        std::thread::sleep(Duration::from_millis(300));
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("decision POST to held command start, n={n}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", percentile(&lat, 0.5), percentile(&lat, 0.99), lat[lat.len() - 1]);
}

fn proc_cpu_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    (ticks / 100.0, rss)
}

/// Benchmark (by hand, `--ignored bench_collector --nocapture`): the
/// collector holding 10,000 pending requests with 200 approvers
/// long-polling, while requests are decided one a second.
#[test]
#[ignore]
fn bench_collector_10k_pending_200_watchers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let (key, key_path) = collector::host_key(dir.path());
    server.enroll(&collector::empty_config(dir.path()), &key_path);
    let alice = register(&server, dir.path(), "alice", "dba");
    let pid = server.child.id();
    let started = std::time::Instant::now();
    let key = std::sync::Arc::new(key);
    let url = server.url.clone();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let key = key.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                let fake = Server { child: std::process::Command::new("true").spawn().unwrap(), url, data_dir: PathBuf::new(), admin_token: None, stderr: Default::default() };
                for _ in 0..1250 {
                    assert_eq!(create_signed(&fake, &key, 3600).status, 201);
                }
                std::mem::forget(fake);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let create_secs = started.elapsed().as_secs_f64();
    let (cpu0, rss0) = proc_cpu_rss(pid);
    let t = std::time::Instant::now();
    let full = server.get("/v1/approvals?state=pending", Some(&alice.token));
    let list_ms = t.elapsed().as_secs_f64() * 1e3;
    let all = full.json();
    let version = all["version"].as_i64().unwrap();
    let requests = all["requests"].as_array().unwrap().clone();
    assert_eq!(requests.len(), 10_000);
    println!("created 10,000 requests in {create_secs:.1} s; full pending list {} KiB in {list_ms:.0} ms; rss {rss0} KiB", full.body.len() / 1024);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let wakeups = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watchers: Vec<_> = (0..200)
        .map(|_| {
            let (url, token, stop, wakeups) = (server.url.clone(), alice.token.clone(), stop.clone(), wakeups.clone());
            std::thread::spawn(move || {
                let mut after = version;
                let auth = format!("Bearer {token}");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = http(&url, "GET", &format!("/v1/approvals?after={after}&wait=5"), &[("Authorization", &auth)], b"");
                    let v = r.json();
                    if !v["requests"].as_array().unwrap().is_empty() {
                        wakeups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    after = v["version"].as_i64().unwrap().max(after);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let (cpu1, _) = proc_cpu_rss(pid);
    let window = 30;
    let mut rss_max = 0;
    for request in requests.iter().take(window) {
        let d = Decision::sign(&alice.key, binding(request), Choice::Approve, "alice", "bench").unwrap();
        assert_eq!(post_decision(&server, request["id"].as_str().unwrap(), &alice, &d).status, 200);
        std::thread::sleep(Duration::from_secs(1));
        rss_max = rss_max.max(proc_cpu_rss(pid).1);
    }
    let (cpu2, rss2) = proc_cpu_rss(pid);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in watchers {
        h.join().unwrap();
    }
    println!(
        "200 watchers, 1 decision/s for {window} s: collector CPU {:.1}% of one core ({:.2} s), rss {rss2} KiB (max {rss_max} KiB), {} watcher wake-ups with news; idle-start CPU {:.2} s",
        (cpu2 - cpu1) / window as f64 * 100.0,
        cpu2 - cpu1,
        wakeups.load(std::sync::atomic::Ordering::Relaxed),
        cpu1 - cpu0
    );
}

/// The exec backstop holds a program that needs approval wherever it is
/// started from (here a script, which the hooks let through), through the
/// same flow as a held line; approved, it runs once.
/// The other half: a held program denied fails with EACCES, the script
/// sees the failure and goes on, and the program never ran. `sh` then
/// searches the rest of `PATH` for it: those paths name no file and are
/// answered at once, not held again (before, each asked for approval).
#[test]
fn a_program_a_script_starts_held_and_denied_never_runs() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    std::fs::write(w.work.join("s.sh"), "bump via-script; echo \"script-went-on status=$?\"\n").unwrap();
    w.pty.line("sh s.sh");
    w.pty.wait_text("waiting for approval");
    let request = w.one_pending(&alice);
    assert!(request["line"].as_str().unwrap().ends_with("/bump via-script"), "{request}");
    let r = decide(&w.server, &request, &alice, Choice::Deny, "not now");
    assert_eq!(r.status, 200, "{}", r.text());
    // sh reports a program it may not execute as 126.
    w.pty.wait_text("script-went-on status=126");
    assert_eq!(w.count(), "", "the denied program ran");
    let cast = w.exit();
    let execs: Vec<_> = cast.audits().into_iter().filter(|a| a["kind"] == "exec" && a["rule"] == "bump-needs-approval").collect();
    let outcomes: Vec<&str> = execs.iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["held", "denied"], "{execs:?}");
    assert!(cast.markers().iter().any(|m| m.starts_with("exec denied (bump-needs-approval)")), "{:?}", cast.markers());
}

#[test]
fn a_program_a_script_starts_is_held_by_the_exec_backstop_until_approved() {
    let mut w = world();
    let alice = register(&w.server, &w.root, "alice", "dba");
    std::fs::write(w.work.join("s.sh"), "bump via-script && echo script-went-on\n").unwrap();
    w.pty.line("sh s.sh");
    w.pty.wait_text("waiting for approval");
    let request = w.one_pending(&alice);
    assert!(request["line"].as_str().unwrap().ends_with("/bump via-script"), "{request}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count(), "", "the held program ran before approval");
    let r = decide(&w.server, &request, &alice, Choice::Approve, "ticket 7");
    assert_eq!(r.status, 200, "{}", r.text());
    w.pty.wait_text("script-went-on");
    assert_eq!(w.count(), "bump via-script\n");
    let cast = w.exit();
    let execs: Vec<_> = cast.audits().into_iter().filter(|a| a["kind"] == "exec" && a["rule"] == "bump-needs-approval").collect();
    let outcomes: Vec<&str> = execs.iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["held", "ran"], "{execs:?}");
}
