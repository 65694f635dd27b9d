//! Programs that run other programs, and how to find the one they run.
//!
//! `sudo -u postgres -E -- rm -rf /` runs `rm`; policy must see `rm`, not
//! `sudo`. Each wrapper's options are skipped the way the wrapper itself
//! parses them: an option that takes a value eats the next word, the first
//! operand is the command (after a fixed number of operands for `timeout
//! DURATION`, `chroot DIR`), and `NAME=VALUE` words are skipped after `env`
//! and `sudo`. Wrappers stop at their first operand (unlike GNU tools), so
//! `sudo rm -u x` is `rm -u x`.
//!
//! Some programs run a string as shell code (`bash -c`, `su -c`, `eval`,
//! `watch`, `ssh host CMD`, a shell reading a known stdin); the walker
//! parses that string as a line of its own. `xargs` and `find -exec` run a
//! command with extra arguments.
//!
//! A shell's options are read as the shell reads them: `-x`, `+x`, `-ec`,
//! `-o NAME`, `+o NAME`, `-O NAME` (bash's shopt), so `bash +x -c CODE`
//! still shows its code. Options that change how the code is read
//! (`+B`, `-o posix`, `-O extglob`, zsh's `-o sh_word_split`) make the
//! code's meaning unknown to the checker ([`odd_shell_options`]).

use super::embedded;

/// What running `name args...` amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unwrapped {
    /// `name` is the program (also: a wrapper with nothing to run).
    Program,
    /// A wrapper; the command starts at `args[start]`.
    Runs { start: usize, label: String, chdir: Option<String> },
    /// Runs `code` as shell code (`None`: code the gate cannot see, such
    /// as an interactive shell or a script file).
    Shell { code: Option<String>, label: String },
    /// `xargs`: the command starts at `args[start]` (`echo` when absent),
    /// with stdin's words appended or put in place of `replace`.
    Xargs { start: usize, replace: Option<String> },
    /// `find ... -exec CMD ;`: the commands, as `args[start..end]` ranges,
    /// and the paths find starts from (what `{}` names is at or below them).
    FindExec { commands: Vec<(usize, usize)>, starts: Vec<String> },
    /// The command will not run (`command -v rm`, `sudo -l rm`).
    NotRun,
    /// Runs a command made of these words (`parallel rm ::: /x`).
    Argv { words: Vec<String>, label: String },
    /// Runs something the checker cannot read (`python3 -c
    /// 'os.system(cmd)'`): why.
    Opaque { why: String },
}

/// One option seen while skipping: its name (`-u`, `--user`) and value.
#[derive(Debug)]
struct Seen {
    name: String,
    value: Option<String>,
}

/// Skips options: `short` lists the letters that take a value, `long` the
/// long options that do. Returns the index of the first operand (or of the
/// word after `--`) and the options seen.
fn skip_options(args: &[String], short: &str, long: &[&str]) -> (usize, Vec<Seen>) {
    let mut seen = Vec::new();
    let mut i = 0;
    while let Some(w) = args.get(i) {
        if w == "--" {
            return (i + 1, seen);
        }
        if !w.starts_with('-') || w.len() < 2 {
            return (i, seen);
        }
        i += 1;
        if let Some(body) = w.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let value = match value {
                Some(v) => Some(v),
                None if long.contains(&name) => {
                    i += 1;
                    args.get(i - 1).cloned()
                }
                None => None,
            };
            seen.push(Seen { name: format!("--{name}"), value });
            continue;
        }
        let letters = w.get(1..).unwrap_or_default();
        for (at, c) in letters.char_indices() {
            if short.contains(c) {
                let rest = letters.get(at + c.len_utf8()..).unwrap_or_default();
                let value = if rest.is_empty() {
                    i += 1;
                    args.get(i - 1).cloned()
                } else {
                    Some(rest.to_owned())
                };
                seen.push(Seen { name: format!("-{c}"), value });
                break;
            }
            seen.push(Seen { name: format!("-{c}"), value: None });
        }
    }
    (i, seen)
}

fn has(seen: &[Seen], names: &[&str]) -> bool {
    seen.iter().any(|s| names.contains(&s.name.as_str()))
}

fn value_of<'a>(seen: &'a [Seen], names: &[&str]) -> Option<&'a str> {
    seen.iter().rev().find(|s| names.contains(&s.name.as_str())).and_then(|s| s.value.as_deref())
}

/// `NAME=VALUE`, with NAME a shell variable name: an assignment word.
pub(crate) fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with(|c: char| c.is_ascii_digit()),
        None => false,
    }
}

fn runs(start: usize, args: &[String], label: &str) -> Unwrapped {
    if start < args.len() {
        Unwrapped::Runs { start, label: label.to_owned(), chdir: None }
    } else {
        Unwrapped::Program
    }
}

/// Shells that take `-c CODE`.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "fish", "yash", "posh", "tcsh", "csh"];

pub fn is_shell(name: &str) -> bool {
    SHELLS.contains(&name)
}

/// How `name args...` runs its command. `stdin` is the text the command
/// reads on its standard input, when the gate knows it.
pub fn unwrap(name: &str, args: &[String], stdin: Option<&str>) -> Unwrapped {
    match name {
        "sudo" => {
            let (mut i, seen) = skip_options(
                args,
                "ugpCDrtTUR",
                &["user", "group", "prompt", "close-from", "chdir", "role", "type", "command-timeout", "other-user", "chroot", "host"],
            );
            if has(&seen, &["-l", "--list", "-V", "--version", "-h", "--help", "-v", "--validate", "-K", "--remove-timestamp"]) {
                return Unwrapped::NotRun;
            }
            if has(&seen, &["-e", "--edit"]) {
                return Unwrapped::Program;
            }
            while args.get(i).is_some_and(|w| is_assignment(w)) {
                i += 1;
            }
            match runs(i, args, "sudo") {
                Unwrapped::Runs { start, label, .. } => Unwrapped::Runs { start, label, chdir: value_of(&seen, &["-D", "--chdir"]).map(str::to_owned) },
                other => other,
            }
        }
        "doas" => {
            let (i, seen) = skip_options(args, "uC", &[]);
            if has(&seen, &["-C", "-L"]) {
                return Unwrapped::NotRun;
            }
            runs(i, args, "doas")
        }
        // The service manager starts the command, outside this session:
        // its own words are a command too (`records_itself`).
        "systemd-run" | "run0" => {
            let (i, seen) = skip_options(
                args,
                "upEMHDg",
                &[
                    "unit", "property", "setenv", "machine", "host", "description", "slice", "uid", "gid", "working-directory", "chdir", "on-active",
                    "on-boot", "on-startup", "on-unit-active", "on-unit-inactive", "on-calendar", "on-timer-property", "on-clock-change", "path-property",
                    "socket-property", "timer-property", "service-type", "nice", "user", "group", "background", "shell-prompt-prefix", "setenv", "expand-environment",
                ],
            );
            if has(&seen, &["-h", "--help", "--version"]) {
                return Unwrapped::NotRun;
            }
            runs(i, args, name)
        }
        "pkexec" => {
            let (i, _) = skip_options(args, "", &["user"]);
            runs(i, args, "pkexec")
        }
        "env" => {
            let (mut i, seen) = skip_options(args, "uCSP", &["unset", "chdir", "split-string"]);
            if let Some(s) = value_of(&seen, &["-S", "--split-string"]) {
                let mut code = s.to_owned();
                for a in args.get(i..).unwrap_or_default() {
                    code.push(' ');
                    code.push_str(&quote(a));
                }
                return Unwrapped::Shell { code: Some(code), label: "env -S".into() };
            }
            while args.get(i).is_some_and(|w| is_assignment(w) || w == "-") {
                i += 1;
            }
            let chdir = value_of(&seen, &["-C", "--chdir"]).map(str::to_owned);
            match runs(i, args, "env") {
                Unwrapped::Runs { start, label, .. } => Unwrapped::Runs { start, label, chdir },
                other => other,
            }
        }
        "command" => {
            let (i, seen) = skip_options(args, "", &[]);
            if has(&seen, &["-v", "-V"]) {
                return Unwrapped::NotRun;
            }
            runs(i, args, "command")
        }
        "builtin" | "nohup" | "busybox" | "catchsegv" | "fakeroot" | "proxychains" | "proxychains4" | "torsocks" | "unshare" | "firejail" | "sudo.ws" => {
            let (i, _) = skip_options(args, "", &[]);
            runs(i, args, name)
        }
        "exec" => {
            let (i, _) = skip_options(args, "a", &[]);
            runs(i, args, "exec")
        }
        "nice" => {
            // `nice -10 cmd` is an adjustment, which skip_options reads as
            // the letters 1 and 0; harmless.
            let (i, _) = skip_options(args, "n", &["adjustment"]);
            runs(i, args, "nice")
        }
        "ionice" => {
            let (i, seen) = skip_options(args, "cnp", &["class", "classdata", "pid", "pgid", "uid"]);
            if has(&seen, &["-p", "-P", "-u", "--pid", "--pgid", "--uid"]) {
                return Unwrapped::NotRun;
            }
            runs(i, args, "ionice")
        }
        "time" => {
            let (i, _) = skip_options(args, "fo", &["format", "output"]);
            runs(i, args, "time")
        }
        "timeout" => {
            let (i, _) = skip_options(args, "sk", &["signal", "kill-after"]);
            runs(i + 1, args, "timeout")
        }
        "stdbuf" => {
            let (i, _) = skip_options(args, "ioe", &["input", "output", "error"]);
            runs(i, args, "stdbuf")
        }
        "chroot" => {
            let (i, _) = skip_options(args, "", &["userspec", "groups"]);
            runs(i + 1, args, "chroot")
        }
        "setsid" => {
            let (i, _) = skip_options(args, "", &[]);
            runs(i, args, "setsid")
        }
        "unbuffer" => {
            let (i, _) = skip_options(args, "", &[]);
            runs(i, args, "unbuffer")
        }
        "strace" | "ltrace" => {
            let (i, seen) = skip_options(args, "abeIoOpPsSuEXA", &["output", "attach", "user", "env", "string-limit", "trace", "signal", "decode-fds"]);
            if has(&seen, &["-p", "--attach"]) && i >= args.len() {
                return Unwrapped::NotRun;
            }
            runs(i, args, name)
        }
        "chrt" => {
            let (i, seen) = skip_options(args, "T P D", &["sched-runtime", "sched-period", "sched-deadline"]);
            if has(&seen, &["-p", "--pid"]) {
                return Unwrapped::NotRun;
            }
            runs(i + 1, args, "chrt")
        }
        "taskset" => {
            let (i, seen) = skip_options(args, "", &[]);
            if has(&seen, &["-p", "--pid"]) {
                return Unwrapped::NotRun;
            }
            runs(i + 1, args, "taskset")
        }
        "runuser" => {
            let (i, seen) = skip_options(args, "ugGcsw", &["user", "group", "supp-group", "command", "shell", "whitelist-environment"]);
            if let Some(code) = value_of(&seen, &["-c", "--command"]) {
                return Unwrapped::Shell { code: Some(code.to_owned()), label: "runuser -c".into() };
            }
            if has(&seen, &["-u", "--user"]) {
                return runs(i, args, "runuser");
            }
            Unwrapped::Shell { code: None, label: "runuser".into() }
        }
        "su" => {
            let (_, seen) = skip_options_anywhere(args, "cgGsw", &["command", "group", "supp-group", "shell", "whitelist-environment"]);
            let code = value_of(&seen, &["-c", "--command"]).map(str::to_owned);
            Unwrapped::Shell { code, label: "su -c".into() }
        }
        "sg" => {
            let (i, _) = skip_options(args, "", &[]);
            let code = args.get(i + 1..).filter(|r| !r.is_empty()).map(|r| r.join(" "));
            Unwrapped::Shell { code, label: "sg".into() }
        }
        "script" => {
            let (_, seen) = skip_options_anywhere(args, "cEIOBTm", &["command", "echo", "log-in", "log-out", "log-io", "log-timing", "logging-format"]);
            let code = value_of(&seen, &["-c", "--command"]).map(str::to_owned);
            Unwrapped::Shell { code, label: "script -c".into() }
        }
        "flock" => {
            let (i, seen) = skip_options(args, "wEc", &["timeout", "conflict-exit-code", "command"]);
            if let Some(code) = value_of(&seen, &["-c", "--command"]) {
                return Unwrapped::Shell { code: Some(code.to_owned()), label: "flock -c".into() };
            }
            // `flock FILE -c CMD` puts the option after the file.
            if let Some(rest) = args.get(i + 1..) {
                let (_, later) = skip_options(rest, "c", &["command"]);
                if let Some(code) = value_of(&later, &["-c", "--command"]) {
                    return Unwrapped::Shell { code: Some(code.to_owned()), label: "flock -c".into() };
                }
            }
            runs(i + 1, args, "flock")
        }
        "watch" => {
            let (i, seen) = skip_options(args, "nq", &["interval", "equexit"]);
            if has(&seen, &["-x", "--exec"]) {
                return runs(i, args, "watch");
            }
            let code = args.get(i..).filter(|r| !r.is_empty()).map(|r| r.join(" "));
            Unwrapped::Shell { code, label: "watch".into() }
        }
        "ssh" => {
            let (i, _) = skip_options(args, "BbcDEeFIiJLlmOoPpQRSWw", &[]);
            let code = args.get(i + 1..).filter(|r| !r.is_empty()).map(|r| r.join(" "));
            Unwrapped::Shell { code, label: "ssh".into() }
        }
        "eval" => {
            let code = Some(args.join(" ")).filter(|c| !c.trim().is_empty());
            Unwrapped::Shell { code, label: "eval".into() }
        }
        "xargs" => {
            let (i, seen) = skip_options(args, "adEILlnPsei", &["arg-file", "delimiter", "eof", "replace", "max-lines", "max-args", "max-procs", "max-chars", "process-slot-var"]);
            let replace = value_of(&seen, &["-I", "--replace"]).map(str::to_owned).or_else(|| has(&seen, &["-i"]).then(|| "{}".to_owned()));
            Unwrapped::Xargs { start: i, replace }
        }
        "find" => {
            let mut commands = Vec::new();
            let mut i = 0;
            while let Some(w) = args.get(i) {
                i += 1;
                if matches!(w.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                    let start = i;
                    while args.get(i).is_some_and(|a| a != ";" && a != "+") {
                        i += 1;
                    }
                    commands.push((start, i));
                }
            }
            if commands.is_empty() {
                Unwrapped::Program
            } else {
                Unwrapped::FindExec { commands, starts: find_starts(args) }
            }
        }
        n if is_shell(n) => shell(n, args, stdin),
        "docker" | "podman" | "nerdctl" | "docker-compose" => container(name, args),
        "kubectl" | "oc" => {
            // `kubectl exec POD -- CMD`, `kubectl debug ... -- CMD`,
            // `kubectl run NAME --image=X -- CMD`.
            let sub = args.iter().find(|w| matches!(w.as_str(), "exec" | "debug" | "run" | "attach"));
            match (sub, args.iter().position(|w| w == "--")) {
                (Some(sub), Some(dash)) => match runs(dash + 1, args, &format!("{name} {sub}")) {
                    Unwrapped::Program => Unwrapped::Program,
                    other => other,
                },
                _ => Unwrapped::Program,
            }
        }
        "parallel" => parallel(args),
        "gdb" => {
            // `-ex 'shell CMD'`, `-ex '!CMD'`: gdb runs CMD with a shell.
            // gdb's long options take one dash or two, a value after `=`
            // or in the next word.
            let mut commands: Vec<&str> = Vec::new();
            let mut i = 0;
            while let Some(w) = args.get(i) {
                i += 1;
                let bare = w.trim_start_matches('-');
                let (name, attached) = match bare.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (bare, None),
                };
                if w.starts_with('-') && matches!(name, "ex" | "eval-command" | "iex" | "init-eval-command") {
                    match attached {
                        Some(v) => commands.push(v),
                        None => {
                            commands.extend(args.get(i).map(String::as_str));
                            i += 1;
                        }
                    }
                }
            }
            let codes: Vec<String> = commands.iter().filter_map(|v| v.trim().strip_prefix("shell ").or_else(|| v.trim().strip_prefix('!')).map(str::to_owned)).collect();
            shell_codes(codes, "gdb shell")
        }
        "git" => git(args),
        "tar" | "gtar" | "bsdtar" => {
            let (_, seen) = skip_options_anywhere(args, "fCIFTXbgKLNV", &["to-command", "checkpoint-action", "use-compress-program", "info-script", "new-volume-script", "file", "directory", "rsh-command"]);
            let mut codes = Vec::new();
            for o in &seen {
                let Some(v) = o.value.as_deref() else { continue };
                match o.name.as_str() {
                    "--to-command" | "--use-compress-program" | "-I" | "--info-script" | "--new-volume-script" | "-F" | "--rsh-command" => codes.push(v.to_owned()),
                    "--checkpoint-action" => {
                        if let Some(c) = v.strip_prefix("exec=") {
                            codes.push(c.to_owned());
                        }
                    }
                    _ => {}
                }
            }
            shell_codes(codes, "tar")
        }
        "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => {
            let (i, seen) = skip_options(args, "fvF", &["file", "assign", "field-separator", "source"]);
            let program = if has(&seen, &["-f", "--file"]) { value_of(&seen, &["--source"]) } else { args.get(i).map(String::as_str) };
            match program {
                Some(code) => embedded_code("awk", &[code.to_owned()], "awk system()"),
                None => Unwrapped::Program,
            }
        }
        "vim" | "vi" | "nvim" | "ex" | "view" | "vimdiff" | "gvim" | "rvim" => {
            // `-c CMD`, `--cmd CMD`, `+CMD`: Ex commands; `!CMD` is shell.
            let mut commands: Vec<String> = Vec::new();
            let mut i = 0;
            while let Some(w) = args.get(i) {
                i += 1;
                if matches!(w.as_str(), "-c" | "--cmd" | "-S") {
                    commands.extend(args.get(i).cloned());
                    i += 1;
                } else if let Some(c) = w.strip_prefix('+').filter(|c| !c.is_empty() && !c.starts_with(|d: char| d.is_ascii_digit() || d == '/')) {
                    commands.push(c.to_owned());
                }
            }
            let mut codes = Vec::new();
            for c in &commands {
                let c = c.trim().trim_start_matches(':').trim();
                let c = c.strip_prefix("silent!").or_else(|| c.strip_prefix("silent")).map_or(c, str::trim);
                if let Some(code) = c.strip_prefix('!').or_else(|| c.strip_prefix("r !")).or_else(|| c.strip_prefix("r!")).or_else(|| c.strip_prefix("w !")) {
                    codes.push(code.to_owned());
                }
            }
            match embedded::find("vim", &commands.join("\n")) {
                Some(embedded::Found::Code(more)) => codes.extend(more),
                Some(embedded::Found::Unknown(why)) => return Unwrapped::Opaque { why },
                None => {}
            }
            shell_codes(codes, "vim !")
        }
        n => match embedded::language(n) {
            Some((lang, opts)) => embedded_code(lang, &embedded::inline_code(args, opts), &format!("{n} -c")),
            None => Unwrapped::Program,
        },
    }
}

/// Shell code found in a program's arguments, as [`Unwrapped::Shell`].
fn shell_codes(codes: Vec<String>, label: &str) -> Unwrapped {
    if codes.is_empty() {
        Unwrapped::Program
    } else {
        Unwrapped::Shell { code: Some(codes.join("\n")), label: label.to_owned() }
    }
}

/// The commands inline code of language `lang` runs.
fn embedded_code(lang: &str, code: &[String], label: &str) -> Unwrapped {
    let mut codes = Vec::new();
    for c in code {
        match embedded::find(lang, c) {
            Some(embedded::Found::Code(more)) => codes.extend(more),
            Some(embedded::Found::Unknown(why)) => return Unwrapped::Opaque { why },
            None => {}
        }
    }
    shell_codes(codes, label)
}

/// Whether a wrapper's own words are checked as a command as well as what
/// it runs: a container's options (what it mounts, whether it is
/// privileged), and wrappers that start the command outside this session
/// (`systemd-run`, `run0`), which rules refer to by name.
pub fn records_itself(label: &str) -> bool {
    ["docker ", "podman ", "nerdctl ", "docker-compose "].iter().any(|p| label.starts_with(p)) || matches!(label, "systemd-run" | "run0")
}

/// `docker exec [OPTIONS] CONTAINER CMD...`, `docker run [OPTIONS] IMAGE
/// [CMD...]`, and the same for podman, nerdctl and `docker compose`.
fn container(name: &str, args: &[String]) -> Unwrapped {
    // Options before the subcommand (`docker -H host exec`).
    let (mut i, _) = skip_options(args, "Hc", &["host", "context", "config", "log-level", "tlscacert", "tlscert", "tlskey", "file", "project-name", "profile", "env-file"]);
    let mut label = name.to_owned();
    while let Some(w) = args.get(i).filter(|w| matches!(w.as_str(), "container" | "compose")) {
        label.push(' ');
        label.push_str(w);
        i += 1;
        if w == "compose" {
            let (n, _) = skip_options(args.get(i..).unwrap_or_default(), "fp", &["file", "project-name", "profile", "env-file", "project-directory"]);
            i += n;
        }
    }
    let Some(sub) = args.get(i).filter(|w| matches!(w.as_str(), "exec" | "run")) else { return Unwrapped::Program };
    label.push(' ');
    label.push_str(sub);
    let rest = args.get(i + 1..).unwrap_or_default();
    let (n, _) = skip_options(
        rest,
        "eupvwlmhca",
        &[
            "env", "env-file", "user", "workdir", "detach-keys", "publish", "volume", "name", "network", "net", "entrypoint", "memory", "cpus", "mount", "label",
            "hostname", "add-host", "restart", "platform", "pull", "volumes-from", "device", "cap-add", "cap-drop", "security-opt", "tmpfs", "log-driver",
            "log-opt", "ulimit", "shm-size", "gpus", "runtime", "ipc", "pid", "dns", "expose", "link", "cidfile", "cpu-shares", "memory-swap", "group-add",
            "stop-signal", "health-cmd", "userns", "uts", "cgroupns", "cgroup-parent", "index", "annotation", "arch", "os", "secret", "pod", "replace",
        ],
    );
    // `-i`, `-t`, `-d` take no value: `-it` is two flags.
    let start = i + 1 + n + 1;
    runs(start, args, &label)
}

/// `parallel [OPTIONS] CMD ::: ARGS...`: CMD with the arguments put in
/// place of `{}`, or appended.
fn parallel(args: &[String]) -> Unwrapped {
    let (i, _) = skip_options(args, "jSaPIdXNEL", &["jobs", "sshlogin", "arg-file", "max-procs", "delimiter", "joblog", "results", "tmpdir", "workdir", "timeout", "retries", "tag-string"]);
    let rest = args.get(i..).unwrap_or_default();
    let sep = rest.iter().position(|w| matches!(w.as_str(), ":::" | "::::" | ":::+"));
    let (cmd, inputs) = match sep {
        Some(at) => (rest.get(..at).unwrap_or_default(), rest.get(at + 1..).unwrap_or_default()),
        None => (rest, &[][..]),
    };
    if cmd.is_empty() {
        return Unwrapped::Program;
    }
    let inputs: Vec<String> = inputs.iter().filter(|w| !w.starts_with(":::")).cloned().collect();
    let mut words: Vec<String> = Vec::new();
    let mut replaced = false;
    for w in cmd {
        if w == "{}" {
            words.extend(inputs.iter().cloned());
            replaced = true;
        } else {
            words.push(w.clone());
        }
    }
    if !replaced {
        words.extend(inputs);
    }
    if cmd.len() == 1 && cmd.first().is_some_and(|c| c.contains(' ')) {
        // `parallel 'rm -rf {}' ::: /x`: one word is shell code.
        return Unwrapped::Shell { code: Some(words.join(" ")), label: "parallel".into() };
    }
    Unwrapped::Argv { words, label: "parallel".into() }
}

/// `git -c alias.x='!CMD' x`, `git -c core.pager=CMD log`: configuration
/// given on the command line that git runs with a shell.
fn git(args: &[String]) -> Unwrapped {
    let (i, seen) = skip_options(args, "cC", &["git-dir", "work-tree", "namespace", "exec-path", "config-env"]);
    let sub = args.get(i).map(String::as_str);
    let mut codes = Vec::new();
    for o in seen.iter().filter(|o| o.name == "-c") {
        let Some((key, value)) = o.value.as_deref().and_then(|v| v.split_once('=')) else { continue };
        let key = key.to_ascii_lowercase();
        if let Some(alias) = key.strip_prefix("alias.") {
            if Some(alias) == sub {
                if let Some(code) = value.strip_prefix('!') {
                    let mut code = code.to_owned();
                    for a in args.get(i + 1..).unwrap_or_default() {
                        code.push(' ');
                        code.push_str(&quote(a));
                    }
                    codes.push(code);
                }
            }
        } else if matches!(key.as_str(), "core.pager" | "core.editor" | "core.sshcommand" | "core.fsmonitor" | "sequence.editor" | "diff.external" | "pager.log" | "pager.diff" | "pager.show") {
            codes.push(value.trim_start_matches('!').to_owned());
        }
    }
    shell_codes(codes, "git -c")
}

/// The paths `find` starts from: the words before its expression, after
/// `-H`, `-L`, `-P`, `-D LIST` and `-O LEVEL`; `.` when there are none.
pub fn find_starts(args: &[String]) -> Vec<String> {
    let mut i = 0;
    while let Some(w) = args.get(i) {
        match w.as_str() {
            "-H" | "-L" | "-P" => i += 1,
            "-D" => i += 2,
            o if o.starts_with("-O") => i += 1,
            _ => break,
        }
    }
    let starts: Vec<String> = args.iter().skip(i).take_while(|w| !w.starts_with('-') && !matches!(w.as_str(), "(" | "!" | ",")).cloned().collect();
    if starts.is_empty() {
        vec![".".to_owned()]
    } else {
        starts
    }
}

/// `su root -c CMD`, `script -q -c CMD log`: options may follow operands.
fn skip_options_anywhere(args: &[String], short: &str, long: &[&str]) -> (usize, Vec<Seen>) {
    let mut all = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let rest = args.get(i..).unwrap_or_default();
        let (n, seen) = skip_options(rest, short, long);
        all.extend(seen);
        i += n.max(1);
    }
    (i, all)
}

/// A shell's options, `-` and `+` alike: returns the index of the first
/// operand and the options seen (`+x` as `+x`, `-o NAME` with its value).
fn shell_options(args: &[String]) -> (usize, Vec<Seen>) {
    let mut seen = Vec::new();
    let mut i = 0;
    while let Some(w) = args.get(i) {
        if w == "--" || w == "-" {
            return (i + 1, seen);
        }
        let Some(sign) = w.chars().next().filter(|c| matches!(c, '-' | '+')) else { return (i, seen) };
        if w.len() < 2 {
            return (i, seen);
        }
        i += 1;
        if let Some(long) = w.strip_prefix("--") {
            let value = if matches!(long, "rcfile" | "init-file") {
                i += 1;
                args.get(i - 1).cloned()
            } else {
                None
            };
            seen.push(Seen { name: w.clone(), value });
            continue;
        }
        for c in w.chars().skip(1) {
            let value = if matches!(c, 'o' | 'O') {
                i += 1;
                args.get(i - 1).cloned()
            } else {
                None
            };
            seen.push(Seen { name: format!("{sign}{c}"), value });
        }
    }
    (i, seen)
}

/// Shell options that do not change what a line of code means: tracing,
/// exiting on errors, job control, globbing (the checker never expands
/// globs). Names are compared lowercased, without `_`, `-` and a `no`.
const PLAIN_SHELL_OPTIONS: &[&str] = &[
    "errexit", "nounset", "unset", "xtrace", "verbose", "pipefail", "clobber", "glob", "monitor", "hashall", "hashcmds", "notify", "ignoreeof",
    "history", "histexpand", "banghist", "rcs", "globalrcs", "login", "interactive", "errreturn", "printexitvalue", "zle", "emacs", "vi",
    "nullglob", "failglob", "dotglob", "globstar", "nocaseglob", "nocasematch", "checkwinsize", "promptvars", "interactivecomments",
    "checkjobs", "huponexit", "lastpipe", "inheriterrexit", "localvarinherit", "physical", "chaselinks", "privileged", "restricted",
];

/// Single-letter options that do not change what code means (see
/// [`PLAIN_SHELL_OPTIONS`]); `c`, `s`, `i`, `l` are how the shell reads.
const PLAIN_SHELL_LETTERS: &str = "xveufhmbCHPpcsilT";

/// Why `name args...` reads its code in a way the checker does not model:
/// a `+` option or a named option outside the plain ones. `None` when the
/// options are plain.
pub fn odd_shell_options(name: &str, args: &[String]) -> Option<String> {
    let (_, seen) = shell_options(args);
    for o in &seen {
        if o.name.starts_with("--") {
            continue;
        }
        let letter = o.name.chars().nth(1).unwrap_or('-');
        let odd = match (&o.value, letter) {
            (Some(v), 'o' | 'O') => {
                let n: String = v.to_ascii_lowercase().chars().filter(|c| !matches!(c, '_' | '-')).collect();
                let n = n.strip_prefix("no").filter(|r| PLAIN_SHELL_OPTIONS.contains(r)).unwrap_or(&n);
                !PLAIN_SHELL_OPTIONS.contains(&n)
            }
            (None, 'o' | 'O') => false,
            (_, c) => o.name.starts_with('+') && !PLAIN_SHELL_LETTERS.contains(c),
        };
        if odd {
            let shown = match &o.value {
                Some(v) => format!("{} {v}", o.name),
                None => o.name.clone(),
            };
            return Some(format!("{name} {shown} changes how the shell reads its code, which the checker cannot follow"));
        }
    }
    None
}

/// Interpreters that read a program from stdin when given none.
const INTERPRETERS: &[&str] = &["python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "tclsh", "Rscript", "pwsh", "osascript"];

/// Whether `name args...` is an interpreter that reads its program from
/// its standard input: no script operand (or `-`), no option giving code
/// (`-c`, `-e`, `-m`, `-r`).
pub fn reads_program_from_pipe(name: &str, args: &[String]) -> bool {
    let versioned = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if !INTERPRETERS.contains(&name) && !INTERPRETERS.contains(&versioned) {
        return false;
    }
    args.iter().all(|w| w == "-" || (w.starts_with('-') && !w.starts_with("--eval") && !w.get(1..).unwrap_or_default().contains(['c', 'e', 'E', 'm', 'r', 'p'])))
}

fn shell(name: &str, args: &[String], stdin: Option<&str>) -> Unwrapped {
    let (i, seen) = shell_options(args);
    let label = format!("{name} -c");
    if has(&seen, &["-c"]) {
        // The option may be in a cluster (`-ec`); the code is the first operand.
        return Unwrapped::Shell { code: args.get(i).cloned(), label };
    }
    if has(&seen, &["-s"]) || i >= args.len() {
        // Reads its commands from stdin.
        return Unwrapped::Shell { code: stdin.map(str::to_owned), label: format!("{name} (stdin)") };
    }
    Unwrapped::Shell { code: None, label: name.to_owned() }
}

/// Quotes a word for re-parsing as shell code.
fn quote(w: &str) -> String {
    format!("'{}'", w.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[rstest]
    #[case("sudo", "rm -rf /", 0)]
    #[case("sudo", "-u root rm", 2)]
    #[case("sudo", "-uroot rm", 1)]
    #[case("sudo", "-E -H -- rm", 3)]
    #[case("sudo", "--user=root rm", 1)]
    #[case("sudo", "--user root rm", 2)]
    #[case("sudo", "FOO=1 rm", 1)]
    #[case("env", "-i A=1 B=2 rm", 3)]
    #[case("env", "-u HOME rm", 2)]
    #[case("env", "- rm", 1)]
    #[case("nice", "-n 10 rm", 2)]
    #[case("timeout", "-s KILL -k 5 10s rm", 5)]
    #[case("timeout", "10 rm", 1)]
    #[case("stdbuf", "-oL rm", 1)]
    #[case("chroot", "/mnt rm", 1)]
    #[case("ionice", "-c 3 rm", 2)]
    #[case("strace", "-f -o /tmp/x rm", 3)]
    fn wrappers_find_the_command(#[case] name: &str, #[case] args: &str, #[case] start: usize) {
        match unwrap(name, &words(args), None) {
            Unwrapped::Runs { start: s, .. } => assert_eq!(s, start),
            other => panic!("{other:?}"),
        }
    }

    #[rstest]
    #[case("bash", "-c x", Some("x"))]
    #[case("bash", "-ec x", Some("x"))]
    #[case("bash", "-x -c x y z", Some("x"))]
    #[case("bash", "-o errexit -c x", Some("x"))]
    #[case("bash", "+x -c x", Some("x"))]
    #[case("bash", "+xe -c x", Some("x"))]
    #[case("sh", "+o errexit -c x", Some("x"))]
    #[case("dash", "-o nounset +x -c x", Some("x"))]
    #[case("zsh", "+o rcs -c x", Some("x"))]
    #[case("bash", "-O extglob -c x", Some("x"))]
    #[case("bash", "--rcfile f -c x", Some("x"))]
    #[case("bash", "+x script.sh", None)]
    #[case("bash", "", None)]
    #[case("bash", "script.sh", None)]
    #[case("su", "- root -c x", Some("x"))]
    #[case("su", "-c x root", Some("x"))]
    #[case("ssh", "-p 22 host x", Some("x"))]
    #[case("watch", "-n 1 x", Some("x"))]
    fn shells_find_their_code(#[case] name: &str, #[case] args: &str, #[case] code: Option<&str>) {
        match unwrap(name, &words(args), None) {
            Unwrapped::Shell { code: c, .. } => assert_eq!(c.as_deref(), code),
            other => panic!("{other:?}"),
        }
    }

    #[rstest]
    #[case("bash", "+x -c x", None)]
    #[case("bash", "-e -o pipefail -c x", None)]
    #[case("zsh", "+o rcs -c x", None)]
    #[case("bash", "+B -c x", Some("bash +B"))]
    #[case("sh", "+o braceexpand -c x", Some("sh +o braceexpand"))]
    #[case("bash", "-O extglob -c x", Some("bash -O extglob"))]
    #[case("zsh", "-o KSH_ARRAYS -c x", Some("zsh -o KSH_ARRAYS"))]
    fn options_that_change_how_code_is_read(#[case] name: &str, #[case] args: &str, #[case] odd: Option<&str>) {
        let got = odd_shell_options(name, &words(args));
        match odd {
            None => assert_eq!(got, None),
            Some(part) => assert!(got.as_deref().is_some_and(|g| g.contains(part)), "{got:?}"),
        }
    }

    #[rstest]
    #[case("python3", "", true)]
    #[case("python3.12", "-u -", true)]
    #[case("perl", "-w", true)]
    #[case("python3", "x.py", false)]
    #[case("python3", "-c print(1)", false)]
    #[case("node", "-e 1", false)]
    #[case("ls", "", false)]
    fn interpreters_reading_their_program(#[case] name: &str, #[case] args: &str, #[case] reads: bool) {
        assert_eq!(reads_program_from_pipe(name, &words(args)), reads);
    }

    #[rstest]
    #[case("command", "-v rm")]
    #[case("sudo", "-l rm")]
    fn lookups_do_not_run(#[case] name: &str, #[case] args: &str) {
        assert_eq!(unwrap(name, &words(args), None), Unwrapped::NotRun);
    }
}
