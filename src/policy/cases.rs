//! Policy case tables: lines with the verdict (and rule) a policy must
//! give them, so a policy is tested like code (`custos policy test`).
//!
//! Pure: a parsed [`CaseFile`] and a [`Policy`] in, one [`Outcome`] per case
//! out. Reading the file is the command's edge (`cmd::policy`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Decision, Env, Policy, Subject, Verdict};

/// A case file, as written.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub policy: Option<String>,
    /// Whether a collector is configured (the default of `[policy]
    /// unknown`); `None`: as the host's custos config says.
    pub collector: Option<bool>,
    #[serde(default)]
    pub defaults: CaseContext,
    #[serde(default, rename = "case")]
    pub cases: Vec<Case>,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct CaseContext {
    pub user: Option<String>,
    pub groups: Option<Vec<String>>,
    pub oidc_groups: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub home: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub line: String,
    pub expect: String,
    pub rule: Option<String>,
    pub note: Option<String>,
    #[serde(flatten)]
    pub context: CaseContext,
}

/// One case's outcome.
#[derive(Debug)]
pub struct Outcome {
    pub case: Case,
    pub decision: Decision,
    pub failure: Option<String>,
}

/// Runs every case.
pub fn run_cases(policy: &Policy, file: &CaseFile) -> Vec<Outcome> {
    file.cases
        .iter()
        .map(|case| {
            let pick = |f: fn(&CaseContext) -> Option<&str>| f(&case.context).or_else(|| f(&file.defaults)).map(str::to_owned);
            let user = pick(|c| c.user.as_deref()).unwrap_or_else(|| "user".into());
            let home = pick(|c| c.home.as_deref()).unwrap_or_else(|| default_home(&user));
            let cwd = pick(|c| c.cwd.as_deref()).unwrap_or_else(|| home.clone());
            let groups = case.context.groups.clone().or_else(|| file.defaults.groups.clone()).unwrap_or_default();
            let oidc_groups = case.context.oidc_groups.clone().or_else(|| file.defaults.oidc_groups.clone()).unwrap_or_default();
            let mut env = Env::new(&cwd, &home);
            env.vars = case.context.env.clone().or_else(|| file.defaults.env.clone()).unwrap_or_default();
            // As at the gate, whose hooks send every variable that is set.
            env.complete = true;
            let who = Subject { user, groups, oidc_groups };
            let decision = policy.check(&case.line, &who, &env);
            let rule = decision.rule.as_ref().map(|r| r.name.as_str());
            let failure = match case.expect.parse::<Verdict>() {
                Err(e) => Some(format!("bad case: {e}")),
                Ok(v) if v != decision.verdict => Some(format!("expected {v}, got {} (rule {})", decision.verdict, rule.unwrap_or("none"))),
                Ok(_) => match &case.rule {
                    Some(want) if Some(want.as_str()) != rule => Some(format!("expected rule {want}, got {}", rule.unwrap_or("none"))),
                    _ => None,
                },
            };
            Outcome { case: case.clone(), decision, failure }
        })
        .collect()
}

/// The home directory a case without `home` gets.
pub fn default_home(user: &str) -> String {
    if user == "root" {
        "/root".into()
    } else {
        format!("/home/{user}")
    }
}

