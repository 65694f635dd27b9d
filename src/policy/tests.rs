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
    let file: cli::CaseFile = toml::from_str(CASES).unwrap();
    assert!(file.cases.len() >= 150, "only {} cases", file.cases.len());
    let policy = Policy::default_policy();
    let failures: Vec<String> = cli::run_cases(&policy, &file)
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
