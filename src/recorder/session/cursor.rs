//! Where the user's terminal has its cursor as an interactive session
//! starts, so that the shell starts below what the terminal already shows
//! (the message of the day, the last-login line) instead of pushing it out
//! of view. The terminal is asked once (DSR 6, `ESC [ 6 n`) and answers
//! `ESC [ row ; column R` on its input, among whatever the user typed
//! ahead, which is kept for the shell.
//!
//! A terminal that does not answer in time gets the start it always got
//! (the screen scrolled away). Its answer, should it come late, is taken
//! out of the input for a while rather than typed at the shell.

use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The longest a login waits for the answer: a terminal answers within a
/// network round trip.
pub const WAIT: Duration = Duration::from_millis(300);

/// How long after [`WAIT`] a late answer is still taken out of the input.
pub const LATE: Duration = Duration::from_secs(5);

/// The first cursor position report in `bytes`: where it is, and the
/// (row, column) it reports, 1-based.
pub fn find_report(bytes: &[u8]) -> Option<(Range<usize>, (u16, u16))> {
    let mut from = 0;
    while let Some(at) = bytes.get(from..).and_then(|b| memchr::memchr(0x1b, b)).map(|i| i + from) {
        if let Some(found) = report_at(bytes, at) {
            return Some(found);
        }
        from = at + 1;
    }
    None
}

/// A report starting at `at` (`ESC [ digits ; digits R`).
fn report_at(bytes: &[u8], at: usize) -> Option<(Range<usize>, (u16, u16))> {
    let rest = bytes.get(at..)?;
    let body = rest.strip_prefix(b"\x1b[")?;
    let (row, after) = number(body)?;
    let after = after.strip_prefix(b";")?;
    let (col, after) = number(after)?;
    after.first().filter(|&&b| b == b'R')?;
    let len = rest.len() - after.len() + 1;
    Some((at..at + len, (row, col)))
}

/// Leading decimal digits (1 to 5 of them) as a number, and what follows.
fn number(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 5 {
        return None;
    }
    let (text, rest) = bytes.split_at(digits);
    let n = std::str::from_utf8(text).ok()?.parse().ok()?;
    Some((n, rest))
}

/// Asks the terminal where its cursor is and waits up to [`WAIT`] for
/// the answer. Answers the position, if it came, and the other bytes read
/// meanwhile, in order.
pub fn ask(input: BorrowedFd<'_>, output: BorrowedFd<'_>) -> (Option<(u16, u16)>, Vec<u8>) {
    let mut typed = Vec::new();
    if nix::unistd::write(output, b"\x1b[6n").is_err() {
        return (None, typed);
    }
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (None, typed);
        }
        let mut fds = [PollFd::new(input, PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO);
        match poll(&mut fds, timeout) {
            Ok(0) => return (None, typed),
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => return (None, typed),
        }
        match nix::unistd::read(input, &mut buf) {
            Ok(0) => return (None, typed),
            Ok(n) => typed.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => continue,
            Err(_) => return (None, typed),
        }
        if let Some((range, position)) = find_report(&typed) {
            typed.drain(range);
            return (Some(position), typed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_found_among_typed_keys() {
        assert_eq!(find_report(b"\x1b[12;1R"), Some((0..7, (12, 1))));
        assert_eq!(find_report(b"ls\x1b[3;40Rx"), Some((2..9, (3, 40))));
        // An arrow key before it is not a report.
        assert_eq!(find_report(b"\x1b[A\x1b[5;1R"), Some((3..9, (5, 1))));
    }

    #[test]
    fn anything_else_is_not_a_report() {
        for bytes in [&b""[..], b"\x1b[", b"\x1b[12;R", b"\x1b[;1R", b"\x1b[1;2", b"\x1b[123456;1R", b"\x1b[1;1r", b"\x1b[1:1R"] {
            assert_eq!(find_report(bytes), None, "{bytes:?}");
        }
    }
}
