//! The data channel: what the recorder keeps of a session without a
//! terminal (`ssh host cmd`, a script on stdin, scp, sftp, rsync, git),
//! whose bytes it passes on untouched.
//!
//! Pure cores, bytes in and records out; the copy loop that feeds them is
//! the recorder's (`recorder::channel`):
//!
//! - `stream`: one direction of the channel (stdin, stdout or stderr) as
//!   recordable pieces: masked text a line at a time, runs of binary bytes
//!   as their length and SHA-256, and whether the stream carries terminal
//!   control sequences (then it belongs to the screen pipeline);
//! - `transfer`: file transfers recognised by their command (scp, sftp,
//!   rsync, git) and described from what their protocol shows, instead of
//!   recorded byte for byte.

pub mod stream;
pub mod transfer;
