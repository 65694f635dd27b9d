//! The login shell as a user meets it: the built `custos-shell` in a real
//! PTY, running real bash and zsh, read back through an independent
//! terminal emulator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use shell::{replay, Pty, Setup};

const ROWS: u16 = 24;
const COLS: u16 = 80;

fn bash(setup: &Setup) -> Pty {
    let pty = Pty::spawn(setup.command(&["--norc", "--noprofile", "-i"]), ROWS, COLS);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "$"));
    pty
}

fn zsh_setup() -> Setup {
    Setup::new("[shell]\ndefault = \"/usr/bin/zsh\"\n")
}

fn zsh(setup: &Setup) -> Pty {
    let mut pty = Pty::spawn(setup.command(&["-f", "-i"]), ROWS, COLS);
    pty.line("PS1='zsh> '");
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "zsh>"));
    pty
}

#[test]
fn bash_runs_commands_and_exit_status_is_the_shells() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("echo result=$((6*7))");
    pty.wait_text("result=42");
    pty.line("exit 3");
    assert_eq!(pty.wait_exit(), 3);
    let cast = setup.recording();
    assert_eq!(cast.exit_status(), Some(3));
    assert!(cast.output().contains("result=42"));
    assert_eq!(cast.header.custos.mode, "interactive");
    assert_eq!(cast.header.custos.shell, "/bin/bash");
}

#[test]
fn zsh_runs_commands_and_exit_status_is_the_shells() {
    let setup = zsh_setup();
    let mut pty = zsh(&setup);
    pty.line("echo result=$((6*7)) $ZSH_NAME");
    pty.wait_text("result=42 zsh");
    pty.line("exit 4");
    assert_eq!(pty.wait_exit(), 4);
    let cast = setup.recording();
    assert_eq!(cast.exit_status(), Some(4));
    assert_eq!(cast.header.custos.shell, "/usr/bin/zsh");
}

#[test]
fn death_by_signal_reports_128_plus_n() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("kill -KILL $$");
    assert_eq!(pty.wait_exit(), 137);
    assert_eq!(setup.recording().exit_status(), Some(137));
}

#[test]
fn shell_comes_from_config_and_shell_variable_points_at_it() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    // The test's environment says SHELL=/bin/sh; the config says bash.
    pty.line("echo shell=$SHELL version=${BASH_VERSINFO[0]}");
    pty.wait_for("SHELL is bash", |s| s.contains("shell=/bin/bash version=5"));
    pty.line("exit");
    assert_eq!(pty.wait_exit(), 0);
}

#[test]
fn ctrl_c_interrupts_a_running_command_in_bash_and_zsh() {
    for setup in [Setup::new(""), zsh_setup()] {
        let mut pty = if setup.config().exists() && std::fs::read_to_string(setup.config()).unwrap().contains("zsh") {
            zsh(&setup)
        } else {
            bash(&setup)
        };
        pty.line("sleep 30; echo not-interrupted");
        std::thread::sleep(Duration::from_millis(300));
        pty.send(b"\x03");
        pty.line("echo after=$((1+1)) status-was-$?");
        pty.wait_text("after=2 status-was-130");
        assert!(!pty.screen_text().lines().any(|l| l == "not-interrupted"));
        pty.line("exit");
        assert_eq!(pty.wait_exit(), 0);
    }
}

#[test]
fn job_control_suspends_and_resumes() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("sleep 30");
    std::thread::sleep(Duration::from_millis(300));
    pty.send(b"\x1a");
    pty.wait_text("Stopped");
    pty.line("jobs");
    pty.wait_for("jobs listing", |s| s.matches("sleep 30").count() >= 3);
    pty.line("fg");
    pty.wait_for("the job back in the foreground", |s| s.lines().filter(|l| l.trim_end() == "sleep 30").count() >= 1);
    std::thread::sleep(Duration::from_millis(200));
    pty.send(b"\x03");
    pty.line("echo jobs-done=$((2+3))");
    pty.wait_text("jobs-done=5");
    pty.line("exit");
    assert_eq!(pty.wait_exit(), 0);
}

#[test]
fn unicode_wide_and_combining_characters_render() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("printf 'u:%s|\\n' '漢字' 'e\u{301}' '🙂'");
    pty.wait_text("u:🙂|");
    let text = pty.screen_text();
    assert!(text.contains("u:漢字|"), "{text}");
    assert!(text.contains("u:e\u{301}|"), "{text}");
    // The wide characters take two cells each, so the bar lands at column 7.
    let col = pty.with_screen(|s| {
        let rows: Vec<String> = s.rows(0, COLS).collect();
        let r = rows.iter().position(|r| r.starts_with("u:漢字|")).unwrap() as u16;
        (0..COLS).find(|&c| s.cell(r, c).unwrap().contents() == "|").unwrap()
    });
    assert_eq!(col, 6);
    pty.line("exit");
    pty.wait_exit();
}

#[test]
fn colours_reach_the_terminal() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("printf '\\e[1;31mRED\\e[0m \\e[38;5;120mIDX\\e[0m \\e[38;2;10;20;30mRGB\\e[0m\\n'");
    pty.wait_text("RED IDX RGB");
    let (red, idx, rgb) = pty.with_screen(|s| {
        let rows: Vec<String> = s.rows(0, COLS).collect();
        let r = rows.iter().position(|r| r.starts_with("RED IDX RGB")).unwrap() as u16;
        (s.cell(r, 0).unwrap().clone(), s.cell(r, 4).unwrap().clone(), s.cell(r, 8).unwrap().clone())
    });
    assert!(red.bold());
    assert_eq!(red.fgcolor(), vt100::Color::Idx(1));
    assert_eq!(idx.fgcolor(), vt100::Color::Idx(120));
    assert_eq!(rgb.fgcolor(), vt100::Color::Rgb(10, 20, 30));
    pty.line("exit");
    pty.wait_exit();
}

#[test]
fn status_line_shows_recording_and_is_never_recorded() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.wait_for("status line", |_| true);
    let rows = pty.rows();
    let status = rows.last().unwrap();
    assert!(status.contains("REC"), "status line: {status:?}");
    assert!(status.contains("custos"), "status line: {status:?}");
    pty.line("stty size");
    pty.wait_text(&format!("{} {}", ROWS - 1, COLS));
    pty.line("exit");
    pty.wait_exit();
    let cast = setup.recording();
    assert!(!cast.output().contains("REC"));
    assert_eq!((cast.header.term.rows, cast.header.term.cols), (ROWS - 1, COLS));
}

#[test]
fn status_line_can_be_switched_off() {
    let setup = Setup::new("[status_line]\nenabled = false\n");
    let mut pty = bash(&setup);
    pty.line("stty size");
    pty.wait_text(&format!("{ROWS} {COLS}"));
    assert!(!pty.screen_text().contains("REC"));
    pty.line("exit");
    pty.wait_exit();
}

#[test]
fn resizing_the_terminal_resizes_the_shell_and_redraws() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("echo before-resize");
    pty.wait_text("before-resize");
    pty.resize(30, 100);
    std::thread::sleep(Duration::from_millis(200));
    pty.line("stty size");
    pty.wait_text("29 100");
    let rows = pty.rows();
    assert!(rows.last().unwrap().contains("REC"), "status line moved to the new bottom row: {rows:?}");
    pty.line("exit");
    pty.wait_exit();
    let cast = setup.recording();
    assert!(cast.events.iter().any(|e| e.1 == "r" && e.2 == "100x29"), "resize recorded");
}

#[test]
fn vim_uses_the_alternate_screen_and_leaves_it_cleanly() {
    let setup = Setup::new("");
    let dir = setup.dir.path().to_owned();
    std::fs::write(dir.join("file.txt"), "first line of file\nsecond\n").unwrap();
    let mut pty = bash(&setup);
    pty.line("echo marker-before-vim");
    pty.wait_text("marker-before-vim");
    pty.line(&format!("vim -u NONE -N {}", dir.join("file.txt").display()));
    pty.wait_text("first line of file");
    assert!(pty.with_screen(|s| s.alternate_screen()), "vim runs in the alternate screen");
    assert!(!pty.screen_text().contains("marker-before-vim"));
    pty.send(b"\x1b:q!\r");
    pty.wait_for("vim to exit", |s| s.contains("marker-before-vim") && !s.contains("first line of file"));
    assert!(!pty.with_screen(|s| s.alternate_screen()));
    pty.line("exit");
    pty.wait_exit();
    // Nothing vim drew leaked into the scrollback.
    assert!(!pty.all_lines().iter().any(|l| l.contains("second")));
}

#[test]
fn less_pages_and_quits() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("seq 1000 1200 | less");
    pty.wait_for("less to show the first page", |s| s.contains("1000\n1001") && s.contains("1020"));
    pty.send(b" ");
    pty.wait_text("1030");
    pty.send(b"q");
    pty.line("echo less-done=$((1+1))");
    pty.wait_text("less-done=2");
    pty.line("exit");
    pty.wait_exit();
}

#[test]
fn fast_output_reaches_scrollback_complete_and_in_order() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("seq 1 20000; echo seq-done=$((1+1))");
    pty.wait_text("seq-done=2");
    let lines = pty.all_lines();
    let numbers: Vec<u32> = lines.iter().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(numbers, (1..=20000).collect::<Vec<u32>>());
    pty.line("exit");
    pty.wait_exit();
    // The recording has every line too.
    let cast = setup.recording();
    let recorded = shell::all_lines(&mut replay(&cast));
    let numbers: Vec<u32> = recorded.iter().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(numbers, (1..=20000).collect::<Vec<u32>>());
}

#[test]
fn terminal_queries_are_answered_from_the_inner_screen() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("clear; printf '\\e[5;9H\\e[6n'; IFS='[' read -rs -d R _ pos; echo; echo pos=$pos");
    pty.wait_text("pos=5;9");
    pty.line("exit");
    pty.wait_exit();
}

#[test]
fn command_with_a_terminal_runs_in_the_pty_and_keeps_its_status() {
    let setup = Setup::new("");
    let mut pty = Pty::spawn(setup.command(&["-c", "tty; echo from-c=$((40+2)); exit 9"]), ROWS, COLS);
    pty.wait_text("from-c=42");
    assert_eq!(pty.wait_exit(), 9);
    assert!(pty.screen_text().contains("/dev/pts/"));
    let cast = setup.recording();
    assert_eq!(cast.header.custos.command.as_deref(), Some("tty; echo from-c=$((40+2)); exit 9"));
    assert_eq!(cast.exit_status(), Some(9));
}

/// An exiting command closes its terminal a moment before it can be
/// reaped; that is not a shell leaving its terminal. The release build
/// under ptybench lost that race about once in 150 sessions and ended them
/// as 129 ("the shell's terminal was closed while the shell ran on"). Here
/// the moment is stretched to 20 ms, so the race is lost every time if
/// there is one; a shell that runs on longer is ended (see the escapes in
/// the system tests).
#[test]
fn a_command_that_exits_just_after_closing_its_terminal_keeps_its_status() {
    let setup = Setup::new("");
    for run in 0..5 {
        let mut pty = Pty::spawn(setup.command(&["-c", "echo closing; exec 0<&- 1>&- 2>&-; sleep 0.02; exit 7"]), ROWS, COLS);
        assert_eq!(pty.wait_exit(), 7, "run {run}: {}", pty.screen_text());
        assert!(pty.screen_text().contains("closing") && !pty.screen_text().contains("ran on"), "{}", pty.screen_text());
    }
}

#[test]
fn recording_replays_to_the_same_screen_as_the_live_session() {
    let setup = Setup::new("");
    let script = "printf '\\e[1;32mgreen\\e[0m 漢字\\n'; seq 1 60; printf 'tab\\there\\rTAB\\n'; printf '\\e[3;10Hplaced'; sleep 0.3";
    let mut pty = Pty::spawn(setup.command(&["-c", script]), ROWS, COLS);
    pty.wait_text("placed");
    // A command has the whole terminal: no status line (see `render::inline`).
    let live: Vec<String> = pty.rows();
    assert_eq!(pty.wait_exit(), 0);
    let cast = setup.recording();
    let replayed = replay(&cast);
    let recorded: Vec<String> = replayed.screen().rows(0, COLS).collect();
    assert_eq!(recorded, live);
}

#[test]
fn hang_up_ends_the_session_and_completes_the_recording() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("echo still-here");
    pty.wait_text("still-here");
    pty.hang_up();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while pty.child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "custos-shell did not end after hang-up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cast = setup.recording();
    assert!(cast.output().contains("still-here"));
    assert_eq!(cast.exit_status(), Some(129), "bash dies of SIGHUP");
}

#[test]
fn input_is_recorded_only_when_enabled_and_never_while_echo_is_off() {
    let setup = Setup::with_recording("record_input = true", "");
    let mut pty = bash(&setup);
    pty.line("read -rs -p 'Password: ' pw; echo; echo got-${#pw}-chars");
    // `read`'s own prompt, at the start of a row: the typed command holds
    // the same word, and keys sent before `read` turns echo off may be
    // flushed by it (this test timed out so once, on a loaded machine).
    pty.wait_text("\nPassword:");
    pty.line("hunter2-very-secret");
    pty.wait_text("got-19-chars");
    pty.line("echo typed-visibly");
    pty.wait_text("typed-visibly\n");
    // A token typed key by key is recorded as a line, and masked.
    for key in "echo ghp_R4nd0mTestTokenValue0123456789abcdEF > /dev/null".chars() {
        pty.send(key.to_string().as_bytes());
    }
    pty.line("");
    pty.line("exit");
    pty.wait_exit();
    let cast = setup.recording();
    let input: String = cast.events.iter().filter(|e| e.1 == "i").map(|e| e.2.as_str()).collect();
    assert!(input.contains("echo typed-visibly"), "input events: {input:?}");
    assert!(!input.contains("hunter2"), "a password typed without echo was recorded");
    assert!(input.contains("echo ****************************************"), "input events: {input:?}");
    assert!(!input.contains("R4nd0m"), "a token typed key by key was recorded");
    let whole = std::fs::read_to_string(&setup.recordings()[0]).unwrap();
    assert!(!whole.contains("hunter2"));
}

#[test]
fn input_is_not_recorded_by_default() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("echo hello");
    pty.wait_text("hello\n");
    pty.line("exit");
    pty.wait_exit();
    assert!(!setup.recording().events.iter().any(|e| e.1 == "i"));
}

#[test]
fn a_nested_custos_shell_does_not_record_twice() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line(&format!("{} -c 'echo nested=$((3*3))'", shell::SHELL_BIN));
    pty.wait_text("nested=9");
    pty.line("exit");
    pty.wait_exit();
    assert_eq!(setup.recordings().len(), 1);
}

#[test]
fn without_a_terminal_bytes_pass_through_untouched() {
    let setup = Setup::new("");
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut child = setup
        .command(&["-c", "cat; exit 5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).unwrap();
        // Dropping stdin is the end-of-file the command must see.
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(out.stdout == data, "stream changed: {} bytes in, {} out", data.len(), out.stdout.len());
    let cast = setup.recording();
    assert_eq!(cast.header.custos.mode, "data");
    assert_eq!(cast.header.custos.command.as_deref(), Some("cat; exit 5"));
    assert_eq!(cast.exit_status(), Some(5));
}

#[test]
fn script_path_and_piped_stdin_behave_as_the_real_shell() {
    let setup = Setup::new("");
    let script = setup.dir.path().join("job.sh");
    std::fs::write(&script, "echo script-arg=$1\nexit 6\n").unwrap();
    let out = setup.command(&[script.to_str().unwrap(), "first"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "script-arg=first\n");
    assert_eq!(out.status.code(), Some(6));

    let mut child = setup.command(&[]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"echo from-stdin=$((2*21))\nexit 2\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-stdin=42\n");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(setup.recordings().len(), 2);
}

#[test]
fn a_bad_config_refuses_to_start_a_shell() {
    let setup = Setup::new("[shell]\ndefualt = \"/bin/bash\"\n");
    let out = setup.command(&["-c", "echo should-not-run"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `defualt`"), "{err}");
    assert!(err.contains(&setup.config().display().to_string()), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("should-not-run"));
}

#[test]
fn a_missing_real_shell_exits_127_with_a_message() {
    let setup = Setup::new("[shell]\ndefault = \"/nonexistent/shell\"\n");
    let out = setup.command(&["-c", "true"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot execute the real shell"));
}

#[test]
fn top_runs_full_screen_and_quits() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("top -d 0.5");
    pty.wait_for("top's header and process table", |s| s.contains("load average") && s.contains("PID"));
    // top redraws in place every half second; a second frame must arrive.
    let first = pty.screen_text();
    pty.wait_for("top to refresh", |s| s != first);
    pty.send(b"q");
    // top reads its input in whole buffers: typing on before it has exited
    // would be swallowed by it.
    std::thread::sleep(Duration::from_millis(500));
    pty.line("echo top-done=$((1+1))");
    pty.wait_text("top-done=2");
    pty.line("exit");
    pty.wait_exit();
}

#[test]
fn tmux_runs_inside_the_recorded_shell() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    let sock = setup.dir.path().join("tmux.sock");
    pty.line(&format!("tmux -S {} -f /dev/null new-session", sock.display()));
    // tmux draws its own status line with the session name in brackets.
    pty.wait_for("tmux's status line", |s| s.lines().any(|l| l.starts_with("[0]")));
    pty.line("echo inside-tmux=$((6*7))");
    pty.wait_text("inside-tmux=42");
    pty.line("exit");
    pty.wait_for("tmux to exit", |s| s.contains("[exited]"));
    pty.line("exit");
    assert_eq!(pty.wait_exit(), 0);
}

#[test]
fn title_bracketed_paste_mouse_and_keypad_modes_reach_the_terminal() {
    let setup = Setup::new("");
    let mut pty = bash(&setup);
    pty.line("printf '\\e]2;custos-title\\a\\e[?1000h\\e[?1006h\\e='; sleep 0.2; printf '\\e[?1000l\\e[?1006l\\e>'; echo modes-done=$((1+1))");
    pty.wait_text("modes-done=2");
    let raw = String::from_utf8_lossy(&pty.raw_output()).into_owned();
    for seq in ["\x1b]2;custos-title\x1b\\", "\x1b[?1000h", "\x1b[?1006h", "\x1b=", "\x1b[?1000l", "\x1b[?1006l", "\x1b>"] {
        assert!(raw.contains(seq), "{seq:?} did not reach the terminal");
    }
    // bash turns bracketed paste on at its prompt.
    assert!(raw.contains("\x1b[?2004h"));
    // A paste arrives as one bracketed block and is inserted, not run line by line.
    pty.send(b"\x1b[200~echo pasted=$((2+2))\x1b[201~\r");
    pty.wait_text("pasted=4");
    pty.line("exit");
    pty.wait_exit();
}

#[test]
fn a_command_the_policy_denies_never_runs_and_is_recorded_as_refused() {
    let setup = Setup::new("");
    let marker = setup.dir.path().join("ran");
    let line = format!("touch {}; sudo rm -rf --no-preserve-root /", marker.display());
    let out = setup.command(&["-c", &line]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused by rule"), "{err}");
    assert!(!marker.exists(), "part of a refused line ran");
    let cast = setup.recording();
    assert_eq!(cast.exit_status(), Some(126));
    assert!(cast.events.iter().any(|e| e.1 == "m" && e.2.contains("refused by rule")), "{:?}", cast.events);

    // A line needing approval is refused with a message that says so.
    let out = setup.command(&["-c", "pg_dump accounts > dump.sql"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs approval"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_policy_comes_from_custos_policy_when_unprivileged() {
    let setup = Setup::new("");
    let policy = setup.dir.path().join("policy.toml");
    std::fs::write(&policy, "[[rule]]\nname = \"no-cowsay\"\nmessage = \"not here\"\naction = \"deny\"\nprogram = [\"cowsay\"]\n").unwrap();
    let out = setup.command(&["-c", "cowsay hi"]).env("CUSTOS_POLICY", &policy).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("custos: refused by rule no-cowsay: not here"));
    let out = setup.command(&["-c", "echo allowed"]).env("CUSTOS_POLICY", &policy).stdin(Stdio::null()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "allowed\n");
    // A policy that does not parse refuses to start anything.
    std::fs::write(&policy, "[[rule]]\nnmae = \"typo\"\n").unwrap();
    let out = setup.command(&["-c", "echo no"]).env("CUSTOS_POLICY", &policy).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("policy.toml"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// sshd prints the message of the day and the last-login line, then runs
/// the login shell: the shell starts below them, and they stay in view
/// (the terminal is asked where its cursor is).
#[test]
fn the_message_of_the_day_stays_in_view_after_login() {
    let setup = Setup::new("");
    let shell = setup.command(&["--norc", "--noprofile", "-i"]);
    let mut login_cmd = std::process::Command::new("/bin/sh");
    login_cmd.env_clear().envs(shell.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    login_cmd.args(["-c", &format!("printf 'Welcome to db1\\nLast login: Mon Dec  7 09:00 from 10.0.0.1\\n'; exec {} --norc --noprofile -i", shell::SHELL_BIN)]);
    let mut pty = Pty::spawn(login_cmd, ROWS, COLS);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "$"));
    let rows = pty.rows();
    assert_eq!(rows[0].trim_end(), "Welcome to db1", "{rows:#?}");
    assert_eq!(rows[1].trim_end(), "Last login: Mon Dec  7 09:00 from 10.0.0.1", "{rows:#?}");
    assert!(rows[2].starts_with('$'), "the shell does not start below them: {rows:#?}");
    assert!(!rows.iter().any(|l| l.contains(";1R")), "the terminal's answer reached the screen: {rows:#?}");
    pty.line("exit");
    pty.wait_exit();
    let cast = setup.recording();
    assert!(!cast.output().contains("Welcome to db1"), "the recording holds what sshd printed");
}
