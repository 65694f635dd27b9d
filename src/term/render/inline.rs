//! Inline placement: a command's output drawn from wherever the target's
//! cursor is, as the command itself would have written it. It is the user's
//! terminal of `custos-shell -c` with a terminal (`ssh -tt host cmd`).
//!
//! A login takes the whole terminal (see [`Renderer::start`]): the pane is
//! drawn with absolute cursor positions and a status line below it. That
//! is noise to automation that forces a terminal to run one command. It
//! wants the command's output. So here the pane's rows are written from
//! wherever the cursor is, one after the other. Each new row is opened
//! with `\r\n`, as the command would have done, and the target is never
//! addressed absolutely.
//!
//! Rows already written are revisited with relative moves (`CUU`, `CUD`,
//! `CR`) and `CHA`. These stay within the *block*, the rows written so
//! far. The block is never taller than the target, because a row is opened
//! only at the block's bottom, and the target scrolls when the block
//! reaches its own bottom.
//!
//! For plain output (lines of text, colours, wrapped lines) the bytes are
//! the command's own: no cursor is hidden, no row erased that was blank.
//! Whatever else the command draws (a progress bar redrawn with `\r`, rows
//! rewritten by cursor motions) shows the same on the target, through the
//! same masked cells.
//!
//! Two cases leave this placement:
//! - The alternate screen is the whole target, so full-screen programs are
//!   drawn by the usual absolute renderer between `?1049h` and `?1049l`;
//!   the latter puts the cursor back into the block.
//! - A resize, or a status line that news brings, gives the target to the
//!   usual renderer for good (see [`Renderer::resize`]): the target
//!   reflowed the block its own way.

use alacritty_terminal::term::cell::Flags;

use super::{apply_cover, last_content, push_decimal, write_cells, Pen, Scrolled, Text};
use crate::term::masker::Cover;
use crate::term::screen::{is_spacer, is_wrapped, Cell, Damage, Screen};

#[cfg(doc)]
use super::Renderer;

/// What the target shows of the block, and where its cursor is.
pub(super) struct Inline {
    /// The target's rows for pane rows `0..shown.len()`, the block. An
    /// empty row is unknown (redrawn whole); a fresh row is blank cells.
    shown: Vec<Vec<Cell>>,
    /// Rows the last frame drew covered: compared again on the next.
    covered: Vec<bool>,
    /// Compare every row of the block on the next frame (it moved, or the
    /// caller lost track of the target).
    recheck: bool,
    /// The target's cursor row, in pane rows. It is `-1` or above when the
    /// rows it was on scrolled off the pane; it is still in the block.
    row: i32,
    /// The target's cursor column; `cols` when a row was written to its
    /// end and the next character wraps first.
    col: usize,
    cols: usize,
    /// The pane scrolled: the block is opened to the pane's height on the
    /// next frame. A screen scrolls only with its cursor on its last row,
    /// so the command's own bytes had taken as many rows of the target,
    /// whether or not the rows they passed through show anything (after
    /// `clear`, none do: the target then looks cleared too).
    fill: bool,
    /// The target's pen may be a wrapped row's, not the default: the next
    /// row of that line, written straight on, keeps it; anything else
    /// resets it first.
    carried_pen: bool,
}

impl Inline {
    /// The block starts as the row the cursor is on, taken to be blank
    /// from the cursor on, as a command would.
    pub(super) fn new(cols: u16) -> Self {
        let cols = usize::from(cols.max(1));
        Self { shown: vec![blank(cols)], covered: vec![false], recheck: false, row: 0, col: 0, cols, fill: false, carried_pen: false }
    }

    /// Forgets what the block shows: each of its rows is redrawn whole.
    pub(super) fn invalidate(&mut self) {
        for row in &mut self.shown {
            row.clear();
        }
        self.recheck = true;
    }

    /// Writes the rows that scrolled off the pane, in order: those the
    /// block shows are brought up to date, the others opened below it and
    /// written as the command wrote them. The block then loses them.
    pub(super) fn scrolled(&mut self, scrolled: &Scrolled, out: &mut Vec<u8>) {
        let count = scrolled.rows.len();
        if count == 0 {
            return;
        }
        let known = self.shown.len();
        // A pen carried over is a wrapped row's, written by the last call.
        let mut previous_wrapped = self.carried_pen;
        for (j, row) in scrolled.rows.iter().enumerate() {
            if j < known {
                if let Some(cells) = scrolled.head.get(j) {
                    self.draw_row(j, cells, out);
                }
                previous_wrapped = row.wrapped;
                continue;
            }
            // Only a character written makes the target wrap.
            let straight = previous_wrapped && row.cells > 0 && self.waits_to_wrap_below(j);
            if straight {
                self.wrap_onto(j, false);
            } else {
                self.reset_pen(out);
                self.goto(j, 0, false, out);
            }
            if !(straight && self.carried_pen) && row.pen != Pen::default() {
                row.pen.write(&mut Text(out));
            }
            out.extend_from_slice(scrolled.text.get(row.start..row.end).unwrap_or_default().as_bytes());
            self.col = row.cells.min(self.cols);
            // A line's last row ends with the pen reset (see `Scrolled`).
            self.carried_pen = row.wrapped;
            previous_wrapped = row.wrapped;
        }
        let gone = count.min(self.shown.len());
        self.shown.drain(..gone);
        self.covered.drain(..gone);
        self.row -= i32::try_from(count).unwrap_or(i32::MAX);
        self.recheck = true;
        self.fill = true;
    }

    /// Brings the block up to the screen: rows that changed, rows below it
    /// that now show something, then the cursor.
    pub(super) fn draw(&mut self, screen: &Screen, damage: &Damage, cover: &Cover, out: &mut Vec<u8>) {
        let rows = screen.size().rows;
        let (cursor_row, cursor_col) = screen.cursor();
        // Rows below the block are opened down to the last that shows
        // something, or the cursor's. Those rows were blank at the last
        // frame (it opened every row that was not), so only rows changed
        // since are looked at: a key echoed scans one row, not the screen.
        let below = u16::try_from(self.shown.len()).unwrap_or(u16::MAX);
        let recheck = self.recheck;
        let last_used = (below..rows)
            .rev()
            .find(|&r| (recheck || damage.row(r)) && screen.row(r).is_some_and(|cells| last_content(cells).is_some()));
        let wanted = last_used.map_or(cursor_row, |r| r.max(cursor_row));
        let mut masked = Vec::new();
        for r in 0..rows {
            let in_block = usize::from(r) < self.shown.len();
            if !in_block && r > wanted {
                break;
            }
            let covered = cover.touches(r);
            let was_covered = self.covered.get(usize::from(r)).copied().unwrap_or(false);
            if in_block && !self.recheck && !damage.row(r) && !covered && !was_covered {
                continue;
            }
            let Some(cells) = screen.row(r) else { break };
            let cells = apply_cover(cells, cover.row(r), cover.withheld_on(r), cover.glyph, &mut masked);
            self.draw_row(usize::from(r), cells, out);
            if let Some(flag) = self.covered.get_mut(usize::from(r)) {
                *flag = covered;
            }
        }
        self.recheck = false;
        self.reset_pen(out);
        if std::mem::take(&mut self.fill) && self.shown.len() < usize::from(rows) {
            self.goto(usize::from(rows) - 1, 0, true, out);
        }
        // A row just written to its end: the screen's cursor waits to wrap,
        // and so must the target's (its last cell is written again if the
        // frame did not end there), since no move can make it wait.
        let row = usize::from(cursor_row);
        if screen.wrap_pending() && !self.waits_to_wrap_on(row) {
            if let Some(cells) = screen.row(cursor_row) {
                let cells = apply_cover(cells, cover.row(cursor_row), cover.withheld_on(cursor_row), cover.glyph, &mut masked);
                let cells = cells.get(..self.cols).unwrap_or(cells);
                let mut last = cells.len().saturating_sub(1);
                while last > 0 && cells.get(last).is_some_and(is_spacer) {
                    last -= 1;
                }
                self.goto(row, last, true, out);
                self.write_span(cells, last, cells.len() - 1, out);
            }
        }
        let col = if screen.wrap_pending() && self.waits_to_wrap_on(row) { self.cols } else { usize::from(cursor_col) };
        self.goto(row, col, true, out);
    }

    /// Writes cells `first..=end` at the target's cursor, from the default
    /// pen and back to it.
    fn write_span(&mut self, cells: &[Cell], first: usize, end: usize, out: &mut Vec<u8>) {
        let mut pen = Some(Pen::default());
        let mut text = String::new();
        write_cells(cells.get(first..=end).unwrap_or_default(), &mut pen, &mut text);
        out.extend_from_slice(text.as_bytes());
        let wide = cells.get(end).is_some_and(|c| c.flags.contains(Flags::WIDE_CHAR));
        self.col = (end + 1 + usize::from(wide)).min(self.cols);
        if pen.is_some_and(|p| p != Pen::default()) {
            out.extend_from_slice(b"\x1b[0m");
        }
    }

    /// Draws what changed in row `r` (of the block, or the next below it)
    /// since the target last showed it.
    fn draw_row(&mut self, r: usize, cells: &[Cell], out: &mut Vec<u8>) {
        let cells = cells.get(..self.cols).unwrap_or(cells);
        let fresh;
        let shown = match self.shown.get(r) {
            Some(row) => row.as_slice(),
            None => {
                fresh = blank(self.cols);
                fresh.as_slice()
            }
        };
        let whole = cells.len() != shown.len();
        let first = if whole { Some(0) } else { cells.iter().zip(shown).position(|(a, b)| a != b) };
        let Some(mut first) = first else { return };
        let last_changed = if whole {
            cells.len().saturating_sub(1)
        } else {
            cells.iter().zip(shown).rposition(|(a, b)| a != b).unwrap_or(first)
        };
        // Never start drawing on the right half of a wide character.
        while first > 0 && cells.get(first).is_some_and(is_spacer) {
            first -= 1;
        }
        let content_end = last_content(cells);
        let draw_end = content_end.map(|end| end.min(last_changed)).filter(|&end| end >= first);
        // Everything after the last cell that shows something is blank.
        let erase = content_end.is_none_or(|end| last_changed > end);

        // The next row of a wrapped line, after its previous row was
        // written to the end, is written straight on: the target wraps.
        let straight = first == 0
            && draw_end.is_some()
            && r > 0
            && self.shown.get(r - 1).is_some_and(|above| is_wrapped(above))
            && self.waits_to_wrap_below(r);
        if straight {
            self.wrap_onto(r, true);
        } else {
            self.reset_pen(out);
            self.goto(r, first, true, out);
        }
        self.reset_pen(out);
        if let Some(end) = draw_end {
            self.write_span(cells, first, end, out);
        }
        if erase {
            out.extend_from_slice(b"\x1b[K");
        }
        if let Some(row) = self.shown.get_mut(r) {
            row.clear();
            row.extend_from_slice(cells);
        }
    }

    /// The target's cursor waits to wrap at the end of the row above `r`,
    /// the block's last row or one it shows.
    fn waits_to_wrap_below(&self, r: usize) -> bool {
        self.col == self.cols && i32::try_from(r).is_ok_and(|r| self.row + 1 == r) && r <= self.shown.len()
    }

    fn waits_to_wrap_on(&self, r: usize) -> bool {
        self.col == self.cols && i32::try_from(r).is_ok_and(|r| self.row == r)
    }

    /// The target wrapped onto row `r` by itself (a character was written
    /// past the end of the row above): the cursor is at its start.
    fn wrap_onto(&mut self, r: usize, keep: bool) {
        if r == self.shown.len() {
            self.shown.push(if keep { blank(self.cols) } else { Vec::new() });
            self.covered.push(false);
        }
        self.row += 1;
        self.col = 0;
    }

    /// Moves the target's cursor to row `r`, column `col` (`cols`: stay
    /// waiting to wrap, if it is). Rows below the block are opened with
    /// `\r\n`, each a fresh blank row (`keep`) or one about to scroll off
    /// the block (not kept).
    fn goto(&mut self, r: usize, col: usize, keep: bool, out: &mut Vec<u8>) {
        let target = i32::try_from(r).unwrap_or(i32::MAX);
        let bottom = i32::try_from(self.shown.len()).unwrap_or(i32::MAX) - 1;
        if target > bottom {
            self.vertical(bottom, out);
            for _ in bottom..target {
                out.extend_from_slice(b"\r\n");
                self.shown.push(if keep { blank(self.cols) } else { Vec::new() });
                self.covered.push(false);
            }
            self.row = target;
            self.col = 0;
        } else {
            self.vertical(target, out);
        }
        self.horizontal(col, out);
    }

    fn vertical(&mut self, row: i32, out: &mut Vec<u8>) {
        if row == self.row {
            return;
        }
        // Terminals differ on whether `CUU` ends a wait to wrap (xterm's
        // does, `vt100`'s does not): `CR` ends it on all.
        if self.col == self.cols {
            out.push(b'\r');
            self.col = 0;
        }
        out.extend_from_slice(b"\x1b[");
        push_decimal(out, usize::try_from((row - self.row).unsigned_abs()).unwrap_or(usize::MAX));
        out.push(if row < self.row { b'A' } else { b'B' });
        self.row = row;
    }

    /// Column moves are absolute within the row (`CR`, `CHA`), so a width
    /// the target counts differently (an ambiguous-width character) costs
    /// that row, not the rest of the frame.
    fn horizontal(&mut self, col: usize, out: &mut Vec<u8>) {
        if col == self.col {
            return;
        }
        if col == 0 {
            out.push(b'\r');
        } else {
            let col = col.min(self.cols - 1);
            out.extend_from_slice(b"\x1b[");
            push_decimal(out, col + 1);
            out.push(b'G');
        }
        self.col = col.min(self.cols - 1);
    }

    fn reset_pen(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.carried_pen) {
            out.extend_from_slice(b"\x1b[0m");
        }
    }
}

fn blank(cols: usize) -> Vec<Cell> {
    vec![Cell::default(); cols]
}
