//! How `custos-shell` was invoked, and how the real shell must be invoked.
//!
//! A login shell is started in many ways: `login` and `sshd` pass an `argv[0]`
//! beginning with `-`; `su -` and terminals pass `-l` or `-i`; ssh remote
//! commands, scp, rsync and git pass `-c CMD`; cron and scripts pass a script
//! path or pipe commands on stdin. The simplest way to behave exactly as the
//! real shell would is to hand it the very same arguments, so this module
//! only *classifies* them (to record what ran) and never rewrites them. The
//! one thing it changes is `argv[0]`: the real shell's name, with the leading
//! `-` kept when we were started as a login shell.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// What the arguments say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Started as a login shell (`argv[0]` starts with `-`, or `-l`/`--login`).
    pub login: bool,
    /// The command string of `-c`, if given.
    pub command: Option<String>,
    /// A script path, when one is given instead of `-c`.
    pub script: Option<String>,
    /// The arguments after `argv[0]`, passed to the real shell unchanged.
    pub args: Vec<OsString>,
    argv0_dash: bool,
}

impl Invocation {
    /// Classifies `argv` (including `argv[0]`).
    pub fn parse(argv: &[OsString]) -> Self {
        let argv0_dash = argv.first().is_some_and(|a| a.as_bytes().first() == Some(&b'-'));
        let args: Vec<OsString> = argv.iter().skip(1).cloned().collect();
        let mut login = argv0_dash;
        let mut wants_command = false;
        let mut first_operand = None;
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let bytes = arg.as_bytes();
            match bytes {
                b"--" => {
                    first_operand = iter.next();
                    break;
                }
                b"--login" => login = true,
                // Long options that take no value; passed through.
                [b'-', b'-', ..] => {}
                // `-o opt` and `-O opt` take a value.
                [b'-' | b'+', rest @ ..] if !rest.is_empty() => {
                    if rest.contains(&b'l') && bytes.first() == Some(&b'-') {
                        login = true;
                    }
                    if rest.contains(&b'c') {
                        wants_command = true;
                    }
                    if rest.contains(&b'o') || rest.contains(&b'O') {
                        iter.next();
                    }
                }
                _ => {
                    first_operand = Some(arg);
                    break;
                }
            }
        }
        let operand = first_operand.map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned());
        let (command, script) = if wants_command { (operand, None) } else { (None, operand) };
        Self { login, command, script, args, argv0_dash }
    }

    /// `argv[0]` for the real shell at `shell`: its file name, with a leading
    /// `-` when we were started as a login shell that way.
    pub fn shell_argv0(&self, shell: &Path) -> OsString {
        let name = shell.file_name().map_or_else(|| shell.as_os_str().to_owned(), ToOwned::to_owned);
        if self.argv0_dash {
            let mut dashed = OsString::from("-");
            dashed.push(name);
            dashed
        } else {
            name
        }
    }

    /// A short description of what runs, for the recording header.
    pub fn describe(&self) -> Option<String> {
        self.command.clone().or_else(|| self.script.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn parse(args: &[&str]) -> Invocation {
        Invocation::parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[rstest]
    #[case::sshd_login(&["-custos-shell"], true, None, None)]
    #[case::dash_l(&["custos-shell", "-l"], true, None, None)]
    #[case::long_login(&["custos-shell", "--login"], true, None, None)]
    #[case::interactive(&["custos-shell", "-i"], false, None, None)]
    #[case::ssh_command(&["custos-shell", "-c", "uname -a"], false, Some("uname -a"), None)]
    #[case::combined(&["custos-shell", "-lc", "make"], true, Some("make"), None)]
    #[case::command_with_args(&["custos-shell", "-c", "echo $0 $1", "x", "y"], false, Some("echo $0 $1"), None)]
    #[case::script(&["custos-shell", "deploy.sh", "--dry-run"], false, None, Some("deploy.sh"))]
    #[case::option_value(&["custos-shell", "-o", "pipefail", "run.sh"], false, None, Some("run.sh"))]
    #[case::double_dash(&["custos-shell", "--", "-weird.sh"], false, None, Some("-weird.sh"))]
    #[case::stdin(&["custos-shell", "-s"], false, None, None)]
    fn classifies(#[case] argv: &[&str], #[case] login: bool, #[case] command: Option<&str>, #[case] script: Option<&str>) {
        let inv = parse(argv);
        assert_eq!(inv.login, login);
        assert_eq!(inv.command.as_deref(), command);
        assert_eq!(inv.script.as_deref(), script);
        assert_eq!(inv.args.len(), argv.len() - 1, "arguments are passed through unchanged");
    }

    #[test]
    fn argv0_keeps_the_login_dash() {
        assert_eq!(parse(&["-custos-shell"]).shell_argv0(Path::new("/bin/zsh")), "-zsh");
        assert_eq!(parse(&["custos-shell", "-l"]).shell_argv0(Path::new("/bin/bash")), "bash");
    }
}
