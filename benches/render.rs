//! Benchmarks of the pure cores on the session's hot path: the emulator
//! (`Screen::process`) and the renderer (`Renderer::frame`).
//!
//! `cargo bench --bench render`. Plain timing loops (no external harness),
//! reporting MB/s for throughput and µs per frame for the echo path; the
//! machine is shared, so compare figures from one run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../tests/support/fixtures.rs"]
mod fixtures;

use std::hint::black_box;
use std::time::{Duration, Instant};

use custos::term::masker::Cover;
use custos::term::render::{Layout, Renderer, Scrolled};
use custos::term::screen::{Screen, Size};

/// Realistic terminal text like ptybench's: log lines with colours, long
/// wrapping lines, UTF-8 with wide characters, progress bars.
fn terminal_text(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 256);
    let mut i = 0u64;
    while out.len() < bytes {
        i += 1;
        let line = fixtures::terminal_line(i);
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn seq_text(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 16);
    let mut i = 0u64;
    while out.len() < bytes {
        i += 1;
        out.extend_from_slice(format!("{i}\r\n").as_bytes());
    }
    out
}

fn measure(name: &str, bytes: usize, mut f: impl FnMut()) {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
    }
    let mbs = bytes as f64 / 1e6 / best.as_secs_f64();
    println!("{name:<48} {mbs:8.1} MB/s  ({:.3} s per {} MB)", best.as_secs_f64(), bytes / 1_000_000);
}

fn main() {
    let size = Size { rows: 39, cols: 120 };
    let layout = Layout::for_terminal(40, 120, true);
    for (label, data) in [("realistic text", terminal_text(32_000_000)), ("seq (scroll-heavy)", seq_text(32_000_000))] {
        measure(&format!("emulator only, {label}"), data.len(), || {
            let mut screen = Screen::new(size);
            for chunk in data.chunks(4096) {
                for slice in chunk.chunks(512) {
                    screen.process(slice);
                    if screen.scrolled_len() >= 400 {
                        screen.clear_scrolled();
                    }
                }
            }
        });
        measure(&format!("emulator + both renderers, {label}"), data.len(), || flood(&data, size, layout, None));
        let masker = || custos::term::masker::Masker::new(&custos::mask::MaskingConfig::default()).unwrap();
        measure(&format!("emulator + masker + both renderers, {label}"), data.len(), || {
            flood(&data, size, layout, Some(masker()));
        });
    }

    // The echo path: one character typed at a prompt on a full screen.
    let mut screen = Screen::new(size);
    screen.process(&terminal_text(20_000));
    let mut term = Renderer::new(layout);
    let mut out = Vec::new();
    let scrolled = Scrolled::take(&screen, &Cover::none());
    screen.clear_scrolled();
    let damage = screen.take_damage();
    term.frame(&screen, &scrolled, &damage, &Cover::none(), Some("status"), &mut out);
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        screen.process(if i % 2 == 0 { b"x" } else { b"\x08 \x08" });
        out.clear();
        let damage = screen.take_damage();
        term.frame(&screen, &Scrolled::default(), &damage, &Cover::none(), Some("status"), &mut out);
        black_box(&out);
    }
    println!("{:<48} {:8.1} µs per keystroke frame", "echo frame (one changed cell)", t.elapsed().as_secs_f64() * 1e6 / f64::from(n));

    // The same with masking: the masker reads the whole screen each frame.
    let mut masker = custos::term::masker::Masker::new(&custos::mask::MaskingConfig::default()).unwrap();
    let t = Instant::now();
    for i in 0..n {
        screen.process(if i % 2 == 0 { b"x" } else { b"\x08 \x08" });
        out.clear();
        let damage = screen.take_damage();
        let (cover, _) = masker.cover(&screen, &damage, Instant::now());
        term.frame(&screen, &Scrolled::default(), &damage, &cover, Some("status"), &mut out);
        black_box(&out);
    }
    println!("{:<48} {:8.1} µs per keystroke frame", "echo frame, masking on", t.elapsed().as_secs_f64() * 1e6 / f64::from(n));

}

/// The session's output path over `data`: slices of 512 bytes, scrolled rows
/// flushed at 400, a frame to both renderers every 16 reads of 4 KiB (about
/// what a flood produces), with or without the masker.
fn flood(data: &[u8], size: Size, layout: Layout, mut masker: Option<custos::term::masker::Masker>) {
    let mut screen = Screen::new(size);
    let mut term = Renderer::new(layout);
    let mut rec = Renderer::new(Layout { status: false, ..layout });
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for frame in data.chunks(4096 * 16) {
        for slice in frame.chunks(512) {
            screen.process(slice);
            if screen.scrolled_len() >= 400 {
                let cover = masker.as_mut().map_or_else(Cover::none, |m| m.cover_scrolled(&screen));
                let scrolled = Scrolled::take(&screen, &cover);
                screen.clear_scrolled();
                term.push_scrolled(&scrolled, &mut a);
                rec.push_scrolled(&scrolled, &mut b);
            }
        }
        let damage = screen.take_damage();
        let cover = masker.as_mut().map_or_else(Cover::none, |m| m.cover(&screen, &damage, Instant::now()).0);
        let scrolled = Scrolled::take(&screen, &cover);
        screen.clear_scrolled();
        a.clear();
        b.clear();
        term.frame(&screen, &scrolled, &damage, &cover, Some("status"), &mut a);
        rec.frame(&screen, &scrolled, &damage, &cover, None, &mut b);
        black_box((&a, &b));
    }
}
