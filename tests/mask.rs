//! Masking end to end: the corpus of real-looking terminal output in
//! `testdata/mask/` through `custos mask` and through a live `custos-shell`
//! session, read back by an independent emulator (vt100, not the emulator
//! custos renders from), checked for leaks and for false positives; and the
//! property that however output is split into writes, no secret is ever
//! shown, in whole or in part.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use shell::{Pty, Setup};
use custos::term::masker::Masker;
use custos::mask::MaskingConfig;
use custos::cmd::mask::Filter;
use custos::term::screen::Size;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/mask");

struct Expect {
    mask: Vec<String>,
    keep: Vec<String>,
}

fn corpus() -> Vec<(String, Vec<u8>, Expect)> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    names.sort();
    for txt in names {
        let name = txt.file_stem().unwrap().to_string_lossy().into_owned();
        let expect_text = std::fs::read_to_string(txt.with_extension("expect")).unwrap();
        let mut expect = Expect { mask: Vec::new(), keep: Vec::new() };
        for rule in expect_text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let (kind, needle) = rule.split_once(": ").unwrap();
            match kind {
                "mask" => expect.mask.push(needle.to_owned()),
                "keep" => expect.keep.push(needle.to_owned()),
                other => panic!("{name}.expect: unknown kind {other:?}"),
            }
        }
        out.push((name, std::fs::read(&txt).unwrap(), expect));
    }
    assert!(out.len() >= 8, "the corpus is missing files: {}", out.len());
    out
}

/// Every line an independent emulator shows after `bytes`, scrollback first.
fn shown(bytes: &[u8], rows: u16, cols: u16) -> String {
    let mut parser = shell::emulator(rows, cols, 100_000);
    parser.process(bytes);
    shell::all_lines(&mut parser).join("\n")
}

fn check(name: &str, how: &str, text: &str, raw: &[u8], expect: &Expect) {
    let raw = String::from_utf8_lossy(raw);
    for secret in &expect.mask {
        assert!(!text.contains(secret.as_str()), "{how}: {name}: {secret:?} is shown:\n{text}");
        assert!(!raw.contains(secret.as_str()), "{how}: {name}: {secret:?} is in the bytes sent");
    }
    for keep in &expect.keep {
        assert!(text.contains(keep.as_str()), "{how}: {name}: {keep:?} should stay visible:\n{text}");
    }
}

#[test]
fn corpus_through_custos_mask_leaks_nothing_and_keeps_the_rest() {
    for (name, input, expect) in corpus() {
        let mut child = Command::new(shell::CUSTOS_BIN)
            .args(["mask", "--cols", "200", "--rows", "30"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let out = child.wait_with_output().unwrap();
        feed.join().unwrap();
        assert!(out.status.success(), "{name}: custos mask failed");
        check(&name, "custos mask", &shown(&out.stdout, 30, 200), &out.stdout, &expect);
    }
}

#[test]
fn corpus_in_a_live_session_leaks_nothing_to_screen_or_recording() {
    let setup = Setup::new("[status_line]\nenabled = false\n");
    let cmd = setup.command(&["--norc", "--noprofile", "-i"]);
    let mut pty = Pty::spawn(cmd, 30, 200);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "$"));
    for (name, _, expect) in corpus() {
        let path = Path::new(CORPUS).join(format!("{name}.txt"));
        pty.line(&format!("clear; cat {}; echo end-of-{name}", path.display()));
        pty.wait_for("the file to be shown", |s| s.lines().any(|l| l == format!("end-of-{name}")));
        let text = pty.all_lines().join("\n");
        check(&name, "live session", &text, &pty.raw_output(), &expect);
    }
    pty.line("exit");
    assert_eq!(pty.wait_exit(), 0);
    let recording = std::fs::read_to_string(&setup.recordings()[0]).unwrap();
    let cast = custos::evidence::asciicast::Cast::parse(&recording).unwrap();
    let replayed = shell::all_lines(&mut shell::replay(&cast)).join("\n");
    for (name, _, expect) in corpus() {
        for secret in &expect.mask {
            assert!(!recording.contains(secret.as_str()), "recording: {name}: {secret:?} is in the file");
            assert!(!replayed.contains(secret.as_str()), "recording: {name}: {secret:?} replays on screen");
        }
    }
}

#[test]
fn explain_lists_detectors_and_fingerprints_without_values() {
    let input = "export GITHUB_TOKEN=ghp_R4nd0mTestTokenValue0123456789abcdEF\ncard 4111 1111 1111 1111\n";
    let mut child = Command::new(shell::CUSTOS_BIN)
        .args(["mask", "--explain"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("github_token") && text.contains("card"), "{text}");
    assert!(text.contains(&custos::mask::fingerprint("ghp_R4nd0mTestTokenValue0123456789abcdEF")), "{text}");
    assert!(!text.contains("R4nd0m") && !text.contains("4111"), "{text}");
}

/// A key drawn up to the last column and continued on the next row by
/// cursor addressing is masked by the rows' joined scan: `--explain` names
/// it too, with all its cells.
#[test]
fn explain_names_a_secret_found_only_with_rows_joined() {
    let size = Size { rows: 10, cols: 20 };
    let mut filter = Filter::new(size, Masker::new(&MaskingConfig::default()).unwrap());
    let mut shown = filter.feed(b"xxxxxxxxxxx AKIAIOSF\x1b[2;1HODNN7EXAMPLE\r\n");
    shown.extend(filter.finish());
    assert!(!String::from_utf8_lossy(&shown).contains("AKIAIOSF"));
    let found = filter.explained();
    let key = custos::mask::fingerprint("AKIAIOSFODNN7EXAMPLE");
    assert!(found.iter().any(|e| e.fingerprint == key && e.cells == 20 && e.col == 12), "{found:?}");
}

#[test]
fn a_bad_masking_rule_is_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[masking]\n[[masking.rules]]\nname = \"tickets\"\nregex = 'TKT-[0-9'\n").unwrap();
    let out = Command::new(shell::CUSTOS_BIN)
        .args(["mask", "--config", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("tickets"), "{err}");
}

#[test]
fn a_session_with_a_bad_masking_rule_never_starts() {
    let setup = Setup::new("[masking]\n[[masking.rules]]\nname = \"tickets\"\nregex = '(unclosed'\n");
    let out = setup.command(&["-c", "echo should-not-run"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("should-not-run"));
}

/// Feeds `input` to a masking filter cut at `cuts` (one write per piece),
/// calling `frame(shown, whole)` with what the terminal shows after each
/// write and the final screen of the same input in one write (which tells
/// text that is legitimately visible from a leak). Returns both final
/// screens.
fn split_and_whole(
    input: &[u8],
    cuts: Vec<usize>,
    size: Size,
    mut frame: impl FnMut(&str, &str) -> Result<(), proptest::test_runner::TestCaseError>,
) -> Result<(String, String), proptest::test_runner::TestCaseError> {
    let masker = || Masker::new(&MaskingConfig { hold_ms: 200, ..MaskingConfig::default() }).unwrap();
    let mut whole = Filter::new(size, masker());
    let mut once = whole.feed(input);
    once.extend(whole.finish());
    let final_whole = shown(&once, size.rows, size.cols);
    let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut split = Filter::new(size, masker());
    let mut bytes = Vec::new();
    let mut prev = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        bytes.extend(split.feed(&input[prev..cut]));
        prev = cut;
        frame(&shown(&bytes, size.rows, size.cols), &final_whole)?;
    }
    bytes.extend(split.finish());
    Ok((shown(&bytes, size.rows, size.cols), final_whole))
}

const SECRETS: &[&str] = &[
    "ghp_R4nd0mTestTokenValue0123456789abcdEF",
    "AKIAIOSFODNN7EXAMPLE",
    "4111111111111111",
    "sk_live_FAKE0123456789abcdefghij",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// However a program splits its output into writes, the final masked
    /// screen is the same, and no frame ever shows a secret or a piece of
    /// one eight characters or longer.
    #[test]
    fn any_split_gives_the_same_masked_screen_and_never_shows_a_piece(
        cuts in proptest::collection::vec(0usize..400, 0..10),
        which in 0usize..4,
        colour in proptest::bool::ANY,
    ) {
        let secret = SECRETS[which];
        let shown_secret: String = if colour {
            secret.chars().enumerate().map(|(i, c)| format!("\x1b[3{}m{c}", i % 7)).collect::<String>() + "\x1b[0m"
        } else {
            secret.to_owned()
        };
        let input = format!("$ cat creds\r\nuser: alice\r\nkey {shown_secret} end\r\nmore output here\r\n$ ").into_bytes();
        let (final_split, final_whole) = split_and_whole(&input, cuts, Size { rows: 8, cols: 60 }, |screen, _| {
            for start in 0..secret.len().saturating_sub(7) {
                let piece = &secret[start..start + 8];
                proptest::prop_assert!(!screen.contains(piece), "frame shows {piece:?} of {secret:?}:\n{screen}");
            }
            Ok(())
        })?;
        proptest::prop_assert_eq!(&final_split, &final_whole);
        proptest::prop_assert!(final_split.contains(&"*".repeat(secret.len())), "{}", final_split);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The corpus files split into random writes: every frame is free of
    /// every secret the corpus lists, and the final screen is the one the
    /// unsplit output gives.
    #[test]
    fn any_split_of_a_corpus_file_never_shows_its_secrets(
        file in 0usize..64,
        cuts in proptest::collection::vec(0usize..4000, 1..12),
    ) {
        let files = corpus();
        let (name, raw, expect) = &files[file % files.len()];
        let input = crlf(raw);
        let (final_split, final_whole) =
            split_and_whole(&input, cuts, CORPUS_SIZE, |screen, whole| frame_shows_no_secret(name, expect, screen, whole))?;
        proptest::prop_assert_eq!(final_split, final_whole);
    }
}

/// Each corpus file cut once, at every byte: the one place a write can
/// end that a random split is least likely to hit (a value just begun on
/// a row whose label wrapped from the row above, in one case that
/// leaked).
#[test]
fn a_corpus_file_cut_anywhere_never_shows_its_secrets() {
    let masker = || Masker::new(&MaskingConfig { hold_ms: 200, ..MaskingConfig::default() }).unwrap();
    let (rows, cols) = (CORPUS_SIZE.rows, CORPUS_SIZE.cols);
    for (name, raw, expect) in &corpus() {
        let input = crlf(raw);
        let mut once = Filter::new(CORPUS_SIZE, masker());
        let mut bytes = once.feed(&input);
        bytes.extend(once.finish());
        let whole = shown(&bytes, rows, cols);
        for cut in 1..input.len() {
            let mut split = Filter::new(CORPUS_SIZE, masker());
            let mut bytes = split.feed(&input[..cut]);
            frame_shows_no_secret(name, expect, &shown(&bytes, rows, cols), &whole).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            bytes.extend(split.feed(&input[cut..]));
            bytes.extend(split.finish());
            assert_eq!(shown(&bytes, rows, cols), whole, "{name} cut at {cut}");
        }
    }
}

const CORPUS_SIZE: Size = Size { rows: 12, cols: 100 };

fn crlf(raw: &[u8]) -> Vec<u8> {
    raw.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect()
}

/// Fails if `screen` shows any 8 characters of a secret `expect` lists,
/// with rows joined so a secret wrapped over two rows is one string,
/// unless the same 8 are visible in the fully masked output `whole` too
/// (where they are other text).
fn frame_shows_no_secret(name: &str, expect: &Expect, screen: &str, whole: &str) -> Result<(), proptest::test_runner::TestCaseError> {
    let joined: String = screen.chars().filter(|&c| c != '\n').collect();
    let legit: String = whole.chars().filter(|&c| c != '\n').collect();
    for secret in &expect.mask {
        let window = secret.len().min(8);
        for piece in secret.as_bytes().windows(window) {
            let Ok(piece) = std::str::from_utf8(piece) else { continue };
            proptest::prop_assert!(
                !joined.contains(piece) || legit.contains(piece),
                "{}: a frame shows {:?} of {:?}:\n{}", name, piece, secret, screen
            );
        }
    }
    Ok(())
}

#[test]
fn secrets_in_a_full_screen_program_are_masked_in_the_alternate_screen() {
    let setup = Setup::new("");
    let mut pty = Pty::spawn(setup.command(&["--norc", "--noprofile", "-i"]), 30, 120);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "$"));
    let (_, _, expect) = corpus().into_iter().find(|(name, _, _)| name == "cards").unwrap();
    pty.line(&format!("less {}/cards.txt", CORPUS));
    pty.wait_for("less to show the file", |s| s.contains(expect.keep[0].as_str()));
    assert!(pty.with_screen(|s| s.alternate_screen()));
    check("cards", "less", &pty.screen_text(), &pty.raw_output(), &expect);
    pty.send(b"q");
    pty.line("exit");
    pty.wait_exit();
    let recording = std::fs::read_to_string(&setup.recordings()[0]).unwrap();
    for secret in &expect.mask {
        assert!(!recording.contains(secret.as_str()), "{secret:?} is in the recording");
    }
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmYWtlLXVzZXItMDAwMSIsImlhdCI6MTcwMDAwMDAwMH0.FAKEsig_0123456789abcdefghijklmnopqrstuvwxyz-AB";

/// The first piece of `secret` (eight characters, or all of it if shorter)
/// that `text` shows, with rows joined so a piece drawn over a row edge
/// counts.
fn piece_shown(text: &str, secret: &str) -> Option<String> {
    let joined: String = text.chars().filter(|&c| c != '\n').collect();
    let window = secret.len().min(8);
    secret.as_bytes().windows(window).filter_map(|w| std::str::from_utf8(w).ok()).find(|w| joined.contains(w)).map(str::to_owned)
}

/// Issue #17: a command line pasted so that a secret straddles the right
/// edge, then run. The shell redraws the line when Enter is pressed (the
/// command gate's key binding makes readline redraw it); the two rows must
/// stay one line to the masker, on the screen, in the recording and in its
/// replay.
fn typed_line_across_the_edge(setup: &Setup, shell_args: &[&str], prompt: &str, cols: u16, secret: &str, split: usize) {
    let mut pty = Pty::spawn(setup.command(shell_args), 24, cols);
    if prompt != "$" {
        pty.line(&format!("PS1='{prompt} '"));
    }
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == prompt));
    // `<prompt> echo <x...> <secret>`: `split` characters of the secret on
    // the first row, pasted in one write (typed a key at a time: see
    // `a_secret_typed_key_by_key_never_shows_in_part`).
    let before = usize::from(cols) - split - prompt.len() - 1 - "echo ".len() - 1;
    pty.send(format!("echo {} {secret}", "x".repeat(before)).as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let how = format!("{} at {cols} columns, {split} characters before the edge", shell_args.join(" "));
    let screen = pty.all_lines().join("\n");
    assert!(screen.contains(&"x".repeat(before)), "{how}: the line is not shown:\n{screen}");
    if let Some(piece) = piece_shown(&screen, secret) {
        panic!("{how}: before Enter, the screen shows {piece:?}:\n{screen}");
    }
    pty.send(b"\r");
    pty.line("echo done-$((6*7))");
    pty.wait_for("the command to run", |s| s.contains("done-42"));
    check_nowhere_in_clear(pty, setup, secret, &how);
}

/// Ends the session and checks that neither the screen, the bytes sent to
/// the terminal, the recording nor its replay show any piece of `secret`.
fn check_nowhere_in_clear(mut pty: Pty, setup: &Setup, secret: &str, how: &str) {
    let screen = pty.all_lines().join("\n");
    if let Some(piece) = piece_shown(&screen, secret) {
        panic!("{how}: the screen shows {piece:?}:\n{screen}");
    }
    let raw = String::from_utf8_lossy(&pty.raw_output()).into_owned();
    assert!(piece_shown(&raw, secret).is_none(), "{how}: the bytes sent hold {:?}", piece_shown(&raw, secret));
    pty.line("exit");
    pty.wait_exit();
    let recording = std::fs::read_to_string(&setup.recordings()[0]).unwrap();
    let cast = custos::evidence::asciicast::Cast::parse(&recording).unwrap();
    let output: String = cast.output();
    assert!(piece_shown(&output, secret).is_none(), "{how}: the recording holds {:?}", piece_shown(&output, secret));
    let replayed = shell::all_lines(&mut shell::replay(&cast)).join("\n");
    assert!(piece_shown(&replayed, secret).is_none(), "{how}: the replay shows {:?}:\n{replayed}", piece_shown(&replayed, secret));
    // Replay's search is built from the recording: it finds no piece either.
    let rec = custos::evidence::asciicast::Recording::parse(&recording).unwrap();
    let index = custos::tui::replay::index::Index::build(rec.cols, rec.rows, &rec.events);
    assert!(index.text.contains("done-42") || index.text.contains("x".repeat(20).as_str()), "{how}: the search index is empty");
    for piece in secret.as_bytes().windows(secret.len().min(8)) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(!index.text.contains(piece), "{how}: replay's search finds {piece:?}");
    }
}

#[test]
fn a_command_line_redrawn_across_the_edge_never_shows_the_secret_in_bash() {
    for (cols, secret, split) in [(120, "AKIAIOSFODNN7EXAMPLE", 9), (120, JWT, 60), (80, "AKIAIOSFODNN7EXAMPLE", 1), (80, "AKIAIOSFODNN7EXAMPLE", 19)] {
        let setup = Setup::new("");
        typed_line_across_the_edge(&setup, &["--norc", "--noprofile", "-i"], "$", cols, secret, split);
    }
}

#[test]
fn a_command_line_redrawn_across_the_edge_never_shows_the_secret_in_zsh() {
    for (cols, secret, split) in [(120, "AKIAIOSFODNN7EXAMPLE", 9), (80, JWT, 30)] {
        let setup = Setup::new("[shell]\ndefault = \"/usr/bin/zsh\"\n");
        typed_line_across_the_edge(&setup, &["-f", "-i"], "zsh>", cols, secret, split);
    }
}

/// Issue #17's mechanism in a live session: a program fills a 120-column
/// row up to the last column with the start of a key, then writes the rest
/// at the start of the next row by cursor addressing (as a line editor
/// redrawing its line may), so the emulator never marks the row wrapped.
#[test]
fn a_key_continued_on_the_next_row_by_cursor_addressing_is_masked_live_and_in_the_recording() {
    let setup = Setup::new("");
    let mut pty = Pty::spawn(setup.command(&["--norc", "--noprofile", "-i"]), 24, 120);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "$"));
    // The key's pieces are quoted apart on the command line, so the line
    // itself holds no piece of it.
    pty.line(r#"clear; printf '%s %s\e[2;1H%s\n' "$(printf 'x%.0s' $(seq 110))" AKIA''IOSFO DNN7''EXAMPLE; echo done-$((6*7))"#);
    pty.wait_for("the output", |s| s.contains("done-42"));
    assert!(pty.screen_text().contains(&format!("{} *********\n***********", "x".repeat(110))), "{}", pty.screen_text());
    check_nowhere_in_clear(pty, &setup, "AKIAIOSFODNN7EXAMPLE", "printf at 120 columns");
}

/// A secret typed by hand grows slower than the withholding window: the
/// part typed so far is masked while it is the end of the line, so no
/// frame, no byte sent and nothing recorded holds a piece of it.
#[test]
fn a_secret_typed_key_by_key_never_shows_in_part() {
    for (line, secret) in [("echo ", "AKIAIOSFODNN7EXAMPLE"), ("export GH=", "ghp_R4nd0mTestTokenValue0123456789abcdEF"), ("mysql --password=", "S3cr3t-Pa55w0rd!x")] {
        let setup = Setup::new("");
        let mut pty = Pty::spawn(setup.command(&["--norc", "--noprofile", "-i"]), 24, 120);
        pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "$"));
        pty.send(line.as_bytes());
        for ch in secret.chars() {
            pty.send(ch.to_string().as_bytes());
            std::thread::sleep(std::time::Duration::from_millis(60));
        }
        // Ctrl-U: the line is not run (mysql is not needed), only typed.
        pty.send(b"\x15");
        pty.line("echo done-$((6*7))");
        pty.wait_for("the command to run", |s| s.contains("done-42"));
        check_nowhere_in_clear(pty, &setup, secret, &format!("typed {line}{secret} key by key"));
    }
}

/// A label at the end of a row whose value wraps onto the next: the screen
/// joins the rows into one logical line before the detectors see it, so the
/// value is masked wherever the terminal's width breaks it, including with
/// the label's separator in the last column.
#[test]
fn a_label_whose_value_wraps_onto_the_next_row_is_masked_at_any_width() {
    let masker = || Masker::new(&MaskingConfig::default()).unwrap();
    for (label, secret) in [
        ("password: ", "S3cretPassW0rd"),
        ("pw=", "S3cretPassW0rd"),
        ("--token ", "tok3nValueXy9"),
        ("mysql -uroot -p", "S3cretPassW0rd"),
        ("PIN: ", "48213377"),
    ] {
        let text = format!("$ run {label}{secret}");
        // From a break inside the label to one inside the value; the
        // separator lands in the last column at `text.len() - secret.len()`.
        for cols in 6..text.len() as u16 {
            let size = Size { rows: 10, cols };
            let mut filter = Filter::new(size, masker());
            let mut bytes = filter.feed(format!("{text}\r\n").as_bytes());
            bytes.extend(filter.finish());
            let screen = shown(&bytes, size.rows, size.cols);
            let joined = screen.replace('\n', "");
            assert!(
                !joined.contains(secret) && joined.contains(&"*".repeat(secret.len())),
                "{cols} columns, {label:?}:\n{screen}"
            );
            // No row shows a piece of the value either.
            for piece in secret.as_bytes().windows(4) {
                let piece = std::str::from_utf8(piece).unwrap();
                assert!(!screen.lines().any(|row| row.contains(piece)), "{cols} columns: {piece:?} shown:\n{screen}");
            }
        }
    }
}
