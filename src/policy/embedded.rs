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
        "python" => &[
            "os.system(", "os.popen(", "subprocess.run(", "subprocess.call(", "subprocess.check_call(", "subprocess.check_output(", "subprocess.Popen(",
            "subprocess.getoutput(", "subprocess.getstatusoutput(", "pty.spawn(", "os.execv(", "os.execvp(", "os.execl(", "os.execlp(", "os.spawnv(",
            "os.spawnvp(", "os.spawnlp(", "commands.getoutput(", "popen2.popen2(",
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
    (!commands.is_empty()).then_some(Found::Code(commands))
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
