//! A recorded user's afternoon, kept: each test is one way out of the
//! recording tried through the installed setuid-root `custos-shell`, and
//! asserts that it fails, or that what it did is in the recording and the
//! recording says what happened.

use std::os::unix::fs::MetadataExt as _;

use super::*;

/// A login whose terminal belongs to the user beforehand, mode 0620, as
/// `sshd` leaves a terminal it allocates.
fn login_on_own_terminal(sys: &System, stderr_to: Option<&Path>) -> Term {
    let redirect = stderr_to.map(|p| format!(" 2>{}", p.display())).unwrap_or_default();
    let script = format!(
        "chown {USER} \"$(tty)\" && chmod 620 \"$(tty)\" && exec runuser -u {USER} -- {} -l{redirect}",
        sys.shell().display()
    );
    let mut t = Term::spawn("sh", &["-c", &script], 50, 200);
    t.run("true");
    t
}

/// A login in which custos-shell leads the terminal's session, as under
/// `sshd` and `login` (runuser forks, so there it does not): the terminal
/// is given to the user first, then, after `ready` and a line from the
/// test when `wait` is set, custos-shell is exec'd as the user.
fn leader_script(sys: &System, stderr_to: Option<&Path>, wait: bool) -> String {
    let user = nix::unistd::User::from_name(USER).unwrap().unwrap();
    let redirect = stderr_to.map(|p| format!(" 2>{}", p.display())).unwrap_or_default();
    let pause = if wait { "echo ready; read go; " } else { "" };
    format!(
        "chown {USER} \"$(tty)\" && chmod 620 \"$(tty)\" && {pause}exec env HOME={home} USER={USER} LOGNAME={USER} \
         setpriv --reuid={uid} --regid={gid} --init-groups -- {shell} -l{redirect}",
        home = user.dir.display(),
        uid = user.uid,
        gid = user.gid,
        shell = sys.shell().display(),
    )
}

fn owner_mode(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.uid(), meta.mode() & 0o7777)
}

/// The recorder's pid: the shell's parent.
fn recorder_of(t: &mut Term) -> i32 {
    let seen = t.run("printf 'rec=<%s>\\n' $PPID");
    between(&seen, "rec=<", ">").parse().unwrap()
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(1).unwrap().parse().unwrap()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SHORT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_outer_terminal_is_the_recorders_during_the_session_and_the_users_again_after() {
    let Some(sys) = System::setup("terminal taken") else { return };
    let (custos_uid, _) = sys.service_ids();
    let before = recordings();
    let mut t = login_on_own_terminal(&sys, None);
    let pts = t.pts();
    assert_eq!(owner_mode(&pts), (custos_uid, 0o600), "{} during the session", pts.display());

    // What the user would try with their own terminal: write past the
    // recorder, turn signals back on to Ctrl-C it, read the keys, run a
    // shell on it. Each is refused.
    let outer = pts.display();
    for attempt in [
        format!("printf 'le%s\\n' aked > {outer}"),
        format!("stty -F {outer} isig"),
        format!("exec 3<>{outer}"),
        format!("exec bash -i <>{outer} >&0 2>&0"),
    ] {
        let seen = t.run(&attempt);
        assert!(seen.contains("Permission denied"), "{attempt}:\n{seen}");
    }
    t.line("exit 3");
    assert_eq!(t.wait(SHORT).code(), Some(3), "{}", t.transcript());
    assert_eq!(owner_mode(&pts), (sys.uid, 0o620), "{} after the session", pts.display());

    let rec = only_new_recording(&before, "the session");
    rec.assert_session(sys.uid, "interactive", None, 3);
    let screen = rec.screen();
    assert_eq!(screen.matches("Permission denied").count(), 4, "{screen}");
    assert!(!screen.contains("leaked") && !t.transcript().contains("leaked"));
    let stage = rec.markers().into_iter().find(|m| m.starts_with("privileged stage: ")).expect("the stage's marker");
    assert!(stage.contains(&format!("{outer} taken (owner uid {} ", sys.uid)), "{stage}");
    assert!(stage.contains("cgroup"), "{stage}");
}

#[test]
fn a_recorder_killed_by_root_ends_the_shell_and_gives_the_terminal_back() {
    let Some(sys) = System::setup("recorder killed") else { return };
    let mut t = login_on_own_terminal(&sys, None);
    let pts = t.pts();
    let recorder = recorder_of(&mut t);
    let seen = t.run("printf 'sh=<%s>\\n' $$");
    let shell: i32 = between(&seen, "sh=<", ">").parse().unwrap();
    t.run("{ nohup sleep 1011 >/dev/null 2>&1 & }");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(recorder), nix::sys::signal::Signal::SIGKILL).unwrap();
    let status = t.wait(SHORT);
    assert_eq!(status.code(), Some(128 + 9), "the login reports the recorder's death");
    assert_eq!(owner_mode(&pts), (sys.uid, 0o620));
    wait_until("the shell is gone", || !alive(shell));
    wait_until("the nohup job is gone", || pids_with_cmdline("sleep 1011").is_empty());
}

/// Logs in on a terminal of the user's own, SIGKILLs the session's root
/// warden (only root can), ends the session and returns the terminal,
/// which nobody gave back.
fn session_with_a_killed_warden(sys: &System) -> (Term, PathBuf) {
    let (custos_uid, _) = sys.service_ids();
    let mut t = login_on_own_terminal(sys, None);
    let pts = t.pts();
    let recorder = recorder_of(&mut t);
    let warden = parent_of(recorder);
    assert_eq!(std::fs::read_link(format!("/proc/{warden}/exe")).unwrap(), sys.shell());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(warden), nix::sys::signal::Signal::SIGKILL).unwrap();
    t.line("exit");
    t.wait(SHORT);
    // `t` still holds the master, so the terminal still exists.
    assert_eq!(owner_mode(&pts), (custos_uid, 0o600));
    (t, pts)
}

#[test]
fn a_terminal_left_taken_by_a_killed_warden_is_repaired_by_doctor_and_by_the_next_login() {
    let Some(sys) = System::setup("warden killed") else { return };
    let (_first, pts) = session_with_a_killed_warden(&sys);
    let report = text(&sys.doctor());
    assert!(report.contains(&format!("{} was left taken by a session whose warden was killed", pts.display())), "{report}");
    assert_eq!(owner_mode(&pts), (sys.uid, 0o620), "doctor repairs {}", pts.display());

    let (_second, pts) = session_with_a_killed_warden(&sys);
    let mut next = sys.login();
    next.line("exit");
    next.wait(SHORT);
    assert_eq!(owner_mode(&pts), (sys.uid, 0o620), "the next login repairs {}", pts.display());
}

#[test]
fn a_shell_that_leaves_its_terminal_ends_the_session_and_its_processes() {
    let Some(sys) = System::setup("terminal left") else { return };
    let before = recordings();
    let mut t = sys.login();
    let seen = t.run("printf 'sh=<%s>\\n' $$");
    let shell: i32 = between(&seen, "sh=<", ">").parse().unwrap();
    // The shell lets go of its terminal while it runs on: once, this left
    // the recorder in a blocking wait and the user's terminal unserved.
    // SIGHUP ignored: the hang-up that follows does not end it; the
    // cgroup does.
    t.line("trap '' HUP; exec sleep 1021 </dev/null >/dev/null 2>&1");
    let status = t.wait(SHORT);
    let rec = only_new_recording(&before, "the session");
    assert_eq!(status.code(), Some(128 + 9), "{}\n{:?}", t.transcript(), rec.markers());
    assert!(t.transcript().contains("custos: ending the session: the shell's terminal was closed"), "{}", t.transcript());
    assert!(!alive(shell));

    let markers = rec.markers();
    assert!(markers.iter().any(|m| m == "session ended: the shell's terminal was closed while the shell ran on"), "{markers:?}");
    assert!(markers.iter().any(|m| m.contains("killed: ") && m.contains("sleep 1021")), "{markers:?}");
}

#[test]
fn leftovers_are_killed_and_named_in_the_recording() {
    let Some(sys) = System::setup("leftovers killed") else { return };
    let before = recordings();
    let mut t = sys.login();
    t.run("{ nohup sleep 1031 >/dev/null 2>&1 & }");
    t.run("{ setsid sleep 1032 </dev/null >/dev/null 2>&1 & }");
    t.run("(sleep 1033 </dev/null >/dev/null 2>&1 &) ; disown -a");
    t.run("tmux -L custos-test new -d 'sleep 1034'");
    wait_until("the jobs run", || ["1031", "1032", "1033", "1034"].iter().all(|n| !pids_with_cmdline(&format!("sleep {n}")).is_empty()));
    t.line("exit");
    assert_eq!(t.wait(SHORT).code(), Some(0));
    for n in ["1031", "1032", "1033", "1034"] {
        assert!(pids_with_cmdline(&format!("sleep {n}")).is_empty(), "sleep {n} outlived the session");
    }
    let rec = only_new_recording(&before, "the session");
    let markers = rec.markers();
    let left = markers.iter().find(|m| m.starts_with("processes still running at the end of the session, killed: ")).expect("a leftovers marker");
    for n in ["1031", "1032", "1033", "1034"] {
        assert!(left.contains(&format!("sleep {n}")), "{left}");
    }
    assert!(left.contains("tmux"), "{left}");
}

#[test]
fn leftovers_kept_by_configuration_are_named_in_the_recording() {
    let Some(sys) = System::setup("leftovers kept") else { return };
    let _restore = RestoreConfig;
    let keep = DEFAULT_CONFIG.replace("leftovers = \"kill\"", "leftovers = \"keep\"");
    assert_ne!(keep, DEFAULT_CONFIG);
    std::fs::write(CONFIG, keep).unwrap();
    let before = recordings();
    let mut t = sys.login();
    t.run("{ nohup sleep 1041 >/dev/null 2>&1 & }");
    t.line("exit");
    assert_eq!(t.wait(SHORT).code(), Some(0));
    assert_eq!(pids_with_cmdline("sleep 1041").len(), 1, "kept");
    let rec = only_new_recording(&before, "the session");
    let markers = rec.markers();
    assert!(
        markers.iter().any(|m| m.contains("left running ([session] leftovers = \"keep\")") && m.contains("sleep 1041")),
        "{markers:?}"
    );
    kill_user_processes(sys.uid);
}

#[test]
fn root_sigterm_ends_the_session_with_a_sealed_final_chunk() {
    let Some(sys) = System::setup("SIGTERM") else { return };
    let before = recordings();
    let mut t = sys.login();
    let recorder = recorder_of(&mut t);
    t.run("printf 'before-%s\\n' term");
    // As at shutdown: every process gets SIGTERM, the warden included.
    let warden = parent_of(recorder);
    for pid in [warden, recorder] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM).unwrap();
    }
    t.wait(SHORT);
    assert!(t.transcript().contains("custos: ending the session: ended by SIGTERM"), "{}", t.transcript());
    // Sealed: the chunks verify (Recording::read checks the chain) and
    // the last event is the exit status.
    let rec = only_new_recording(&before, "the session");
    assert!(rec.screen().contains("before-term"));
    assert!(rec.markers().iter().any(|m| m.starts_with("session ended: ended by SIGTERM")), "{:?}", rec.markers());
    rec.exit_status();
    assert!(rec.path.is_dir(), "signed chunks");
    let sealed = custos::evidence::SessionDir::open(&rec.path).unwrap().found().unwrap();
    let public = custos::evidence::PublicKey::load(Path::new(HOST_PUBLIC_KEY)).unwrap();
    let report = custos::evidence::verify_chain(sealed, None, |id| (public.id() == *id).then_some(public));
    assert!(report.is_complete(), "{:?}", report.problems);
}

#[test]
fn a_stale_or_forged_registration_never_makes_a_login_unrecorded() {
    let Some(sys) = System::setup("forged nesting") else { return };
    let (custos_uid, _) = sys.service_ids();
    let before = recordings();
    // A live session A: a real recorder holding a real PTY master.
    let mut a = sys.login();
    let recorder = recorder_of(&mut a);
    let master_fd = std::fs::read_dir(format!("/proc/{recorder}/fd"))
        .unwrap()
        .flatten()
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().ends_with("ptmx")))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("the recorder holds a ptmx");
    // Login B waits on its terminal until a registration naming B's
    // terminal but A's recorder is in place, then starts custos-shell.
    let script = format!("read go; exec runuser -u {USER} -- {} -l", sys.shell().display());
    let mut b = Term::spawn("sh", &["-c", &script], 50, 200);
    let rdev = std::fs::metadata(b.pts()).unwrap().rdev();
    let forged = Path::new(SPOOL).join(format!("run/pty-{}-{}", libc::major(rdev), libc::minor(rdev)));
    std::fs::write(&forged, format!("{recorder} {master_fd}\n")).unwrap();
    nix::unistd::chown(&forged, Some(nix::unistd::Uid::from_raw(custos_uid)), None).unwrap();
    b.line("go");
    b.run("printf 'b-%s\\n' recorded");
    b.line("exit");
    assert_eq!(b.wait(SHORT).code(), Some(0));
    a.line("exit");
    assert_eq!(a.wait(SHORT).code(), Some(0));
    let found = new_recordings(&before);
    assert_eq!(found.len(), 2, "A and B each recorded: {:?}", found.iter().map(|r| &r.path).collect::<Vec<_>>());
    assert!(found.iter().any(|r| r.screen().lines().any(|l| l == "b-recorded")), "B's output is in B's recording");
}

#[test]
fn a_login_right_after_a_hung_up_session_is_recorded() {
    let Some(sys) = System::setup("hang-up then login") else { return };
    let before = recordings();
    let mut a = sys.login();
    // The shell and a job that ignore the hang-up: once, the recorder kept
    // the terminal's lock for 10 s waiting on them, and the next login on
    // the same terminal number ran unrecorded.
    a.run("trap '' HUP; { nohup sh -c 'trap \"\" HUP; exec sleep 1051' >/dev/null 2>&1 & }");
    drop(a);
    for round in 0..3 {
        let mut b = sys.login();
        b.run(&format!("printf 'after-%s-{round}\\n' hangup"));
        b.line("exit");
        assert_eq!(b.wait(SHORT).code(), Some(0));
    }
    wait_until("the hung-up session's job is gone", || pids_with_cmdline("sleep 1051").is_empty());
    let found = new_recordings(&before);
    for round in 0..3 {
        let needle = format!("after-hangup-{round}");
        assert!(found.iter().any(|r| r.screen().lines().any(|l| l == needle)), "login {round} after the hang-up is recorded");
    }
    let hung = found.iter().find(|r| r.markers().iter().any(|m| m == "session ended: hung up (the login's terminal closed, or SIGHUP)")).expect("A's recording");
    assert!(hung.markers().iter().any(|m| m.contains("sleep 1051")), "{:?}", hung.markers());
}

#[test]
fn the_privileged_stage_performs_only_its_listed_acts() {
    let Some(sys) = System::setup("privileged acts") else { return };
    let _restore = RestoreConfig;
    std::fs::write(CONFIG, DEFAULT_CONFIG.replace("debug = false", "debug = true")).unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut t = Term::spawn("sh", &["-c", &leader_script(&sys, Some(log.path()), false)], 50, 200);
    t.run("true");
    // A nested custos-shell: the stage reads the recorder's /proc entries.
    t.run(&format!("{} -c 'printf \"nes%s\\n\" ted'", sys.shell().display()));
    t.line("exit");
    assert_eq!(t.wait(SHORT).code(), Some(0));
    // The shell's child logs on the session's terminal (recorded), the
    // warden and the recorder on the login's stderr.
    let text = format!("{}\n{}", std::fs::read_to_string(log.path()).unwrap(), t.transcript());
    let acts: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.split("custos-shell: privileged act: ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "setup-ids",
        "take-terminal",
        "evict-terminal-holders",
        "create-cgroup",
        "become-warden",
        "open-pty-as-user",
        "join-cgroup",
        "become-user",
        "become-service",
        "read-recorder",
        "end-cgroup",
        "restore-terminal",
        "install-exec-filter",
        "become-exec-reader",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(acts, expected, "the acts performed:\n{text}");
}

#[test]
fn through_sshd_the_terminal_sshd_gave_the_user_is_out_of_their_reach() {
    let Some(sys) = System::setup("sshd terminal") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    let before = recordings();
    let args = sshd.ssh_tt_args();
    let mut t = Term::spawn("ssh", &args.iter().map(String::as_str).collect::<Vec<_>>(), 50, 200);
    t.run("true");
    // The user finds the login's terminal the way an attacker would.
    let seen = t.run("printf 'outer=<%s>\\n' \"$(ps -o tty= -p $PPID | tr -d ' ')\"");
    let outer = format!("/dev/{}", between(&seen, "outer=<", ">"));
    assert!(outer.starts_with("/dev/pts/"), "{outer}");
    let (custos_uid, _) = sys.service_ids();
    assert_eq!(owner_mode(Path::new(&outer)), (custos_uid, 0o600), "{outer} during an ssh session");
    for attempt in [format!("printf 'le%s\\n' aked > {outer}"), format!("stty -F {outer} isig")] {
        let seen = t.run(&attempt);
        assert!(seen.contains("Permission denied"), "{attempt}:\n{seen}\nsshd log:\n{}", sshd.log());
    }
    // An ssh command leaves nothing running behind either.
    t.line("exit");
    assert_eq!(t.wait(SHORT).code(), Some(0));
    let out = sshd.ssh().arg("nohup sleep 1061 >/dev/null 2>&1 & echo started").output().unwrap();
    assert!(text(&out).contains("started"), "{}", text(&out));
    wait_until("the ssh command's job is gone", || pids_with_cmdline("sleep 1061").is_empty());
    let found = new_recordings(&before);
    let data = found.iter().find(|r| r.custos("mode") == "data").expect("the ssh command's recording");
    assert!(data.markers().iter().any(|m| m.contains("killed: ") && m.contains("sleep 1061")), "{:?}", data.markers());
}

#[test]
fn through_su_the_terminal_is_taken_and_given_back_and_the_session_is_contained() {
    let Some(sys) = System::setup("su -") else { return };
    let (custos_uid, _) = sys.service_ids();
    let before = recordings();
    let mut t = Term::spawn("sh", &["-c", &format!("read go; exec su - {USER}")], 50, 200);
    let pts = t.pts();
    let was = owner_mode(&pts);
    t.line("go");
    t.run("true");
    assert_eq!(owner_mode(&pts), (custos_uid, 0o600));
    let seen = t.run("cat /proc/self/cgroup");
    assert!(seen.contains("/custos-"), "the shell runs in the session's cgroup:\n{seen}");
    // Leaving it: into the root cgroup, into a cgroup of one's own.
    let mount = custos::recorder::privilege::cgroup2().unwrap();
    for attempt in [
        format!("echo $$ > {}/cgroup.procs", mount.display()),
        format!("mkdir \"{}$(sed -n 's/^0:://p' /proc/self/cgroup)/mine\"", mount.display()),
        format!("echo 0 > \"{}$(sed -n 's/^0:://p' /proc/self/cgroup)/cgroup.freeze\"", mount.display()),
    ] {
        let seen = t.run(&attempt);
        assert!(seen.contains("Permission denied"), "{attempt}:\n{seen}");
    }
    let seen = t.run("cat /proc/self/cgroup");
    assert!(seen.contains("/custos-"), "still in the session's cgroup:\n{seen}");
    t.line("exit 6");
    assert_eq!(t.wait(SHORT).code(), Some(6));
    // su ran as root on a terminal the test made: root's, as it was.
    assert_eq!(owner_mode(&pts), was);
    only_new_recording(&before, "su -").assert_session(sys.uid, "interactive", None, 6);
}

#[test]
fn roots_own_session_leaves_nothing_behind_that_stops_the_next_login() {
    let Some(sys) = System::setup("root's session") else { return };
    let before: BTreeSet<PathBuf> = recordings();
    // Root runs the installed custos-shell (as `sudo custos-shell` or a
    // root login with it as shell would): recorded like anyone's.
    let mut root = Term::spawn(sys.shell().to_str().unwrap(), &["-l"], 50, 200);
    root.run("printf 'ro%s\\n' ot-ran");
    root.line("exit");
    assert_eq!(root.wait(SHORT).code(), Some(0), "{}", root.transcript());
    let run = Path::new(SPOOL).join("run");
    let left: Vec<PathBuf> = std::fs::read_dir(&run).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "root's session left {left:?} in {}", run.display());
    // The user's login on the next terminal works and is recorded.
    let mut t = sys.login();
    t.run("printf 'us%s\\n' er-ran");
    t.line("exit");
    assert_eq!(t.wait(SHORT).code(), Some(0), "{}", t.transcript());
    let found: Vec<PathBuf> = recordings().difference(&before).cloned().collect();
    let roots = found.iter().map(|p| Recording::read(p)).filter(|r| r.custos("user") == "root").count();
    assert_eq!(roots, 1, "root's session is recorded: {found:?}");
    let user = only_new_recording(&before, "the user's login");
    assert!(user.screen().lines().any(|l| l == "user-ran"));
}

#[test]
fn a_process_holding_the_terminal_from_before_the_login_is_ended() {
    let Some(sys) = System::setup("early open") else { return };
    let before = recordings();
    let mut t = Term::spawn("sh", &["-c", &leader_script(&sys, None, true)], 50, 200);
    t.expect("ready", SHORT);
    // A process of the user's, from another session, opens the new
    // terminal while it is still theirs, and waits for the recorded login.
    let attacker = "import os,sys,time\n\
        fd=os.open(sys.argv[1], os.O_RDWR|os.O_NOCTTY)\n\
        print('opened', flush=True)\n\
        time.sleep(3)\n\
        try:\n    os.write(fd, b'leaked-' + b'early\\n'); print('wrote', flush=True)\n\
        except OSError as e:\n    print('write failed:', e.strerror, flush=True)\n\
        print('read', repr(os.read(fd, 64)), flush=True)\n";
    let mut early = KillOnDrop(
        Command::new("runuser")
            .args(["-u", USER, "--", "python3", "-c", attacker, t.pts().to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(early.0.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "opened");
    t.line("go");
    t.run("printf 'log%s\\n' ged-in");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = early.0.wait().unwrap();
    // runuser reports its child's SIGKILL as 128+9.
    assert_eq!(status.code(), Some(128 + 9), "the early holder was not ended: {rest}");
    assert!(!rest.contains("wrote") && !rest.contains("read"), "the early descriptor was used: {rest}");
    t.run("printf 'after-%s\\n' evict");
    t.line("exit");
    assert_eq!(t.wait(SHORT).code(), Some(0), "{}", t.transcript());
    assert!(!t.transcript().contains("leaked-early"), "{}", t.transcript());
    let rec = only_new_recording(&before, "the session");
    assert!(rec.screen().lines().any(|l| l == "after-evict"), "{}", rec.screen());
}

#[test]
fn a_hung_up_login_gives_the_terminal_back_and_records_the_hang_up() {
    let Some(sys) = System::setup("hang-up restores") else { return };
    let before = recordings();
    let mut t = login_on_own_terminal(&sys, None);
    let pts = t.pts();
    let recorder = recorder_of(&mut t);
    t.run("{ nohup sleep 1071 >/dev/null 2>&1 & }");
    // The prompt can be back before the background job's execs have
    // landed (each waits for the exec backstop): hang up once it is sleep.
    // Not `nohup sleep 1071`: bash passes the hang-up on to its jobs, and
    // a nohup that has not yet set SIGHUP aside dies of it, leaving
    // nothing behind to name (the marker was missing once under load).
    wait_until("the job runs", || !pids_running("sleep 1071").is_empty());
    // What the kernel does when the login's terminal hangs up: SIGHUP to
    // the session's leader, the warden (the terminal itself stays, as the
    // test holds its master, so its owner can be checked after).
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(parent_of(recorder)), nix::sys::signal::Signal::SIGHUP).unwrap();
    t.wait(SHORT);
    assert_eq!(owner_mode(&pts), (sys.uid, 0o620));
    wait_until("the job is gone", || pids_with_cmdline("sleep 1071").is_empty());
    let rec = only_new_recording(&before, "the session");
    let markers = rec.markers();
    assert!(markers.iter().any(|m| m == "session ended: hung up (the login's terminal closed, or SIGHUP)"), "{markers:?}");
    assert!(markers.iter().any(|m| m.contains("killed: ") && m.contains("sleep 1071")), "{markers:?}");
}
