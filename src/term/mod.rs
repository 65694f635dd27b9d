//! The screen pipeline: terminal bytes in, a masked screen rendered out.
//!
//! - `screen`: the emulator behind our own small interface.
//! - `masker`: the secret detectors applied to the screen's cells.
//! - `render`: the screen drawn as bytes for one target (the user's
//!   terminal, the recording).
//! - `pipeline`: the three above run in one order (feed, cover, scrolled
//!   rows, frames to N targets, passthrough), used by the session,
//!   `custos mask` and the txt export.

pub mod masker;
pub mod pipeline;
pub mod render;
pub mod screen;
