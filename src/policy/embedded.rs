//! Shell commands inside other languages' code: `python3 -c
//! 'os.system("rm -rf /")'`, `awk 'BEGIN{system("…")}'`, `perl -e
//! '`…`'`, `node -e 'require("child_process").execSync("…")'`.
//!
//! This is not a parser of those languages. It looks for the calls that
//! hand a string to a shell or start a program (`system(`, `subprocess.run(`,
//! backticks, ...) and reads their arguments when they are literals: a
//! string is shell code, a list of strings (`["rm", "-rf", "/"]`) is an
//! argument vector. A call whose argument is not a literal (`system(cmd)`,
//! `os.system(f"rm {x}")`) runs something the checker cannot know, which
//! is what [`Found::Unknown`] says. Code with none of these calls runs no
//! other program as far as the checker can tell.

/// What a piece of code runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Shell code, one command line each (argument vectors quoted).
    Code(Vec<String>),
    /// A call that runs a program, with an argument the checker cannot read.
    Unknown(String),
}

/// The calls of each language that run shell code or a program.
fn calls(lang: &str) -> &'static [&'static str] {
    match lang {
        // Bare names, so `from os import system`, `__import__("os").system(`
        // and `os.system(` are all the same call; `subprocess.run(` stays
        // qualified, as `run(` alone is any function.
        "python" => &[
            "system(", "popen(", "subprocess.run(", "subprocess.call(", "check_call(", "check_output(", "Popen(", "getoutput(", "getstatusoutput(",
            "pty.spawn(", "execv(", "execvp(", "execve(", "execvpe(", "execl(", "execlp(", "execle(", "execlpe(", "spawnv(", "spawnvp(", "spawnve(",
            "spawnvpe(", "spawnl(", "spawnlp(", "spawnle(", "spawnlpe(", "posix_spawn(", "posix_spawnp(", "create_subprocess_shell(",
            "create_subprocess_exec(", "popen2(",
        ],
        "perl" => &["system(", "system ", "exec(", "exec ", "qx(", "qx{", "qx/", "readpipe("],
        "ruby" => &["system(", "system ", "exec(", "exec ", "spawn(", "%x(", "%x{", "IO.popen(", "Open3.capture2(", "Open3.capture3(", "Open3.popen3(", "Kernel.system("],
        "node" => &["execSync(", "exec(", "spawnSync(", "spawn(", "execFileSync(", "execFile(", "fork("],
        "php" => &["system(", "exec(", "shell_exec(", "passthru(", "popen(", "proc_open("],
        "awk" => &["system("],
        "vim" => &["system(", "systemlist("],
        _ => &[],
    }
}

/// Which language an interpreter speaks, and the options that give it code.
pub fn language(name: &str) -> Option<(&'static str, &'static [&'static str])> {
    let versioned = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match versioned {
        "python" | "pypy" => ("python", &["-c"]),
        "perl" => ("perl", &["-e", "-E"]),
        "ruby" => ("ruby", &["-e"]),
        "node" | "nodejs" | "bun" | "deno" => ("node", &["-e", "-p", "--eval", "--print"]),
        "php" => ("php", &["-r"]),
        _ => return None,
    })
}

/// The code an interpreter's options give it: `python3 -c CODE`, `perl
/// -e CODE -e MORE`, `perl -we CODE` (the letters before `e` are flags).
pub fn inline_code(args: &[String], code_opts: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(w) = args.get(i) {
        i += 1;
        if w == "--" || !w.starts_with('-') {
            // The first operand is a script file; what follows is its argv.
            if code_opts.contains(&"-c") || !out.is_empty() {
                break;
            }
            continue;
        }
        if let Some((name, value)) = w.split_once('=').filter(|(n, _)| n.starts_with("--")) {
            if code_opts.contains(&name) {
                out.push(value.to_owned());
            }
            continue;
        }
        if code_opts.contains(&w.as_str()) {
            if let Some(v) = args.get(i) {
                out.push(v.clone());
                i += 1;
            }
            continue;
        }
        // A cluster ending in the code option: `-we`, `-Sc`; or the code
        // attached: `-cimport os`.
        if !w.starts_with("--") {
            let letters = w.get(1..).unwrap_or_default();
            if let Some(at) = letters.find(|c: char| code_opts.iter().any(|o| o.len() == 2 && o.ends_with(c))) {
                let rest = letters.get(at + 1..).unwrap_or_default();
                if rest.is_empty() {
                    if let Some(v) = args.get(i) {
                        out.push(v.clone());
                        i += 1;
                    }
                } else {
                    out.push(rest.to_owned());
                }
                if code_opts.contains(&"-c") {
                    break;
                }
            }
        }
    }
    out
}

/// What `code`, in language `lang`, runs through a shell or as a program.
pub fn find(lang: &str, code: &str) -> Option<Found> {
    let mut commands = Vec::new();
    for call in calls(lang) {
        let mut from = 0;
        while let Some(at) = code.get(from..).and_then(|c| c.find(call)) {
            let start = from + at;
            from = start + call.len();
            // `os.system(` also contains `system(`; a name must not be part
            // of a longer identifier (`mysystem(`), except after a `.`.
            let before = code.get(..start).and_then(|b| b.chars().last());
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let rest = code.get(from..).unwrap_or_default();
            let close = match call.chars().last() {
                Some('(') => ')',
                Some('{') => '}',
                Some('/') => '/',
                _ => '\n',
            };
            if call.starts_with("qx") || call.starts_with("%x") {
                match rest.find(close) {
                    Some(end) => commands.push(rest.get(..end).unwrap_or_default().to_owned()),
                    None => return Some(Found::Unknown(format!("{lang} runs {}…", call.trim_end()))),
                }
                continue;
            }
            match literal_args(rest, matches!(lang, "perl" | "ruby" | "php")) {
                Some(cmd) if !cmd.is_empty() => commands.push(cmd),
                _ => return Some(Found::Unknown(format!("{lang} code calls {}…) with an argument the checker cannot read", call.trim_end_matches(['(', ' '])))),
            }
        }
    }
    match lang {
        "awk" => {
            if let Err(why) = awk_pipes(code, &mut commands) {
                return Some(Found::Unknown(why));
            }
        }
        "perl" => {
            if let Err(why) = perl_open_pipes(code, &mut commands) {
                return Some(Found::Unknown(why));
            }
        }
        _ => {}
    }
    if matches!(lang, "perl" | "ruby" | "php") {
        // Backticks run shell code.
        let mut parts = code.split('`');
        parts.next();
        while let (Some(inner), Some(_)) = (parts.next(), parts.clone().next()) {
            if inner.contains(['$', '#', '@']) {
                return Some(Found::Unknown(format!("{lang} runs `{}` with interpolation", super::expand::clip(inner))));
            }
            commands.push(inner.to_owned());
        }
    }
    commands.dedup();
    (!commands.is_empty()).then_some(Found::Code(commands))
}

/// awk's pipes: `print … | "cmd"` and `printf … |& "cmd"` run `cmd` with
/// `sh -c`, `"cmd" | getline` reads what `cmd` prints. Printing into a shell
/// (`print "rm -rf /" | "sh"`) makes the printed text shell code. A pipe to
/// or from a command built at run time (`print | cmd`, `cmd | getline`) is
/// unknown. A `|` inside a string, or in a regex of a pattern, is not a
/// pipe: a print pipe is one in a `print`/`printf` statement.
fn awk_pipes(code: &str, commands: &mut Vec<String>) -> Result<(), String> {
    let bytes = code.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'|' if !in_string => {
                if bytes.get(i) == Some(&b'|') {
                    i += 1;
                    continue;
                }
                let before = code.get(..i - 1).unwrap_or_default();
                let after = code.get(i..).unwrap_or_default().trim_start_matches('&').trim_start();
                if after.starts_with("getline") {
                    match trailing_string(before) {
                        Some(cmd) => commands.push(cmd),
                        None => return Err("awk reads from a command it builds at run time (… | getline)".into()),
                    }
                    continue;
                }
                // The statement the pipe ends: from the last `;`, `{`, `}` or
                // newline outside a string.
                let statement = before.rsplit(['{', '}', ';', '\n']).next().unwrap_or_default().trim_start();
                let formats = statement.starts_with("printf");
                let Some(printed) = statement.strip_prefix("printf").or_else(|| statement.strip_prefix("print")) else { continue };
                let Some(target) = leading_string(after) else {
                    return Err("awk prints into a command it builds at run time (print … | cmd)".into());
                };
                let mut words = target.split_whitespace();
                let into_shell = words.next().is_some_and(|w| super::wrappers::is_shell(w.rsplit('/').next().unwrap_or(w))) && words.all(|w| w == "-s" || w == "-");
                if !into_shell {
                    commands.push(target);
                    continue;
                }
                match awk_literals(printed).filter(|t| !(formats && t.contains('%'))) {
                    Some(text) => commands.push(text),
                    None => return Err("awk prints run-time text into a shell (print … | \"sh\")".into()),
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The awk string literal `s` starts with, unescaped.
fn leading_string(s: &str) -> Option<String> {
    let rest = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                c => out.push(c),
            },
            '"' => return Some(out),
            c => out.push(c),
        }
    }
}

/// The awk string literal `s` ends with (`… "cmd" ` before `| getline`).
fn trailing_string(s: &str) -> Option<String> {
    let s = s.trim_end();
    if !s.ends_with('"') {
        return None;
    }
    // Walk the literals from the left, so escaped quotes are skipped.
    let mut last = None;
    let mut in_string = false;
    let mut chars = s.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => {
                if !in_string {
                    last = Some(at);
                }
                in_string = !in_string;
            }
            _ => {}
        }
    }
    if in_string {
        return None;
    }
    leading_string(s.get(last?..)?)
}

/// What a `print` statement's arguments print when they are all string
/// literals (concatenated, or separated by commas and so by a space).
fn awk_literals(args: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = args.trim().trim_start_matches('(').trim_end().trim_end_matches(')').trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let lit = leading_string(rest)?;
        out.push_str(&lit);
        // Past the literal's closing quote.
        let mut consumed = 1;
        let mut chars = rest.get(1..)?.char_indices();
        while let Some((at, c)) = chars.next() {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                consumed = at + 2;
                break;
            }
        }
        rest = rest.get(consumed..)?.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            out.push(' ');
            rest = r.trim_start();
        }
    }
    Some(out)
}

/// perl's pipe opens: `open(F, "| sh")`, `open F, "rm -rf / |"`, `open(my
/// $f, "|-", "sh")`, `open(my $f, "-|", "cmd", @args)`. An open whose
/// command is not a literal is unknown; an open of a file is nothing.
fn perl_open_pipes(code: &str, commands: &mut Vec<String>) -> Result<(), String> {
    for (at, _) in code.match_indices("open") {
        let before = code.get(..at).and_then(|b| b.chars().last());
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = code.get(at + 4..).unwrap_or_default();
        if !rest.starts_with(['(', ' ']) {
            continue;
        }
        let end = rest.find([';', '\n']).unwrap_or(rest.len());
        let args = rest.get(..end).unwrap_or_default();
        let mut lits: Vec<String> = Vec::new();
        let mut from = 0;
        while let Some(q) = args.get(from..).and_then(|a| a.find(['"', '\''])) {
            let quote = args.get(from + q..from + q + 1).unwrap_or("\"");
            let body = args.get(from + q + 1..).unwrap_or_default();
            let Some(close) = body.find(quote) else { break };
            lits.push(body.get(..close).unwrap_or_default().to_owned());
            from += q + 1 + close + 1;
        }
        if let Some(mode) = lits.iter().position(|l| l == "|-" || l == "-|") {
            match lits.get(mode + 1) {
                Some(cmd) if !cmd.contains('$') => commands.push(lits.get(mode + 1..).unwrap_or_default().join(" ")),
                _ => return Err("perl opens a pipe to a command the checker cannot read".into()),
            }
        } else if let Some(spec) = lits.iter().find(|l| l.trim().starts_with('|') || l.trim().ends_with('|')) {
            let cmd = spec.trim().trim_start_matches('|').trim_end_matches('|').trim();
            let into_shell = cmd.split_whitespace().next().is_some_and(|w| super::wrappers::is_shell(w.rsplit('/').next().unwrap_or(w))) && !cmd.contains(" -c");
            if into_shell {
                return Err("perl prints into a shell (open … \"| sh\")".into());
            }
            if cmd.is_empty() || cmd.contains('$') {
                return Err("perl opens a pipe to a command the checker cannot read".into());
            }
            commands.push(cmd.to_owned());
        } else if args.contains("\"|") || args.contains("|\"") {
            return Err("perl opens a pipe to a command the checker cannot read".into());
        }
    }
    Ok(())
}

/// The literal arguments at the start of `s` (just after a call's `(`): one
/// string, which is shell code, or strings and lists of strings, which are
/// an argument vector. `None` when an argument is not a literal.
fn literal_args(s: &str, interpolates: bool) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    let mut chars = s.chars().peekable();
    let mut depth = 0usize;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(next) = chars.next() else { break };
        match next {
            q @ ('"' | '\'') => {
                let mut lit = String::new();
                loop {
                    match chars.next()? {
                        '\\' => match chars.next()? {
                            'n' => lit.push('\n'),
                            't' => lit.push('\t'),
                            c => lit.push(c),
                        },
                        c if c == q => break,
                        c => lit.push(c),
                    }
                }
                if interpolates && q == '"' && (lit.contains('$') || lit.contains("#{")) {
                    // Interpolation (`"#{x}"`, `"$x"`, `"${x}"`).
                    return None;
                }
                words.push(lit);
            }
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            ',' => {}
            ')' | ';' | '\n' if depth == 0 => break,
            c if c.is_ascii_alphabetic() && depth == 0 && !words.is_empty() => {
                // Keyword arguments after the command (`shell=True`).
                break;
            }
            // An environment after the command (`posix_spawn(path, argv, {})`).
            '{' if depth == 0 && !words.is_empty() => break,
            _ => return None,
        }
    }
    match words.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(many.iter().map(|w| format!("'{}'", w.replace('\'', r"'\''"))).collect::<Vec<_>>().join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("python", r#"import os; os.system("rm -rf /")"#, Some("rm -rf /"))]
    #[case("python", r#"import subprocess; subprocess.run(["rm", "-rf", "/"])"#, Some("'rm' '-rf' '/'"))]
    #[case("python", r#"subprocess.call("rm -rf /", shell=True)"#, Some("rm -rf /"))]
    #[case("perl", r#"system("rm -rf /")"#, Some("rm -rf /"))]
    #[case("perl", r#"system "rm", "-rf", "/""#, Some("'rm' '-rf' '/'"))]
    #[case("perl", "print `rm -rf /`", Some("rm -rf /"))]
    #[case("ruby", "%x(rm -rf /)", Some("rm -rf /"))]
    #[case("node", r#"require("child_process").execSync("rm -rf /")"#, Some("rm -rf /"))]
    #[case("awk", r#"BEGIN{system("rm -rf /")}"#, Some("rm -rf /"))]
    #[case("python", "print(1)", None)]
    #[case("awk", "{print $1}", None)]
    #[case("python", "mysystem('x')", None)]
    #[case("python", r#"from os import system; system("rm -rf /")"#, Some("rm -rf /"))]
    #[case("python", r#"__import__("os").system("rm -rf /")"#, Some("rm -rf /"))]
    #[case("python", r#"import os; os.execvp("rm", ["rm", "-rf", "/"])"#, Some("'rm' 'rm' '-rf' '/'"))]
    #[case("python", r#"import os; os.posix_spawn("/bin/rm", ["rm", "-rf", "/"], {})"#, Some("'/bin/rm' 'rm' '-rf' '/'"))]
    #[case("python", r#"import asyncio; asyncio.run(asyncio.create_subprocess_shell("rm -rf /"))"#, Some("rm -rf /"))]
    #[case("awk", r#"BEGIN { print "rm -rf /" | "sh" }"#, Some("rm -rf /"))]
    #[case("awk", r#"BEGIN { printf("rm -rf /\n") | "/bin/bash" }"#, Some("rm -rf /\n"))]
    #[case("awk", r#"BEGIN { print "rm", "-rf", "/" |& "sh" }"#, Some("rm -rf /"))]
    #[case("awk", r#"BEGIN { while (("rm -rf /" | getline line) > 0) print line }"#, Some("rm -rf /"))]
    #[case("awk", r#"{ print $1 | "sort -u" }"#, Some("sort -u"))]
    #[case("awk", r#"/error|fail/ { print $0 }"#, None)]
    #[case("awk", r#"{ if ($1 == "a|b" || $2 ~ /x|y/) print }"#, None)]
    #[case("perl", r#"open(my $f, "|-", "rm -rf /")"#, Some("rm -rf /"))]
    #[case("perl", r#"open(F, "rm -rf / |"); print <F>"#, Some("rm -rf /"))]
    #[case("perl", r#"open(my $f, "-|", "rm", "-rf", "/")"#, Some("rm -rf /"))]
    #[case("perl", r#"open(my $fh, "<", $file) or die"#, None)]
    fn finds_the_commands_code_runs(#[case] lang: &str, #[case] code: &str, #[case] expected: Option<&str>) {
        match (find(lang, code), expected) {
            (None, None) => {}
            (Some(Found::Code(c)), Some(e)) => assert_eq!(c, vec![e.to_owned()]),
            (got, e) => panic!("{got:?} vs {e:?}"),
        }
    }

    #[rstest]
    #[case("python", "import os; os.system(cmd)")]
    #[case("python", r#"os.system(f"rm {x}")"#)]
    #[case("awk", r#"{system("rm " $1)}"#)]
    #[case("ruby", r#"system("rm #{x}")"#)]
    #[case("awk", r#"{ print | cmd }"#)]
    #[case("awk", r#"BEGIN { printf("rm -rf %s\n", "/") | "/bin/bash" }"#)]
    #[case("awk", r#"{ print $0 | "sh" }"#)]
    #[case("awk", r#"{ cmd | getline x }"#)]
    #[case("perl", r#"open(F, "| sh"); print F "rm -rf /""#)]
    #[case("perl", r#"open(my $f, "-|", $cmd)"#)]
    fn calls_with_unreadable_arguments_are_unknown(#[case] lang: &str, #[case] code: &str) {
        assert!(matches!(find(lang, code), Some(Found::Unknown(_))), "{:?}", find(lang, code));
    }

    #[rstest]
    #[case("-c print(1)", &["-c"], &["print(1)"])]
    #[case("-we print", &["-e", "-E"], &["print"])]
    #[case("-e a -e b", &["-e", "-E"], &["a", "b"])]
    #[case("script.py -c x", &["-c"], &[])]
    #[case("-u -c x y", &["-c"], &["x"])]
    fn inline_code_is_found(#[case] args: &str, #[case] opts: &[&str], #[case] expected: &[&str]) {
        let words: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        assert_eq!(inline_code(&words, opts), expected);
    }
}
