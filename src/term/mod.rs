//! The screen pipeline: terminal bytes in, a masked screen rendered out.
//!
//! - `screen`: the emulator behind our own small interface.
//! - `masker`: the secret detectors applied to the screen's cells.
//! - `render`: the screen drawn as bytes for one target (the user's
//!   terminal, the recording).

pub mod masker;
pub mod render;
pub mod screen;
