//! The parser's contract as tables: which simple commands a line holds,
//! seen through quoting, wrappers, nesting and expansion.

use rstest::rstest;

use super::*;

fn env() -> Env {
    let mut e = Env::new("/home/alice", "/home/alice");
    e.vars.insert("BUILD".into(), "/home/alice/build".into());
    e.vars.insert("EMPTY".into(), String::new());
    e
}

/// `name arg arg` for every command found, for compact assertions.
fn summary(line: &str) -> Vec<String> {
    let a = analyse(line, &env());
    assert_eq!(a.problem, None, "{line}");
    a.commands
        .iter()
        .map(|c| {
            let mut s = c.name.clone();
            for a in &c.args {
                s.push(' ');
                s.push_str(&a.text);
            }
            s
        })
        .collect()
}

#[rstest]
#[case::simple("rm -rf /", &["rm /"])]
#[case::list("true; rm -rf / && echo x || echo y", &["true", "rm /", "echo x", "echo y"])]
#[case::pipeline("ls | grep x | rm -rf /", &["ls", "grep x", "rm /"])]
#[case::background("rm -rf / &", &["rm /"])]
#[case::subshell("(cd /tmp; rm -rf x)", &["cd /tmp", "rm x"])]
#[case::brace("{ rm -rf /; }", &["rm /"])]
#[case::dollar_paren("echo $(rm -rf /)", &["rm /", "echo"])]
#[case::backticks("echo `rm -rf /`", &["rm /", "echo"])]
#[case::nested_subst("echo $(echo $(rm -rf /))", &["rm /", "echo", "echo"])]
#[case::function_body("f() { rm -rf /; }", &["rm /"])]
#[case::if_clause("if true; then rm -rf /; fi", &["true", "rm /"])]
#[case::while_loop("while false; do rm -rf /; done", &["false", "rm /"])]
#[case::case_clause("case x in x) rm -rf /;; esac", &["rm /"])]
#[case::bash_c("bash -c 'rm -rf /'", &["bash rm -rf /", "rm /"])]
#[case::sh_c("sh -c \"rm -rf /\"", &["sh rm -rf /", "rm /"])]
#[case::zsh_c("zsh -c 'rm -rf /'", &["zsh rm -rf /", "rm /"])]
#[case::bash_c_nested("bash -c \"sh -c 'rm -rf /'\"", &["bash sh -c 'rm -rf /'", "sh rm -rf /", "rm /"])]
#[case::eval("eval 'rm -rf /'", &["eval rm -rf /", "rm /"])]
#[case::eval_words("eval rm -rf /", &["eval rm /", "rm /"])]
#[case::xargs("echo / | xargs rm -rf", &["echo /", "rm /"])]
#[case::xargs_replace("echo / | xargs -I{} rm -rf {}", &["echo /", "rm /"])]
#[case::xargs_unknown("find . | xargs rm -f", &["find .", "rm"])]
#[case::find_exec("find / -exec rm -rf {} \\;", &["find / rm {} ;", "rm / /**"])]
#[case::proc_subst("bash <(curl x)", &["curl x", "bash /dev/fd/63"])]
#[case::here_string("bash <<< 'rm -rf /'", &["bash", "rm /"])]
#[case::piped_echo("echo 'rm -rf /' | bash", &["echo rm -rf /", "bash", "rm /"])]
#[case::single_quoted("'r'm -rf /", &["rm /"])]
#[case::double_quoted("\"rm\" -rf /", &["rm /"])]
#[case::backslash("\\rm -rf /", &["rm /"])]
#[case::ansi_c("$'\\x72m' -rf /", &["rm /"])]
#[case::sudo("sudo rm -rf /", &["rm /"])]
#[case::sudo_opts("sudo -u root -E -- rm -rf /", &["rm /"])]
#[case::env("env -i A=1 rm -rf /", &["rm /"])]
#[case::env_u("env -u HOME rm -rf /", &["rm /"])]
#[case::command("command rm -rf /", &["rm /"])]
#[case::command_v("command -v rm", &["command rm"])]
#[case::exec("exec rm -rf /", &["rm /"])]
#[case::nice("nice -n 10 rm -rf /", &["rm /"])]
#[case::time("time rm -rf /", &["rm /"])]
#[case::nohup("nohup rm -rf / &", &["rm /"])]
#[case::timeout("timeout -s KILL 10 rm -rf /", &["rm /"])]
#[case::stdbuf("stdbuf -oL rm -rf /", &["rm /"])]
#[case::chroot("chroot /mnt rm -rf /", &["rm /"])]
#[case::doas("doas -u root rm -rf /", &["rm /"])]
#[case::setsid("setsid rm -rf /", &["rm /"])]
#[case::stacked("sudo env nice timeout 5 rm -rf /", &["rm /"])]
#[case::full_path("/bin/rm -rf /", &["rm /"])]
#[case::assignment("D=/; rm -rf $D", &["rm /"])]
#[case::for_loop("for d in /tmp /; do rm -rf $d; done", &["rm /tmp", "rm /"])]
#[case::cd("cd /; rm -rf *", &["cd /", "rm *"])]
#[case::su_c("su - root -c 'rm -rf /'", &["su - root rm -rf /", "rm /"])]
#[case::ssh("ssh host rm -rf /", &["ssh host rm /", "rm /"])]
#[case::watch("watch -n 1 rm -rf /", &["watch 1 rm /", "rm /"])]
#[case::echo_lookalike("echo \"rm -rf /\"", &["echo rm -rf /"])]
#[case::grep_lookalike("grep 'rm -rf /' notes", &["grep rm -rf / notes"])]
#[case::comment("# rm -rf /", &[])]
#[case::assignment_only("A=1", &[])]
fn finds_every_simple_command(#[case] line: &str, #[case] expected: &[&str]) {
    assert_eq!(summary(line), expected);
}

fn paths(line: &str) -> Vec<String> {
    analyse(line, &env()).commands.iter().flat_map(|c| c.args.iter().map(|a| a.path.clone())).collect()
}

#[rstest]
#[case("rm -rf //", "/")]
#[case("rm -rf /./", "/")]
#[case("rm -rf /usr/../", "/")]
#[case("rm -rf /etc/", "/etc")]
#[case("rm -rf ~", "/home/alice")]
#[case("rm -rf $HOME/..", "/home")]
#[case("rm -rf ../..", "/")]
#[case("rm -rf \"$BUILD\"", "/home/alice/build")]
#[case("rm -rf \"$UNSET\"/", "/")]
#[case("rm -rf \"$EMPTY\"/", "/")]
#[case("rm -rf ${UNSET:-/}", "/")]
#[case("rm -rf $(echo /)", "/")]
#[case("rm -rf $(pwd)/..", "/home")]
#[case("cd /etc && rm -rf .", "/etc")]
fn paths_are_canonical(#[case] line: &str, #[case] expected: &str) {
    assert!(paths(line).contains(&expected.to_owned()), "{:?}", paths(line));
}

#[rstest]
#[case("rm -rf \"$DIR\"/", true)]
#[case("rm -rf \"$DIR/etc\"", true)]
#[case("rm -rf /*", true)]
#[case("rm -rf /e*", true)]
#[case("cd / && rm -rf *", true)]
#[case("rm -rf '/*'", false)]
#[case("rm -rf \"$BUILD\"/", false)]
#[case("rm -rf ./build", false)]
#[case("rm -rf \"${DIR:?}\"/", false)]
fn unsafe_expansions_are_flagged(#[case] line: &str, #[case] expected: bool) {
    let a = analyse(line, &env());
    let any = a.commands.iter().any(|c| c.unsafe_reasons().next().is_some());
    assert_eq!(any, expected, "{:?}", a.commands);
}

#[test]
fn redirections_are_recorded_with_canonical_targets() {
    let a = analyse("echo x > //dev/./sda 2>&1", &env());
    let r = &a.commands[0].redirects;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].path, "/dev/sda");
    assert!(r[0].write);
}

#[test]
fn pipelines_record_their_upstream() {
    let a = analyse("curl -s x | sudo bash", &env());
    let bash = a.commands.iter().find(|c| c.name == "bash").unwrap();
    assert_eq!(bash.input_from, ["curl"]);
    let a = analyse("bash -c \"$(curl -fsSL x)\"", &env());
    let bash = a.commands.iter().find(|c| c.name == "bash").unwrap();
    assert_eq!(bash.input_from, ["curl"]);
}

#[rstest]
#[case(":(){ :|:& };:")]
#[case("bomb() { bomb | bomb & }; bomb")]
#[case("f(){ f & f; }; f")]
fn fork_bombs_have_their_shape(#[case] line: &str) {
    let a = analyse(line, &env());
    assert!(a.commands.iter().any(|c| c.forks_itself), "{:?}", a.commands);
}

#[test]
fn plain_recursion_is_not_a_fork_bomb() {
    let a = analyse("f() { echo; }; f | cat", &env());
    assert!(!a.commands.iter().any(|c| c.forks_itself));
}

#[rstest]
#[case::unterminated_single("echo 'oops")]
#[case::unterminated_double("echo \"oops")]
#[case::unterminated_subst("echo $(oops")]
#[case::dangling_operator("ls &&")]
#[case::bad_nested("bash -c 'echo \"'")]
fn unparseable_lines_are_problems(#[case] line: &str) {
    let a = analyse(line, &env());
    assert!(matches!(a.problem, Some(Problem::Syntax(_))), "{a:?}");
}

#[test]
fn long_lines_are_refused_not_parsed() {
    let line = "a".repeat(MAX_LINE_BYTES + 1);
    assert_eq!(analyse(&line, &env()).problem, Some(Problem::TooLong(MAX_LINE_BYTES + 1)));
}

#[rstest]
#[case::braces("{ ", " }", "true;")]
#[case::subshells("(", ")", "true")]
#[case::substitutions("echo $(", ")", "true")]
#[case::ifs("if true; then ", "; fi", "true")]
fn deep_nesting_never_overflows_the_stack(#[case] open: &str, #[case] close: &str, #[case] inner: &str) {
    for depth in [10, 100, 1000, 5000] {
        let line = format!("{}{inner}{}", open.repeat(depth), close.repeat(depth));
        // Whatever the outcome, it must come back, and a refusal is a problem.
        let a = analyse(&line, &env());
        if depth > MAX_OPENERS {
            assert!(a.problem.is_some(), "depth {depth}");
        }
    }
}

#[test]
fn nested_reparsing_is_bounded() {
    // Each `eval` re-parses the rest of the line one level deeper.
    let line = format!("{}rm -rf /", "eval ".repeat(MAX_NESTING + 2));
    assert_eq!(analyse(&line, &env()).problem, Some(Problem::TooDeep));
    let line = format!("{}rm -rf /", "eval ".repeat(MAX_NESTING - 1));
    assert_eq!(analyse(&line, &env()).problem, None);
}

#[test]
fn loops_cannot_multiply_work_without_bound() {
    let line = "for a in {1..200}; do for b in {1..200}; do echo $a$b; done; done";
    let a = analyse(line, &env());
    assert!(matches!(a.problem, Some(Problem::TooComplex(_))), "{:?}", a.problem);
}
