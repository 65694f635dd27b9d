//! A command line as bash would run it: brush-parser's syntax tree, walked
//! into a flat list of [`ParsedCommand`]s, one per simple command that
//! could run.
//!
//! What is walked: lists (`;` `&&` `||` `&`), pipelines, subshells, brace
//! groups, `if`/`while`/`until`/`for`/`case`, function bodies (whether or
//! not the function is called), coprocesses, `$(...)`, backticks, `<(...)`,
//! `>(...)`, here-documents that expand, and the strings other programs run
//! as shell code: `bash -c`, `sh -c`, `zsh -c`, `su -c`, `eval`, `watch`,
//! `ssh host CMD`, a shell reading a here-string or a literal `echo ... |`,
//! `xargs` and `find -exec` with the command they run. Wrappers (`sudo`,
//! `env`, `nice`, `timeout`, ...) are seen through to the program they run
//! (see `wrappers.rs`).
//!
//! State that bash carries from one command to the next within the line is
//! followed where it changes what a later command means: `cd DIR`,
//! assignments (`D=/; rm -rf $D`), `for` loop variables (the body is walked
//! once per value). Subshells and pipeline elements get a copy.
//!
//! What the checker cannot know is marked, not guessed: a command name
//! that comes from a command substitution or a positional parameter, a
//! glob for a command name, shell code made at run time (`eval "$(…)"`,
//! `bash -c "$X"`), a shell or an interpreter reading a program from a
//! pipe, shell options that change how code is read (`bash +B -c`), and
//! operands whose value cannot be known ([`ParsedCommand::unknown`],
//! [`ParsedCommand::unknown_args`]). The policy decides what that gets
//! (`[policy] unknown`); this module only says which part it was.
//! Builtins that assign in ways not followed (`read`, `printf -v`,
//! `mapfile`, `getopts`, `declare -n`) make their variables unknowable,
//! and after `eval`, `source` or `.` every variable is.
//!
//! Bounds, because the input is hostile: lines longer than
//! [`MAX_LINE_BYTES`]; more than [`MAX_NESTING`] levels of re-parsing
//! (`bash -c` in `$(...)` in `eval` ...); more shell text parsed in total
//! than [`budget`] (nested substitutions are re-parsed per level); more
//! than [`MAX_COMMANDS`] commands (loops multiply them). Each of these makes
//! the line a [`Problem`], which the policy turns into a denial: a line too
//! big to check is not allowed to run unchecked.
//!
//! brush-parser's parser recurses once per syntactic nesting level, so a
//! line like `{ { { ... } } }` 10,000 deep would overflow the stack, and a
//! stack overflow aborts the whole process, not just the check. The line is
//! first counted for tokens that can open a level; a few are walked on the
//! caller's stack, more on a helper thread whose stack is sized for that
//! count ([`STACK_PER_OPENER`] each), and past [`MAX_OPENERS`] the line is
//! refused. The count is an upper bound of the depth, so the stack is
//! always enough.

use std::collections::{BTreeMap, BTreeSet};

use brush_parser::ast::{self, Command, CommandPrefixOrSuffixItem, CompoundCommand, IoFileRedirectKind, IoFileRedirectTarget, IoRedirect};
use brush_parser::{Parser, ParserOptions};
use serde::Serialize;

use super::expand::{self, Context, Field, Value, Vars};
use super::flags;
use super::path::{basename, canonical};
use super::wrappers::{self, Unwrapped};

/// Longest line checked; longer lines are refused (256 KiB).
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// Most levels of shell code inside shell code (`bash -c`, `$(...)`, ...).
pub const MAX_NESTING: usize = 16;
/// Most `(` in a row (only blanks between them) in code given to the
/// parser. brush-parser backtracks over `((` (arithmetic, or two
/// subshells) and its time doubles with each further one: 22 took 0.6 s and
/// `(( ` 22 times never ended (found by the policy fuzz target). No line a
/// person types opens nine at once.
pub const MAX_PAREN_RUN: usize = 8;
/// Most simple commands one line may expand to (loops multiply them).
pub const MAX_COMMANDS: usize = 4096;
/// Lines with at most this many nesting openers are walked on the caller's
/// stack (worst case measured well under 1 MiB in an unoptimised build).
pub const INLINE_OPENERS: usize = 24;
/// Most nesting openers a line may have at all.
pub const MAX_OPENERS: usize = 2048;
/// Stack reserved per opener on the helper thread. brush-parser uses about
/// 5 KiB per level in a release build; unoptimised builds and our own walk
/// use more.
pub const STACK_PER_OPENER: usize = 64 * 1024;

/// Total bytes of shell text (the line, plus every re-parsed substitution
/// and `-c` string) one check may parse.
pub fn budget(line_len: usize) -> usize {
    line_len.saturating_mul(4).saturating_add(64 * 1024)
}

/// What the gate knows of the shell the line will run in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// The shell's variables (its real ones when the gate has them). A
    /// variable not here is unset.
    pub vars: BTreeMap<String, String>,
    /// The shell's working directory, for relative paths.
    pub cwd: String,
    /// The user's home directory, for `~` when `HOME` is not in `vars`.
    pub home: String,
    /// The shell asks the gate about every simple command as it runs it,
    /// in `eval` and in the bash or zsh it starts too (the batch gate's
    /// DEBUG trap): shell code made at run time is checked then, so only
    /// what no later check sees (a command name from `$(…)`, an operand)
    /// is unknown now.
    pub traced: bool,
    /// `vars` holds every variable the line names that is set (the hooks
    /// send them all), so a variable not there is unset. Otherwise (`custos
    /// policy check` without `--env`) a variable not there is unset for
    /// the cautious reading of paths (`rm -rf "$DIR"/`), but unknowable
    /// where any value could change which rule applies (`$CMD args`).
    pub complete: bool,
    /// Every program the line starts is decided again at its exec, with
    /// its real arguments (the exec backstop enforces): an operand the
    /// checker cannot know now is known then, so it is not unknown here.
    /// Command names and shell code stay unknown: they decide what runs.
    pub execs_checked: bool,
}

impl Env {
    pub fn new(cwd: &str, home: &str) -> Self {
        Self { vars: BTreeMap::new(), cwd: cwd.to_owned(), home: home.to_owned(), traced: false, complete: false, execs_checked: false }
    }
}

/// Where [`Env::traced`] holds, the code these run is checked as it runs.
const TRACED: &[&str] = &["bash", "zsh", "eval"];

/// One operand of a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Arg {
    /// The word after expansion and quote removal.
    pub text: String,
    /// The word as an absolute, lexically canonical path.
    pub path: String,
    /// Why the word is unsafe (a missing value or a glob at the root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsafe_reason: Option<String>,
    /// The word is an unquoted glob (`/e*`): bash would put in the names it
    /// matches, which the checker takes to be any name it could match.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub glob: bool,
}

/// A redirection of a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Redirect {
    /// `>`, `>>`, `<`, `&>`, ...
    pub op: String,
    /// The target after expansion.
    pub target: String,
    /// The target as an absolute, canonical path.
    pub path: String,
    /// Whether the redirection writes to the target.
    pub write: bool,
}

/// One simple command that the line could run, as policy sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParsedCommand {
    /// The program as it would be executed: `rm`, `/usr/bin/rm`.
    pub program: String,
    /// Its basename: `rm`.
    pub name: String,
    /// What it runs inside, outermost first: `sudo`, `env`, `bash -c`,
    /// `$(...)`, `xargs`, ...
    pub wrappers: Vec<String>,
    /// Normalised flags: `--recursive`, `--force`, or as spelled when the
    /// program has no table (`-x`).
    pub flags: BTreeSet<String>,
    /// Options with values, canonical name first: `["--command", "DROP ..."]`.
    pub values: Vec<(String, String)>,
    /// Operands (everything that is not an option or its value).
    pub args: Vec<Arg>,
    pub redirects: Vec<Redirect>,
    /// Programs whose output this command reads: earlier commands of its
    /// pipeline, and commands in `<(...)` or `$(...)` among its words.
    pub input_from: Vec<String>,
    /// A call of a function from inside that function's own body, in a
    /// pipeline or in the background: a fork bomb's shape.
    pub forks_itself: bool,
    /// The words after expansion, program first, for display.
    pub argv: Vec<String>,
    /// A shell that runs code the gate cannot see: a script file, a stdin
    /// it cannot read, an interactive shell (`sh deploy.sh`, `bash -s`
    /// fed by a file).
    pub unseen_code: bool,
    /// Why the checker cannot know what this command is or runs (its name
    /// comes from `$(cat x)`, is a glob, ...): whatever the rules say of
    /// it, the line gets `[policy] unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// Some operand or option value cannot be known (`rm -rf $(cat list)`);
    /// it matters when a rule about this program looks at its arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_args: Option<UnknownArgs>,
    /// The command reads its standard input from what the checker cannot
    /// read (a pipe from `cat x`, `< file`, `psql -f file`): what. It
    /// matters when a rule about this program looks at `--stdin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin_unknown: Option<String>,
}

/// Operands the checker cannot know, from [`ParsedCommand::unknown_args`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnknownArgs {
    /// The expansion: `$(cat list)`, `$1`.
    pub what: String,
    /// It comes before the first known operand, so the subcommand
    /// (`kubectl $(cat x)`) is unknown too.
    pub subcommand: bool,
}

impl ParsedCommand {
    /// The first operand, which is a subcommand for `kubectl delete`.
    pub fn subcommand(&self) -> Option<&str> {
        self.args.first().map(|a| a.text.as_str())
    }

    /// Every unsafe reason among the operands and redirections.
    pub fn unsafe_reasons(&self) -> impl Iterator<Item = &str> {
        self.args.iter().filter_map(|a| a.unsafe_reason.as_deref())
    }
}

/// Why a line could not be checked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the line does not parse as bash: {0}")]
    Syntax(String),
    #[error("the line is {0} bytes long; the gate checks lines of at most {MAX_LINE_BYTES} bytes")]
    TooLong(usize),
    #[error("the line nests shell code more than {MAX_NESTING} levels deep")]
    TooDeep,
    #[error("the line is too complex to check ({0})")]
    TooComplex(String),
}

impl Problem {
    /// Whether more input could complete the line: an open quote, block,
    /// here-document or trailing operator. An interactive shell reads more
    /// lines for these (PS2), so the gate waits for the whole command.
    pub fn is_incomplete(&self) -> bool {
        match self {
            Problem::Syntax(m) => m.contains("end of input") || m.starts_with("unterminated"),
            _ => false,
        }
    }
}

/// The result of parsing a line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    pub commands: Vec<ParsedCommand>,
    /// The first problem met; the commands found before it are kept.
    pub problem: Option<Problem>,
}

/// Parses `line` into the simple commands it could run.
pub fn analyse(line: &str, env: &Env) -> Analysis {
    if line.len() > MAX_LINE_BYTES {
        return Analysis { commands: Vec::new(), problem: Some(Problem::TooLong(line.len())) };
    }
    let openers = count_openers(line);
    if openers <= INLINE_OPENERS {
        return analyse_here(line, env);
    }
    if openers > MAX_OPENERS {
        return Analysis {
            commands: Vec::new(),
            problem: Some(Problem::TooComplex(format!("{openers} nested constructs, at most {MAX_OPENERS}"))),
        };
    }
    let stack = (openers + 16).saturating_mul(STACK_PER_OPENER);
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new().name("custos-policy-parse".into()).stack_size(stack).spawn_scoped(s, || analyse_here(line, env));
        match worker.map(|h| h.join()) {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => Analysis { commands: Vec::new(), problem: Some(Problem::TooComplex("the parser failed".into())) },
            Err(e) => Analysis { commands: Vec::new(), problem: Some(Problem::TooComplex(format!("cannot start the parser thread: {e}"))) },
        }
    })
}

/// The commands an exec's argument vector runs: the words as the kernel
/// has them, each one word (no quoting, no expansion, no globbing), with
/// wrappers (`sudo`, `env`, `bash -c CODE`) looked into as on a typed
/// line. The same as [`analyse`] of the words each single-quoted, without
/// tokenizing a line that is already words: the exec backstop does this
/// for every program start.
pub fn analyse_argv(argv: &[String], env: &Env) -> Analysis {
    let total: usize = argv.iter().map(|a| a.len() + 1).sum();
    if total > MAX_LINE_BYTES {
        return Analysis { commands: Vec::new(), problem: Some(Problem::TooLong(total)) };
    }
    if argv.is_empty() {
        return Analysis { commands: Vec::new(), problem: None };
    }
    let mut w = Walker { env, out: Vec::new(), budget: budget(total), problem: None, functions: Vec::new(), last_output: None };
    let mut scope = Scope { vars: env.vars.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(), cwd: env.cwd.clone(), opaque: false };
    let words = argv.iter().map(|a| Field { text: a.clone(), quoted: true, ..Field::default() }).collect();
    w.resolve(words, Vec::new(), Vec::new(), None, &mut scope, &Ctx::default(), Vec::new());
    Analysis { commands: w.out, problem: w.problem }
}

/// The longest run of `(` in `text` with only blanks between them, outside
/// single quotes and escapes (inside double quotes `$((` still opens).
pub fn paren_run(text: &str) -> usize {
    // Most lines have no `(` at all: one vectorised search says so.
    if memchr::memchr(b'(', text.as_bytes()).is_none() {
        return 0;
    }
    let (mut best, mut run) = (0, 0);
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
            run = 0;
            continue;
        }
        match c {
            '\'' if !double => single = !single,
            _ if single => {}
            '\\' => escaped = true,
            '"' => double = !double,
            '(' => {
                run += 1;
                best = best.max(run);
                continue;
            }
            c if c.is_whitespace() => continue,
            _ => {}
        }
        run = 0;
    }
    best
}

/// A run of 10 or more digits right before `<` or `>`, outside single
/// quotes: brush-parser reads it as a file descriptor number and panics
/// when it does not fit an i32 (`x 99999999999999999999>f`, found by the
/// policy fuzz target), which would take the recorder down with it.
pub fn has_huge_fd_number(text: &str) -> bool {
    if memchr::memchr2(b'<', b'>', text.as_bytes()).is_none() {
        return false;
    }
    let (mut digits, mut single, mut escaped) = (0usize, false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
            digits = 0;
            continue;
        }
        match c {
            '\'' => single = !single,
            _ if single => {}
            '\\' => escaped = true,
            '0'..='9' => {
                digits += 1;
                continue;
            }
            '<' | '>' if digits >= 10 => return true,
            _ => {}
        }
        digits = 0;
    }
    false
}

/// A here-document operator (`<<`, `<<-`) whose tag is empty once brush-
/// parser has trimmed it and taken its quotes away: `''`, `""`, a form feed
/// or a carriage return. brush-parser's tokenizer then matches the empty
/// tag at the end of the input for ever, allocating (found by the policy
/// fuzz target: 2 GB in 10 s from `cat <<'' ` or `<<` + form feed + a
/// blank). A tag that starts with any other control character is refused
/// with them. Looked for anywhere, quoted or not, which refuses a few more
/// lines than needed and none that anyone types; a here-string (`<<<`) is
/// told apart by the length of the run of `<`, as the tokenizer does.
pub fn has_degenerate_here_tag(text: &str) -> bool {
    let b = text.as_bytes();
    let nested = memchr::memmem::find(b, b"$(").is_some();
    let mut at = 0;
    while let Some(found) = memchr::memmem::find(b.get(at..).unwrap_or_default(), b"<<") {
        let start = at + found;
        let mut end = start;
        while b.get(end) == Some(&b'<') {
            end += 1;
        }
        at = end;
        // An odd number of backslashes before the run escapes its first `<`.
        let slashes = b.get(..start).unwrap_or_default().iter().rev().take_while(|c| **c == b'\\').count();
        let run = end - start - slashes % 2;
        // The tokenizer reads a run greedily as `<<<` operators; a rest of
        // two is a here-document operator.
        if run % 3 == 2 && here_tag_is_degenerate(b.get(end..).unwrap_or_default(), nested) {
            return true;
        }
    }
    false
}

/// Whether the here-document tag at the start of `rest` (after `<<`) is
/// one brush-parser cannot end: it starts with a control character, or it
/// has no character that is not a quote or a control character, or there
/// is no word at all. In a line with `$(` it is also degenerate when the
/// operator is followed by two blanks, or a blank and an operator: there the
/// tokenizer keeps blanks in a token, so `$(x << <f` and `$(x <<  y` give
/// the tag ` `, which is empty once trimmed. The word
/// ends at a backquote or a `}` as well, since the tokenizer ends one there
/// inside `` ` ` `` and `${ }`. Errs towards degenerate: a tag brush-parser
/// can end may be refused, never the other way round.
fn here_tag_is_degenerate(rest: &[u8], nested: bool) -> bool {
    let mut i = usize::from(rest.first() == Some(&b'-'));
    // Inside `$( )` the tokenizer starts the tag with the first blank and
    // ends it at the next blank or operator: `$(cat <<  x` has the tag ` `.
    let operator = |c: Option<&u8>| matches!(c, None | Some(b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')'));
    if nested && matches!(rest.get(i), Some(b' ' | b'\t')) && operator(rest.get(i + 1)) {
        return true;
    }
    while matches!(rest.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    let Some(first) = rest.get(i) else { return true };
    if first.is_ascii_control() && !matches!(first, b'\t' | b'\n') {
        return true;
    }
    let (mut quote, mut escaped, mut empty) = (None, false, true);
    for &c in rest.get(i..).unwrap_or_default() {
        if escaped {
            escaped = false;
            empty &= c == b'\n';
            continue;
        }
        // Quotes decide where the word ends; what counts as content is
        // what brush-parser's `unquote_str` keeps: it drops every quote
        // character, in quotes or not, and keeps what a backslash escapes.
        match (quote, c) {
            (None, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')' | b'`' | b'}') => break,
            (_, b'\\') => escaped = true,
            (None, b'\'' | b'"') => quote = Some(c),
            (Some(q), _) if q == c => quote = None,
            (_, b'\'' | b'"') => {}
            (_, c) if c.is_ascii_control() => {}
            _ => empty = false,
        }
    }
    empty
}

/// An upper bound of the syntactic nesting depth of `text`: every byte and
/// keyword that can open a level, counted whether or not it is quoted.
pub fn count_openers(text: &str) -> usize {
    let mut n = 0;
    let mut word = String::new();
    let keyword = |w: &str| matches!(w, "if" | "then" | "elif" | "else" | "while" | "until" | "for" | "do" | "case" | "select" | "function" | "coproc");
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            if word.len() < 9 {
                word.push(c);
            }
            continue;
        }
        if keyword(&word) {
            n += 1;
        }
        word.clear();
        if matches!(c, '(' | '{' | '`' | '[' | '|' | '&' | ';' | '<' | '>' | '!') {
            n += 1;
        }
    }
    if keyword(&word) {
        n += 1;
    }
    n
}

fn analyse_here(line: &str, env: &Env) -> Analysis {
    let mut w = Walker { env, out: Vec::new(), budget: budget(line.len()), problem: None, functions: Vec::new(), last_output: None };
    let mut scope = Scope { vars: env.vars.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(), cwd: env.cwd.clone(), opaque: false };
    let ctx = Ctx::default();
    w.script(line, &mut scope, &ctx);
    Analysis { commands: w.out, problem: w.problem }
}

/// Variables and working directory, as bash carries them along a line.
#[derive(Clone, Debug)]
struct Scope {
    vars: Vars,
    cwd: String,
    /// After `eval`, `source` or `.`, any variable may have changed: a
    /// variable not assigned since is unknowable.
    opaque: bool,
}

impl Scope {
    fn make_opaque(&mut self) {
        for v in self.vars.values_mut() {
            *v = None;
        }
        self.opaque = true;
    }
}

/// Where a command sits: what it runs inside, and what feeds its input.
#[derive(Clone, Debug, Default)]
struct Ctx {
    wrappers: Vec<String>,
    depth: usize,
    /// Earlier commands of the pipeline.
    upstream: Vec<String>,
    /// Literal output of the previous pipeline element (`echo / |`).
    piped_literal: Option<String>,
    /// In a pipeline of two or more, or in the background.
    forked: bool,
}

impl Ctx {
    fn nested(&self, wrapper: &str) -> Ctx {
        let mut wrappers = self.wrappers.clone();
        wrappers.push(wrapper.to_owned());
        Ctx { wrappers, depth: self.depth + 1, ..Ctx::default() }
    }
}

struct Walker<'e> {
    env: &'e Env,
    out: Vec<ParsedCommand>,
    budget: usize,
    problem: Option<Problem>,
    /// Names of the functions whose bodies are being walked.
    functions: Vec<String>,
    /// Literal output of the last simple command, if it has one.
    last_output: Option<String>,
}

impl Walker<'_> {
    fn fail(&mut self, p: Problem) {
        if self.problem.is_none() {
            self.problem = Some(p);
        }
    }

    fn charge(&mut self, bytes: usize) -> bool {
        if self.budget < bytes {
            self.fail(Problem::TooComplex("too much nested shell code".into()));
            return false;
        }
        self.budget -= bytes;
        true
    }

    /// Parses and walks shell code.
    fn script(&mut self, text: &str, scope: &mut Scope, ctx: &Ctx) {
        if self.problem.is_some() {
            return;
        }
        if ctx.depth > MAX_NESTING {
            self.fail(Problem::TooDeep);
            return;
        }
        if !self.charge(text.len()) {
            return;
        }
        if paren_run(text) > MAX_PAREN_RUN {
            self.fail(Problem::TooComplex(format!("more than {MAX_PAREN_RUN} ( in a row")));
            return;
        }
        if has_huge_fd_number(text) {
            self.fail(Problem::TooComplex("a file descriptor number of 10 digits or more before a redirection".into()));
            return;
        }
        if has_degenerate_here_tag(text) {
            self.fail(Problem::TooComplex("an empty here-document tag, or one of control characters".into()));
            return;
        }
        let mut parser = Parser::new(std::io::Cursor::new(text.as_bytes()), &ParserOptions::default());
        match parser.parse_program() {
            Ok(program) => {
                for list in &program.complete_commands {
                    self.list(list, scope, ctx);
                }
            }
            Err(e) => {
                let what = if ctx.depth == 0 { e.to_string() } else { format!("{e} in {:?}", clip(text)) };
                self.fail(Problem::Syntax(what));
            }
        }
    }

    /// Walks shell code in a subshell: a copy of the scope; returns the
    /// programs it ran and its literal output when it is one command.
    fn subshell(&mut self, text: &str, scope: &Scope, ctx: &Ctx, wrapper: &str) -> (Vec<String>, Value) {
        let before = self.out.len();
        self.last_output = None;
        let mut inner = scope.clone();
        self.script(text, &mut inner, &ctx.nested(wrapper));
        let emitted = self.out.get(before..).unwrap_or_default();
        let programs = emitted.iter().map(|c| c.name.clone()).collect();
        let value = if emitted.len() == 1 { self.last_output.take() } else { None };
        (programs, value)
    }

    fn list(&mut self, list: &ast::CompoundList, scope: &mut Scope, ctx: &Ctx) {
        for ast::CompoundListItem(and_or, sep) in &list.0 {
            let background = matches!(sep, ast::SeparatorOperator::Async);
            self.pipeline(&and_or.first, scope, ctx, background);
            for next in &and_or.additional {
                let (ast::AndOr::And(p) | ast::AndOr::Or(p)) = next;
                self.pipeline(p, scope, ctx, background);
            }
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline, scope: &mut Scope, ctx: &Ctx, background: bool) {
        let forked = background || p.seq.len() > 1;
        let mut upstream: Vec<String> = ctx.upstream.clone();
        let mut literal: Option<String> = ctx.piped_literal.clone();
        let single = p.seq.len() == 1;
        for cmd in &p.seq {
            let element_ctx = Ctx { upstream: upstream.clone(), piped_literal: literal.take(), forked: forked || ctx.forked, ..ctx.clone() };
            let before = self.out.len();
            self.last_output = None;
            if single {
                self.command(cmd, scope, &element_ctx);
            } else {
                // Every element of a multi-command pipeline runs in a subshell.
                let mut copy = scope.clone();
                self.command(cmd, &mut copy, &element_ctx);
            }
            let emitted = self.out.get(before..).unwrap_or_default();
            literal = if matches!(cmd, Command::Simple(_)) && emitted.len() == 1 { self.last_output.clone() } else { None };
            upstream.extend(emitted.iter().map(|c| c.name.clone()));
        }
    }

    fn command(&mut self, cmd: &Command, scope: &mut Scope, ctx: &Ctx) {
        if self.problem.is_some() {
            return;
        }
        match cmd {
            Command::Simple(sc) => self.simple(sc, scope, ctx),
            Command::Compound(c, redirects) => {
                let before = self.out.len();
                self.compound(c, scope, ctx);
                if let Some(list) = redirects {
                    let mut fed = Vec::new();
                    let redirs: Vec<Redirect> = list.0.iter().filter_map(|r| self.redirect(r, scope, ctx, &mut fed, &mut None)).collect();
                    for c in self.out.get_mut(before..).unwrap_or_default() {
                        c.redirects.extend(redirs.iter().cloned());
                        c.input_from.extend(fed.iter().cloned());
                    }
                }
            }
            Command::Function(f) => {
                self.functions.push(f.fname.value.clone());
                let mut inner = scope.clone();
                let ast::FunctionBody(body, redirects) = &f.body;
                let body_ctx = Ctx { forked: false, upstream: Vec::new(), piped_literal: None, ..ctx.clone() };
                let before = self.out.len();
                self.compound(body, &mut inner, &body_ctx);
                if let Some(list) = redirects {
                    let mut fed = Vec::new();
                    let redirs: Vec<Redirect> = list.0.iter().filter_map(|r| self.redirect(r, scope, ctx, &mut fed, &mut None)).collect();
                    for c in self.out.get_mut(before..).unwrap_or_default() {
                        c.redirects.extend(redirs.iter().cloned());
                    }
                }
                self.functions.pop();
            }
            Command::ExtendedTest(t, _) => {
                let text = format!("{}", t.expr);
                self.scan(&text, scope, ctx);
            }
        }
    }

    fn compound(&mut self, c: &CompoundCommand, scope: &mut Scope, ctx: &Ctx) {
        match c {
            CompoundCommand::BraceGroup(b) => self.list(&b.list, scope, ctx),
            CompoundCommand::Subshell(s) => {
                let mut copy = scope.clone();
                self.list(&s.list, &mut copy, ctx);
            }
            CompoundCommand::Arithmetic(a) => self.scan(&a.expr.value, scope, ctx),
            CompoundCommand::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater].into_iter().flatten() {
                    self.scan(&e.value, scope, ctx);
                }
                self.list(&f.body.list, scope, ctx);
            }
            CompoundCommand::ForClause(f) => {
                let values: Option<Vec<Field>> = f.values.as_ref().map(|words| {
                    let mut fed = Vec::new();
                    words.iter().flat_map(|w| self.expand(&w.value, scope, ctx, &mut fed)).collect()
                });
                match values {
                    Some(values) if !values.is_empty() => {
                        for v in values {
                            if self.problem.is_some() {
                                break;
                            }
                            let value = if v.dynamic { None } else { Some(v.text) };
                            scope.vars.insert(f.variable_name.clone(), value);
                            self.list(&f.body.list, scope, ctx);
                        }
                    }
                    Some(_) => {}
                    None => {
                        scope.vars.insert(f.variable_name.clone(), None);
                        self.list(&f.body.list, scope, ctx);
                    }
                }
            }
            CompoundCommand::CaseClause(c) => {
                self.scan(&c.value.value, scope, ctx);
                for item in &c.cases {
                    for p in &item.patterns {
                        self.scan(&p.value, scope, ctx);
                    }
                    if let Some(cmd) = &item.cmd {
                        self.list(cmd, scope, ctx);
                    }
                }
            }
            CompoundCommand::IfClause(i) => {
                self.list(&i.condition, scope, ctx);
                self.list(&i.then, scope, ctx);
                for e in i.elses.iter().flatten() {
                    if let Some(cond) = &e.condition {
                        self.list(cond, scope, ctx);
                    }
                    self.list(&e.body, scope, ctx);
                }
            }
            CompoundCommand::WhileClause(w) | CompoundCommand::UntilClause(w) => {
                let ast::WhileOrUntilClauseCommand(cond, body, _) = w;
                self.list(cond, scope, ctx);
                self.list(&body.list, scope, ctx);
            }
            CompoundCommand::Coprocess(c) => {
                let mut copy = scope.clone();
                let bg = Ctx { forked: true, ..ctx.clone() };
                self.command(&c.body, &mut copy, &bg);
            }
        }
    }

    /// Checks the command substitutions inside text that is not a command.
    fn scan(&mut self, text: &str, scope: &Scope, ctx: &Ctx) {
        let mut fed = Vec::new();
        let mut cx = Cx { w: self, scope, ctx, fed: &mut fed };
        if let Err(e) = expand::scan_substitutions(text, &mut cx) {
            self.fail(Problem::Syntax(e.0));
        }
    }

    fn expand(&mut self, raw: &str, scope: &Scope, ctx: &Ctx, fed: &mut Vec<String>) -> Vec<Field> {
        let mut cx = Cx { w: self, scope, ctx, fed };
        match expand::expand_word(raw, &mut cx) {
            Ok(f) => f,
            Err(e) => {
                self.fail(Problem::TooComplex(e.0));
                Vec::new()
            }
        }
    }

    fn expand_joined(&mut self, raw: &str, scope: &Scope, ctx: &Ctx, fed: &mut Vec<String>) -> Field {
        let mut cx = Cx { w: self, scope, ctx, fed };
        match expand::expand_joined(raw, &mut cx) {
            Ok(f) => f,
            Err(e) => {
                self.fail(Problem::TooComplex(e.0));
                Field::default()
            }
        }
    }

    fn simple(&mut self, sc: &ast::SimpleCommand, scope: &mut Scope, ctx: &Ctx) {
        if self.out.len() >= MAX_COMMANDS {
            self.fail(Problem::TooComplex(format!("more than {MAX_COMMANDS} commands")));
            return;
        }
        let mut fed: Vec<String> = Vec::new();
        let mut words: Vec<Field> = Vec::new();
        let mut assignments: Vec<(String, Value)> = Vec::new();
        let mut redirects: Vec<Redirect> = Vec::new();
        let mut stdin_text: Option<String> = None;
        let items = sc.prefix.iter().flat_map(|p| p.0.iter()).map(|i| (i, true));
        let name = sc.word_or_name.iter().map(|w| (w, false));
        let mut all: Vec<Item<'_>> = items.map(|(i, _)| Item::Part(i)).collect();
        all.extend(name.map(|(w, _)| Item::Name(w)));
        all.extend(sc.suffix.iter().flat_map(|s| s.0.iter()).map(Item::Part));
        for item in all {
            match item {
                Item::Name(w) | Item::Part(CommandPrefixOrSuffixItem::Word(w)) => {
                    let f = self.expand(&w.value, scope, ctx, &mut fed);
                    words.extend(f);
                }
                Item::Part(CommandPrefixOrSuffixItem::AssignmentWord(a, w)) => {
                    let value = match &a.value {
                        ast::AssignmentValue::Scalar(v) => {
                            let f = self.expand_joined(&v.value, scope, ctx, &mut fed);
                            if f.dynamic { None } else { Some(f.text) }
                        }
                        ast::AssignmentValue::Array(_) => None,
                    };
                    let name = match &a.name {
                        ast::AssignmentName::VariableName(n) | ast::AssignmentName::ArrayElementName(n, _) => n.clone(),
                    };
                    if words.is_empty() {
                        assignments.push((name, value));
                    } else if words.first().is_some_and(|f| matches!(basename(&f.text), "export" | "declare" | "typeset" | "local" | "readonly")) {
                        // `export D=/`, `declare D=/`: an argument that assigns.
                        let text = w.value.clone();
                        words.push(Field { text, quoted: true, ..Field::default() });
                        assignments.push((name, value));
                    } else {
                        // `dd of=$DISK`: an ordinary word that looks like one.
                        let f = self.expand(&w.value, scope, ctx, &mut fed);
                        words.extend(f);
                    }
                }
                Item::Part(CommandPrefixOrSuffixItem::IoRedirect(r)) => {
                    if let Some(r) = self.redirect(r, scope, ctx, &mut fed, &mut stdin_text) {
                        redirects.push(r);
                    }
                }
                Item::Part(CommandPrefixOrSuffixItem::ProcessSubstitution(kind, sub)) => {
                    let text = format!("{}", sub.list);
                    let wrapper = match kind {
                        ast::ProcessSubstitutionKind::Read => "<(...)",
                        ast::ProcessSubstitutionKind::Write => ">(...)",
                    };
                    let (programs, _) = self.subshell(&text, scope, ctx, wrapper);
                    if matches!(kind, ast::ProcessSubstitutionKind::Read) {
                        fed.extend(programs);
                    }
                    words.push(Field { text: "/dev/fd/63".into(), quoted: true, ..Field::default() });
                }
            }
        }
        if words.is_empty() {
            // Assignments alone change the scope for later commands.
            for (k, v) in assignments {
                scope.vars.insert(k, v);
            }
            return;
        }
        let mut input = fed;
        input.extend(ctx.upstream.iter().cloned());
        let stdin = stdin_text.or_else(|| ctx.piped_literal.clone());
        self.resolve(words, redirects, input, stdin, scope, ctx, assignments);
    }

    fn redirect(&mut self, r: &IoRedirect, scope: &Scope, ctx: &Ctx, fed: &mut Vec<String>, stdin: &mut Option<String>) -> Option<Redirect> {
        let make = |op: &str, f: Field, write: bool, cwd: &str| Redirect { op: op.to_owned(), path: canonical(&f.text, cwd), target: f.text, write };
        match r {
            IoRedirect::File(fd, kind, target) => {
                let (op, write) = match kind {
                    IoFileRedirectKind::Read => ("<", false),
                    IoFileRedirectKind::Write => (">", true),
                    IoFileRedirectKind::Append => (">>", true),
                    IoFileRedirectKind::ReadAndWrite => ("<>", true),
                    IoFileRedirectKind::Clobber => (">|", true),
                    IoFileRedirectKind::DuplicateInput => ("<&", false),
                    IoFileRedirectKind::DuplicateOutput => (">&", true),
                };
                let op = match fd {
                    Some(n) => format!("{n}{op}"),
                    None => op.to_owned(),
                };
                match target {
                    IoFileRedirectTarget::Filename(w) => {
                        let f = self.expand_joined(&w.value, scope, ctx, fed);
                        Some(make(&op, f, write, &scope.cwd))
                    }
                    IoFileRedirectTarget::Duplicate(w) => {
                        let f = self.expand_joined(&w.value, scope, ctx, fed);
                        // `>&2` duplicates a descriptor; `>& file` writes a file.
                        if f.text.chars().all(|c| c.is_ascii_digit() || c == '-') {
                            None
                        } else {
                            Some(make(&op, f, write, &scope.cwd))
                        }
                    }
                    IoFileRedirectTarget::Fd(_) => None,
                    IoFileRedirectTarget::ProcessSubstitution(kind, sub) => {
                        let text = format!("{}", sub.list);
                        let (programs, _) = self.subshell(&text, scope, ctx, "<(...)");
                        if matches!(kind, ast::ProcessSubstitutionKind::Read) && !write {
                            fed.extend(programs);
                        }
                        None
                    }
                }
            }
            IoRedirect::OutputAndError(w, append) => {
                let f = self.expand_joined(&w.value, scope, ctx, fed);
                Some(make(if *append { "&>>" } else { "&>" }, f, true, &scope.cwd))
            }
            IoRedirect::HereString(_, w) => {
                let f = self.expand_joined(&w.value, scope, ctx, fed);
                *stdin = Some(f.text);
                None
            }
            IoRedirect::HereDocument(_, doc) => {
                let text = if doc.requires_expansion {
                    let mut cx = Cx { w: self, scope, ctx, fed };
                    match expand::expand_heredoc(&doc.doc.value, &mut cx) {
                        Ok(f) => f.text,
                        Err(e) => {
                            self.fail(Problem::TooComplex(e.0));
                            String::new()
                        }
                    }
                } else {
                    doc.doc.value.clone()
                };
                *stdin = Some(text);
                None
            }
        }
    }

    /// Sees through wrappers to the program that runs, then records it.
    #[allow(clippy::too_many_arguments)]
    fn resolve(&mut self, mut words: Vec<Field>, redirects: Vec<Redirect>, input_from: Vec<String>, stdin: Option<String>, scope: &mut Scope, ctx: &Ctx, assignments: Vec<(String, Value)>) {
        let mut wrappers = ctx.wrappers.clone();
        let mut cwd = scope.cwd.clone();
        let mut layers = 0;
        loop {
            layers += 1;
            let Some(first) = words.first() else { return };
            let name = basename(&first.text).to_owned();
            let texts: Vec<String> = words.iter().map(|f| f.text.clone()).collect();
            if layers > 32 {
                self.fail(Problem::TooComplex("too many wrappers".into()));
                return;
            }
            let unknown_name = match &first.unknown {
                Some(what) => Some(format!("the command name comes from {what}")),
                None if is_glob(first) => Some(format!("the command name {} is a glob", first.text)),
                None => None,
            };
            if let Some(why) = unknown_name {
                self.record(&words, &redirects, &input_from, scope, &cwd, ctx, &wrappers);
                if let Some(last) = self.out.last_mut() {
                    last.unknown = Some(why);
                }
                return;
            }
            match wrappers::unwrap(&name, texts.get(1..).unwrap_or_default(), stdin.as_deref()) {
                Unwrapped::Program => break,
                Unwrapped::Runs { start, label, chdir } => {
                    if wrappers::records_itself(&label) {
                        // The wrapper's own words, without what it runs.
                        self.record(words.get(..=start).unwrap_or_default(), &[], &[], scope, &cwd, ctx, &wrappers);
                    }
                    if let Some(dir) = chdir {
                        cwd = canonical(&dir, &cwd);
                    }
                    wrappers.push(label);
                    words.drain(..=start.min(words.len().saturating_sub(1)));
                }
                Unwrapped::Shell { code, label } => {
                    // The wrapper itself is recorded (rules about `bash` fed
                    // by `curl` need it), then the code it runs.
                    self.record(&words, &redirects, &input_from, scope, &cwd, ctx, &wrappers);
                    let why = self.unknowable_code(&name, &words, &texts, stdin.as_deref(), code.as_deref(), &input_from);
                    if let Some(last) = self.out.last_mut() {
                        last.unseen_code |= code.is_none();
                        if why.is_some() {
                            last.unknown = why;
                        }
                    }
                    if label == "eval" {
                        // What eval assigned, it assigned in this shell.
                        scope.make_opaque();
                    }
                    if let Some(code) = code {
                        let mut inner = Scope { vars: scope.vars.clone(), cwd: cwd.clone(), opaque: scope.opaque };
                        let mut c = ctx.nested(&label);
                        c.wrappers = wrappers.clone();
                        c.wrappers.push(label);
                        c.upstream = input_from.clone();
                        self.script(&code, &mut inner, &c);
                    }
                    return;
                }
                Unwrapped::Xargs { start, replace } => {
                    wrappers.push("xargs".into());
                    words.drain(..=start.min(words.len().saturating_sub(1)));
                    if words.is_empty() {
                        words.push(Field { text: "echo".into(), ..Field::default() });
                    }
                    // What xargs appends comes from stdin; known when it is
                    // a literal `echo ... |` or a here-string.
                    if let Some(text) = &stdin {
                        let extra: Vec<Field> = text.split(|c: char| c.is_whitespace() || c == '\0').filter(|t| !t.is_empty()).map(|t| Field { text: t.to_owned(), quoted: true, ..Field::default() }).collect();
                        match &replace {
                            Some(r) => {
                                let joined = text.trim().to_owned();
                                for w in &mut words {
                                    w.text = w.text.replace(r.as_str(), &joined);
                                }
                            }
                            None => words.extend(extra),
                        }
                    }
                }
                Unwrapped::FindExec { commands, starts } => {
                    self.record(&words, &redirects, &input_from, scope, &cwd, ctx, &wrappers);
                    // `{}` is each file found: a start path or anything
                    // below it, which a glob `START/**` stands for.
                    let mut found: Vec<Field> = Vec::new();
                    for s in &starts {
                        found.push(Field { text: s.clone(), quoted: true, ..Field::default() });
                        let below = format!("{}/**", s.trim_end_matches('/'));
                        found.push(Field { glob_at: Some(below.len() - 2), text: below, quoted: true, ..Field::default() });
                    }
                    for (start, end) in commands {
                        let inner: Vec<Field> = words
                            .get(start + 1..end + 1)
                            .unwrap_or_default()
                            .iter()
                            .flat_map(|f| if f.text == "{}" { found.clone() } else { vec![f.clone()] })
                            .collect();
                        if inner.is_empty() {
                            continue;
                        }
                        let mut c = ctx.clone();
                        c.wrappers = wrappers.clone();
                        c.wrappers.push("find -exec".into());
                        let mut s = Scope { vars: scope.vars.clone(), cwd: cwd.clone(), opaque: scope.opaque };
                        self.resolve(inner, Vec::new(), Vec::new(), None, &mut s, &c, Vec::new());
                    }
                    return;
                }
                Unwrapped::NotRun => break,
                Unwrapped::Argv { words: argv, label } => {
                    self.record(&words, &redirects, &input_from, scope, &cwd, ctx, &wrappers);
                    wrappers.push(label);
                    words = argv.into_iter().map(|text| Field { text, quoted: true, ..Field::default() }).collect();
                }
                Unwrapped::Opaque { why } => {
                    self.record(&words, &redirects, &input_from, scope, &cwd, ctx, &wrappers);
                    if let Some(last) = self.out.last_mut() {
                        last.unknown = Some(why);
                    }
                    return;
                }
            }
        }
        // Builtins that change the scope for later commands of the line.
        let texts: Vec<&str> = words.iter().map(|f| f.text.as_str()).collect();
        match texts.as_slice() {
            ["cd"] => scope.cwd = scope.vars.get("HOME").cloned().flatten().unwrap_or_else(|| self.env.home.clone()),
            ["cd" | "pushd", dir] | ["cd" | "pushd", "-P" | "-L" | "--", dir] => scope.cwd = canonical(dir, &scope.cwd),
            ["export" | "declare" | "typeset" | "local" | "readonly", rest @ ..] => {
                // `declare -n R=X` makes R another name for X: not followed.
                let nameref = rest.iter().any(|w| w.starts_with('-') && w.contains('n'));
                for (k, v) in &assignments {
                    scope.vars.insert(k.clone(), if nameref { None } else { v.clone() });
                }
            }
            ["unset", names @ ..] => {
                for n in names.iter().filter(|n| !n.starts_with('-')) {
                    scope.vars.remove(*n);
                }
            }
            ["source" | ".", _, ..] => scope.make_opaque(),
            [builtin @ ("read" | "mapfile" | "readarray" | "getopts" | "printf"), rest @ ..] => {
                // Assignments the walk does not follow: the names they set
                // hold what the gate cannot know.
                let names: Vec<&str> = match *builtin {
                    "printf" => rest.iter().position(|w| *w == "-v").and_then(|i| rest.get(i + 1)).into_iter().copied().collect(),
                    "read" if rest.iter().all(|w| w.starts_with('-')) => vec!["REPLY"],
                    "mapfile" | "readarray" if rest.iter().all(|w| w.starts_with('-')) => vec!["MAPFILE"],
                    _ => rest.iter().copied().filter(|w| is_name(w.split('=').next().unwrap_or(w))).collect(),
                };
                for n in names {
                    scope.vars.insert(n.split('=').next().unwrap_or(n).to_owned(), None);
                }
            }
            _ => {}
        }
        self.last_output = literal_output(&texts, stdin.as_deref(), &scope.cwd);
        self.record(&words, &redirects, &input_from, scope, &cwd, ctx, &wrappers);
        if let Some(last) = self.out.last_mut() {
            if last.unknown.is_none() && wrappers::reads_program_from_pipe(&last.name, last.argv.get(1..).unwrap_or_default()) && !input_from.is_empty() {
                last.unknown = Some(format!("{} runs a program it reads from a pipe (from {}), which the checker cannot see", last.name, input_from.join(", ")));
            }
            // What the program reads on stdin, for rules about it
            // (`echo 'DROP TABLE x' | psql`): the text when known, else
            // where it comes from.
            match &stdin {
                Some(text) => last.values.push((STDIN_VALUE.to_owned(), text.clone())),
                None => {
                    let file = last.redirects.iter().find(|r| !r.write && r.op.trim_start_matches('0') == "<").map(|r| r.target.clone());
                    let file = file.or_else(|| INPUT_FILE_OPTION.iter().find(|(p, _)| *p == last.name).and_then(|(_, o)| last.values.iter().find(|(n, _)| n == o)).map(|(_, v)| v.clone()));
                    last.stdin_unknown = match file {
                        Some(f) => Some(format!("the file {f}")),
                        None if !input_from.is_empty() => Some(format!("a pipe from {}", input_from.join(", "))),
                        None => None,
                    };
                }
            }
        }
    }

    /// Why the shell code a `Shell` wrapper runs cannot be known: made from
    /// an expansion the gate cannot know, read from a pipe, or read with
    /// shell options that change its meaning.
    fn unknowable_code(&self, name: &str, words: &[Field], texts: &[String], stdin: Option<&str>, code: Option<&str>, input_from: &[String]) -> Option<String> {
        if wrappers::is_shell(name) {
            if let Some(why) = wrappers::odd_shell_options(name, texts.get(1..).unwrap_or_default()) {
                return Some(why);
            }
        }
        if self.env.traced && TRACED.contains(&name) {
            return None;
        }
        if code.is_none() && stdin.is_none() && !input_from.is_empty() && wrappers::is_shell(name) {
            return Some(format!("{name} runs code it reads from a pipe (from {}), which the checker cannot see", input_from.join(", ")));
        }
        let unknown = words.iter().skip(1).find_map(|f| f.unknown.as_deref())?;
        // The code came from an unknowable word when the code read with
        // that word marked differs from the code read without.
        let marked: Vec<String> = words.iter().skip(1).map(|f| if f.unknown.is_some() { UNKNOWN_MARK.to_owned() } else { f.text.clone() }).collect();
        match wrappers::unwrap(name, &marked, stdin) {
            Unwrapped::Shell { code: Some(c), .. } if c.contains(UNKNOWN_MARK) => Some(format!("the shell code {name} runs comes from {unknown}")),
            Unwrapped::Shell { code: Some(c), .. } if Some(c.as_str()) != code => Some(format!("the shell code {name} runs depends on {unknown}")),
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(&mut self, words: &[Field], redirects: &[Redirect], input_from: &[String], _scope: &Scope, cwd: &str, ctx: &Ctx, wrappers: &[String]) {
        let Some((first, after)) = words.split_first() else { return };
        let program = first.text.clone();
        let name = basename(&program).to_owned();
        // An unquoted unknowable word may be no word at all: it is not an
        // operand, only a note that something unknown is there.
        let kept: Vec<(usize, &Field)> = after.iter().enumerate().filter(|(_, f)| !is_placeholder(f)).collect();
        let words: Vec<&Field> = std::iter::once(first).chain(kept.iter().map(|(_, f)| *f)).collect();
        let rest: Vec<String> = kept.iter().map(|(_, f)| f.text.clone()).collect();
        let opts = flags::normalise(&name, &rest);
        let unknown_args = after.iter().position(|f| f.unknown.is_some()).and_then(|at| {
            let what = after.get(at)?.unknown.clone()?;
            let first_operand = opts.operands.first().and_then(|&i| kept.get(i)).map(|(orig, _)| *orig);
            Some(UnknownArgs { what, subcommand: first_operand.is_none_or(|o| at <= o) })
        });
        let args = opts
            .operands
            .iter()
            .filter_map(|&i| words.get(i + 1).copied())
            .map(|f| {
                let text = operand_text(&name, &f.text, cwd);
                let path = canonical(&f.text, cwd);
                let glob_root = f.glob_at.is_some() && path.split('/').nth(1).is_some_and(|c| c.contains(['*', '?', '[']));
                let unsafe_reason = f.unsafe_reason().map(str::to_owned).or_else(|| glob_root.then(|| format!("{path} is a glob at the root")));
                Arg { text, path, unsafe_reason, glob: is_glob(f) }
            })
            .collect();
        let forks_itself = ctx.forked && self.functions.contains(&program);
        let mut input: Vec<String> = Vec::new();
        for p in input_from {
            if !input.contains(p) {
                input.push(p.clone());
            }
        }
        self.out.push(ParsedCommand {
            program,
            name,
            wrappers: wrappers.to_vec(),
            flags: opts.flags,
            values: opts.values,
            args,
            redirects: redirects.to_vec(),
            input_from: input,
            forks_itself,
            argv: words.iter().map(|f| f.text.clone()).collect(),
            unseen_code: false,
            unknown: None,
            unknown_args,
            stdin_unknown: None,
        });
    }
}

/// The name under which a command's known standard input is among its
/// [`ParsedCommand::values`]: a rule's `values = [{ flag = ["--stdin"],
/// regex = … }]` looks at it.
pub const STDIN_VALUE: &str = "--stdin";

/// Programs with an option that names the file they read in place of
/// their standard input (`psql -f FILE`).
const INPUT_FILE_OPTION: &[(&str, &str)] = &[("psql", "--file")];

/// Stands for an unknowable word when telling whether code came from it.
const UNKNOWN_MARK: &str = "\u{1}unknown\u{1}";

/// An unquoted expansion of unknowable value alone: zero or more words.
fn is_placeholder(f: &Field) -> bool {
    f.unknown.is_some() && f.text.is_empty() && !f.quoted
}

/// A word bash would expand as a pathname pattern: an unquoted `*` or `?`,
/// or an unquoted `[` with a `]` after it (`[` alone is `test`).
fn is_glob(f: &Field) -> bool {
    let Some(at) = f.glob_at else { return false };
    let tail = f.text.get(at..).unwrap_or_default();
    tail.contains(['*', '?']) || tail.get(1..).is_some_and(|t| t.contains(']'))
}

fn is_name(w: &str) -> bool {
    !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !w.starts_with(|c: char| c.is_ascii_digit())
}

enum Item<'a> {
    Name(&'a ast::Word),
    Part(&'a CommandPrefixOrSuffixItem),
}

/// `dd of=//dev/./sda` names `/dev/sda`: `KEY=PATH` operands of `dd` are
/// canonicalised in place so rules can match their text.
fn operand_text(program: &str, text: &str, cwd: &str) -> String {
    if program == "dd" {
        if let Some((k, v)) = text.split_once('=') {
            if matches!(k, "if" | "of") {
                return format!("{k}={}", canonical(v, cwd));
            }
        }
    }
    text.to_owned()
}

/// What a command prints when the gate can tell without running it:
/// `echo`, simple `printf`, `pwd`, `cat` of its stdin.
fn literal_output(words: &[&str], stdin: Option<&str>, cwd: &str) -> Option<String> {
    let (first, rest) = words.split_first()?;
    match basename(first) {
        "echo" => {
            let args: Vec<&str> = rest.iter().copied().skip_while(|w| matches!(*w, "-n" | "-e" | "-E" | "-ne" | "-en")).collect();
            Some(args.join(" "))
        }
        "printf" => {
            let (fmt, args) = rest.split_first()?;
            if !fmt.contains('%') {
                return Some(expand::ansi_c(fmt));
            }
            if matches!(*fmt, "%s" | "%s\\n" | "%s " | "%s\\n\\n") {
                return Some(args.join(" "));
            }
            None
        }
        "pwd" => Some(cwd.to_owned()),
        "cat" if rest.is_empty() => stdin.map(str::to_owned),
        _ => None,
    }
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// The expander's view of the walker.
struct Cx<'a, 'e> {
    w: &'a mut Walker<'e>,
    scope: &'a Scope,
    ctx: &'a Ctx,
    fed: &'a mut Vec<String>,
}

impl Context for Cx<'_, '_> {
    fn var(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.scope.vars.get(name) {
            return Some(v.clone());
        }
        if self.scope.opaque && name != "PWD" {
            return Some(None);
        }
        match name {
            "HOME" => Some(Some(self.w.env.home.clone())),
            "PWD" => Some(Some(self.scope.cwd.clone())),
            _ => None,
        }
    }

    fn home(&self) -> &str {
        &self.w.env.home
    }

    fn knows_every_variable(&self) -> bool {
        self.w.env.complete
    }

    fn substitute(&mut self, script: &str) -> Value {
        let (programs, value) = self.w.subshell(script, self.scope, self.ctx, "$(...)");
        self.fed.extend(programs);
        value
    }

    fn charge(&mut self, bytes: usize) -> bool {
        self.w.charge(bytes)
    }
}

#[cfg(test)]
mod tests;
