//! Unit tests of `term::masker`.

use super::*;
use crate::term::screen::{Damage, Size};

const GITHUB: &str = "ghp_R4nd0mTestTokenValue0123456789abcdEF";

fn masker() -> Masker {
    Masker::new(&MaskingConfig::default()).unwrap()
}

fn masked_rows(screen: &Screen, cover: &Cover) -> Vec<String> {
    (0..screen.size().rows)
        .map(|r| {
            let cells = screen.row(r).unwrap();
            let mut s = String::new();
            for (c, cell) in cells.iter().enumerate() {
                if is_spacer(cell) && !cover.row(r).iter().any(|rg| rg.contains(&c)) {
                    continue;
                }
                if cover.row(r).iter().any(|rg| rg.contains(&c)) {
                    s.push('*');
                } else {
                    s.push(cell.c);
                }
            }
            s.trim_end().to_owned()
        })
        .collect()
}

#[test]
fn a_token_is_covered_cell_for_cell() {
    let mut screen = Screen::new(Size { rows: 3, cols: 60 });
    screen.process(format!("export GH={GITHUB}\r\nnext").as_bytes());
    let (cover, _) = masker().cover(&screen, &Damage::full(), Instant::now());
    let rows = masked_rows(&screen, &cover);
    assert_eq!(rows[0], format!("export GH={}", "*".repeat(GITHUB.len())));
    assert_eq!(rows[1], "next");
}

#[test]
fn a_token_wrapped_over_two_rows_is_covered_on_both() {
    let mut screen = Screen::new(Size { rows: 4, cols: 20 });
    screen.process(format!("token {GITHUB} end\r\n").as_bytes());
    let (cover, _) = masker().cover(&screen, &Damage::full(), Instant::now());
    let rows = masked_rows(&screen, &cover);
    let text = rows.join("");
    assert!(!text.contains("R4nd0m"), "{rows:?}");
    assert!(text.contains(&"*".repeat(GITHUB.len())), "{rows:?}");
    assert!(rows[0].starts_with("token "));
}

#[test]
fn a_token_drawn_right_half_first_by_cursor_addressing_is_covered() {
    let mut screen = Screen::new(Size { rows: 3, cols: 60 });
    let (left, right) = GITHUB.split_at(20);
    screen.process(format!("\x1b[1;21H{right}\x1b[1;1H{left}").as_bytes());
    let (cover, _) = masker().cover(&screen, &Damage::full(), Instant::now());
    assert_eq!(masked_rows(&screen, &cover)[0], "*".repeat(GITHUB.len()));
}

#[test]
fn coloured_digit_by_digit_card_number_is_covered() {
    let mut screen = Screen::new(Size { rows: 2, cols: 60 });
    let card = "4111111111111111";
    let coloured: String = card.chars().enumerate().map(|(i, c)| format!("\x1b[3{}m{c}", i % 7)).collect();
    screen.process(format!("card {coloured}\x1b[0m ok").as_bytes());
    let (cover, _) = masker().cover(&screen, &Damage::full(), Instant::now());
    assert_eq!(masked_rows(&screen, &cover)[0], format!("card {} ok", "*".repeat(16)));
}

#[test]
fn wide_characters_keep_their_width_when_covered() {
    let mut screen = Screen::new(Size { rows: 2, cols: 60 });
    screen.process("password=漢字secret9 x".as_bytes());
    let (cover, _) = masker().cover(&screen, &Damage::full(), Instant::now());
    // 漢 and 字 take two cells each: four glyphs, then seven for "secret9".
    assert_eq!(masked_rows(&screen, &cover)[0], format!("password={} x", "*".repeat(11)));
}

#[test]
fn a_partial_token_is_held_then_masked_when_it_completes() {
    let mut m = masker();
    let mut screen = Screen::new(Size { rows: 2, cols: 60 });
    let t0 = Instant::now();
    screen.process(b"$ echo ghp_R4nd0m");
    let (cover, deadline) = m.cover(&screen, &Damage::full(), t0);
    assert_eq!(cover.withheld, vec![(0, 7..17)]);
    assert!(deadline.is_some());
    screen.process(&GITHUB.as_bytes()[10..]);
    let (cover, _) = m.cover(&screen, &Damage::full(), t0 + Duration::from_millis(5));
    assert!(cover.withheld.is_empty());
    assert_eq!(masked_rows(&screen, &cover)[0], format!("$ echo {}", "*".repeat(GITHUB.len())));
}

#[test]
fn a_partial_token_that_stalls_is_masked_until_it_ends_then_shown_if_it_is_no_secret() {
    let mut m = masker();
    let mut screen = Screen::new(Size { rows: 2, cols: 60 });
    let t0 = Instant::now();
    screen.process(b"$ echo ghp_abc");
    let (cover, deadline) = m.cover(&screen, &Damage::full(), t0);
    assert!(!cover.withheld.is_empty());
    // Past the window it is no longer blank but masked: still the end of
    // the line, it may yet grow into a token.
    let (cover, deadline2) = m.cover(&screen, &Damage::full(), deadline.unwrap());
    assert!(cover.withheld.is_empty());
    assert_eq!(deadline2, None);
    assert_eq!(masked_rows(&screen, &cover)[0], "$ echo *******");
    // It ends as something no detector masks: shown.
    screen.process(b" done");
    let (cover, _) = m.cover(&screen, &Damage::full(), deadline.unwrap() + Duration::from_millis(200));
    assert_eq!(masked_rows(&screen, &cover)[0], "$ echo ghp_abc done");
}

/// Every frame of a line typed key by key, 150 ms apart (slower than the
/// withholding window), as the screen and the recording would show it.
fn typed_frames(line: &str) -> Vec<String> {
    let mut m = masker();
    let mut screen = Screen::new(Size { rows: 2, cols: 120 });
    let t0 = Instant::now();
    let mut frames = Vec::new();
    for (i, ch) in line.chars().enumerate() {
        screen.process(ch.to_string().as_bytes());
        let at = t0 + Duration::from_millis(150 * i as u64);
        // A frame at the key, and one after the window has passed.
        for now in [at, at + Duration::from_millis(100)] {
            let (cover, _) = m.cover(&screen, &Damage::full(), now);
            let mut row = masked_rows(&screen, &cover).remove(0);
            // Withheld cells are drawn blank.
            for (r, cols) in &cover.withheld {
                if *r == 0 {
                    row = row.chars().enumerate().map(|(c, ch)| if cols.contains(&c) { ' ' } else { ch }).collect();
                }
            }
            frames.push(row);
        }
    }
    frames
}

#[test]
fn a_secret_typed_key_by_key_is_never_shown_in_part() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA";
    for (prefix, secret) in [("$ echo ", "AKIAIOSFODNN7EXAMPLE"), ("$ export TOKEN=", GITHUB), ("$ curl -H 'Authorization: Bearer ", jwt), ("$ mysql --password=", "S3cr3t-Pa55w0rd!x")] {
        let frames = typed_frames(&format!("{prefix}{secret} "));
        // No five characters of the secret in a row, in any frame.
        let pieces: Vec<&str> = (0..secret.len() - 4).filter_map(|i| secret.get(i..i + 5)).collect();
        for f in &frames {
            assert!(!pieces.iter().any(|p| f.contains(p)), "a piece of {secret} shows while typing: {f:?}");
        }
        assert!(frames.last().unwrap().contains("*****"), "{:?}", frames.last());
    }
}

#[test]
fn a_number_typed_digit_by_digit_shows_while_short() {
    let frames = typed_frames("$ sleep 4000000 ");
    assert!(frames.iter().any(|f| f == "$ sleep 40000"), "{frames:?}");
    assert_eq!(frames.last().unwrap(), "$ sleep 4000000");
    // A card typed by hand: no more than its first seven digits ever show.
    let frames = typed_frames("$ echo 4111111111111111 ");
    assert!(frames.iter().all(|f| !f.contains("41111111")), "{frames:?}");
}

#[test]
fn ordinary_typing_is_never_held() {
    let mut m = masker();
    let mut screen = Screen::new(Size { rows: 2, cols: 60 });
    for ch in "$ ls -la /etc && git status".chars() {
        screen.process(ch.to_string().as_bytes());
        let (cover, deadline) = m.cover(&screen, &Damage::full(), Instant::now());
        assert_eq!((cover.withheld, deadline), (vec![], None), "withheld while typing {ch:?}");
    }
}

#[test]
fn pem_context_carries_over_rows_that_scrolled_off() {
    let mut m = masker();
    let mut screen = Screen::new(Size { rows: 3, cols: 70 });
    screen.process(b"-----BEGIN RSA PRIVATE KEY-----\r\nMIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn\r\nline2AAAA\r\nline3BBBB\r\n");
    let (cover, _) = m.cover(&screen, &Damage::full(), Instant::now());
    screen.clear_scrolled();
    assert!(!cover.scrolled_row(1).is_empty(), "the first key row, scrolled off, is covered");
    screen.process(b"line4CCCC\r\n-----END RSA PRIVATE KEY-----\r\nafter\r\n");
    let (cover, _) = m.cover(&screen, &Damage::full(), Instant::now());
    let rows = masked_rows(&screen, &cover);
    assert!(rows.iter().all(|r| !r.contains("CCCC")), "{rows:?} {cover:?}");
    assert!(rows.iter().any(|r| r == "after"), "{rows:?}");
}

#[test]
fn explain_names_detector_and_fingerprint_never_the_value() {
    let mut screen = Screen::new(Size { rows: 3, cols: 60 });
    screen.process(format!("GH={GITHUB}").as_bytes());
    let found = masker().explain(&screen);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].detector, "github_token");
    assert_eq!(found[0].fingerprint, crate::mask::fingerprint(GITHUB));
    assert_eq!((found[0].row, found[0].col, found[0].cells), (Some(0), 3, GITHUB.len()));
    assert!(!format!("{found:?}").contains("R4nd0m"));
}

#[test]
fn titles_are_masked() {
    let m = masker();
    assert_eq!(m.mask_text(&format!("vim {GITHUB}")), format!("vim {}", "*".repeat(GITHUB.len())));
    assert_eq!(m.mask_text("vim notes.txt"), "vim notes.txt");
}

/// The approvals pane's masker: the shell's detectors, none of its state.
#[test]
fn a_fresh_masker_has_the_same_detectors_and_none_of_the_state() {
    let mut shell = masker();
    // The shell's masker is inside a PEM block: a context of its own.
    let mut screen = Screen::new(Size { rows: 3, cols: 60 });
    screen.process(b"-----BEGIN PRIVATE KEY-----\r\n\r\n\r\n\r\n");
    let _ = shell.cover(&screen, &Damage::full(), Instant::now());
    let mut pane = shell.fresh();
    let mut pane_screen = Screen::new(Size { rows: 3, cols: 60 });
    pane_screen.process(format!("plain words\r\ntoken {GITHUB}").as_bytes());
    let (cover, _) = pane.cover(&pane_screen, &Damage::full(), Instant::now());
    let rows = masked_rows(&pane_screen, &cover);
    assert_eq!(rows[0], "plain words", "the shell's PEM context is not the pane's");
    assert_eq!(rows[1], format!("token {}", "*".repeat(GITHUB.len())));
    assert_eq!((pane.enabled(), pane.glyph()), (shell.enabled(), shell.glyph()));
}

/// What a masker lets a sequence of frames show: every row that scrolled
/// off (as drawn when it did), then the last screen, rows joined with no
/// separator, so a piece drawn over a row edge reads as one string.
fn shown_over_frames(size: Size, writes: &[&str]) -> String {
    let mut screen = Screen::new(size);
    let mut m = masker();
    let far = Instant::now() + Duration::from_secs(3600);
    let mut shown = String::new();
    let mut last = Vec::new();
    for write in writes {
        screen.process(write.as_bytes());
        let damage = screen.take_damage();
        let (cover, _) = m.cover(&screen, &damage, far);
        for (index, cells) in screen.scrolled_rows().enumerate() {
            let ranges = cover.scrolled_row(index);
            shown.extend(cells.iter().enumerate().map(|(c, cell)| if ranges.iter().any(|r| r.contains(&c)) { '*' } else { shown_char(cell) }));
        }
        screen.clear_scrolled();
        last = masked_rows(&screen, &cover);
    }
    shown.extend(last.iter().map(|r| format!("{r:<width$}", width = usize::from(size.cols))));
    shown
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmYWtlLXVzZXItMDAwMSIsImlhdCI6MTcwMDAwMDAwMH0.FAKEsig_0123456789abcdefghijklmnopqrstuvwxyz-AB";

/// Issue #17: a shell redrawing a command line that fills the first row
/// writes the rest on the next row by cursor addressing (or `CR LF`), not
/// by autowrap, so the emulator never marks the first row as wrapped. A
/// secret split over that edge is still covered on both rows, for every
/// way of getting to the next row, every split point, and across frames
/// while the screen scrolls.
#[rstest::rstest]
fn a_secret_split_over_a_row_edge_drawn_without_autowrap_is_covered(
    #[values("AKIAIOSFODNN7EXAMPLE", GITHUB, JWT, "sk_live_FAKE0123456789abcdefghij")] secret: &str,
    #[values(1, 4, 9, 19)] split: usize,
    #[values("cup", "crlf", "erase-then-cup", "cursor-down", "scroll", "scroll-then-frame")] how: &str,
) {
    let cols = 40;
    let split = split.min(secret.len() - 1);
    let (left, right) = secret.split_at(split);
    // The first row: a prompt and filler up to the last column.
    let first = format!("$ echo {} {left}", "x".repeat(cols - split - 8));
    assert_eq!(first.len(), cols);
    // Room for every row, or in the scrolling cases one row fewer than
    // the rows written, so the first row scrolls off.
    let scrolls = how.starts_with("scroll");
    let rows = right.len().div_ceil(cols) + if scrolls { 1 } else { 2 };
    // The rest, one row at a time, each reached by `to_row(row)` (a JWT
    // takes more than one more row).
    let rest = |to_row: &dyn Fn(usize) -> String| -> String {
        right.as_bytes().chunks(cols).enumerate().map(|(i, c)| format!("{}{}", to_row(i + 2), std::str::from_utf8(c).unwrap())).collect()
    };
    let cup = |row: usize| format!("\x1b[{row};1H");
    let writes: Vec<String> = match how {
        "cup" => vec![format!("{first}{}", rest(&cup))],
        "crlf" => vec![format!("{first}{}", rest(&|_| "\r\n".to_owned()))],
        "erase-then-cup" => vec![format!("{first}{}", rest(&cup)), format!("\x1b[1;1H\x1b[K\x1b[2;1H\x1b[K\x1b[1;1H{first}{}", rest(&cup))],
        "cursor-down" => vec![format!("{first}{}", rest(&|_| "\r\x1b[B".to_owned()))],
        // The first row is on the bottom row: going on scrolls it off.
        "scroll" => vec![format!("\x1b[{rows};1H{first}\r\n{right}\r\n$ ")],
        // As above, and a later frame scrolls the rest off too: the start
        // is no longer on the screen, only remembered.
        "scroll-then-frame" => vec![format!("\x1b[{rows};1H{first}\r\n{right}\r\n$ "), "\r\n".repeat(rows)],
        _ => unreachable!(),
    };
    let writes: Vec<&str> = writes.iter().map(String::as_str).collect();
    let shown = shown_over_frames(Size { rows: u16::try_from(rows).unwrap(), cols: u16::try_from(cols).unwrap() }, &writes);
    for piece in secret.as_bytes().windows(6) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(!shown.contains(piece), "{how}, split {split}: {piece:?} of {secret:?} is shown: {shown:?}");
    }
    assert!(shown.contains(&"*".repeat(secret.len())), "{how}, split {split}: {shown:?}");
}

#[test]
fn full_width_rows_that_do_not_join_into_a_secret_stay_as_they_are() {
    // A row ends on a token's prefix at the last column; the next row
    // starts with ordinary words: nothing is a secret.
    let shown = shown_over_frames(Size { rows: 4, cols: 20 }, &["we saw the key: AKIA\x1b[2;1Hand more text here"]);
    assert_eq!(shown.trim_end(), format!("{:<20}{:<20}", "we saw the key: AKIA", "and more text here").trim_end());
}
