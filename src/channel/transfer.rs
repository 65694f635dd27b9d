//! File transfers, described rather than dumped.
//!
//! When sshd runs `custos-shell -c '<command>'` for scp, sftp, rsync or git,
//! the bytes on the channel are file contents: recording them would copy
//! every transferred file into the evidence store, and an auditor cannot read
//! them anyway. This module owns what is kept instead: a [`Transfer`] record
//! with the protocol, the direction, the paths and sizes the protocol shows,
//! the SHA-256 of each file's bytes where the protocol carries them whole
//! (so a copy of the file the user kept can be matched against the
//! session), the byte count and SHA-256 of each direction's whole stream,
//! and the protocol's own complaints.
//!
//! It is a pure core: [`recognise`] reads the `-c` command line, and an
//! [`Observer`] is fed every byte of the command's stdin ([`Observer::input`]),
//! stdout ([`Observer::output`]) and stderr ([`Observer::log`]) by the
//! recorder, which passes the bytes on untouched and writes what
//! [`Observer::finish`] returns into the recording. Memory is bounded whatever
//! the peer sends: protocol lines, paths, sftp packets and the bytes held
//! for them, the file list and the notes all have caps (the `MAX_*`
//! constants), and a stream that breaks the protocol stops the parser (the
//! reason is kept in [`Transfer::incomplete`]) while counting and hashing
//! the whole streams go on.
//!
//! A file's hash ([`FileEntry::sha256`]) is of its bytes as they crossed
//! the channel: the user's copy for an upload, what the client received for
//! a download. It is given only when every byte from the first to the last
//! was seen, each once; otherwise the entry has none, and for sftp a note
//! says why. A missing hash is never a guess: no hash is better than the
//! hash of something else.
//!
//! # What each protocol shows
//!
//! - **scp** (the legacy protocol, `scp -O`; the server runs `scp -t TARGET`
//!   to receive or `scp -f SOURCE…` to send). The sending side's control
//!   lines are parsed: `C<mode> <size> <name>` (a file, whose `size` data
//!   bytes and a status byte follow), `D<mode> 0 <name>` and `E` (into and out
//!   of a directory), `T…` (times, ignored), and `\x01`/`\x02` lines (warnings
//!   and errors); the other direction's status bytes are parsed for their
//!   messages. Paths are the target (or source) argument joined with the D/E
//!   nesting. The core cannot stat: an upload to `scp -t /x` lands at `/x`
//!   when `/x` is not an existing directory and at `/x/NAME` when it is, so
//!   unless the target is known to be a directory (trailing `/`, `-d`, `.`)
//!   the record gives `/x` and keeps the name the protocol sent in
//!   [`FileEntry::name`]. The `size` bytes after a `C` line are the file:
//!   they are hashed, and the hash is kept when the status byte after them
//!   is `\0` (a source that could not read the file sends padding and a
//!   message instead; a stream that ends inside the file leaves no hash).
//! - **sftp** (`…/sftp-server`, which is also what OpenSSH 9's `scp` speaks
//!   by default). The file list comes from the server's own log, which
//!   [`Recognised::command_line`] switches on (`-e -l INFO`) and the
//!   recorder takes from stderr instead of forwarding it. The log is the
//!   server's word of what it did, which the client cannot forge. The SFTP
//!   packets (version 3, draft-ietf-secsh-filexfer-02) are read only for
//!   the files' bytes (see `SftpPackets`): the client's WRITEs for an
//!   upload, the server's DATA replies to READs for a download. A file's
//!   hash is given to the log's entry for its `close` when the bytes were
//!   contiguous from offset 0 and as many as the log says were read or
//!   written: a resumed transfer (starting past 0), a gap, bytes sent
//!   twice, a file both read and written, or more than
//!   [`MAX_SFTP_AHEAD_FILE`] bytes waiting for a gap to fill leave it
//!   without, with a note. `opened` entries (nothing read or written) have
//!   none. A packet longer than [`MAX_SFTP_PACKET`], one too short for its
//!   fields, or a request type sftp-server does not know stops the packet
//!   reading (in [`Transfer::incomplete`]): the list from the log is
//!   whole, the files after that point have no hash. Parsed log lines:
//!   `open`/`close` (direction and size from
//!   `bytes read N written M`; a file opened and never closed is kept, size
//!   unknown), `opendir`, `remove`, `mkdir`, `rmdir`, `rename`,
//!   `posix-rename`, `symlink`, `hardlink`, and `sent status` (a failure,
//!   kept as a note). `set` lines (chmod, times) and session lines are not
//!   kept. sftp-server escapes bytes outside printable ASCII as `\ooo` and `\`
//!   as `\\` (undone here), but leaves newlines as they are and ends its lines
//!   with `\r\n`, which is what lines are split on. It cuts a log line at
//!   about 1 KiB, so a longer path is kept cut, with a note.
//!   **`Subsystem sftp internal-sftp` in sshd_config bypasses the login shell
//!   entirely**: nothing reaches custos. Operators must configure the
//!   sftp-server program (`Subsystem sftp /usr/lib/openssh/sftp-server`).
//! - **rsync** (`rsync --server [--sender] … . PATHS…`): the direction and
//!   the paths from the command line. rsync's own protocol (the file list,
//!   the deltas) is not parsed: the paths are the roots the client named.
//!   No file has a hash: rsync sends deltas against the receiver's copy
//!   (and compresses them), so a file's bytes never cross whole.
//! - **git** (`git-upload-pack 'REPO'`, a clone or fetch, and
//!   `git-receive-pack 'REPO'`, a push; also `git upload-pack …`): the
//!   repository from the command line, and for a push the ref updates (the
//!   pkt-lines `OLD NEW REF` before the pack), each with its new object id.
//!   The pack itself is not parsed, and no entry has a hash: a pack holds
//!   compressed, delta-encoded objects, not files (the object ids name
//!   the content instead).
//!
//! # Trust boundary
//!
//! [`recognise`] only accepts a single simple command: a line with shell
//! metacharacters, expansions, a comment or a newline outside quotes is not a
//! transfer (`scp -t /x; rm -rf /` must not be described as an upload), and
//! is then recorded as any other command. Globs and `~` are left to the
//! shell, so the record shows them unexpanded. scp's control lines and git's
//! commands come from the client, but they are what the server acts on; a
//! line the server refused still appears, with the server's refusal in the
//! notes.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Files kept in a record; more are counted in [`Transfer::files_omitted`].
pub const MAX_FILES: usize = 10_000;
/// Bytes of path text kept over all files, so 10,000 long paths stay small.
pub const MAX_FILES_TEXT: usize = 1 << 20;
/// Notes kept in a record; more are counted in [`Transfer::notes_omitted`].
pub const MAX_NOTES: usize = 100;
/// Characters kept of one note.
pub const MAX_NOTE_CHARS: usize = 1024;
/// Longest protocol line buffered: an scp control line, an scp status
/// message, an sftp-server log line (which cuts its own at about 1 KiB).
pub const MAX_LINE: usize = 8192;
/// Longest path built from scp's directory nesting.
pub const MAX_PATH: usize = 16 * 1024;
/// sftp files open at once that are remembered until their `close`.
pub const MAX_OPEN: usize = 1024;
/// The largest pkt-line git sends (its `LARGE_PACKET_MAX`).
const MAX_PKT: usize = 65520;
/// Paths shown in [`Transfer::summary`] before "and N more".
const SUMMARY_PATHS: usize = 3;
/// Characters of one path in the summary.
const SUMMARY_PATH_CHARS: usize = 200;

/// A transfer protocol that custos recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The legacy scp protocol (`scp -t`, `scp -f`).
    Scp,
    /// sftp-server (sftp, and OpenSSH 9's scp).
    Sftp,
    /// `rsync --server`.
    Rsync,
    /// `git-upload-pack`: clone or fetch.
    GitUpload,
    /// `git-receive-pack`: push.
    GitReceive,
}

impl Protocol {
    /// The name in the record.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Scp => "scp",
            Protocol::Sftp => "sftp",
            Protocol::Rsync => "rsync",
            Protocol::GitUpload => "git-upload-pack",
            Protocol::GitReceive => "git-receive-pack",
        }
    }
}

/// Why an observer stopped reading a protocol (it still counts and hashes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("an scp control line is longer than {MAX_LINE} bytes")]
    ScpLineTooLong,
    #[error("an scp control line is not one of C, D, E, T or a message: {0:?}")]
    ScpBadLine(String),
    #[error("an scp path is longer than {MAX_PATH} bytes")]
    ScpPathTooLong,
    #[error("a git pkt-line length is not valid: {0:?}")]
    GitBadPktLength(String),
    #[error("the stream ended inside {path:?}, after {got} of {size} bytes")]
    EndedInsideFile { path: String, got: u64, size: u64 },
    #[error("the stream ended inside an scp control line")]
    EndedInsideLine,
    #[error("an sftp packet claims {0} bytes (at most {MAX_SFTP_PACKET}); sftp files after it have no hash")]
    SftpPacketLength(u32),
    #[error("an sftp packet of type {0} is shorter than its fields; sftp files after it have no hash")]
    SftpShortPacket(u8),
    #[error("an sftp handle is longer than {MAX_SFTP_HANDLE} bytes; sftp files after it have no hash")]
    SftpHandleTooLong,
    #[error("more than {MAX_SFTP_PENDING} sftp requests were awaiting their reply; sftp files after that have no hash")]
    SftpTooManyPending,
    #[error("an sftp request of unknown type {0} (sftp-server's handling of the packets after it is not known); sftp files after it have no hash")]
    SftpUnknownRequest(u8),
}

/// A command line recognised as a transfer, and how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognised {
    pub protocol: Protocol,
    /// What the command line showed: scp's target or sources, rsync's
    /// arguments, git's repository; empty for sftp.
    pub arguments: Vec<String>,
    role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    ScpSink { target: String, target_is_dir: bool },
    ScpSource { sources: Vec<String> },
    /// The command line to run instead, when the log switches had to be added.
    Sftp { rewritten: Option<Vec<String>> },
    Rsync { sender: bool, paths: Vec<String> },
    GitUpload,
    GitReceive,
}

/// Recognises a transfer by the `-c` command line sshd passes to the login
/// shell. `None` for anything else, including compound lines.
pub fn recognise(command_line: &str) -> Option<Recognised> {
    let words = split_words(command_line)?;
    let (program, args) = words.split_first()?;
    let base = program.rsplit('/').next().unwrap_or(program);
    match base {
        "scp" => recognise_scp(args),
        "sftp-server" => Some(recognise_sftp(program, args)),
        "rsync" => recognise_rsync(args),
        "git-upload-pack" => recognise_git(Protocol::GitUpload, args),
        "git-receive-pack" => recognise_git(Protocol::GitReceive, args),
        "git" => match args.split_first() {
            Some((sub, rest)) if sub == "upload-pack" => recognise_git(Protocol::GitUpload, rest),
            Some((sub, rest)) if sub == "receive-pack" => recognise_git(Protocol::GitReceive, rest),
            _ => None,
        },
        _ => None,
    }
}

impl Recognised {
    /// The command line to run instead, if it must change: sftp-server gets
    /// `-e -l INFO` so that it logs every open, close, rename, remove and
    /// mkdir to stderr. The user's other arguments are kept; `-e` is not added
    /// twice, and a `-l` of INFO or more detail is kept (a weaker one, which
    /// would hide the file operations, is overridden: the last `-l` wins).
    pub fn command_line(&self) -> Option<String> {
        match &self.role {
            Role::Sftp { rewritten: Some(words) } => Some(join_words(words)),
            _ => None,
        }
    }

    /// True when stderr carries the protocol's own log that we asked for
    /// (sftp-server, always run with `-e`): the recorder swallows it instead
    /// of forwarding it to the client, and feeds it to [`Observer::log`].
    pub fn log_on_stderr(&self) -> bool {
        matches!(self.role, Role::Sftp { .. })
    }
}

fn recognise_scp(args: &[String]) -> Option<Recognised> {
    let (mut sink, mut source, mut dir_flag) = (false, false, false);
    let mut operands = Vec::new();
    let mut rest = args.iter();
    for arg in rest.by_ref() {
        if arg == "--" {
            break;
        }
        match arg.strip_prefix('-') {
            Some(flags) if !flags.is_empty() => {
                for flag in flags.chars() {
                    match flag {
                        't' => sink = true,
                        'f' => source = true,
                        'd' => dir_flag = true,
                        // Recursive, preserve times, verbose: they change
                        // nothing the parser needs to know.
                        'r' | 'p' | 'v' => {}
                        _ => return None,
                    }
                }
            }
            _ => operands.push(arg.clone()),
        }
    }
    operands.extend(rest.cloned());
    let role = match (sink, source, operands.as_slice()) {
        (true, false, [target]) => Role::ScpSink {
            target_is_dir: dir_flag || target.ends_with('/') || target == "." || target == "..",
            target: target.clone(),
        },
        (false, true, [_, ..]) => Role::ScpSource { sources: operands.clone() },
        _ => return None,
    };
    Some(Recognised { protocol: Protocol::Scp, arguments: operands, role })
}

/// sftp-server's options (its getopt string is `d:f:l:P:p:Q:u:cehR`).
fn recognise_sftp(program: &str, args: &[String]) -> Recognised {
    const WITH_VALUE: &str = "dflPpQu";
    let (mut has_e, mut level) = (false, None::<String>);
    let mut end = args.len();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            end = i;
            break;
        }
        let flags = arg.get(1..).unwrap_or("");
        for (at, flag) in flags.char_indices() {
            if WITH_VALUE.contains(flag) {
                let inline = flags.get(at + flag.len_utf8()..).unwrap_or("");
                let value = if inline.is_empty() {
                    i += 1;
                    args.get(i).cloned()
                } else {
                    Some(inline.to_string())
                };
                if flag == 'l' {
                    level = value;
                }
                break;
            }
            if flag == 'e' {
                has_e = true;
            }
        }
        i += 1;
    }
    let detailed = level.as_deref().is_some_and(|l| {
        ["INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3"]
            .iter()
            .any(|known| l.eq_ignore_ascii_case(known))
    });
    let mut added: Vec<String> = Vec::new();
    if !has_e {
        added.push("-e".into());
    }
    if !detailed {
        added.extend(["-l".into(), "INFO".into()]);
    }
    let rewritten = (!added.is_empty()).then(|| {
        // Inserted where the options end, so that getopt still sees them
        // and, being later, they win over a weaker `-l`.
        let (options, operands) = args.split_at(end.min(args.len()));
        std::iter::once(program.to_string())
            .chain(options.iter().cloned())
            .chain(added)
            .chain(operands.iter().cloned())
            .collect()
    });
    Recognised { protocol: Protocol::Sftp, arguments: Vec::new(), role: Role::Sftp { rewritten } }
}

fn recognise_rsync(args: &[String]) -> Option<Recognised> {
    if args.first().map(String::as_str) != Some("--server") {
        return None;
    }
    let dot = args.iter().position(|a| a == ".");
    let options = args.get(..dot.unwrap_or(args.len())).unwrap_or(&[]);
    let paths = dot.and_then(|d| args.get(d + 1..)).unwrap_or(&[]).to_vec();
    let sender = options.iter().any(|a| a == "--sender");
    Some(Recognised { protocol: Protocol::Rsync, arguments: args.to_vec(), role: Role::Rsync { sender, paths } })
}

fn recognise_git(protocol: Protocol, args: &[String]) -> Option<Recognised> {
    let mut repos = args.iter().filter(|a| !a.starts_with("--"));
    let repo = repos.next()?;
    if repos.next().is_some() {
        return None;
    }
    let role = if protocol == Protocol::GitUpload { Role::GitUpload } else { Role::GitReceive };
    Some(Recognised { protocol, arguments: vec![repo.clone()], role })
}

/// Splits a simple command into words the way the shell would, or `None` if
/// it is not one: shell metacharacters, `$` and backquote expansions (also
/// inside double quotes), a comment, a newline outside quotes or an
/// unterminated quote.
fn split_words(line: &str) -> Option<Vec<String>> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = Quote::None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match quote {
            Quote::Single => {
                if c == '\'' {
                    quote = Quote::None;
                } else {
                    word.push(c);
                }
            }
            Quote::Double => match c {
                '"' => quote = Quote::None,
                '$' | '`' => return None,
                '\\' => match chars.next()? {
                    n @ ('$' | '`' | '"' | '\\') => word.push(n),
                    '\n' => return None,
                    n => {
                        word.push('\\');
                        word.push(n);
                    }
                },
                _ => word.push(c),
            },
            Quote::None => match c {
                ' ' | '\t' => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                '\n' | ';' | '|' | '&' | '$' | '`' | '<' | '>' | '(' | ')' => return None,
                '#' if !in_word => return None,
                '\'' => {
                    quote = Quote::Single;
                    in_word = true;
                }
                '"' => {
                    quote = Quote::Double;
                    in_word = true;
                }
                '\\' => match chars.next()? {
                    '\n' => return None,
                    n => {
                        word.push(n);
                        in_word = true;
                    }
                },
                _ => {
                    word.push(c);
                    in_word = true;
                }
            },
        }
    }
    if quote != Quote::None {
        return None;
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// Joins words into a command line the shell splits back into the same words.
fn join_words(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars().all(|c| c.is_ascii_alphanumeric() || "_./=:,+@%-".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect();
    quoted.join(" ")
}

/// What a transfer did, as written into the recording.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Transfer {
    /// `scp`, `sftp`, `rsync`, `git-upload-pack` or `git-receive-pack`.
    pub protocol: &'static str,
    /// `upload` (to this host), `download` (from it), `both` or `none`.
    pub direction: &'static str,
    /// At most [`MAX_FILES`] entries (and [`MAX_FILES_TEXT`] bytes of paths).
    pub files: Vec<FileEntry>,
    pub files_omitted: u64,
    /// Bytes client to server (the command's stdin).
    pub bytes_in: u64,
    /// Bytes server to client (the command's stdout).
    pub bytes_out: u64,
    /// SHA-256 of the whole stdin stream, lowercase hex: rsync and git,
    /// whose files are not hashed one by one (absent for scp and sftp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256_in: Option<String>,
    /// SHA-256 of the whole stdout stream, as `sha256_in`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256_out: Option<String>,
    /// What the command line showed: scp's target or sources, rsync's
    /// arguments, git's repository.
    pub arguments: Vec<String>,
    /// What the protocol complained of: scp's warnings and errors, sftp-server's
    /// failure statuses and log lines not understood. At most [`MAX_NOTES`].
    pub notes: Vec<String>,
    pub notes_omitted: u64,
    /// Why the protocol stopped being read before its end, if it did: the
    /// file list is then partial (the byte counts and stream hashes are
    /// not). For sftp the list, from the server's log, is whole, and the
    /// files after that point have no [`FileEntry::sha256`].
    pub incomplete: Option<String>,
}

/// One file (or directory, or ref) the protocol showed.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    /// Bytes of file data, when the protocol says.
    pub size: Option<u64>,
    /// `upload`, `download`, `both` (an sftp file both read and written),
    /// `opened` (nothing read or written), `mkdir`, `rmdir`, `remove`,
    /// `rename`, `symlink`, `link`, `list`, or for git `ref-create`,
    /// `ref-update`, `ref-delete`.
    pub direction: &'static str,
    /// The new path of a rename or link, the new object id of a git ref.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// scp: the name the protocol sent, when `path` does not end with it
    /// (an upload to a target that may or may not be a directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SHA-256 of the file's bytes as they crossed the channel, lowercase
    /// hex: set only when every byte from the first to the last was seen,
    /// once (scp and sftp; rsync and git never carry a file whole). See the
    /// module doc.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl FileEntry {
    fn new(path: String, size: Option<u64>, direction: &'static str) -> Self {
        FileEntry { path, size, direction, to: None, name: None, sha256: None }
    }
}

impl Transfer {
    /// One line for the recording's marker, which the collector indexes for
    /// search: protocol, direction, the first few paths, then "and N more",
    /// and the bytes each way.
    pub fn summary(&self) -> String {
        let mut line = format!("{} {}", self.protocol, self.direction);
        let shown: Vec<String> = if self.files.is_empty() {
            self.arguments.iter().take(SUMMARY_PATHS).map(|a| one_line(a)).collect()
        } else {
            self.files.iter().take(SUMMARY_PATHS).map(|f| self.describe(f)).collect()
        };
        if !shown.is_empty() {
            line.push_str(": ");
            line.push_str(&shown.join(", "));
        }
        let total = if self.files.is_empty() { self.arguments.len() as u64 } else { self.files.len() as u64 + self.files_omitted };
        let more = total.saturating_sub(shown.len() as u64);
        if more > 0 {
            line.push_str(&format!(" and {more} more"));
        }
        line.push_str(&format!("; {} bytes in, {} bytes out", self.bytes_in, self.bytes_out));
        line
    }

    fn describe(&self, file: &FileEntry) -> String {
        let mut text = String::new();
        if file.direction != self.direction {
            text.push_str(file.direction);
            text.push(' ');
        }
        text.push_str(&one_line(&file.path));
        if let Some(to) = &file.to {
            text.push_str(" -> ");
            text.push_str(&one_line(to));
        }
        if let Some(size) = file.size {
            text.push_str(&format!(" ({size} bytes)"));
        }
        text
    }
}

/// A path on one line, control characters escaped, cut to a readable length.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == SUMMARY_PATH_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Watches one transfer's streams and builds its [`Transfer`].
pub struct Observer {
    protocol: Protocol,
    arguments: Vec<String>,
    fixed_direction: Option<&'static str>,
    input: Tally,
    output: Tally,
    book: Book,
    parser: Parser,
}

/// A stream's byte count, and its hash when the protocol gives no file's
/// own: SHA-256 runs at the hardware's speed and is most of the
/// recorder's CPU on a transfer, so the bytes of scp and sftp, which are
/// hashed per file, are not hashed a second time as a stream.
struct Tally {
    bytes: u64,
    hash: Option<Sha256>,
}

impl Tally {
    fn new(hashed: bool) -> Self {
        Tally { bytes: 0, hash: hashed.then(Sha256::new) }
    }

    fn add(&mut self, bytes: &[u8]) {
        self.bytes = self.bytes.saturating_add(bytes.len() as u64);
        if let Some(hash) = &mut self.hash {
            hash.update(bytes);
        }
    }

    fn hex(self) -> Option<String> {
        self.hash.map(|h| hex(h.finalize().as_slice()))
    }
}

/// Lowercase hex, as every hash in the record is written.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

enum Parser {
    /// scp: control lines on one stream, status bytes on the other.
    Scp { control: ScpControl, status: ScpStatus, control_is_input: bool },
    /// sftp: the server's log on stderr, the packets for the files' hashes.
    Sftp(SftpLog, Box<SftpPackets>),
    GitReceive(PktCommands),
    Nothing,
}

impl Observer {
    pub fn new(r: Recognised) -> Self {
        let mut book = Book::default();
        let (fixed_direction, parser) = match r.role {
            Role::ScpSink { target, target_is_dir } => (
                Some("upload"),
                Parser::Scp {
                    control: ScpControl::new(ScpRoot::Target { target, is_dir: target_is_dir }),
                    status: ScpStatus::default(),
                    control_is_input: true,
                },
            ),
            Role::ScpSource { sources } => (
                Some("download"),
                Parser::Scp {
                    control: ScpControl::new(ScpRoot::Sources(sources)),
                    status: ScpStatus::default(),
                    control_is_input: false,
                },
            ),
            Role::Sftp { .. } => (None, Parser::Sftp(SftpLog::default(), Box::default())),
            Role::Rsync { sender, paths } => {
                let direction = if sender { "download" } else { "upload" };
                for path in paths {
                    book.file(FileEntry::new(path, None, direction));
                }
                (Some(direction), Parser::Nothing)
            }
            Role::GitUpload => (Some("download"), Parser::Nothing),
            Role::GitReceive => (Some("upload"), Parser::GitReceive(PktCommands::default())),
        };
        let stream_hashed = !matches!(parser, Parser::Scp { .. } | Parser::Sftp(..));
        Observer {
            protocol: r.protocol,
            arguments: r.arguments,
            fixed_direction,
            input: Tally::new(stream_hashed),
            output: Tally::new(stream_hashed),
            book,
            parser,
        }
    }

    /// Client to server: the command's stdin.
    pub fn input(&mut self, bytes: &[u8]) {
        self.input.add(bytes);
        match &mut self.parser {
            Parser::Scp { control, status, control_is_input } => {
                if *control_is_input {
                    control.feed(bytes, &mut self.book);
                } else {
                    status.feed(bytes, &mut self.book);
                }
            }
            Parser::GitReceive(commands) => commands.feed(bytes, &mut self.book),
            Parser::Sftp(_, packets) => packets.input(bytes),
            Parser::Nothing => {}
        }
    }

    /// Server to client: the command's stdout.
    pub fn output(&mut self, bytes: &[u8]) {
        self.output.add(bytes);
        match &mut self.parser {
            Parser::Scp { control, status, control_is_input } => {
                if *control_is_input {
                    status.feed(bytes, &mut self.book);
                } else {
                    control.feed(bytes, &mut self.book);
                }
            }
            Parser::Sftp(_, packets) => packets.output(bytes),
            Parser::GitReceive(_) | Parser::Nothing => {}
        }
    }

    /// The command's stderr: parsed only when it is the protocol's log
    /// ([`Recognised::log_on_stderr`]).
    pub fn log(&mut self, bytes: &[u8]) {
        if let Parser::Sftp(log, _) = &mut self.parser {
            log.feed(bytes, &mut self.book);
        }
    }

    pub fn finish(self) -> Transfer {
        let Observer { protocol, arguments, fixed_direction, input, output, mut book, parser } = self;
        let incomplete = match parser {
            Parser::Scp { control, .. } => control.finish(),
            Parser::Sftp(log, packets) => {
                log.finish(&mut book);
                packets.finish(&mut book)
            }
            Parser::GitReceive(commands) => commands.stopped,
            Parser::Nothing => None,
        };
        let direction = fixed_direction.unwrap_or(match (book.any_upload, book.any_download) {
            (true, true) => "both",
            (true, false) => "upload",
            (false, true) => "download",
            (false, false) => "none",
        });
        Transfer {
            protocol: protocol.name(),
            direction,
            files: book.files,
            files_omitted: book.files_omitted,
            bytes_in: input.bytes,
            bytes_out: output.bytes,
            sha256_in: input.hex(),
            sha256_out: output.hex(),
            arguments,
            notes: book.notes,
            notes_omitted: book.notes_omitted,
            incomplete: incomplete.map(|e| e.to_string()),
        }
    }
}

/// The bounded lists a record is made of.
#[derive(Default)]
struct Book {
    files: Vec<FileEntry>,
    files_omitted: u64,
    files_text: usize,
    notes: Vec<String>,
    notes_omitted: u64,
    any_upload: bool,
    any_download: bool,
}

impl Book {
    /// Adds an entry; its index in [`Book::files`], or `None` when it was
    /// past the caps (then only counted).
    fn file(&mut self, entry: FileEntry) -> Option<usize> {
        match entry.direction {
            "upload" => self.any_upload = true,
            "download" => self.any_download = true,
            "both" => {
                self.any_upload = true;
                self.any_download = true;
            }
            _ => {}
        }
        let text = entry.path.len() + entry.to.as_ref().map_or(0, String::len) + entry.name.as_ref().map_or(0, String::len);
        if self.files.len() >= MAX_FILES || self.files_text.saturating_add(text) > MAX_FILES_TEXT {
            self.files_omitted = self.files_omitted.saturating_add(1);
            return None;
        }
        self.files_text += text;
        self.files.push(entry);
        Some(self.files.len() - 1)
    }

    fn note(&mut self, note: &str) {
        if self.notes.len() >= MAX_NOTES {
            self.notes_omitted = self.notes_omitted.saturating_add(1);
            return;
        }
        let mut kept: String = note.chars().take(MAX_NOTE_CHARS).collect();
        if kept.len() < note.len() {
            kept.push('…');
        }
        self.notes.push(kept);
    }
}

/// Where scp's top-level names are.
enum ScpRoot {
    /// `scp -t TARGET`: the sink writes there.
    Target { target: String, is_dir: bool },
    /// `scp -f SOURCE…`: the source reads these.
    Sources(Vec<String>),
}

/// The sending side's stream of scp: control lines and file data.
struct ScpControl {
    root: ScpRoot,
    state: ScpState,
    line: Vec<u8>,
    /// The directories entered with D and not yet left with E.
    dirs: Vec<String>,
}

enum ScpState {
    Line,
    /// Inside a file's data. `entry` is the file's index in the book (none
    /// when it was past the caps, and then the data is not hashed).
    Data { path: String, size: u64, remaining: u64, entry: Option<usize>, hash: Sha256 },
    /// After a file's data: its status byte (`\0`, or a message line), and
    /// the hash to give the entry if the status is `\0`.
    AfterData { hashed: Option<(usize, String)> },
    Stopped(ProtocolError),
}

impl ScpControl {
    fn new(root: ScpRoot) -> Self {
        ScpControl { root, state: ScpState::Line, line: Vec::new(), dirs: Vec::new() }
    }

    fn feed(&mut self, mut bytes: &[u8], book: &mut Book) {
        while !bytes.is_empty() {
            match &mut self.state {
                ScpState::Stopped(_) => return,
                ScpState::Data { remaining, entry, hash, .. } => {
                    let take = usize::try_from(*remaining).unwrap_or(usize::MAX).min(bytes.len());
                    *remaining -= take as u64;
                    let (data, rest) = bytes.split_at(take);
                    bytes = rest;
                    if entry.is_some() {
                        hash.update(data);
                    }
                    if *remaining == 0 {
                        let hashed = entry.map(|at| (at, hex(std::mem::take(hash).finalize().as_slice())));
                        self.state = ScpState::AfterData { hashed };
                    }
                }
                ScpState::AfterData { hashed } => {
                    if bytes.first() == Some(&0) {
                        bytes = bytes.get(1..).unwrap_or(&[]);
                        if let Some((at, hash)) = hashed.take() {
                            if let Some(file) = book.files.get_mut(at) {
                                file.sha256 = Some(hash);
                            }
                        }
                    }
                    // Otherwise the source failed to read the file and a
                    // message line follows: it padded the data it could
                    // not read, so the bytes seen are not the file's and
                    // the entry keeps no hash.
                    self.state = ScpState::Line;
                }
                ScpState::Line => {
                    let room = MAX_LINE.saturating_sub(self.line.len());
                    match memchr::memchr(b'\n', bytes) {
                        Some(end) if end <= room => {
                            self.line.extend_from_slice(bytes.get(..end).unwrap_or(&[]));
                            bytes = bytes.get(end + 1..).unwrap_or(&[]);
                            let line = std::mem::take(&mut self.line);
                            self.state = match self.control_line(&line, book) {
                                Ok(state) => state,
                                Err(e) => ScpState::Stopped(e),
                            };
                        }
                        None if bytes.len() <= room => {
                            self.line.extend_from_slice(bytes);
                            bytes = &[];
                        }
                        _ => {
                            self.line = Vec::new();
                            self.state = ScpState::Stopped(ProtocolError::ScpLineTooLong);
                        }
                    }
                }
            }
        }
    }

    fn control_line(&mut self, line: &[u8], book: &mut Book) -> Result<ScpState, ProtocolError> {
        let text = String::from_utf8_lossy(line);
        let bad = || ProtocolError::ScpBadLine(text.chars().take(80).collect());
        let (kind, rest) = match text.chars().next() {
            Some(kind) => (kind, text.get(kind.len_utf8()..).unwrap_or("")),
            None => return Err(bad()),
        };
        match kind {
            'C' | 'D' => {
                let (mode, rest) = rest.split_once(' ').ok_or_else(bad)?;
                let (size, name) = rest.split_once(' ').ok_or_else(bad)?;
                let size: u64 = size.parse().map_err(|_| bad())?;
                if mode.is_empty() || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) || name.is_empty() {
                    return Err(bad());
                }
                let (path, name) = self.path_of(name);
                if path.len() > MAX_PATH {
                    return Err(ProtocolError::ScpPathTooLong);
                }
                let upload = matches!(self.root, ScpRoot::Target { .. });
                if kind == 'D' {
                    if upload {
                        book.file(FileEntry { name, ..FileEntry::new(path.clone(), None, "mkdir") });
                    }
                    self.dirs.push(path);
                    return Ok(ScpState::Line);
                }
                let direction = if upload { "upload" } else { "download" };
                let entry = book.file(FileEntry { name, ..FileEntry::new(path.clone(), Some(size), direction) });
                let hash = Sha256::new();
                Ok(if size == 0 {
                    ScpState::AfterData { hashed: entry.map(|at| (at, hex(hash.finalize().as_slice()))) }
                } else {
                    ScpState::Data { path, size, remaining: size, entry, hash }
                })
            }
            'E' => {
                self.dirs.pop();
                Ok(ScpState::Line)
            }
            'T' => Ok(ScpState::Line),
            '\u{1}' => {
                book.note(&format!("scp warning: {rest}"));
                Ok(ScpState::Line)
            }
            '\u{2}' => {
                book.note(&format!("scp error: {rest}"));
                Ok(ScpState::Line)
            }
            _ => Err(bad()),
        }
    }

    /// The full path of a name sent at the current nesting, and the name to
    /// keep beside it when the path does not end with it.
    fn path_of(&self, name: &str) -> (String, Option<String>) {
        if let Some(dir) = self.dirs.last() {
            return (join_path(dir, name), None);
        }
        match &self.root {
            ScpRoot::Target { target, is_dir: true } => (join_path(target, name), None),
            ScpRoot::Target { target, is_dir: false } => {
                let differs = base_name(target) != name;
                (target.clone(), differs.then(|| name.to_string()))
            }
            ScpRoot::Sources(sources) => {
                match sources.iter().find(|s| base_name(s) == name) {
                    Some(source) => (source.trim_end_matches('/').to_string(), None),
                    // A glob the shell expanded: the name is in the first
                    // source's directory.
                    None => {
                        let first = sources.first().map(String::as_str).unwrap_or("");
                        let parent = first.trim_end_matches('/').rsplit_once('/').map_or("", |(p, _)| p);
                        let parent = if parent.is_empty() && first.starts_with('/') { "/" } else { parent };
                        (join_path(parent, name), None)
                    }
                }
            }
        }
    }

    fn finish(self) -> Option<ProtocolError> {
        match self.state {
            ScpState::Stopped(e) => Some(e),
            ScpState::Data { path, size, remaining, .. } => {
                Some(ProtocolError::EndedInsideFile { path, got: size - remaining, size })
            }
            ScpState::Line if !self.line.is_empty() => Some(ProtocolError::EndedInsideLine),
            ScpState::Line | ScpState::AfterData { .. } => None,
        }
    }
}

fn join_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// The receiving side's stream of scp: `\0` for ok, or `\x01`/`\x02` and a
/// message line.
#[derive(Default)]
struct ScpStatus {
    /// The kind of the message being read, and its text so far.
    message: Option<(u8, Vec<u8>)>,
}

impl ScpStatus {
    fn feed(&mut self, bytes: &[u8], book: &mut Book) {
        for &byte in bytes {
            match &mut self.message {
                None => {
                    if byte == 1 || byte == 2 {
                        self.message = Some((byte, Vec::new()));
                    }
                    // `\0` is ok; anything else is not scp's and is ignored.
                }
                Some((kind, text)) => {
                    if byte == b'\n' {
                        let word = if *kind == 2 { "error" } else { "warning" };
                        book.note(&format!("scp {word}: {}", String::from_utf8_lossy(text)));
                        self.message = None;
                    } else if text.len() < MAX_LINE {
                        text.push(byte);
                    }
                }
            }
        }
    }
}

/// sftp-server's log on stderr, a line at a time.
#[derive(Default)]
struct SftpLog {
    line: Vec<u8>,
    /// The current line went past [`MAX_LINE`]: skip to its end.
    skipping: bool,
    /// The last byte was a `\r`.
    after_cr: bool,
    /// Files opened and not yet closed, and whether for writing.
    open: Vec<(String, bool)>,
}

impl SftpLog {
    fn feed(&mut self, bytes: &[u8], book: &mut Book) {
        for &byte in bytes {
            // Lines end with "\r\n"; a bare "\n" is part of a file name.
            // The "\r" is remembered apart from the line, which may be full.
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            if byte == b'\n' && after_cr {
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                let line = std::mem::take(&mut self.line);
                if std::mem::take(&mut self.skipping) {
                    book.note("sftp-server: a log line too long to read was skipped");
                } else {
                    self.entry(&String::from_utf8_lossy(&line), book);
                }
            } else if self.line.len() < MAX_LINE {
                self.line.push(byte);
            } else {
                self.skipping = true;
            }
        }
    }

    fn entry(&mut self, line: &str, book: &mut Book) {
        if line.starts_with("session opened ") || line.starts_with("session closed ") || line.starts_with("debug") {
            return;
        }
        if let Some(rest) = line.strip_prefix("open \"") {
            let (path, tail) = quoted(rest, "\" flags ", book);
            if self.open.len() < MAX_OPEN {
                let write = tail.split(' ').next().is_some_and(|flags| flags.split(',').any(|f| f == "WRITE"));
                self.open.push((path, write));
            }
        } else if let Some(rest) = line.strip_prefix("close \"") {
            let (path, tail) = quoted(rest, "\" bytes read ", book);
            if let Some(at) = self.open.iter().position(|(p, _)| *p == path) {
                self.open.swap_remove(at);
            }
            let counts = tail.split_once(" written ").and_then(|(r, w)| Some((r.parse::<u64>().ok()?, w.parse::<u64>().ok()?)));
            let (direction, size) = match counts {
                Some((0, 0)) => ("opened", Some(0)),
                Some((read, 0)) => ("download", Some(read)),
                Some((0, written)) => ("upload", Some(written)),
                Some((read, written)) => ("both", Some(read.saturating_add(written))),
                None => ("opened", None),
            };
            book.file(FileEntry::new(path, size, direction));
        } else if let Some(rest) = line.strip_prefix("opendir \"") {
            let (path, _) = quoted(rest, "\"", book);
            book.file(FileEntry::new(path, None, "list"));
        } else if let Some(rest) = line.strip_prefix("remove name \"") {
            let (path, _) = quoted(rest, "\"", book);
            book.file(FileEntry::new(path, None, "remove"));
        } else if let Some(rest) = line.strip_prefix("mkdir name \"") {
            let (path, _) = quoted(rest, "\" mode ", book);
            book.file(FileEntry::new(path, None, "mkdir"));
        } else if let Some(rest) = line.strip_prefix("rmdir name \"") {
            let (path, _) = quoted(rest, "\"", book);
            book.file(FileEntry::new(path, None, "rmdir"));
        } else if let Some((direction, rest)) = [
            ("rename", "rename old \""),
            ("rename", "posix-rename old \""),
            ("symlink", "symlink old \""),
            ("link", "hardlink old \""),
        ]
        .iter()
        .find_map(|(direction, prefix)| Some((*direction, line.strip_prefix(prefix)?)))
        {
            // A path holding `" new "` makes the split ambiguous; the first
            // occurrence is taken.
            let (from, tail) = quoted(rest, "\" new \"", book);
            let (to, _) = quoted(tail, "\"", book);
            book.file(FileEntry { to: Some(to), ..FileEntry::new(from, None, direction) });
        } else if let Some(status) = line.strip_prefix("sent status ") {
            book.note(&format!("sftp-server: {status}"));
        } else if line.starts_with("set \"") || line.starts_with("closedir \"") {
            // chmod, chown, times, truncation: not kept.
        } else {
            book.note(&format!("sftp-server: {}", unvis(line)));
        }
    }

    fn finish(self, book: &mut Book) {
        if !self.open.is_empty() {
            book.note("sftp-server: files still open when the session ended (their size is unknown)");
        }
        for (path, write) in self.open {
            book.file(FileEntry::new(path, None, if write { "upload" } else { "download" }));
        }
    }
}

/// A quoted path from a log line: up to the last `end` for fields that
/// follow it (so a path holding `"` is whole), or the first for a split
/// between two paths; the path unescaped, and the text after `end`. A line
/// sftp-server cut short has no `end`: the path is then all there is.
fn quoted<'a>(rest: &'a str, end: &str, book: &mut Book) -> (String, &'a str) {
    let at = if end == "\" new \"" { rest.find(end) } else { rest.rfind(end) };
    match at {
        Some(at) => (unvis(rest.get(..at).unwrap_or("")), rest.get(at + end.len()..).unwrap_or("")),
        None => {
            book.note("sftp-server cut a log line (at about 1 KiB): the path kept is its start");
            (unvis(rest), "")
        }
    }
}

/// Undoes sftp-server's log escaping (`strnvis` with `VIS_SAFE | VIS_OCTAL`):
/// `\\` is a backslash and `\ooo` a byte; the bytes are then read as UTF-8.
fn unvis(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            if bytes.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
            if let Some(digits) = octal {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The largest SFTP packet OpenSSH's client and server accept
/// (`SFTP_MAX_MSG_LENGTH`): a longer length is a protocol error, and no
/// more than this is buffered for one packet.
pub const MAX_SFTP_PACKET: usize = 256 * 1024;
/// Longest handle a server may give (draft-ietf-secsh-filexfer-02 §3.2).
const MAX_SFTP_HANDLE: usize = 256;
/// Longest OPEN path followed: sftp-server cuts its log lines at about
/// 1 KiB, so the entry of a longer path is cut and can never be matched.
const MAX_SFTP_PATH: usize = 1024;
/// sftp requests awaiting their reply, and replies seen before their
/// request; more stops the packet parser.
pub const MAX_SFTP_PENDING: usize = 4096;
/// Bytes of one file that arrived ahead of a gap, buffered until it closes.
pub const MAX_SFTP_AHEAD_FILE: usize = 4 << 20;
/// Bytes buffered over all files, with the data of replies seen before
/// their request.
pub const MAX_SFTP_BUFFERED: usize = 16 << 20;

const FXP_INIT: u8 = 1;
const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
/// The last request type of version 3 (SYMLINK); EXTENDED is apart.
const FXP_LAST_REQUEST: u8 = 20;
const FXP_EXTENDED: u8 = 200;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXP_NAME: u8 = 104;
const FXP_ATTRS: u8 = 105;
const FXP_EXTENDED_REPLY: u8 = 201;

/// sftp's packets in both directions, followed for the bytes of each file.
///
/// A file is followed from the client's OPEN (its path) and the server's
/// HANDLE reply to the client's CLOSE of that handle. Uploads are the
/// client's WRITEs (handle, offset, data); downloads the server's DATA
/// replies, each placed at the offset of the READ it answers (joined by
/// request id). Bytes are hashed as they extend the file contiguously
/// from offset 0; bytes ahead of a gap wait in a bounded buffer (a short
/// read leaves a gap that the client fills with a later READ), and a file
/// whose bytes were not all seen, or seen twice, gets no hash.
///
/// The recorder hands us stdin and stdout from two relay threads, each
/// passing its copy on after forwarding the bytes, so the two streams can
/// reach us in any interleaving. A reply seen before the request it
/// answers waits (bounded) for that request. Requests seen while an OPEN's
/// reply is still missing wait (bounded) behind it, because the handle
/// they name may be the one that reply gives: the server resolved every
/// handle in the order of its stdin, and so do we. Every request with an
/// id is remembered until its reply, so a reply is only ever joined to the
/// request the server answered: sftp-server answers each request once, in
/// order, so the n-th reply with an id answers the n-th request with it
/// (OpenSSH's client uses an id again once it is answered).
#[derive(Default)]
struct SftpPackets {
    to_server: Framer,
    to_client: Framer,
    stopped: Option<ProtocolError>,
    /// Requests awaiting their reply, by id, oldest first.
    awaiting: Fifos<Awaiting>,
    /// Replies seen before their request, by id, oldest first.
    early: Fifos<Early>,
    /// OPENs awaiting their reply.
    unresolved_opens: usize,
    /// Requests seen while `unresolved_opens` was not 0, in order.
    held: std::collections::VecDeque<Vec<u8>>,
    /// Files with a handle, or closed with reads still unanswered.
    files: Vec<SftpFile>,
    serials: u64,
    closes: u64,
    /// Bytes held in `SftpFile::ahead`, `Early::Data` and `held`.
    buffered: usize,
    /// Files not followed because [`MAX_OPEN`] were already.
    unfollowed: u64,
    /// Files whose last byte was seen, in the order of their CLOSE.
    done: Vec<Hashed>,
}

enum Awaiting {
    /// The path, or none when too long to follow.
    Open(Option<String>),
    Read { serial: u64, offset: u64 },
    Other,
}

enum Early {
    Status,
    Handle(Vec<u8>),
    Data(Vec<u8>),
    /// A DATA reply that did not fit in [`MAX_SFTP_BUFFERED`].
    DataDropped,
}

/// Queues by request id, [`MAX_SFTP_PENDING`] entries in all.
struct Fifos<T> {
    by_id: std::collections::HashMap<u32, std::collections::VecDeque<T>>,
    len: usize,
}

impl<T> Default for Fifos<T> {
    fn default() -> Self {
        Fifos { by_id: Default::default(), len: 0 }
    }
}

impl<T> Fifos<T> {
    fn push(&mut self, id: u32, value: T) -> Result<(), ProtocolError> {
        if self.len >= MAX_SFTP_PENDING {
            return Err(ProtocolError::SftpTooManyPending);
        }
        self.by_id.entry(id).or_default().push_back(value);
        self.len += 1;
        Ok(())
    }

    fn pop(&mut self, id: u32) -> Option<T> {
        let queue = self.by_id.get_mut(&id)?;
        let value = queue.pop_front()?;
        if queue.is_empty() {
            self.by_id.remove(&id);
        }
        self.len -= 1;
        Some(value)
    }
}

/// A reply, borrowed from its packet.
#[derive(Clone, Copy)]
enum Reply<'a> {
    Status,
    Handle(&'a [u8]),
    Data(&'a [u8]),
    DataDropped,
}

struct SftpFile {
    serial: u64,
    path: String,
    /// `None` once its CLOSE was seen.
    handle: Option<Vec<u8>>,
    close_order: u64,
    /// READs not yet answered.
    outstanding: usize,
    wrote: bool,
    read: bool,
    /// The offset of the first byte not yet hashed.
    next: u64,
    hash: Sha256,
    /// Bytes that came ahead of `next`, by offset.
    ahead: std::collections::BTreeMap<u64, Vec<u8>>,
    ahead_bytes: usize,
    /// Why the file gets no hash.
    broken: Option<String>,
}

/// What the packets showed of one closed file.
struct Hashed {
    close_order: u64,
    path: String,
    direction: &'static str,
    /// Bytes seen contiguously from offset 0.
    bytes: u64,
    sha256: Result<String, String>,
}

/// Splits one direction of the sftp stream into packets (uint32 length,
/// then that many bytes: the type and its fields).
#[derive(Default)]
struct Framer {
    /// A packet begun in an earlier read: its header and what came of it.
    partial: Vec<u8>,
}

impl Framer {
    fn feed(&mut self, mut bytes: &[u8], each: &mut dyn FnMut(&[u8]) -> Result<(), ProtocolError>) -> Result<(), ProtocolError> {
        while !bytes.is_empty() {
            if self.partial.is_empty() {
                // Whole packets straight from the read, without a copy.
                if let Some(header) = bytes.get(..4) {
                    let end = 4 + sftp_length(header)?;
                    if let Some(packet) = bytes.get(4..end) {
                        each(packet)?;
                        bytes = bytes.get(end..).unwrap_or(&[]);
                        continue;
                    }
                }
                // Less than a packet; bounded by the length just checked.
                self.partial.extend_from_slice(bytes);
                return Ok(());
            }
            let want = match self.partial.get(..4) {
                Some(header) => 4 + sftp_length(header)?,
                None => 4,
            };
            let (head, rest) = bytes.split_at(want.saturating_sub(self.partial.len()).min(bytes.len()));
            self.partial.extend_from_slice(head);
            bytes = rest;
            if want > 4 && self.partial.len() == want {
                let packet = std::mem::take(&mut self.partial);
                each(packet.get(4..).unwrap_or(&[]))?;
            }
        }
        Ok(())
    }
}

/// A packet's length from its header: at least the type byte, at most
/// [`MAX_SFTP_PACKET`] (a length field may claim 4 GiB).
fn sftp_length(header: &[u8]) -> Result<usize, ProtocolError> {
    let length = header.get(..4).and_then(|h| <[u8; 4]>::try_from(h).ok()).map_or(0, u32::from_be_bytes);
    match usize::try_from(length) {
        Ok(n) if (1..=MAX_SFTP_PACKET).contains(&n) => Ok(n),
        _ => Err(ProtocolError::SftpPacketLength(length)),
    }
}

/// A packet's fields, read front to back; `None` when it is too short.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let head = self.0.get(..n)?;
        self.0 = self.0.get(n..)?;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A uint32 length and that many bytes, which must be in the packet.
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
}

impl SftpPackets {
    /// Client to server.
    fn input(&mut self, bytes: &[u8]) {
        if self.stopped.is_some() {
            return;
        }
        let mut framer = std::mem::take(&mut self.to_server);
        let fed = framer.feed(bytes, &mut |packet| self.hold_or_request(packet));
        self.to_server = framer;
        if let Err(e) = fed {
            self.stop(e);
        }
    }

    /// Server to client.
    fn output(&mut self, bytes: &[u8]) {
        if self.stopped.is_some() {
            return;
        }
        let mut framer = std::mem::take(&mut self.to_client);
        let fed = framer.feed(bytes, &mut |packet| self.reply(packet));
        self.to_client = framer;
        if let Err(e) = fed {
            self.stop(e);
        }
    }

    /// Forgets every file being followed: from here on nothing is hashed
    /// per file (the files already closed keep theirs).
    fn stop(&mut self, error: ProtocolError) {
        self.stopped = Some(error);
        self.awaiting = Default::default();
        self.early = Default::default();
        self.files = Vec::new();
        self.held = Default::default();
        self.unresolved_opens = 0;
        self.buffered = 0;
        self.to_server = Framer::default();
        self.to_client = Framer::default();
    }

    fn hold_or_request(&mut self, packet: &[u8]) -> Result<(), ProtocolError> {
        if self.unresolved_opens == 0 && self.held.is_empty() {
            return self.request(packet);
        }
        if self.held.len() >= MAX_SFTP_PENDING || self.buffered.saturating_add(packet.len()) > MAX_SFTP_BUFFERED {
            return Err(ProtocolError::SftpTooManyPending);
        }
        self.buffered += packet.len();
        self.held.push_back(packet.to_vec());
        Ok(())
    }

    /// Goes on with the requests held behind OPENs now answered.
    fn release_held(&mut self) -> Result<(), ProtocolError> {
        while self.unresolved_opens == 0 {
            let Some(packet) = self.held.pop_front() else { break };
            self.buffered = self.buffered.saturating_sub(packet.len());
            self.request(&packet)?;
        }
        Ok(())
    }

    fn request(&mut self, packet: &[u8]) -> Result<(), ProtocolError> {
        let mut f = Fields(packet);
        let kind = f.u8().unwrap_or(0);
        if kind == FXP_INIT {
            return Ok(());
        }
        if !((FXP_OPEN..=FXP_LAST_REQUEST).contains(&kind) || kind == FXP_EXTENDED) {
            // sftp-server answers nothing to it, nor to what follows it in
            // the same read: the replies could no longer be joined.
            return Err(ProtocolError::SftpUnknownRequest(kind));
        }
        let short = || ProtocolError::SftpShortPacket(kind);
        let id = f.u32().ok_or_else(short)?;
        let awaiting = match kind {
            FXP_OPEN => {
                let name = f.string().ok_or_else(short)?;
                let _pflags = f.u32().ok_or_else(short)?;
                let path = (name.len() <= MAX_SFTP_PATH).then(|| String::from_utf8_lossy(name).into_owned());
                Awaiting::Open(path)
            }
            FXP_CLOSE => {
                let handle = f.string().ok_or_else(short)?;
                if let Some(file) = self.files.iter_mut().find(|file| file.handle.as_deref() == Some(handle)) {
                    file.handle = None;
                    file.close_order = self.closes;
                    self.closes += 1;
                    let serial = file.serial;
                    self.finish_file(serial, false);
                }
                Awaiting::Other
            }
            FXP_READ => {
                let handle = f.string().ok_or_else(short)?;
                let offset = f.u64().ok_or_else(short)?;
                let _length = f.u32().ok_or_else(short)?;
                match self.files.iter_mut().find(|file| file.handle.as_deref() == Some(handle)) {
                    Some(file) => {
                        file.read = true;
                        if file.wrote {
                            file.set_broken("it was both read and written", &mut self.buffered);
                        }
                        file.outstanding += 1;
                        Awaiting::Read { serial: file.serial, offset }
                    }
                    None => Awaiting::Other,
                }
            }
            FXP_WRITE => {
                let handle = f.string().ok_or_else(short)?;
                let offset = f.u64().ok_or_else(short)?;
                let data = f.string().ok_or_else(short)?;
                if let Some(file) = self.files.iter_mut().find(|file| file.handle.as_deref() == Some(handle)) {
                    file.wrote = true;
                    if file.read {
                        file.set_broken("it was both read and written", &mut self.buffered);
                    }
                    file.accept(offset, data, &mut self.buffered);
                }
                Awaiting::Other
            }
            _ => Awaiting::Other,
        };
        match self.early.pop(id) {
            Some(early) => {
                let reply = match &early {
                    Early::Status => Reply::Status,
                    Early::Handle(h) => Reply::Handle(h),
                    Early::Data(d) => Reply::Data(d),
                    Early::DataDropped => Reply::DataDropped,
                };
                self.answer(awaiting, reply);
                if let Early::Data(d) = early {
                    self.buffered = self.buffered.saturating_sub(d.len());
                }
            }
            None => {
                if matches!(awaiting, Awaiting::Open(_)) {
                    self.unresolved_opens += 1;
                }
                self.awaiting.push(id, awaiting)?;
            }
        }
        Ok(())
    }

    fn reply(&mut self, packet: &[u8]) -> Result<(), ProtocolError> {
        let mut f = Fields(packet);
        let kind = f.u8().unwrap_or(0);
        if !matches!(kind, FXP_STATUS | FXP_HANDLE | FXP_DATA | FXP_NAME | FXP_ATTRS | FXP_EXTENDED_REPLY) {
            // VERSION, or nothing a version 3 server sends.
            return Ok(());
        }
        let short = || ProtocolError::SftpShortPacket(kind);
        let id = f.u32().ok_or_else(short)?;
        let reply = match kind {
            FXP_HANDLE => {
                let handle = f.string().ok_or_else(short)?;
                if handle.len() > MAX_SFTP_HANDLE {
                    return Err(ProtocolError::SftpHandleTooLong);
                }
                Reply::Handle(handle)
            }
            FXP_DATA => Reply::Data(f.string().ok_or_else(short)?),
            // A status, or an answer that carries no file bytes.
            _ => Reply::Status,
        };
        if let Some(awaiting) = self.awaiting.pop(id) {
            let opened = matches!(awaiting, Awaiting::Open(_));
            self.answer(awaiting, reply);
            if opened {
                self.unresolved_opens = self.unresolved_opens.saturating_sub(1);
                return self.release_held();
            }
            return Ok(());
        }
        let early = match reply {
            Reply::Status | Reply::DataDropped => Early::Status,
            Reply::Handle(h) => Early::Handle(h.to_vec()),
            Reply::Data(d) if self.buffered.saturating_add(d.len()) <= MAX_SFTP_BUFFERED => {
                self.buffered += d.len();
                Early::Data(d.to_vec())
            }
            Reply::Data(_) => Early::DataDropped,
        };
        self.early.push(id, early)
    }

    /// A request and its reply, whichever was seen first.
    fn answer(&mut self, awaiting: Awaiting, reply: Reply<'_>) {
        match (awaiting, reply) {
            (Awaiting::Open(Some(path)), Reply::Handle(handle)) => self.bind(path, handle),
            (Awaiting::Read { serial, offset }, reply) => {
                let buffered = &mut self.buffered;
                if let Some(file) = self.files.iter_mut().find(|f| f.serial == serial) {
                    file.outstanding = file.outstanding.saturating_sub(1);
                    match reply {
                        Reply::Data(data) => file.accept(offset, data, buffered),
                        Reply::DataDropped => file.set_broken(
                            &format!("a reply's data came before its request and more than {} MiB was waiting", MAX_SFTP_BUFFERED >> 20),
                            buffered,
                        ),
                        Reply::Status | Reply::Handle(_) => {}
                    }
                }
                self.finish_file(serial, false);
            }
            _ => {}
        }
    }

    fn bind(&mut self, path: String, handle: &[u8]) {
        let clash = self.files.iter().find(|f| f.handle.as_deref() == Some(handle)).map(|f| f.serial);
        if let Some(serial) = clash {
            // The server reuses a handle only after its CLOSE: that CLOSE
            // has not reached us yet, and the next one with this handle
            // cannot be told apart. Neither file is hashed.
            const WHY: &str = "its handle was given to another file before its close was seen";
            if let Some(file) = self.files.iter_mut().find(|f| f.serial == serial) {
                file.set_broken(WHY, &mut self.buffered);
                file.handle = None;
                file.close_order = self.closes;
                self.closes += 1;
            }
            self.finish_file(serial, true);
        }
        if self.files.len() >= MAX_OPEN {
            self.unfollowed = self.unfollowed.saturating_add(1);
            return;
        }
        let mut file = SftpFile {
            serial: self.serials,
            path,
            handle: Some(handle.to_vec()),
            close_order: 0,
            outstanding: 0,
            wrote: false,
            read: false,
            next: 0,
            hash: Sha256::new(),
            ahead: Default::default(),
            ahead_bytes: 0,
            broken: None,
        };
        if clash.is_some() {
            file.broken = Some("its handle was still held by another file when the server gave it".into());
        }
        self.serials += 1;
        self.files.push(file);
    }

    /// Moves a closed file to `done` once its reads are answered (or now,
    /// with `now`).
    fn finish_file(&mut self, serial: u64, now: bool) {
        let Some(at) = self.files.iter().position(|f| f.serial == serial) else { return };
        let ready = self.files.get(at).is_some_and(|f| f.handle.is_none() && (now || f.outstanding == 0));
        if !ready {
            return;
        }
        let file = self.files.swap_remove(at);
        self.buffered = self.buffered.saturating_sub(file.ahead_bytes);
        if self.done.len() < MAX_FILES {
            self.done.push(file.hashed());
        }
    }

    /// Gives the entries the log made for closed files their hashes; the
    /// reason the packets stopped being read, if they did.
    fn finish(mut self, book: &mut Book) -> Option<ProtocolError> {
        let closed: Vec<u64> = self.files.iter().filter(|f| f.handle.is_none()).map(|f| f.serial).collect();
        for serial in closed {
            self.finish_file(serial, true);
        }
        self.done.sort_by_key(|h| h.close_order);
        let mut used = vec![false; book.files.len()];
        for hashed in self.done {
            // The n-th close of a path in the log is the n-th CLOSE of it
            // in the packets: sftp-server handles requests in order.
            let found = book.files.iter_mut().zip(used.iter_mut()).find(|(entry, used)| {
                !**used
                    && entry.path == hashed.path
                    && entry.size.is_some()
                    && matches!(entry.direction, "upload" | "download" | "both" | "opened")
            });
            let Some((entry, used)) = found else {
                // The log line was cut, or past the caps.
                continue;
            };
            *used = true;
            if entry.direction == "opened" {
                continue;
            }
            let why = match hashed.sha256 {
                Ok(hash) if entry.direction == hashed.direction && entry.size == Some(hashed.bytes) => {
                    entry.sha256 = Some(hash);
                    continue;
                }
                Ok(_) => format!(
                    "the packets showed {} bytes {}, the server's log {} {}",
                    hashed.bytes,
                    hashed.direction,
                    entry.size.unwrap_or(0),
                    entry.direction
                ),
                Err(why) => why,
            };
            let path = entry.path.clone();
            book.note(&format!("sftp: no hash for {path:?}: {why}"));
        }
        if self.unfollowed > 0 {
            book.note(&format!("sftp: {} files opened while {MAX_OPEN} were open have no hash", self.unfollowed));
        }
        self.stopped
    }
}

impl SftpFile {
    /// Bytes of the file at `offset`, hashed if they extend the file from
    /// `next`, else kept until the gap before them is filled.
    fn accept(&mut self, offset: u64, data: &[u8], buffered: &mut usize) {
        if self.broken.is_some() || data.is_empty() {
            return;
        }
        let end = offset.saturating_add(data.len() as u64);
        if offset < self.next {
            return self.set_broken(&format!("the bytes at offset {offset} came again"), buffered);
        }
        if offset > self.next {
            let overlaps_before = self.ahead.range(..=offset).next_back().is_some_and(|(at, d)| at.saturating_add(d.len() as u64) > offset);
            let overlaps_after = self.ahead.range(offset..).next().is_some_and(|(at, _)| *at < end);
            if overlaps_before || overlaps_after {
                return self.set_broken(&format!("the bytes at offset {offset} came again"), buffered);
            }
            if self.ahead_bytes.saturating_add(data.len()) > MAX_SFTP_AHEAD_FILE || buffered.saturating_add(data.len()) > MAX_SFTP_BUFFERED {
                let why = format!("more than {} MiB came after a gap at offset {}", MAX_SFTP_AHEAD_FILE >> 20, self.next);
                return self.set_broken(&why, buffered);
            }
            self.ahead_bytes += data.len();
            *buffered += data.len();
            self.ahead.insert(offset, data.to_vec());
            return;
        }
        if self.ahead.range(..end).next().is_some() {
            return self.set_broken(&format!("the bytes at offset {offset} came again"), buffered);
        }
        self.hash.update(data);
        self.next = end;
        while let Some(chunk) = self.ahead.first_entry() {
            let at = *chunk.key();
            // Overlaps were refused when the bytes came: `at` is `next` or
            // beyond.
            if at > self.next {
                break;
            }
            let chunk = chunk.remove();
            self.ahead_bytes = self.ahead_bytes.saturating_sub(chunk.len());
            *buffered = buffered.saturating_sub(chunk.len());
            self.hash.update(&chunk);
            self.next = at.saturating_add(chunk.len() as u64);
        }
    }

    fn set_broken(&mut self, why: &str, buffered: &mut usize) {
        if self.broken.is_none() {
            self.broken = Some(why.to_string());
        }
        *buffered = buffered.saturating_sub(self.ahead_bytes);
        self.ahead = Default::default();
        self.ahead_bytes = 0;
    }

    fn hashed(self) -> Hashed {
        let direction = match (self.wrote, self.read) {
            (true, true) => "both",
            (true, false) => "upload",
            (false, true) => "download",
            (false, false) => "opened",
        };
        let sha256 = match (self.broken, self.ahead.first_key_value()) {
            (Some(why), _) => Err(why),
            (None, Some((at, _))) => Err(format!("the bytes from offset {} to {at} were not seen", self.next)),
            (None, None) => Ok(hex(self.hash.finalize().as_slice())),
        };
        Hashed { close_order: self.close_order, path: self.path, direction, bytes: self.next, sha256 }
    }
}

/// git-receive-pack's commands: pkt-lines `OLD NEW REF` (the first with
/// `\0` and capabilities) up to the flush packet `0000`, before the pack.
#[derive(Default)]
struct PktCommands {
    length: Vec<u8>,
    payload: Vec<u8>,
    /// Bytes of payload still to come, while inside a pkt-line.
    remaining: usize,
    done: bool,
    stopped: Option<ProtocolError>,
}

impl PktCommands {
    fn feed(&mut self, mut bytes: &[u8], book: &mut Book) {
        while !bytes.is_empty() && !self.done && self.stopped.is_none() {
            if self.remaining > 0 {
                let take = self.remaining.min(bytes.len());
                self.payload.extend_from_slice(bytes.get(..take).unwrap_or(&[]));
                bytes = bytes.get(take..).unwrap_or(&[]);
                self.remaining -= take;
                if self.remaining == 0 {
                    let payload = std::mem::take(&mut self.payload);
                    command(&payload, book);
                }
                continue;
            }
            let take = (4 - self.length.len()).min(bytes.len());
            self.length.extend_from_slice(bytes.get(..take).unwrap_or(&[]));
            bytes = bytes.get(take..).unwrap_or(&[]);
            if self.length.len() < 4 {
                continue;
            }
            let text = String::from_utf8_lossy(&std::mem::take(&mut self.length)).into_owned();
            match usize::from_str_radix(&text, 16) {
                Ok(0) => self.done = true,
                Ok(n) if (5..=MAX_PKT).contains(&n) && text.bytes().all(|b| b.is_ascii_hexdigit()) => self.remaining = n - 4,
                // An empty pkt-line ("0004") carries nothing.
                Ok(4) => {}
                _ => self.stopped = Some(ProtocolError::GitBadPktLength(text)),
            }
        }
    }
}

fn command(payload: &[u8], book: &mut Book) {
    let line = payload.split(|&b| b == 0).next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut words = line.trim_end_matches('\n').splitn(3, ' ');
    let (Some(old), Some(new), Some(name)) = (words.next(), words.next(), words.next()) else {
        return;
    };
    let is_oid = |s: &str| (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_oid(old) || !is_oid(new) {
        return;
    }
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    let direction = if zero(old) {
        "ref-create"
    } else if zero(new) {
        "ref-delete"
    } else {
        "ref-update"
    };
    book.file(FileEntry { to: Some(new.to_string()), ..FileEntry::new(name.to_string(), None, direction) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/transfer").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn command(name: &str) -> String {
        String::from_utf8(fixture(&format!("{name}.cmd"))).unwrap().trim_end().to_string()
    }

    /// Runs a captured transfer through an observer, each stream whole.
    fn replay(name: &str, input: &[u8], output: &[u8], log: &[u8]) -> Transfer {
        let r = recognise(&command(name)).unwrap_or_else(|| panic!("{name} not recognised"));
        let mut o = Observer::new(r);
        o.input(input);
        o.output(output);
        o.log(log);
        o.finish()
    }

    fn captured(name: &str) -> Transfer {
        let read = |ext: &str| std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/transfer/{name}.{ext}"))).unwrap_or_default();
        replay(name, &read("in"), &read("out"), &read("err"))
    }

    fn paths(t: &Transfer) -> Vec<(String, Option<u64>, &'static str)> {
        t.files.iter().map(|f| (f.path.clone(), f.size, f.direction)).collect()
    }

    fn sha(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn observe_sink(target: &str, input: &[&[u8]], output: &[u8]) -> Transfer {
        let mut o = Observer::new(recognise(&format!("scp -t {target}")).unwrap());
        for piece in input {
            o.input(piece);
        }
        o.output(output);
        o.finish()
    }

    // ---- recognise ----

    #[test]
    fn recognises_each_protocol_by_its_command_line() {
        let cases: &[(&str, Protocol)] = &[
            ("scp -t /tmp/x", Protocol::Scp),
            ("scp -r -p -f /tmp/tr/src", Protocol::Scp),
            ("/usr/bin/scp -pt -- /tmp/x", Protocol::Scp),
            ("/usr/lib/openssh/sftp-server", Protocol::Sftp),
            ("/usr/libexec/sftp-server -R", Protocol::Sftp),
            ("rsync --server -logDtpre.iLsfxCIvu . /tmp/tr/rdst", Protocol::Rsync),
            ("git-upload-pack '/tmp/tr/repo.git'", Protocol::GitUpload),
            ("git upload-pack /srv/r.git", Protocol::GitUpload),
            ("git-receive-pack \"/srv/my repo.git\"", Protocol::GitReceive),
            ("git receive-pack 'r.git'", Protocol::GitReceive),
        ];
        for (line, protocol) in cases {
            assert_eq!(recognise(line).map(|r| r.protocol), Some(*protocol), "{line}");
        }
    }

    #[test]
    fn the_captured_command_lines_are_recognised() {
        for name in ["scp_upload", "scp_upload_r", "scp_download_r", "scp_error", "scp_dl_missing", "sftp_batch", "rsync_up", "rsync_down", "git_push", "git_clone"] {
            assert!(recognise(&command(name)).is_some(), "{name}");
        }
    }

    #[test]
    fn compound_or_expanding_lines_are_not_transfers() {
        for line in [
            "scp -t /x; rm -rf /",
            "scp -t /x && rm -rf /",
            "scp -t /x | tee y",
            "scp -t $(id)",
            "scp -t \"$HOME\"",
            "scp -t `id`",
            "scp -t /x > /etc/passwd",
            "scp -t /x\nrm -rf /",
            "scp -t /x # comment",
            "scp -t 'unterminated",
            "git-upload-pack '/r.git' &",
            "(scp -t /x)",
            "rsync -av . /x",
            "scp /a /b",
            "scp -t -f /x",
            "scp -t /a /b",
            "scp -x -t /a",
            "git-upload-pack a b",
            "git status",
            "bash -c 'scp -t /x'",
            "",
        ] {
            assert_eq!(recognise(line), None, "{line:?}");
        }
    }

    #[test]
    fn quotes_are_split_as_the_shell_splits_them() {
        assert_eq!(split_words(r#"a 'b c' "d e" f\ g 'h;i' "j\"k" ''"#).unwrap(), ["a", "b c", "d e", "f g", "h;i", "j\"k", ""]);
        assert_eq!(split_words("scp -t 'multi\nline'").unwrap(), ["scp", "-t", "multi\nline"]);
        assert_eq!(recognise("git-receive-pack '/srv/a b.git'").unwrap().arguments, ["/srv/a b.git"]);
    }

    #[test]
    fn sftp_server_gets_its_log_switched_on_once() {
        let cases = [
            ("/usr/lib/openssh/sftp-server", Some("/usr/lib/openssh/sftp-server -e -l INFO")),
            ("/usr/lib/openssh/sftp-server -R -u 022", Some("/usr/lib/openssh/sftp-server -R -u 022 -e -l INFO")),
            ("/usr/lib/openssh/sftp-server -e", Some("/usr/lib/openssh/sftp-server -e -l INFO")),
            ("/usr/lib/openssh/sftp-server -e -l INFO", None),
            ("/usr/lib/openssh/sftp-server -el VERBOSE", None),
            ("/usr/lib/openssh/sftp-server -e -l debug3", None),
            // A weaker level would hide the file operations: the later -l wins.
            ("/usr/lib/openssh/sftp-server -e -l QUIET", Some("/usr/lib/openssh/sftp-server -e -l QUIET -l INFO")),
            ("/usr/lib/openssh/sftp-server -lERROR", Some("/usr/lib/openssh/sftp-server -lERROR -e -l INFO")),
            // -l's value is not a flag, and options end before an operand.
            ("/usr/lib/openssh/sftp-server -d /e x", Some("/usr/lib/openssh/sftp-server -d /e -e -l INFO x")),
            ("'/opt/my sftp/sftp-server' -P 'remove,rename'", Some("'/opt/my sftp/sftp-server' -P remove,rename -e -l INFO")),
        ];
        for (line, rewritten) in cases {
            let r = recognise(line).unwrap();
            assert_eq!(r.command_line().as_deref(), rewritten, "{line}");
            assert!(r.log_on_stderr(), "{line}");
            // What we run is itself recognised, and needs no more change.
            if let Some(again) = r.command_line() {
                assert_eq!(recognise(&again).unwrap().command_line(), None, "{again}");
            }
        }
        let scp = recognise("scp -t /x").unwrap();
        assert_eq!((scp.command_line(), scp.log_on_stderr()), (None, false));
    }

    // ---- scp, from the captures ----

    #[test]
    fn scp_upload_of_one_file_into_a_directory() {
        let t = captured("scp_upload");
        assert_eq!((t.protocol, t.direction), ("scp", "upload"));
        assert_eq!(paths(&t), [("/tmp/tr/dst/a.txt".to_string(), Some(12), "upload")]);
        assert_eq!((t.bytes_in, t.bytes_out), (55, 4));
        assert_eq!((&t.sha256_in, &t.sha256_out), (&None, &None), "scp files are hashed one by one, not the stream");
        assert_eq!((t.notes.len(), t.incomplete.as_ref()), (0, None));
        assert_eq!(t.summary(), "scp upload: /tmp/tr/dst/a.txt (12 bytes); 55 bytes in, 4 bytes out");
    }

    #[test]
    fn scp_recursive_upload_follows_the_directories() {
        let t = captured("scp_upload_r");
        // `tree` did not exist, so scp made it: the core cannot know, and
        // keeps the name sent beside the target.
        assert_eq!(t.files.first().and_then(|f| f.name.as_deref()), Some("src"));
        assert_eq!(
            paths(&t),
            [
                ("/tmp/tr/dst/tree".to_string(), None, "mkdir"),
                ("/tmp/tr/dst/tree/sub".to_string(), None, "mkdir"),
                ("/tmp/tr/dst/tree/sub/b.bin".to_string(), Some(3000), "upload"),
                ("/tmp/tr/dst/tree/sub/deeper".to_string(), None, "mkdir"),
                ("/tmp/tr/dst/tree/sub/deeper/empty".to_string(), Some(0), "upload"),
                ("/tmp/tr/dst/tree/sub/deeper/c.txt".to_string(), Some(5), "upload"),
                ("/tmp/tr/dst/tree/a.txt".to_string(), Some(12), "upload"),
            ]
        );
        assert_eq!(t.incomplete, None);
        assert_eq!(t.summary(), "scp upload: mkdir /tmp/tr/dst/tree, mkdir /tmp/tr/dst/tree/sub, /tmp/tr/dst/tree/sub/b.bin (3000 bytes) and 4 more; 3126 bytes in, 15 bytes out");
    }

    #[test]
    fn scp_recursive_download_names_the_server_paths() {
        let t = captured("scp_download_r");
        assert_eq!(t.direction, "download");
        assert_eq!(
            paths(&t),
            [
                ("/tmp/tr/src/sub/b.bin".to_string(), Some(3000), "download"),
                ("/tmp/tr/src/sub/deeper/empty".to_string(), Some(0), "download"),
                ("/tmp/tr/src/sub/deeper/c.txt".to_string(), Some(5), "download"),
                ("/tmp/tr/src/a.txt".to_string(), Some(12), "download"),
            ]
        );
        assert_eq!((t.bytes_in, t.bytes_out), (22, 3315));
        assert_eq!(t.arguments, ["/tmp/tr/src"]);
    }

    /// `src/sub/b.bin` of the captures (3,000 random bytes), hashed with
    /// sha256sum from its bytes in `scp_upload_r.in`.
    const B_BIN_SHA: &str = "08b7665fe6d09aa232d0a603c82bec62b850d20501671808904221e3f308e77b";
    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn hashes(t: &Transfer) -> Vec<(&str, &'static str, Option<&str>)> {
        t.files.iter().map(|f| (f.path.as_str(), f.direction, f.sha256.as_deref())).collect()
    }

    #[test]
    fn scp_files_carry_the_hash_of_their_bytes() {
        let t = captured("scp_upload");
        assert_eq!(hashes(&t), [("/tmp/tr/dst/a.txt", "upload", Some(sha(b"hello world\n").as_str()))]);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["files"][0]["sha256"], "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");

        let (a, c) = (sha(b"hello world\n"), sha(b"line\n"));
        let t = captured("scp_upload_r");
        assert_eq!(
            hashes(&t),
            [
                ("/tmp/tr/dst/tree", "mkdir", None),
                ("/tmp/tr/dst/tree/sub", "mkdir", None),
                ("/tmp/tr/dst/tree/sub/b.bin", "upload", Some(B_BIN_SHA)),
                ("/tmp/tr/dst/tree/sub/deeper", "mkdir", None),
                ("/tmp/tr/dst/tree/sub/deeper/empty", "upload", Some(EMPTY_SHA)),
                ("/tmp/tr/dst/tree/sub/deeper/c.txt", "upload", Some(c.as_str())),
                ("/tmp/tr/dst/tree/a.txt", "upload", Some(a.as_str())),
            ]
        );
        let t = captured("scp_download_r");
        assert_eq!(
            hashes(&t),
            [
                ("/tmp/tr/src/sub/b.bin", "download", Some(B_BIN_SHA)),
                ("/tmp/tr/src/sub/deeper/empty", "download", Some(EMPTY_SHA)),
                ("/tmp/tr/src/sub/deeper/c.txt", "download", Some(c.as_str())),
                ("/tmp/tr/src/a.txt", "download", Some(a.as_str())),
            ]
        );
    }

    #[test]
    fn scp_file_cut_short_or_failed_at_the_source_has_no_hash() {
        let t = observe_sink("/x/", &[b"C0644 10 f\nabc"], b"");
        assert_eq!(hashes(&t), [("/x/f", "upload", None)]);
        // The source could not read `f`: it sent padding and a message
        // instead of the status byte.
        let t = observe_sink("/x/", &[b"C0644 3 f\nab\0\x01scp: f: read error\nC0644 1 g\nz\0"], b"");
        assert_eq!(hashes(&t), [("/x/f", "upload", None), ("/x/g", "upload", Some(sha(b"z").as_str()))]);
        // The data is all there but its status byte is not.
        let t = observe_sink("/x/", &[b"C0644 1 f\nz"], b"");
        assert_eq!(hashes(&t), [("/x/f", "upload", None)]);
    }

    #[test]
    fn scp_refusals_are_kept_as_notes() {
        let t = captured("scp_error");
        assert_eq!(paths(&t), [("/nonexistent/dir/x".to_string(), Some(12), "upload")]);
        assert_eq!(t.notes, ["scp warning: scp: /nonexistent/dir/x: No such file or directory"]);
        // The client gave up before sending the data.
        assert!(t.incomplete.unwrap().contains("after 0 of 12 bytes"));

        let t = captured("scp_dl_missing");
        assert!(t.files.is_empty());
        assert_eq!(t.notes, ["scp warning: scp: /tmp/tr/nope: No such file or directory"]);
        assert_eq!(t.incomplete, None);
        assert_eq!(t.summary(), "scp download: /tmp/tr/nope; 1 bytes in, 46 bytes out");
    }

    #[test]
    fn scp_fatal_error_from_the_sink() {
        let t = observe_sink("/x/", &[b"C0644 3 f\nabc\0"], b"\0\x02scp: disk full\n");
        assert_eq!(paths(&t), [("/x/f".to_string(), Some(3), "upload")]);
        assert_eq!(t.notes, ["scp error: scp: disk full"]);
    }

    #[test]
    fn scp_source_failing_mid_file_sends_a_message_instead_of_its_status() {
        let t = observe_sink("/x/", &[b"C0644 3 f\nab\0\x01scp: f: read error\nC0644 1 g\nz\0"], b"");
        assert_eq!(paths(&t).len(), 2);
        assert_eq!(t.notes, ["scp warning: scp: f: read error"]);
        assert_eq!(t.incomplete, None);
    }

    #[test]
    fn scp_download_of_a_glob_uses_the_sources_directory() {
        let mut o = Observer::new(recognise("scp -f /srv/a.txt /srv/b.txt").unwrap());
        o.output(b"C0644 1 a.txt\nx\0C0644 1 c.txt\ny\0");
        let t = o.finish();
        assert_eq!(t.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["/srv/a.txt", "/srv/c.txt"]);
    }

    #[test]
    fn scp_upload_to_a_target_that_may_be_a_directory_keeps_the_name() {
        let t = observe_sink("/tmp/x", &[b"C0600 2 secret.key\nab\0"], b"");
        assert_eq!(t.files, [FileEntry { name: Some("secret.key".into()), sha256: Some(sha(b"ab")), ..FileEntry::new("/tmp/x".into(), Some(2), "upload") }]);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["files"][0]["name"], "secret.key");
        assert!(json["files"][0].get("to").is_none());
        let t = observe_sink("/tmp/secret.key", &[b"C0600 2 secret.key\nab\0"], b"");
        assert_eq!(t.files.first().unwrap().name, None);
    }

    #[test]
    fn scp_headers_and_data_split_anywhere_give_the_same_record() {
        let input = fixture("scp_upload_r.in");
        let whole = observe_sink("/tmp/tr/dst/tree", &[&input], b"");
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(observe_sink("/tmp/tr/dst/tree", &bytewise, b""), whole);
    }

    proptest! {
        #[test]
        fn any_split_of_an_scp_stream_gives_the_same_record(cuts in proptest::collection::vec(0usize..3200, 0..12)) {
            let input = fixture("scp_upload_r.in");
            let whole = observe_sink("/tmp/tr/dst/tree", &[&input], b"");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([input.len()]) {
                pieces.push(&input[at..cut]);
                at = cut;
            }
            prop_assert_eq!(observe_sink("/tmp/tr/dst/tree", &pieces, b""), whole);
        }
    }

    #[test]
    fn scp_malformed_headers_stop_the_parser_but_not_the_count() {
        for (input, error) in [
            (&b"X123\n"[..], "not one of C, D, E, T"),
            (b"C0644 12x f\n", "not one of C, D, E, T"),
            (b"C0644 12\n", "not one of C, D, E, T"),
            (b"C0999 1 f\n", "not one of C, D, E, T"),
            (b"C0644 1 \n", "not one of C, D, E, T"),
            (b"\n", "not one of C, D, E, T"),
            (b"C0644 99999999999999999999999 f\n", "not one of C, D, E, T"),
        ] {
            let mut stream = input.to_vec();
            stream.extend_from_slice(b"C0644 1 later\nx\0");
            let t = observe_sink("/x/", &[&stream], b"");
            assert!(t.incomplete.as_deref().unwrap_or("").contains(error), "{input:?}: {:?}", t.incomplete);
            assert!(t.files.is_empty(), "{input:?}");
            assert_eq!(t.bytes_in, stream.len() as u64);
            assert_eq!(t.sha256_in, None);
        }
    }

    #[test]
    fn a_huge_scp_header_line_is_refused_without_buffering_it() {
        let mut o = Observer::new(recognise("scp -t /x/").unwrap());
        o.input(b"C0644 1 ");
        let name = vec![b'n'; 1 << 20];
        for _ in 0..64 {
            o.input(&name);
        }
        o.input(b"\nx\0");
        let t = o.finish();
        assert_eq!(t.incomplete, Some(ProtocolError::ScpLineTooLong.to_string()));
        assert!(t.files.is_empty());
        assert_eq!(t.bytes_in, 8 + 64 * (1 << 20) + 3);
    }

    #[test]
    fn a_stream_ending_inside_a_file_or_a_line_is_incomplete() {
        let t = observe_sink("/x/", &[b"C0644 10 f\nabc"], b"");
        assert_eq!(t.incomplete, Some("the stream ended inside \"/x/f\", after 3 of 10 bytes".into()));
        let t = observe_sink("/x/", &[b"C0644 10 f"], b"");
        assert_eq!(t.incomplete, Some(ProtocolError::EndedInsideLine.to_string()));
    }

    #[test]
    fn deep_scp_nesting_is_bounded() {
        let mut o = Observer::new(recognise("scp -r -t /x/").unwrap());
        let dir = format!("D0755 0 {}\n", "d".repeat(1000));
        for _ in 0..100 {
            o.input(dir.as_bytes());
        }
        let t = o.finish();
        assert_eq!(t.incomplete, Some(ProtocolError::ScpPathTooLong.to_string()));
        assert!(t.files.len() < 20);
    }

    #[test]
    fn the_file_list_is_capped() {
        let mut o = Observer::new(recognise("scp -t /x/").unwrap());
        for n in 0..MAX_FILES + 5 {
            o.input(format!("C0644 0 f{n}\n\0").as_bytes());
        }
        let t = o.finish();
        assert_eq!((t.files.len(), t.files_omitted), (MAX_FILES, 5));
        // The hashes go to the entries kept, whatever was omitted.
        assert!(t.files.iter().all(|f| f.sha256.as_deref() == Some(EMPTY_SHA)));
        assert!(t.summary().contains(&format!(" and {} more;", MAX_FILES + 2)));
    }

    // ---- sftp ----

    #[test]
    fn sftp_session_from_its_log() {
        let t = captured("sftp_batch");
        assert_eq!((t.protocol, t.direction), ("sftp", "both"));
        let d = "/tmp/tr/sftpdst";
        assert_eq!(
            paths(&t),
            [
                (format!("{d}/a.txt"), Some(12), "upload"),
                (format!("{d}/bin.bin"), Some(3000), "upload"),
                (format!("{d}/newdir"), None, "mkdir"),
                (format!("{d}/a.txt"), None, "rename"),
                (d.to_string(), None, "list"),
                (format!("{d}/bin.bin"), Some(3000), "download"),
                (format!("{d}/bin.bin"), None, "remove"),
                (format!("{d}/newdir"), None, "rmdir"),
            ]
        );
        assert_eq!(t.files.get(3).unwrap().to.as_deref(), Some("/tmp/tr/sftpdst/newdir/renamed.txt"));
        assert_eq!(t.notes, ["sftp-server: No such file", "sftp-server: Failure"]);
        assert_eq!((t.bytes_in, t.bytes_out), (3923, 4541));
        assert_eq!((&t.sha256_in, &t.sha256_out), (&None, &None), "sftp files are hashed one by one, not the stream");
    }

    #[test]
    fn modern_scp_upload_is_sftp() {
        let log = fixture("scp_sftp_up.err");
        let mut o = Observer::new(recognise("/usr/lib/openssh/sftp-server").unwrap());
        o.log(&log);
        let t = o.finish();
        assert_eq!(t.direction, "upload");
        assert_eq!(paths(&t), [("/tmp/tr/sftpdst/up.txt".to_string(), Some(12), "upload")]);
        assert_eq!(t.summary(), "sftp upload: /tmp/tr/sftpdst/up.txt (12 bytes); 0 bytes in, 0 bytes out");
    }

    fn sftp_log(pieces: &[&[u8]]) -> Transfer {
        let mut o = Observer::new(recognise("/usr/lib/openssh/sftp-server").unwrap());
        for piece in pieces {
            o.log(piece);
        }
        o.finish()
    }

    #[test]
    fn sftp_renames_and_links() {
        let t = sftp_log(&[&fixture("sftp_misc.err")]);
        let got: Vec<_> = t.files.iter().map(|f| (f.direction, f.path.as_str(), f.to.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("rename", "/tmp/tr/o1", Some("/tmp/tr/o3")),
                ("symlink", "/tmp/tr/o3", Some("/tmp/tr/o4")),
                ("link", "/tmp/tr/o3", Some("/tmp/tr/o5")),
                ("remove", "/tmp/tr/nonexist", None),
            ]
        );
        assert_eq!(t.direction, "none");
        assert!(t.summary().starts_with("sftp none: rename /tmp/tr/o1 -> /tmp/tr/o3, symlink"));
    }

    #[test]
    fn sftp_odd_names_are_unescaped_and_a_cut_line_is_noted() {
        let t = sftp_log(&[&fixture("sftp_odd.err")]);
        let names: Vec<&str> = t.files.iter().filter(|f| f.direction == "download").map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["/tmp/tr/odd/new\nline", "/tmp/tr/odd/back\\slash \"q\" é"]);
        let cut = t.files.iter().find(|f| f.direction == "mkdir").unwrap();
        assert!(cut.path.starts_with("/tmp/tr/odd/LLLL") && cut.path.len() < 1100);
        assert!(t.notes.iter().any(|n| n.contains("cut a log line")));
        // The summary stays on one line.
        assert!(!t.summary().contains('\n'));
    }

    #[test]
    fn sftp_log_split_anywhere_gives_the_same_record() {
        let log = fixture("sftp_batch.err");
        let whole = sftp_log(&[&log]);
        let bytewise: Vec<&[u8]> = log.chunks(1).collect();
        assert_eq!(sftp_log(&bytewise), whole);
        // Split between the \r and the \n.
        let at = log.iter().position(|&b| b == b'\r').unwrap() + 1;
        assert_eq!(sftp_log(&[&log[..at], &log[at..]]), whole);
    }

    #[test]
    fn sftp_file_never_closed_is_kept_without_a_size() {
        let t = sftp_log(&[b"open \"/a\" flags WRITE,CREATE,TRUNCATE mode 0644\r\nopen \"/b\" flags READ mode 0666\r\n"]);
        assert_eq!(paths(&t), [("/a".to_string(), None, "upload"), ("/b".to_string(), None, "download")]);
        assert_eq!(t.direction, "both");
        assert!(t.notes.iter().any(|n| n.contains("still open")));
    }

    #[test]
    fn sftp_unknown_and_overlong_log_lines_are_notes_and_bounded() {
        let mut long = vec![b'x'; MAX_LINE * 4];
        long.extend_from_slice(b"\r\n");
        let t = sftp_log(&[b"something new \"/p\"\r\n", &long, b"remove name \"/after\"\r\n"]);
        assert_eq!(t.notes.first().map(String::as_str), Some("sftp-server: something new \"/p\""));
        assert!(t.notes.iter().any(|n| n.contains("too long")));
        assert_eq!(paths(&t), [("/after".to_string(), None, "remove")]);
        let many: Vec<u8> = b"sent status Failure\r\n".repeat(MAX_NOTES + 7);
        let t = sftp_log(&[&many]);
        assert_eq!((t.notes.len(), t.notes_omitted), (MAX_NOTES, 7));
    }

    // ---- sftp packets: the files' hashes ----

    /// The big file of `sftp_pipelined` (40,000 random bytes), by sha256sum.
    const BIG_SHA: &str = "3ba3301ad7d5a00023d4d6ec9a2f7d39613506d8922804d2cae937d988f9a83c";

    fn sftp_replay(pieces: &[(Dir, &[u8])]) -> Transfer {
        let mut o = Observer::new(recognise("/usr/lib/openssh/sftp-server").unwrap());
        for (dir, bytes) in pieces {
            match dir {
                Dir::In => o.input(bytes),
                Dir::Out => o.output(bytes),
                Dir::Log => o.log(bytes),
            }
        }
        o.finish()
    }

    #[derive(Clone, Copy, Debug)]
    enum Dir {
        In,
        Out,
        Log,
    }

    fn streams(name: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        (fixture(&format!("{name}.in")), fixture(&format!("{name}.out")), fixture(&format!("{name}.err")))
    }

    #[test]
    fn sftp_files_carry_the_hash_of_their_bytes() {
        let t = captured("sftp_batch");
        let a = sha(b"hello world\n");
        let d = "/tmp/tr/sftpdst";
        let files: Vec<_> = t.files.iter().map(|f| (f.path.clone(), f.direction, f.sha256.as_deref())).collect();
        assert_eq!(
            files,
            [
                (format!("{d}/a.txt"), "upload", Some(a.as_str())),
                (format!("{d}/bin.bin"), "upload", Some(B_BIN_SHA)),
                (format!("{d}/newdir"), "mkdir", None),
                (format!("{d}/a.txt"), "rename", None),
                (d.to_string(), "list", None),
                (format!("{d}/bin.bin"), "download", Some(B_BIN_SHA)),
                (format!("{d}/bin.bin"), "remove", None),
                (format!("{d}/newdir"), "rmdir", None),
            ]
        );
        // Nothing more to say than the log said.
        assert_eq!(t.notes, ["sftp-server: No such file", "sftp-server: Failure"]);
        assert_eq!(t.incomplete, None);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["files"][1]["sha256"], B_BIN_SHA);
        assert!(json["files"][2].get("sha256").is_none());
    }

    #[test]
    fn sftp_pipelined_transfers_in_many_packets_are_hashed() {
        let t = captured("sftp_pipelined");
        assert_eq!(
            hashes(&t),
            [("/tmp/tr2/dst/big.bin", "upload", Some(BIG_SHA)), ("/tmp/tr2/dst/big.bin", "download", Some(BIG_SHA))]
        );
        assert_eq!(t.notes, ["sftp-server: No such file"]);
    }

    #[test]
    fn sftp_packets_split_anywhere_or_replies_first_give_the_same_record() {
        for name in ["sftp_batch", "sftp_pipelined"] {
            let (input, output, log) = streams(name);
            let whole = sftp_replay(&[(Dir::In, &input), (Dir::Out, &output), (Dir::Log, &log)]);
            assert!(whole.files.iter().any(|f| f.sha256.is_some()), "{name}");
            // Byte by byte, each stream in turn.
            let mut pieces: Vec<(Dir, &[u8])> = input.chunks(1).map(|b| (Dir::In, b)).collect();
            pieces.extend(output.chunks(1).map(|b| (Dir::Out, b)));
            pieces.extend(log.chunks(1).map(|b| (Dir::Log, b)));
            assert_eq!(sftp_replay(&pieces), whole, "{name} bytewise");
            // Every reply before its request, as when the stdout relay
            // passes its copy on before the stdin relay.
            assert_eq!(sftp_replay(&[(Dir::Log, &log), (Dir::Out, &output), (Dir::In, &input)]), whole, "{name} replies first");
            // Interleaved a byte at a time.
            let mut pieces = Vec::new();
            for at in 0..input.len().max(output.len()) {
                pieces.extend(input.get(at..=at).map(|b| (Dir::In, b)));
                pieces.extend(output.get(at..=at).map(|b| (Dir::Out, b)));
            }
            pieces.push((Dir::Log, &log));
            assert_eq!(sftp_replay(&pieces), whole, "{name} interleaved");
        }
    }

    proptest! {
        #[test]
        fn any_interleaving_of_sftp_streams_gives_the_same_record(
            cuts_in in proptest::collection::vec(0usize..4000, 0..16),
            cuts_out in proptest::collection::vec(0usize..4600, 0..16),
            order in proptest::collection::vec(any::<bool>(), 34),
        ) {
            let (input, output, log) = streams("sftp_batch");
            let whole = sftp_replay(&[(Dir::In, &input), (Dir::Out, &output), (Dir::Log, &log)]);
            let split = |bytes: &[u8], cuts: &[usize]| -> Vec<Vec<u8>> {
                let mut cuts: Vec<usize> = cuts.iter().map(|c| (*c).min(bytes.len())).collect();
                cuts.sort_unstable();
                let mut at = 0;
                let mut pieces = Vec::new();
                for cut in cuts.into_iter().chain([bytes.len()]) {
                    pieces.push(bytes[at..cut].to_vec());
                    at = cut;
                }
                pieces
            };
            let (mut ins, mut outs) = (split(&input, &cuts_in).into_iter(), split(&output, &cuts_out).into_iter());
            let mut pieces: Vec<(Dir, Vec<u8>)> = vec![(Dir::Log, log.clone())];
            for take_input in order {
                let next = if take_input { ins.next().map(|p| (Dir::In, p)) } else { outs.next().map(|p| (Dir::Out, p)) };
                pieces.extend(next);
            }
            pieces.extend(ins.map(|p| (Dir::In, p)));
            pieces.extend(outs.map(|p| (Dir::Out, p)));
            let borrowed: Vec<(Dir, &[u8])> = pieces.iter().map(|(d, p)| (*d, p.as_slice())).collect();
            prop_assert_eq!(sftp_replay(&borrowed), whole);
        }
    }

    fn packet(kind: u8, fields: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = std::iter::once(kind).chain(fields.iter().flat_map(|f| f.iter().copied())).collect();
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    fn string(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    /// Builds both sides of an sftp conversation about files.
    #[derive(Default)]
    struct Conversation {
        input: Vec<u8>,
        output: Vec<u8>,
        log: Vec<u8>,
        id: u32,
    }

    impl Conversation {
        fn new() -> Self {
            let mut c = Conversation { id: 1, ..Default::default() };
            c.input.extend(packet(1, &[&3u32.to_be_bytes()]));
            c.output.extend(packet(2, &[&3u32.to_be_bytes()]));
            c
        }

        fn next_id(&mut self) -> [u8; 4] {
            self.id += 1;
            self.id.to_be_bytes()
        }

        fn open(&mut self, path: &str, handle: &[u8], write: bool) {
            let id = self.next_id();
            let flags: u32 = if write { 0x1a } else { 0x01 };
            self.input.extend(packet(3, &[&id, &string(path.as_bytes()), &flags.to_be_bytes(), &0u32.to_be_bytes()]));
            self.output.extend(packet(102, &[&id, &string(handle)]));
            let flags = if write { "WRITE,CREATE,TRUNCATE" } else { "READ" };
            self.log.extend(format!("open \"{path}\" flags {flags} mode 0644\r\n").as_bytes());
        }

        fn write(&mut self, handle: &[u8], offset: u64, data: &[u8]) {
            let id = self.next_id();
            self.input.extend(packet(6, &[&id, &string(handle), &offset.to_be_bytes(), &string(data)]));
            self.output.extend(packet(101, &[&id, &0u32.to_be_bytes(), &string(b"Success"), &string(b"")]));
        }

        /// A READ and its DATA reply (or EOF for no data).
        fn read(&mut self, handle: &[u8], offset: u64, data: &[u8]) {
            let id = self.next_id();
            self.input.extend(packet(5, &[&id, &string(handle), &offset.to_be_bytes(), &4096u32.to_be_bytes()]));
            if data.is_empty() {
                self.output.extend(packet(101, &[&id, &1u32.to_be_bytes(), &string(b"End of file"), &string(b"")]));
            } else {
                self.output.extend(packet(103, &[&id, &string(data)]));
            }
        }

        fn close(&mut self, path: &str, handle: &[u8], read: u64, written: u64) {
            let id = self.next_id();
            self.input.extend(packet(4, &[&id, &string(handle)]));
            self.output.extend(packet(101, &[&id, &0u32.to_be_bytes(), &string(b"Success"), &string(b"")]));
            self.log.extend(format!("close \"{path}\" bytes read {read} written {written}\r\n").as_bytes());
        }

        fn run(&self) -> Transfer {
            sftp_replay(&[(Dir::In, &self.input), (Dir::Out, &self.output), (Dir::Log, &self.log)])
        }
    }

    fn upload(writes: &[(u64, &[u8])], logged: u64) -> Transfer {
        let mut c = Conversation::new();
        c.open("/up", b"h1", true);
        for (offset, data) in writes {
            c.write(b"h1", *offset, data);
        }
        c.close("/up", b"h1", 0, logged);
        c.run()
    }

    #[test]
    fn sftp_writes_out_of_order_within_the_cap_are_hashed() {
        let t = upload(&[(4, b"5678"), (8, b"9"), (0, b"1234")], 9);
        assert_eq!(hashes(&t), [("/up", "upload", Some(sha(b"123456789").as_str()))]);
        assert!(t.notes.is_empty(), "{:?}", t.notes);
    }

    #[test]
    fn sftp_file_with_a_gap_or_bytes_sent_twice_has_no_hash_and_a_note() {
        type Writes<'a> = &'a [(u64, &'a [u8])];
        let cases: &[(Writes, u64, &str)] = &[
            (&[(0, b"1234"), (8, b"9")], 5, "the bytes from offset 4 to 8 were not seen"),
            // A resumed upload starts past 0.
            (&[(4, b"5678")], 4, "the bytes from offset 0 to 4 were not seen"),
            (&[(0, b"1234"), (2, b"34")], 6, "the bytes at offset 2 came again"),
            (&[(4, b"5678"), (6, b"78"), (0, b"1234")], 10, "the bytes at offset 6 came again"),
            (&[(4, b"5678"), (0, b"123456")], 10, "the bytes at offset 0 came again"),
            // The server wrote fewer bytes than were sent (a failed WRITE).
            (&[(0, b"1234")], 3, "the packets showed 4 bytes upload, the server's log 3 upload"),
        ];
        for (writes, logged, why) in cases {
            let t = upload(writes, *logged);
            assert_eq!(hashes(&t), [("/up", "upload", None)], "{why}");
            assert_eq!(t.notes, [format!("sftp: no hash for \"/up\": {why}")]);
        }
    }

    #[test]
    fn sftp_download_with_a_short_read_fills_its_gap() {
        let mut c = Conversation::new();
        c.open("/down", b"h", false);
        c.read(b"h", 0, b"1234");
        c.read(b"h", 8, b"9abc");
        c.read(b"h", 12, b"");
        // The client asks again for what the short read left out.
        c.read(b"h", 4, b"5678");
        c.close("/down", b"h", 12, 0);
        let t = c.run();
        assert_eq!(hashes(&t), [("/down", "download", Some(sha(b"123456789abc").as_str()))]);
        assert!(t.notes.is_empty(), "{:?}", t.notes);
    }

    #[test]
    fn sftp_bytes_ahead_of_a_gap_are_buffered_up_to_a_cap() {
        let chunk = vec![7u8; 200 * 1024];
        let mut c = Conversation::new();
        c.open("/big", b"h", true);
        let mut offset = 1;
        while offset < MAX_SFTP_AHEAD_FILE as u64 + 1 + chunk.len() as u64 {
            c.write(b"h", offset, &chunk);
            offset += chunk.len() as u64;
        }
        c.write(b"h", 0, b"x");
        c.close("/big", b"h", 0, offset);
        let t = c.run();
        assert_eq!(hashes(&t), [("/big", "upload", None)]);
        assert_eq!(t.notes, ["sftp: no hash for \"/big\": more than 4 MiB came after a gap at offset 0"]);
    }

    #[test]
    fn sftp_file_both_read_and_written_has_no_hash() {
        let mut c = Conversation::new();
        c.open("/rw", b"h", true);
        c.write(b"h", 0, b"ab");
        c.read(b"h", 0, b"ab");
        c.close("/rw", b"h", 2, 2);
        let t = c.run();
        assert_eq!(hashes(&t), [("/rw", "both", None)]);
        assert_eq!(t.notes, ["sftp: no hash for \"/rw\": it was both read and written"]);
    }

    #[test]
    fn sftp_handles_reused_after_close_and_paths_logged_escaped() {
        let name = "/odd/new\nline é \"q\"";
        let escaped = "/odd/new\nline \\303\\251 \"q\"";
        let mut c = Conversation::new();
        c.open(name, b"0", true);
        c.write(b"0", 0, b"one");
        c.close(name, b"0", 0, 3);
        c.open("/two", b"0", true);
        c.write(b"0", 0, b"two");
        c.close("/two", b"0", 0, 3);
        let log = String::from_utf8(c.log.clone()).unwrap().replace(name, escaped);
        let t = sftp_replay(&[(Dir::In, &c.input), (Dir::Out, &c.output), (Dir::Log, log.as_bytes())]);
        assert_eq!(hashes(&t), [(name, "upload", Some(sha(b"one").as_str())), ("/two", "upload", Some(sha(b"two").as_str()))]);
    }

    #[test]
    fn sftp_malformed_packets_stop_the_hashing_not_the_record() {
        let mut first = Conversation::new();
        first.open("/first", b"h", true);
        first.write(b"h", 0, b"kept");
        first.close("/first", b"h", 0, 4);
        let mut second = Conversation { id: 100, ..Default::default() };
        second.open("/second", b"h", true);
        second.write(b"h", 0, b"lost");
        second.close("/second", b"h", 0, 4);
        let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
            (0u32.to_be_bytes().to_vec(), ProtocolError::SftpPacketLength(0)),
            (u32::MAX.to_be_bytes().to_vec(), ProtocolError::SftpPacketLength(u32::MAX)),
            ((MAX_SFTP_PACKET as u32 + 1).to_be_bytes().to_vec(), ProtocolError::SftpPacketLength(MAX_SFTP_PACKET as u32 + 1)),
            // An OPEN whose path runs past the end of its packet.
            (packet(3, &[&9u32.to_be_bytes(), &1000u32.to_be_bytes(), b"/x"]), ProtocolError::SftpShortPacket(3)),
            (packet(6, &[&9u32.to_be_bytes()]), ProtocolError::SftpShortPacket(6)),
            (packet(50, &[&9u32.to_be_bytes()]), ProtocolError::SftpUnknownRequest(50)),
        ];
        for (bad, error) in cases {
            let log = [first.log.clone(), second.log.clone()].concat();
            let t = sftp_replay(&[
                (Dir::In, &first.input),
                (Dir::Out, &first.output),
                (Dir::In, &bad),
                (Dir::In, &second.input),
                (Dir::Out, &second.output),
                (Dir::Log, &log),
            ]);
            assert_eq!(t.incomplete, Some(error.to_string()), "{bad:?}");
            // The log's record is whole; the hashes stop at the bad packet.
            assert_eq!(hashes(&t), [("/first", "upload", Some(sha(b"kept").as_str())), ("/second", "upload", None)]);
            let input = [first.input.clone(), bad, second.input.clone()].concat();
            assert_eq!((t.bytes_in, t.sha256_in.clone()), (input.len() as u64, None));
        }
    }

    #[test]
    fn sftp_huge_or_malformed_replies_stop_the_hashing() {
        let mut c = Conversation::new();
        c.open("/f", b"h", true);
        let mut output = c.output.clone();
        output.extend(packet(102, &[&77u32.to_be_bytes(), &string(&[0; MAX_SFTP_HANDLE + 1])]));
        let t = sftp_replay(&[(Dir::In, &c.input), (Dir::Out, &output)]);
        assert_eq!(t.incomplete, Some(ProtocolError::SftpHandleTooLong.to_string()));
        let t = sftp_replay(&[(Dir::Out, &[0x7f, 0xff, 0xff, 0xff, 103])]);
        assert_eq!(t.incomplete, Some(ProtocolError::SftpPacketLength(0x7fff_ffff).to_string()));
        let t = sftp_replay(&[(Dir::Out, &packet(103, &[&1u32.to_be_bytes(), &5u32.to_be_bytes(), b"abc"]))]);
        assert_eq!(t.incomplete, Some(ProtocolError::SftpShortPacket(103).to_string()));
    }

    #[test]
    fn sftp_requests_awaiting_replies_are_bounded() {
        let mut c = Conversation::new();
        for _ in 0..=MAX_SFTP_PENDING {
            let id = c.next_id();
            c.input.extend(packet(17, &[&id, &string(b"/")]));
        }
        let t = c.run();
        assert_eq!(t.incomplete, Some(ProtocolError::SftpTooManyPending.to_string()));
        // Replies never asked for are bounded the same way.
        let mut output = Vec::new();
        for id in 0..=MAX_SFTP_PENDING as u32 {
            output.extend(packet(101, &[&id.to_be_bytes(), &0u32.to_be_bytes()]));
        }
        let t = sftp_replay(&[(Dir::Out, &output)]);
        assert_eq!(t.incomplete, Some(ProtocolError::SftpTooManyPending.to_string()));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            pieces in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..300)), 0..20),
        ) {
            for line in ["/usr/lib/openssh/sftp-server", "scp -t /x", "scp -r -f /x", "git-receive-pack r.git"] {
                let mut o = Observer::new(recognise(line).unwrap());
                for (dir, bytes) in &pieces {
                    match dir {
                        0 => o.input(bytes),
                        1 => o.output(bytes),
                        _ => o.log(bytes),
                    }
                }
                let t = o.finish();
                let _ = t.summary();
            }
        }

        /// Well-framed packets of the types that are followed, with small
        /// ids, handles and offsets so that they meet: never a panic, and
        /// a hash only ever for the bytes the packets carried in order.
        #[test]
        fn arbitrary_sftp_packets_never_panic(
            packets in proptest::collection::vec(
                (any::<bool>(), 0u8..8, 0u32..6, 0u8..3, 0u64..12, proptest::collection::vec(any::<u8>(), 0..6)),
                0..60,
            ),
        ) {
            let mut o = Observer::new(recognise("/usr/lib/openssh/sftp-server").unwrap());
            o.log(b"open \"/p\" flags WRITE mode 0644\r\nclose \"/p\" bytes read 0 written 4\r\n");
            for (to_server, kind, id, handle, offset, data) in &packets {
                let (id, handle) = (id.to_be_bytes(), string(&[*handle]));
                let bytes = match (to_server, kind) {
                    (true, 0) => packet(3, &[&id, &string(b"/p"), &0x1au32.to_be_bytes(), &0u32.to_be_bytes()]),
                    (true, 1) => packet(4, &[&id, &handle]),
                    (true, 2) => packet(5, &[&id, &handle, &offset.to_be_bytes(), &4u32.to_be_bytes()]),
                    (true, _) => packet(6, &[&id, &handle, &offset.to_be_bytes(), &string(data)]),
                    (false, 0) => packet(102, &[&id, &handle]),
                    (false, 1) => packet(103, &[&id, &string(data)]),
                    (false, 2) => packet(102, &[&id, data]),
                    (false, _) => packet(101, &[&id, &0u32.to_be_bytes()]),
                };
                if *to_server { o.input(&bytes) } else { o.output(&bytes) }
            }
            let t = o.finish();
            let _ = t.summary();
        }
    }

    // ---- rsync and git ----

    #[test]
    fn rsync_direction_and_paths_from_the_command_line() {
        let t = replay("rsync_up", b"in", b"out", b"");
        assert_eq!((t.protocol, t.direction), ("rsync", "upload"));
        assert_eq!(paths(&t), [("/tmp/tr/rdst".to_string(), None, "upload")]);
        assert_eq!(t.arguments, ["--server", "-logDtpre.iLsfxCIvu", ".", "/tmp/tr/rdst"]);
        let t = replay("rsync_down", b"", b"", b"");
        assert_eq!(t.direction, "download");
        assert_eq!(paths(&t), [("/tmp/tr/src/".to_string(), None, "download")]);
        assert_eq!(t.summary(), "rsync download: /tmp/tr/src/; 0 bytes in, 0 bytes out");
    }

    #[test]
    fn git_push_names_the_refs() {
        let t = captured("git_push");
        assert_eq!((t.protocol, t.direction), ("git-receive-pack", "upload"));
        assert_eq!(t.arguments, ["/tmp/tr/repo.git"]);
        assert_eq!(t.files, [FileEntry { to: Some("dcb16470bd9d93964175f6ddd0e4fb7f6355c6f2".into()), ..FileEntry::new("refs/heads/main".into(), None, "ref-create") }]);
        assert_eq!(t.incomplete, None);
        // Split anywhere, same record.
        let input = fixture("git_push.in");
        let mut o = Observer::new(recognise(&command("git_push")).unwrap());
        for b in input.chunks(1) {
            o.input(b);
        }
        o.output(&fixture("git_push.out"));
        assert_eq!(o.finish(), t);
    }

    #[test]
    fn git_push_of_several_refs_and_a_bad_length() {
        let line = |s: &str| format!("{:04x}{s}", s.len() + 4);
        let (a, b, z) = ("a".repeat(40), "b".repeat(40), "0".repeat(40));
        let stream = format!("{}{}{}0000PACK", line(&format!("{a} {b} refs/heads/x\0report-status\n")), line(&format!("{b} {z} refs/tags/old\n")), "0004");
        let mut o = Observer::new(recognise("git-receive-pack 'r.git'").unwrap());
        o.input(stream.as_bytes());
        o.input(b"more pack bytes that are not pkt-lines");
        let t = o.finish();
        assert_eq!(paths(&t), [("refs/heads/x".to_string(), None, "ref-update"), ("refs/tags/old".to_string(), None, "ref-delete")]);
        assert_eq!(t.summary(), "git-receive-pack upload: ref-update refs/heads/x -> bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb, ref-delete refs/tags/old -> 0000000000000000000000000000000000000000; 263 bytes in, 0 bytes out");
        let mut o = Observer::new(recognise("git-receive-pack 'r.git'").unwrap());
        o.input(b"zzzz");
        assert_eq!(o.finish().incomplete, Some(ProtocolError::GitBadPktLength("zzzz".into()).to_string()));
    }

    #[test]
    fn git_clone_is_a_download_of_the_repository() {
        let t = replay("git_clone", b"0009done\n", b"PACK", b"");
        assert_eq!((t.protocol, t.direction), ("git-upload-pack", "download"));
        assert_eq!(t.summary(), "git-upload-pack download: /tmp/tr/repo.git; 9 bytes in, 4 bytes out");
    }

    #[test]
    fn the_record_serialises_with_every_field() {
        let t = captured("scp_upload");
        let json = serde_json::to_value(&t).unwrap();
        for field in ["protocol", "direction", "files", "files_omitted", "bytes_in", "bytes_out", "arguments", "notes", "notes_omitted", "incomplete"] {
            assert!(json.get(field).is_some(), "{field}");
        }
        assert!(json.get("sha256_in").is_none() && json.get("sha256_out").is_none(), "scp's stream is not hashed");
        assert_eq!(
            json["files"][0],
            serde_json::json!({"path": "/tmp/tr/dst/a.txt", "size": 12, "direction": "upload", "sha256": "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"})
        );
        let git = Observer::new(recognise("git-upload-pack 'r'").unwrap()).finish();
        assert_eq!(Some(sha(b"")), git.sha256_in, "git's stream is hashed");
        let json = serde_json::to_value(&git).unwrap();
        assert!(json.get("sha256_in").is_some() && json.get("sha256_out").is_some());
    }
}
