//! Identity against a real OpenID provider (npm `oidc-provider`, started by
//! `support/oidc.rs` on a loopback port): the device flow in a recorded PTY
//! session, silent refresh, expiry, ID token verification failures, groups
//! selecting policy rules, non-interactive sessions with and without a
//! machine identity, and an unreachable provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;
#[path = "support/oidc.rs"]
mod oidc;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use shell::{Pty, Setup};
use custos::identity::oidc::{Provider, VerifyError};
use custos::identity::Obtained;
use oidc::Idp;

fn identity_section(issuer: &str, extra: &str) -> String {
    format!("[identity]\nissuer = \"{issuer}\"\nclient_id = \"custos\"\n{extra}\n")
}

fn me() -> String {
    custos::recorder::account::Account::lookup(nix::unistd::getuid().as_raw()).unwrap().name
}

fn spool_cache(setup: &Setup) -> std::path::PathBuf {
    setup.dir.path().join("spool/identity")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn device_login_in_a_pty_session_puts_the_identity_in_the_recording_header() {
    let idp = Idp::start(&[("alice", &["sre", "auditors"])]);
    let setup = Setup::new(&format!("[status_line]\nenabled = false\n{}", identity_section(&idp.issuer, "")));
    let mut pty = Pty::spawn(setup.command(&[]), 40, 100);
    pty.wait_text("code ");
    let code = oidc::user_code(&pty.screen_text()).expect("a user code on screen");
    assert!(pty.screen_text().contains(&format!("{}/device", idp.issuer)), "{}", pty.screen_text());
    idp.approve(&code, "alice");
    pty.line("echo inside-$((6*7))");
    pty.wait_text("inside-42");
    pty.line("exit 3");
    assert_eq!(pty.wait_exit(), 3);

    let cast = setup.recording();
    let id = cast.header.custos.identity.clone().expect("an identity in the header");
    assert_eq!(id["verified"], true);
    assert_eq!(id["subject"], "alice");
    assert_eq!(id["issuer"], idp.issuer);
    assert_eq!(id["email"], "alice@example.test");
    assert_eq!(id["name"], "Test alice");
    assert_eq!(id["groups"], serde_json::json!(["sre", "auditors"]));
    assert_eq!(id["obtained"], "device");
    // The raw token is there, and verifies independently.
    let raw = id["id_token"].as_str().unwrap();
    let verified = rt().block_on(async {
        let mut p = Provider::discover(&idp.issuer, "custos").await.unwrap();
        p.verify(raw, cast.header.timestamp, "groups", Obtained::Device).await
    });
    assert_eq!(verified.unwrap().subject, "alice");
    // The cache is private to the recorder's side.
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(spool_cache(&setup).join(format!("{}.json", me()))).unwrap();
    assert_eq!(meta.permissions().mode() & 0o077, 0);

    // The next session uses the cache: no prompt at all.
    let mut pty = Pty::spawn(setup.command(&["-c", "echo second"]), 40, 100);
    assert_eq!(pty.wait_exit(), 0);
    assert!(!pty.screen_text().contains("code "), "{}", pty.screen_text());
}

#[test]
fn ctrl_c_at_the_sign_in_prompt_cancels_cleanly() {
    let idp = Idp::start(&[("alice", &[])]);
    let setup = Setup::new(&identity_section(&idp.issuer, ""));
    let mut pty = Pty::spawn(setup.command(&[]), 40, 100);
    pty.wait_text("Ctrl-C cancels");
    let started = Instant::now();
    pty.send(b"\x03");
    assert_eq!(pty.wait_exit(), 126);
    assert!(started.elapsed() < Duration::from_secs(5));
    let shown = String::from_utf8_lossy(&pty.raw_output()).into_owned();
    assert!(shown.contains("sign-in cancelled"), "{shown}");
    assert!(setup.recordings().is_empty(), "no session may start");
}

#[test]
fn a_sign_in_nobody_completes_times_out_cleanly() {
    // required: no shell; optional: the session goes on, unverified.
    let idp = Idp::start(&[("alice", &[])]);
    for (mode, want) in [("required", 126), ("optional", 0)] {
        let setup = Setup::new(&identity_section(&idp.issuer, &format!("login_timeout_secs = 10\nmode = \"{mode}\"")));
        let mut pty = Pty::spawn(setup.command(&[]), 40, 100);
        pty.wait_text("Ctrl-C cancels");
        let started = Instant::now();
        if want == 0 {
            while !String::from_utf8_lossy(&pty.raw_output()).contains("marked unverified") {
                assert!(started.elapsed() < Duration::from_secs(25), "the optional session never went on");
                std::thread::sleep(Duration::from_millis(100));
            }
            pty.line("echo went-$((6*7))");
            pty.wait_text("went-42");
            pty.line("exit");
        }
        assert_eq!(pty.wait_exit(), want, "{mode}");
        let waited = started.elapsed();
        assert!(waited > Duration::from_secs(8) && waited < Duration::from_secs(30), "{mode}: {waited:?}");
        let shown = String::from_utf8_lossy(&pty.raw_output()).into_owned();
        assert!(shown.contains("timed out"), "{mode}: {shown}");
        if want == 0 {
            assert_eq!(setup.recording().header.custos.identity.as_ref().map(|i| i["verified"].clone()), Some(serde_json::json!(false)), "{mode}");
        } else {
            assert!(setup.recordings().is_empty(), "no session may start");
        }
    }
}

#[test]
fn refresh_is_silent_and_an_expired_refresh_token_forces_a_new_login() {
    // ID tokens shorter than the one-minute margin are always renewed.
    let idp = Idp::start_with(&[("bob", &["dev"])], &[("ID_TTL", "30"), ("REFRESH_TTL", "6")]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (_, out, prompted) = oidc::login(&idp, &cache, "bob", "bob");
    assert!(prompted);
    assert!(out.contains("signed in as bob") && out.contains("device"), "{out}");
    let first = oidc::cached_id_token(&cache, "bob");
    // ID tokens issued within the same second are byte-identical.
    std::thread::sleep(Duration::from_millis(1100));

    let (err, out, prompted) = oidc::login(&idp, &cache, "bob", "bob");
    assert!(!prompted, "a refresh must not prompt: {err}");
    assert!(out.contains("refresh"), "{out}");
    assert_ne!(oidc::cached_id_token(&cache, "bob"), first);

    std::thread::sleep(Duration::from_secs(7));
    let (_, out, prompted) = oidc::login(&idp, &cache, "bob", "bob");
    assert!(prompted, "an expired refresh token must lead to a new sign-in");
    assert!(out.contains("device"), "{out}");

    // Logout forgets it.
    let config = cache.with_extension("toml");
    let out = std::process::Command::new(shell::CUSTOS_BIN)
        .args(["logout", "--issuer", &idp.issuer, "--user", "bob", "--cache-dir"])
        .arg(&cache)
        .env("CUSTOS_CONFIG", &config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("signed out"));
    assert!(!cache.join("bob.json").exists());
}

#[test]
fn bad_id_tokens_are_rejected_each_with_its_reason() {
    let idp = Idp::start(&[("carol", &["ops"])]);
    let other = Idp::start(&[("carol", &["ops"])]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    oidc::login(&idp, &cache, "carol", "carol");
    let token = oidc::cached_id_token(&cache, "carol");
    let now = custos::when::unix_now();
    rt().block_on(async {
        let mut right = Provider::discover(&idp.issuer, "custos").await.unwrap();
        assert!(right.verify(&token, now, "groups", Obtained::Device).await.is_ok());

        let mut wrong_aud = Provider::discover(&idp.issuer, "someone-else").await.unwrap();
        let e = wrong_aud.verify(&token, now, "groups", Obtained::Device).await.unwrap_err();
        assert!(matches!(e, VerifyError::WrongAudience(_)), "{e}");
        assert!(e.to_string().contains("wrong audience"), "{e}");

        let e = right.verify(&token, now + 7200, "groups", Obtained::Device).await.unwrap_err();
        assert!(matches!(e, VerifyError::Expired(_)), "{e}");
        assert!(e.to_string().contains("expired"), "{e}");

        let mut wrong_iss = Provider::discover(&other.issuer, "custos").await.unwrap();
        let e = wrong_iss.verify(&token, now, "groups", Obtained::Device).await.unwrap_err();
        assert!(matches!(e, VerifyError::WrongIssuer(_)), "{e}");
        assert!(e.to_string().contains("wrong issuer"), "{e}");

        // The issuer's claims, signed by a key from elsewhere: with the
        // issuer's key id, and with an id the issuer never published (which
        // re-fetches the key set once before refusing).
        let e = right.verify(&oidc::forge(&token, false), now, "groups", Obtained::Device).await.unwrap_err();
        assert!(matches!(e, VerifyError::BadSignature(_)), "{e}");
        let e = right.verify(&oidc::forge(&token, true), now, "groups", Obtained::Device).await.unwrap_err();
        assert_eq!(e, VerifyError::UnknownKey);
        assert!(e.to_string().contains("a key the issuer does not publish"), "{e}");

        let e = right.verify("not.a-jwt", now, "groups", Obtained::Device).await.unwrap_err();
        assert!(matches!(e, VerifyError::Malformed(_)), "{e}");
    });
}

#[test]
fn a_rotated_signing_key_is_fetched_once_and_accepted() {
    let first = Idp::start(&[("dave", &[])]);
    let port = first.port;
    let dir = tempfile::tempdir().unwrap();
    oidc::login(&first, &dir.path().join("a"), "dave", "dave");
    let old = oidc::cached_id_token(&dir.path().join("a"), "dave");
    rt().block_on(async {
        let mut verifier = Provider::discover(&first.issuer, "custos").await.unwrap();
        let now = custos::when::unix_now();
        assert!(verifier.verify(&old, now, "groups", Obtained::Device).await.is_ok());
        // The provider restarts with a new key on the same issuer.
        drop(first);
        let second = Idp::start_on(port, &[("dave", &[])], &[]);
        oidc::login(&second, &dir.path().join("b"), "dave", "dave");
        let new = oidc::cached_id_token(&dir.path().join("b"), "dave");
        let id = verifier.verify(&new, now, "groups", Obtained::Device).await.unwrap();
        assert_eq!(id.subject, "dave");
        // The retired key is gone from the set now.
        assert_eq!(verifier.verify(&old, now, "groups", Obtained::Device).await.unwrap_err(), VerifyError::UnknownKey);
    });
}

/// Signs `login` in to the recorder's cache of `setup` (as `custos login`
/// run by the service user would).
fn sign_in(idp: &Idp, setup: &Setup, login: &str) {
    let cache = spool_cache(setup);
    let _ = std::fs::remove_file(cache.join(format!("{}.json", me())));
    oidc::login(idp, &cache, &me(), login);
}

#[test]
fn oidc_groups_select_policy_rules() {
    let idp = Idp::start(&[("alice", &["sre"]), ("mallory", &["contractors"])]);
    let setup = Setup::new(&identity_section(&idp.issuer, ""));
    let policy = setup.dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nname = \"no-echo-for-contractors\"\nmessage = \"contractors may not echo\"\naction = \"deny\"\noidc_groups = [\"contractors\"]\nprogram = [\"echo\"]\n",
    )
    .unwrap();
    let run = |setup: &Setup| {
        let out = setup.command(&["-c", "echo allowed"]).env("CUSTOS_POLICY", &policy).stdin(Stdio::null()).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    sign_in(&idp, &setup, "alice");
    let (code, out, err) = run(&setup);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "allowed\n");
    sign_in(&idp, &setup, "mallory");
    let (code, out, err) = run(&setup);
    assert_eq!(code, Some(126), "{out}");
    assert!(err.contains("no-echo-for-contractors"), "{err}");
}

#[test]
fn non_interactive_uses_the_machine_identity_or_fails_fast_with_126() {
    let idp = Idp::start(&[("ci-bot", &["ci"])]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    oidc::login(&idp, &cache, "ci", "ci-bot");
    let token_file = dir.path().join("machine.jwt");
    std::fs::write(&token_file, oidc::cached_id_token(&cache, "ci")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;

    // Without a machine identity: exit 126 at once, saying how to log in.
    let setup = Setup::new(&identity_section(&idp.issuer, ""));
    let started = Instant::now();
    let out = setup.command(&["-c", "echo never"]).stdin(Stdio::null()).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "must not wait for a browser");
    assert_eq!(out.status.code(), Some(126));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sign in once from an interactive session"), "{err}");
    assert!(out.stdout.is_empty());

    // A token file others can read is refused.
    let setup = Setup::new(&identity_section(
        &idp.issuer,
        &format!("[identity.machine]\ntoken_file = \"{}\"\n", token_file.display()),
    ));
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = setup.command(&["-c", "echo never"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("readable by others (mode 644)"), "{err}");

    // With one only custos can read: the session runs, bound to the machine.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = setup.command(&["-c", "echo ran"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    let id = setup.recording().header.custos.identity.unwrap();
    assert_eq!(id["obtained"], "machine");
    assert_eq!(id["subject"], "ci-bot");
    assert_eq!(id["verified"], true);

    // A client-credentials machine identity works too.
    let secret = dir.path().join("machine.secret");
    std::fs::write(&secret, "machine-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let setup = Setup::new(&identity_section(
        &idp.issuer,
        &format!("[identity.machine]\nclient_id = \"custos-machine\"\nclient_secret_file = \"{}\"\n", secret.display()),
    ));
    let out = setup.command(&["-c", "true"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let id = setup.recording().header.custos.identity.unwrap();
    assert_eq!((id["obtained"].as_str(), id["subject"].as_str()), (Some("machine"), Some("custos-machine")));
}

#[test]
fn an_unreachable_provider_refuses_when_required_and_marks_unverified_when_optional() {
    let nobody = format!("http://127.0.0.1:{}", oidc::free_port());
    let required = Setup::new(&identity_section(&nobody, "mode = \"required\""));
    let mut pty = Pty::spawn(required.command(&[]), 30, 100);
    assert_eq!(pty.wait_exit(), 126);
    let screen = pty.screen_text();
    assert!(screen.contains("cannot reach the identity provider"), "{screen}");
    assert!(screen.contains("requires one"), "{screen}");

    let optional = Setup::new(&identity_section(&nobody, "mode = \"optional\""));
    let mut pty = Pty::spawn(optional.command(&["-c", "echo went-on"]), 30, 100);
    assert_eq!(pty.wait_exit(), 0);
    let shown = String::from_utf8_lossy(&pty.raw_output()).into_owned();
    assert!(shown.contains("went-on") && shown.contains("marked unverified"), "{shown}");
    let id = optional.recording().header.custos.identity.unwrap();
    assert_eq!(id["verified"], false);
    assert!(id["reason"].as_str().unwrap().contains("failed"), "{id}");
}

#[test]
fn identity_off_leaves_the_header_slot_null() {
    let setup = Setup::new("");
    let out = setup.command(&["-c", "true"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(setup.recording().header.custos.identity.is_none());
    let _ = Path::new("");
}

#[path = "support/collector.rs"]
mod collector;
use collector::fixtures;

/// A session whose header carries `identity`, sealed and uploaded.
fn upload_session(server: &collector::Server, key: &custos::evidence::HostKey, identity: Option<serde_json::Value>) -> String {
    let session = uuid::Uuid::now_v7();
    let mut info = fixtures::session_info(session, "someone", "db1");
    info.identity = identity;
    let header = custos::evidence::asciicast::Header::new(info, 80, 24, None, custos::when::unix_now());
    let mut text = String::from_utf8(custos::evidence::asciicast::Encoder::header(&header)).unwrap();
    text.push_str("[0.1, \"o\", \"hello\\r\\n\"]\n[0.1, \"x\", \"0\"]\n");
    for chunk in collector::seal_chain(key, session, &[text], true) {
        let r = server.put_chunk(&session.to_string(), chunk.envelope().seq, chunk.as_bytes());
        assert!(r.status == 201 || r.status == 200, "{}", r.text());
    }
    session.to_string()
}

fn header_identity(cache: &Path, user: &str) -> serde_json::Value {
    let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(cache.join(format!("{user}.json"))).unwrap()).unwrap();
    entry["identity"].clone()
}

#[test]
fn the_collector_verifies_session_identities_and_authorizes_reads_by_role() {
    let idp = Idp::start(&[("alice", &["dev"]), ("audrey", &["auditors"])]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cache = root.join("cache");
    oidc::login(&idp, &cache, "alice", "alice");
    oidc::login(&idp, &cache, "audrey", "audrey");
    let alice_token = oidc::cached_id_token(&cache, "alice");
    let audrey_token = oidc::cached_id_token(&cache, "audrey");

    let serve_config = root.join("serve.toml");
    std::fs::write(&serve_config, format!("[identity]\nissuer = \"{}\"\n[identity.roles]\nauditor = [\"auditors\"]\n", idp.issuer)).unwrap();
    let server = collector::Server::start_with(&root.join("data"), "127.0.0.1:0", &["--config", serve_config.to_str().unwrap()], None);
    let (key, key_path) = collector::host_key(root);
    server.enroll(&collector::empty_config(root), &key_path);

    let alices = upload_session(&server, &key, Some(header_identity(&cache, "alice")));
    let anonymous = upload_session(&server, &key, None);
    // Claims to be alice, carries audrey's token.
    let mut forged = header_identity(&cache, "alice");
    forged["id_token"] = audrey_token.clone().into();
    let impostor = upload_session(&server, &key, Some(forged));
    // alice's claims re-signed by a key from elsewhere.
    let mut foreign = header_identity(&cache, "alice");
    foreign["id_token"] = oidc::forge(&alice_token, false).into();
    let foreign = upload_session(&server, &key, Some(foreign));

    // alice reads her own session, verified, and nobody else's.
    let r = server.get(&format!("/v1/sessions/{alices}"), Some(&alice_token));
    assert_eq!(r.status, 200, "{}", r.text());
    let meta = r.json();
    assert_eq!(meta["identity"]["identity_verified"], true, "{meta}");
    assert_eq!(meta["identity"]["identity"]["subject"], "alice");
    assert!(meta["identity"]["identity"].get("id_token").is_none());
    for other in [&anonymous, &impostor, &foreign] {
        let r = server.get(&format!("/v1/sessions/{other}"), Some(&alice_token));
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.text().contains("auditor role"), "{}", r.text());
        let r = server.get(&format!("/v1/sessions/{other}/cast"), Some(&alice_token));
        assert_eq!(r.status, 403);
    }
    let listed = server.get("/v1/sessions", Some(&alice_token)).json();
    let ids: Vec<&str> = listed["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![alices.as_str()]);

    // The auditor reads everything, and sees which identities hold up.
    let listed = server.get("/v1/sessions", Some(&audrey_token)).json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 4);
    let check = |id: &str| server.get(&format!("/v1/sessions/{id}"), Some(&audrey_token)).json()["identity"].clone();
    assert_eq!(check(&alices)["identity_verified"], true);
    let c = check(&anonymous);
    assert_eq!((c["identity_verified"].as_bool(), c["identity_problem"].as_str()), (Some(false), Some("the session carries no identity")));
    let c = check(&impostor);
    assert_eq!(c["identity_verified"], false);
    assert!(c["identity_problem"].as_str().unwrap().contains("audrey"), "{c}");
    let c = check(&foreign);
    assert_eq!(c["identity_verified"], false);
    assert!(c["identity_problem"].as_str().unwrap().contains("signature does not verify"), "{c}");

    // Bad bearer tokens are refused with the reason; keys need admin.
    let r = server.get("/v1/sessions", Some(&oidc::forge(&audrey_token, true)));
    assert_eq!(r.status, 401);
    assert!(r.text().contains("a key the issuer does not publish"), "{}", r.text());
    assert_eq!(server.get("/v1/keys", Some(&audrey_token)).status, 403);
    assert_eq!(server.get("/v1/keys", Some(server.token())).status, 200);

    // `custos sessions` sends the signed-in user's ID token.
    let xdg = root.join("xdg");
    oidc::login(&idp, &xdg.join("custos"), &me(), "alice");
    let client_config = root.join("client.toml");
    std::fs::write(&client_config, identity_section(&idp.issuer, "")).unwrap();
    let out = std::process::Command::new(shell::CUSTOS_BIN)
        .args(["sessions", "--server", &server.url, "--format", "json"])
        .env("CUSTOS_CONFIG", &client_config)
        .env("XDG_CACHE_HOME", &xdg)
        .env("XDG_CONFIG_HOME", &xdg)
        .env_remove("CUSTOS_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&alices) && !text.contains(&anonymous), "{text}");
}

#[test]
fn the_admin_token_can_be_switched_off() {
    let idp = Idp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let serve_config = dir.path().join("serve.toml");
    std::fs::write(&serve_config, format!("[identity]\nissuer = \"{}\"\nadmin_token = false\n", idp.issuer)).unwrap();
    let server = collector::Server::start_with(&dir.path().join("data"), "127.0.0.1:0", &["--config", serve_config.to_str().unwrap()], None);
    let r = server.get("/v1/sessions", Some(server.token()));
    assert_eq!(r.status, 401, "{}", r.text());
}

/// A request for rule group `dba`, as a host would make it (signed with its
/// key), from unix user `alice` whose session identity is `requester`.
fn request_approval(server: &collector::Server, key: &custos::evidence::HostKey, requester: serde_json::Value) -> serde_json::Value {
    use base64::Engine as _;
    let line = "pg_dump prod";
    let body = serde_json::json!({
        "session": uuid::Uuid::now_v7().to_string(), "host": custos::recorder::account::host_name(), "user": "alice",
        "line": line, "line_sha256": custos::approval::decision::line_hash(line), "cwd": "/",
        "programs": ["pg_dump"], "rule": "dump", "rule_message": "dumps need a DBA", "approvers": "dba", "quorum": 1,
        "timeout_secs": 300, "reason": null, "screen": "", "identity": requester,
    });
    let text = body.to_string();
    let mut signed = b"custos-approval-request-v1\n".to_vec();
    signed.extend_from_slice(text.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&signed));
    let key_id = key.public().id().to_string();
    let r = collector::http(&server.url, "POST", "/v1/approvals", &[("X-Custos-Key", &key_id), ("X-Custos-Signature", &sig)], text.as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    let mut request = body;
    request["id"] = r.json()["id"].clone();
    request
}

fn decide_as(server: &collector::Server, id: &str, token: &str, verdict: &str, reason: &str) -> collector::Response {
    let auth = format!("Bearer {token}");
    let body = serde_json::json!({"verdict": verdict, "reason": reason}).to_string();
    collector::http(&server.url, "POST", &format!("/v1/approvals/{id}/decide"), &[("Authorization", &auth), ("Content-Type", "application/json")], body.as_bytes())
}

#[test]
fn approvers_come_from_oidc_roles_and_groups_and_the_collector_attests_their_decisions() {
    // dana decides; nina is in the rule's group without the approver role;
    // omar has the role but not the group; alice asked.
    let idp = Idp::start(&[("alice", &["dba", "approvers"]), ("dana", &["dba", "approvers"]), ("nina", &["dba"]), ("omar", &["approvers"])]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cache = root.join("cache");
    let mut tokens = std::collections::HashMap::new();
    for who in ["alice", "dana", "nina", "omar"] {
        oidc::login(&idp, &cache, who, who);
        tokens.insert(who, oidc::cached_id_token(&cache, who));
    }
    let serve_config = root.join("serve.toml");
    std::fs::write(&serve_config, format!("[identity]\nissuer = \"{}\"\n[identity.roles]\napprover = [\"approvers\"]\n", idp.issuer)).unwrap();
    let data = root.join("data");
    let server = collector::Server::start_with(&data, "127.0.0.1:0", &["--config", serve_config.to_str().unwrap()], None);
    let (key, key_path) = collector::host_key(root);
    server.enroll(&collector::empty_config(root), &key_path);
    let alice = serde_json::json!({"issuer": idp.issuer, "subject": "alice"});
    let request = request_approval(&server, &key, alice);
    let id = request["id"].as_str().unwrap();

    // Who sees the request: approvers of its group only.
    let pending = |who: &str| {
        let r = server.get("/v1/approvals?state=pending", Some(&tokens[who]));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["requests"].as_array().unwrap().len()
    };
    assert_eq!((pending("dana"), pending("nina"), pending("omar")), (1, 0, 0));
    assert_eq!(server.get(&format!("/v1/approvals/{id}"), Some(&tokens["omar"])).status, 403);

    // The refusals, each with its reason; none changes the request.
    let r = decide_as(&server, id, &tokens["nina"], "approve", "looks fine");
    assert_eq!((r.status, r.code()), (403, "not_approver".to_owned()), "{}", r.text());
    assert!(r.text().contains("approver role"), "{}", r.text());
    let r = decide_as(&server, id, &tokens["omar"], "approve", "looks fine");
    assert_eq!((r.status, r.code()), (403, "not_approver".to_owned()), "{}", r.text());
    assert!(r.text().contains("approver group \\\"dba\\\""), "{}", r.text());
    let r = decide_as(&server, id, &tokens["alice"], "approve", "trust me");
    assert_eq!((r.status, r.code()), (403, "self_approval".to_owned()), "{}", r.text());
    let r = decide_as(&server, id, &oidc::forge(&tokens["dana"], false), "approve", "forged");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = decide_as(&server, id, &tokens["dana"], "maybe", "hmm");
    assert_eq!((r.status, r.code()), (400, "malformed".to_owned()), "{}", r.text());
    assert_eq!(server.get(&format!("/v1/approvals/{id}"), Some(&tokens["dana"])).json()["state"], "pending");

    // dana approves; the collector signs for her with its attestation key.
    let r = decide_as(&server, id, &tokens["dana"], "approve", "ticket 42");
    assert_eq!(r.status, 200, "{}", r.text());
    let view = r.json();
    assert_eq!(view["state"], "approved");
    let decision: custos::approval::decision::Decision = serde_json::from_value(view["decisions"][0].clone()).unwrap();
    assert_eq!(decision.attested.as_ref().map(|a| (a.issuer.as_str(), a.subject.as_str())), Some((idp.issuer.as_str(), "dana")));
    let attestation = custos::evidence::HostKey::load(&data.join("attestation.key")).unwrap();
    assert_eq!(decision.public_key, attestation.public().to_string());
    let binding = custos::approval::decision::Binding {
        request_id: id.into(),
        session: request["session"].as_str().unwrap().into(),
        host: custos::recorder::account::host_name(),
        line_sha256: request["line_sha256"].as_str().unwrap().into(),
    };
    decision.check(&binding).unwrap();
    // A second decision on a decided request is refused.
    let r = decide_as(&server, id, &tokens["dana"], "deny", "changed my mind");
    assert_eq!((r.status, r.code()), (409, "not_pending".to_owned()), "{}", r.text());
}

#[test]
fn a_client_not_yet_signed_in_signs_in_with_the_device_flow_at_the_terminal() {
    let idp = Idp::start(&[("audrey", &["auditors"])]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let serve_config = root.join("serve.toml");
    std::fs::write(&serve_config, format!("[identity]\nissuer = \"{}\"\n[identity.roles]\nauditor = [\"auditors\"]\n", idp.issuer)).unwrap();
    let server = collector::Server::start_with(&root.join("data"), "127.0.0.1:0", &["--config", serve_config.to_str().unwrap()], None);
    let (key, key_path) = collector::host_key(root);
    server.enroll(&collector::empty_config(root), &key_path);
    let session = upload_session(&server, &key, None);
    let client_config = root.join("client.toml");
    std::fs::write(&client_config, identity_section(&idp.issuer, "")).unwrap();
    let xdg = root.join("xdg");
    let client = |interactive: bool| {
        let mut cmd = std::process::Command::new(shell::CUSTOS_BIN);
        cmd.args(["sessions", "--server", &server.url, "--format", "json"])
            .env("CUSTOS_CONFIG", &client_config)
            .env("XDG_CACHE_HOME", &xdg)
            .env_remove("CUSTOS_TOKEN")
            .env("HOME", root);
        if !interactive {
            cmd.stdin(Stdio::null());
        }
        cmd
    };
    // Nobody at a terminal: no prompt, no hang, a refusal that says why.
    let out = client(false).output().unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("code "), "{}", String::from_utf8_lossy(&out.stderr));

    // At a terminal: the device prompt, then the listing as audrey.
    let mut pty = Pty::spawn(client(true), 40, 200);
    pty.wait_text("code ");
    let code = oidc::user_code(&pty.screen_text()).expect("a user code on screen");
    idp.approve(&code, "audrey");
    pty.wait_text(&session);
    assert_eq!(pty.wait_exit(), 0);
    // The sign-in is cached: the next run asks nothing.
    let out = client(false).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&session));
}
