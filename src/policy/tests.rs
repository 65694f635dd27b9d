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
