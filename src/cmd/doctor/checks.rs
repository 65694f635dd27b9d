//! Doctor's checks: [`Facts`] in, [`Finding`]s out, each with a level, one
//! line of explanation and, for anything not `ok`, the exact command that
//! fixes it. Pure apart from naming owners by uid and gid.

use std::path::{Path, PathBuf};

use crate::config;

use super::facts::{CollectorFacts, ConfigFacts, Facts, FileFacts, Kind, Probe, ServiceIds};
use super::SERVICE_USER;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Info,
    Warn,
    Fail,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

/// One checked fact: a line of text and, when something is wrong, the
/// command that puts it right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub text: String,
    pub fix: Option<String>,
}

impl Finding {
    fn ok(text: impl Into<String>) -> Self {
        Self { level: Level::Ok, text: text.into(), fix: None }
    }
    fn info(text: impl Into<String>) -> Self {
        Self { level: Level::Info, text: text.into(), fix: None }
    }
    fn warn(text: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { level: Level::Warn, text: text.into(), fix: Some(fix.into()) }
    }
    fn fail(text: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { level: Level::Fail, text: text.into(), fix: Some(fix.into()) }
    }
}



/// All findings, in the order an operator would fix them.
pub fn diagnose(facts: &Facts) -> Vec<Finding> {
    let mut findings = check_service(facts.service);
    findings.extend(check_shell_binary(&facts.shell, &facts.shell_probe, facts.service));
    if facts.nosuid == Some(true) {
        findings.push(Finding::fail(
            format!(
                "{} is on a filesystem mounted nosuid: the kernel ignores its setuid bit, so the recorder runs as the user",
                facts.shell.display()
            ),
            "remount that filesystem without nosuid, or install under another prefix: ./install.sh --prefix /usr/local",
        ));
    }
    findings.extend(check_shell_dirs(&facts.shell, &facts.shell_dirs));
    findings.extend(check_stage(facts.cgroup2.as_deref(), &facts.terminals_taken, &facts.terminals_repaired));
    findings.push(if facts.stage_ran {
        Finding::ok(format!("the privileged stage has run since boot ({} exists)", crate::recorder::privilege::STATE_DIR))
    } else {
        Finding::info(format!(
            "no interactive login has run the privileged stage since boot ({} is missing); log in once as a recorded user and run doctor again to see it run",
            crate::recorder::privilege::STATE_DIR
        ))
    });
    findings.push(check_config(&facts.config_path, &facts.config));
    if facts.config_path != Path::new(config::SYSTEM_CONFIG) {
        findings.push(Finding::info(format!(
            "an installed custos-shell reads only {}, not {}",
            config::SYSTEM_CONFIG,
            facts.config_path.display()
        )));
    }
    match &facts.spool {
        Some((dir, probe)) => {
            findings.extend(check_real_shells(&facts.real_shells, &facts.shell, &facts.config_path));
            findings.push(check_spool(dir, probe, facts.service));
        }
        None => findings.push(Finding::info("real shells and spool not checked: the configuration does not load")),
    }
    match &facts.evidence {
        Some((key, probe, collector)) => {
            findings.push(check_host_key(key, probe, facts.service));
            match (collector, &facts.collector) {
                (Some(_), Some(asked)) => findings.extend(check_collector(asked, key)),
                (Some(url), None) => findings.push(Finding::info(format!("recordings stream to the collector {url}"))),
                (None, _) => findings.push(Finding::info("no [collector] url: recordings stay in the spool")),
            }
        }
        None => findings.push(Finding::info("host key not checked: the configuration does not load")),
    }
    findings.push(check_etc_shells(facts.etc_shells.as_deref(), &facts.shell));
    findings.extend(check_sshd(&facts.sshd_configs));
    findings.push(check_bashrc(facts.bashrc.as_deref()));
    findings.push(check_seccomp(facts.seccomp_actions.as_deref()));
    findings.push(report_login_users(facts.passwd.as_deref(), &facts.shell));
    findings
}

/// Quotes `s` for a POSIX shell, only when it needs it.
/// How far this host's clock may be from the collector's before doctor
/// warns: chunk times are this host's, and a host's signed question about
/// a session's head is refused beyond five minutes.
pub const CLOCK_SKEW_WARN_SECS: i64 = 30;

/// The collector answers, knows this host's key, and keeps the same time.
pub fn check_collector(asked: &CollectorFacts, key: &Path) -> Vec<Finding> {
    let url = &asked.url;
    let answer = match &asked.answer {
        Err(why) => {
            return vec![Finding::fail(
                format!("the collector {url} does not answer ({why}); recordings wait in the spool until it does"),
                format!("start the collector there (custos serve), or correct [collector] url; then: curl {url}/healthz"),
            )]
        }
        Ok(answer) => answer,
    };
    let mut findings = vec![Finding::ok(format!("the collector {url} answers; recordings stream to it"))];
    findings.push(match &answer.enrolled {
        None => Finding::info(format!("not asked whether the collector knows this host's key: {} is not readable", key.display())),
        Some(Ok(())) => Finding::ok("the collector knows this host's key (it is enrolled)"),
        Some(Err(why)) => Finding::fail(
            format!("the collector refuses this host's key ({why}): it stores no chunk this host signs"),
            format!("custos enroll --server {url} --token TOKEN   (TOKEN from the collector's admin: custos serve token)"),
        ),
    });
    match answer.skew {
        Some(skew) if skew.abs() > CLOCK_SKEW_WARN_SECS => findings.push(Finding::warn(
            format!("this host's clock is {}s {} the collector's: chunk times are this host's, and signed requests are refused beyond 300s", skew.abs(), if skew > 0 { "behind" } else { "ahead of" }),
            "keep the clock synchronised: timedatectl set-ntp true (or run chrony)",
        )),
        Some(skew) => findings.push(Finding::ok(format!("this host's clock is within {}s of the collector's ({skew:+}s)", CLOCK_SKEW_WARN_SECS))),
        None => findings.push(Finding::info("the collector sent no Date header: the clock was not compared")),
    }
    findings
}

pub fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn q(p: &Path) -> String {
    quote(&p.display().to_string())
}

fn owner_name(uid: u32) -> String {
    if uid == 0 {
        return "root".into();
    }
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| u.name)
}

fn group_name(gid: u32) -> String {
    crate::recorder::account::Account::group_name(gid).unwrap_or_else(|| format!("gid {gid}"))
}

pub fn check_service(ids: ServiceIds) -> Vec<Finding> {
    let mut findings = Vec::new();
    match ids.gid {
        Some(gid) => findings.push(Finding::ok(format!("group {SERVICE_USER} exists (gid {gid})"))),
        None => findings.push(Finding::fail(
            format!("group {SERVICE_USER} does not exist: custos-shell must be setgid to it"),
            format!("groupadd --system {SERVICE_USER}"),
        )),
    }
    match ids.uid {
        Some(0) => findings.push(Finding::fail(
            format!("user {SERVICE_USER} has uid 0: the recorder would run as root"),
            format!("userdel {SERVICE_USER} && useradd --system --no-create-home --home-dir /var/lib/custos --shell /usr/sbin/nologin --gid {SERVICE_USER} {SERVICE_USER}"),
        )),
        Some(uid) => findings.push(Finding::ok(format!("user {SERVICE_USER} exists (uid {uid})"))),
        None => findings.push(Finding::fail(
            format!("user {SERVICE_USER} does not exist: the recorder has no identity of its own to drop to"),
            format!("useradd --system --no-create-home --home-dir /var/lib/custos --shell /usr/sbin/nologin --gid {SERVICE_USER} {SERVICE_USER}"),
        )),
    }
    findings
}

pub fn check_shell_binary(path: &Path, probe: &Probe, service: ServiceIds) -> Vec<Finding> {
    let p = q(path);
    let facts = match probe {
        Probe::Missing => {
            return vec![Finding::fail(
                format!("{} does not exist", path.display()),
                "install it with ./install.sh --prefix DIR, or point doctor at it with --shell PATH or --prefix DIR",
            )]
        }
        Probe::Unreadable(e) => return vec![Finding::fail(format!("cannot stat {}: {e}", path.display()), "run doctor as root")],
        Probe::Found(f) if f.kind != Kind::File => {
            return vec![Finding::fail(format!("{} is not a regular file", path.display()), "reinstall: ./install.sh")]
        }
        Probe::Found(f) => *f,
    };
    let _ = service;
    let mut findings = Vec::new();
    if facts.uid != 0 {
        findings.push(Finding::fail(
            format!(
                "{} is owned by {}:{}, not root: its privileged stage (taking the terminal, containing the session) needs setuid root",
                path.display(),
                owner_name(facts.uid),
                group_name(facts.gid)
            ),
            // chown clears the setuid bit, so the mode comes after.
            format!("chown root:root {p} && chmod 4755 {p}"),
        ));
    }
    if facts.mode & 0o4000 == 0 {
        findings.push(Finding::fail(
            format!(
                "{} (mode {:04o}): the setuid bit is missing, so the recorder runs with the user's ids: the user can kill or trace it, choose its configuration and delete the recording",
                path.display(),
                facts.mode
            ),
            format!("chmod u+s {p}"),
        ));
    }
    if facts.mode & 0o2000 != 0 && facts.gid != 0 {
        findings.push(Finding::fail(
            format!("{} (mode {:04o}) is setgid to {}: custos-shell refuses to run setgid to anyone but root", path.display(), facts.mode, group_name(facts.gid)),
            format!("chmod g-s {p}"),
        ));
    }
    if facts.mode & 0o022 != 0 {
        findings.push(Finding::fail(
            format!(
                "{} (mode {:04o}) is writable by group or others: they can replace the recorder",
                path.display(),
                facts.mode
            ),
            format!("chmod go-w {p}"),
        ));
    }
    if facts.mode & 0o001 == 0 {
        findings.push(Finding::warn(
            format!("{} (mode {:04o}) is not executable by others: logins of users outside its group fail", path.display(), facts.mode),
            format!("chmod o+x {p}"),
        ));
    }
    if findings.is_empty() {
        findings.push(Finding::ok(format!(
            "{} is owned by root, mode {:04o} (setuid root: the privileged stage runs, then the recorder drops to {SERVICE_USER})",
            path.display(),
            facts.mode
        )));
    }
    findings
}

/// What the privileged stage needs and what it left: a cgroup v2 mount
/// (without one every login is refused), terminals taken by live sessions,
/// and terminals given back that a killed session had left taken.
pub fn check_stage(cgroup2: Option<&Path>, taken: &[PathBuf], repaired: &[PathBuf]) -> Vec<Finding> {
    let mut findings = Vec::new();
    match cgroup2 {
        Some(mount) => findings.push(Finding::ok(format!(
            "cgroup v2 is mounted at {}: the privileged stage contains each session's processes",
            mount.display()
        ))),
        None => findings.push(Finding::fail(
            "no cgroup v2 hierarchy is mounted: custos-shell refuses every login, as it cannot contain the session's processes",
            "mount -t cgroup2 none /sys/fs/cgroup (or boot with systemd.unified_cgroup_hierarchy=1)",
        )),
    }
    if !taken.is_empty() {
        let list: Vec<String> = taken.iter().map(|p| p.display().to_string()).collect();
        findings.push(Finding::info(format!("terminals held by live recorded sessions: {}", list.join(", "))));
    }
    for path in repaired {
        findings.push(Finding::warn(
            format!("{} was left taken by a session whose warden was killed; its owner and mode are given back now", path.display()),
            "nothing more to do; find out who SIGKILLed the session's custos-shell (only root can)",
        ));
    }
    findings
}

/// Whoever can write a directory above the binary can swap it for a plain
/// shell, and every login through it goes unrecorded.
pub fn check_shell_dirs(shell: &Path, dirs: &[(PathBuf, FileFacts)]) -> Vec<Finding> {
    let bad: Vec<Finding> = dirs
        .iter()
        .filter(|(_, f)| {
            let sticky = f.mode & 0o1000 != 0;
            f.uid != 0 || (f.mode & 0o022 != 0 && !sticky)
        })
        .map(|(dir, f)| {
            Finding::fail(
                format!(
                    "{} (owner {}, mode {:04o}) lies above {}: whoever can write it can replace custos-shell with an unrecorded shell",
                    dir.display(),
                    owner_name(f.uid),
                    f.mode,
                    shell.display()
                ),
                format!("chown root:root {0} && chmod go-w {0}", q(dir)),
            )
        })
        .collect();
    if bad.is_empty() && !dirs.is_empty() {
        return vec![Finding::ok(format!("only root can replace {}", shell.display()))];
    }
    bad
}

pub fn check_config(path: &Path, facts: &ConfigFacts) -> Finding {
    let p = q(path);
    match facts {
        ConfigFacts::Absent => Finding::warn(
            format!("{} does not exist: the built-in defaults apply", path.display()),
            "re-run ./install.sh, which writes the commented defaults",
        ),
        ConfigFacts::Unreadable(e) => Finding::fail(
            format!("cannot read {}: {e}; custos-shell refuses every login while it cannot", path.display()),
            format!("chown root:root {p} && chmod 0644 {p}"),
        ),
        ConfigFacts::Present { trust: Err(e), .. } => {
            let dir = path.parent().map_or_else(|| "/".to_owned(), q);
            Finding::fail(
                format!("{e}; custos-shell refuses every login while it is so"),
                format!("chown root:root {dir} {p} && chmod go-w {dir} {p}"),
            )
        }
        ConfigFacts::Present { parsed: Err(e), .. } => Finding::fail(
            format!("{}; custos-shell refuses every login until it parses", e.replace('\n', " ")),
            format!("edit {p}, then run custos doctor again"),
        ),
        ConfigFacts::Present { .. } => Finding::ok(format!("{} is root-owned and parses", path.display())),
    }
}

pub fn check_real_shells(shells: &[(String, PathBuf, Probe)], custos_shell: &Path, config: &Path) -> Vec<Finding> {
    shells
        .iter()
        .map(|(label, path, probe)| {
            let fix = format!("install {} or set {label} in {} to an installed shell", path.display(), q(config));
            match probe {
                _ if path == custos_shell => Finding::fail(
                    format!("{label} = {} is custos-shell itself: every login would fail", path.display()),
                    format!("set {label} in {} to a real shell such as /bin/bash", q(config)),
                ),
                Probe::Missing => Finding::fail(format!("{label} = {} does not exist: logins that use it fail", path.display()), fix),
                Probe::Unreadable(e) => Finding::fail(format!("{label} = {}: {e}", path.display()), fix),
                Probe::Found(f) if f.kind != Kind::File || f.mode & 0o111 == 0 => Finding::fail(
                    format!("{label} = {} is not an executable file: logins that use it fail", path.display()),
                    fix,
                ),
                Probe::Found(f) if f.mode & 0o001 == 0 => Finding::warn(
                    format!("{label} = {} (mode {:04o}) is not executable by others", path.display(), f.mode),
                    format!("chmod o+x {}", q(path)),
                ),
                Probe::Found(_) => Finding::ok(format!("{label} = {} is executable", path.display())),
            }
        })
        .collect()
}

pub fn check_spool(dir: &Path, probe: &Probe, service: ServiceIds) -> Finding {
    let d = q(dir);
    let create = format!("install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 {d}");
    let facts = match probe {
        Probe::Missing => {
            return Finding::fail(
                format!("the spool {} does not exist: custos-shell cannot create it and refuses every login", dir.display()),
                create,
            )
        }
        Probe::Unreadable(e) => return Finding::fail(format!("cannot stat the spool {}: {e}", dir.display()), create),
        Probe::Found(f) if f.kind != Kind::Dir => {
            return Finding::fail(format!("the spool {} is not a directory", dir.display()), format!("rm {d} && {create}"))
        }
        Probe::Found(f) => *f,
    };
    if service.uid.is_some_and(|uid| uid != facts.uid) {
        return Finding::fail(
            format!(
                "the spool {} is owned by {}, not {SERVICE_USER}: the recorder cannot write recordings and refuses every login",
                dir.display(),
                owner_name(facts.uid)
            ),
            format!("chown {SERVICE_USER}:{SERVICE_USER} {d}"),
        );
    }
    if facts.mode != 0o700 {
        let why = if facts.mode & 0o077 != 0 {
            "other users can see or read recordings"
        } else {
            "the recorder needs full access and nobody else any"
        };
        return Finding::fail(
            format!("the spool {} has mode {:04o}, not 0700: {why}", dir.display(), facts.mode),
            format!("chmod 0700 {d}"),
        );
    }
    Finding::ok(format!("the spool {} is owned by {SERVICE_USER}, mode 0700", dir.display()))
}

/// The host key signs every chunk. Missing, recordings are plain `.cast`
/// files nobody can vouch for; present but unusable, the shell refuses
/// every login (see `sink`).
pub fn check_host_key(key: &Path, probe: &Probe, service: ServiceIds) -> Finding {
    let k = q(key);
    let make = format!("custos keygen --if-missing --owner {SERVICE_USER}");
    let facts = match probe {
        Probe::Missing => {
            return Finding::warn(
                format!("no host key at {}: recordings are written as plain .cast files, unsigned", key.display()),
                make,
            )
        }
        Probe::Unreadable(e) => {
            return Finding::fail(format!("cannot stat the host key {}: {e}; custos-shell refuses every login", key.display()), make)
        }
        Probe::Found(f) if f.kind != Kind::File => {
            return Finding::fail(format!("the host key {} is not a file; custos-shell refuses every login", key.display()), make)
        }
        Probe::Found(f) => *f,
    };
    if facts.mode & 0o077 != 0 {
        return Finding::fail(
            format!(
                "the host key {} has mode {:04o}: others can read it and forge signed recordings; custos-shell refuses every login",
                key.display(),
                facts.mode
            ),
            format!("chmod 0600 {k}, and make a new key if it may have leaked: custos keygen --force --owner {SERVICE_USER}"),
        );
    }
    if service.uid.is_some_and(|uid| uid != facts.uid) {
        return Finding::fail(
            format!(
                "the host key {} is owned by {}, not {SERVICE_USER}: the recorder cannot read it and refuses every login",
                key.display(),
                owner_name(facts.uid)
            ),
            format!("chown {SERVICE_USER}:{SERVICE_USER} {k}"),
        );
    }
    Finding::ok(format!("the host key {} is private to {SERVICE_USER}: recordings are signed chunks", key.display()))
}

/// `chsh` lets a user pick only shells listed in `/etc/shells`, and refuses
/// outright to change a shell that is not listed. Keeping custos-shell out
/// is what stops users from moving their own login away from the recorder.
pub fn check_etc_shells(etc_shells: Option<&str>, shell: &Path) -> Finding {
    let listed = etc_shells.is_some_and(|text| {
        text.lines()
            .map(str::trim)
            .any(|line| !line.starts_with('#') && Path::new(line) == shell)
    });
    if listed {
        Finding::warn(
            format!(
                "{} is listed in /etc/shells: users can chsh to another listed shell and log in unrecorded",
                shell.display()
            ),
            format!("sed -i '\\|^{}$|d' /etc/shells", shell.display()),
        )
    } else {
        Finding::ok(format!("{} is not in /etc/shells, so users cannot chsh away from it", shell.display()))
    }
}

/// sshd's `internal-sftp` serves sftp inside sshd without running the
/// user's login shell, so those transfers never reach custos-shell.
pub fn check_sshd(configs: &[(PathBuf, String)]) -> Vec<Finding> {
    configs
        .iter()
        .filter_map(|(path, text)| {
            let line = text.lines().map(str::trim).find(|l| {
                !l.starts_with('#') && l.split_whitespace().any(|word| word.eq_ignore_ascii_case("internal-sftp"))
            })?;
            Some(Finding::warn(
                format!("{}: \"{line}\": sftp runs inside sshd without the login shell, so those sessions are not recorded", path.display()),
                format!("in {}, use: Subsystem sftp /usr/lib/openssh/sftp-server", q(path)),
            ))
        })
        .collect()
}

/// The hook that loads the script gate into a bash that skips `BASH_ENV`
/// (see [`crate::gate::inject::BASHRC_HOOK`]).
pub fn check_bashrc(bashrc: Option<&str>) -> Finding {
    let hook = crate::gate::inject::BASHRC_HOOK;
    if bashrc.is_some_and(|text| text.lines().any(|l| l.trim() == hook)) {
        Finding::ok("/etc/bash.bashrc loads the command gate into a bash that skips BASH_ENV")
    } else {
        Finding::warn(
            "/etc/bash.bashrc lacks custos' hook: in a session without a terminal, `exec bash -c …`, `bash -i` and python's pty.spawn run ungated",
            "run install.sh again (it adds the hook at the top of /etc/bash.bashrc)",
        )
    }
}

/// The exec backstop needs seccomp's user notification (Linux 5.0; the
/// filter's `CONTINUE` answer, 5.5). Without it every login fails closed
/// unless `[gate] exec = "off"`.
pub fn check_seccomp(actions: Option<&str>) -> Finding {
    if actions.is_some_and(|a| a.split_whitespace().any(|w| w == "user_notif")) {
        Finding::ok("the kernel has seccomp user notification: the exec backstop can decide every program start")
    } else {
        Finding::warn(
            "the kernel lacks seccomp user notification: sessions with [gate] exec = \"enforce\" or \"audit\" cannot start",
            "run a kernel of 5.5 or later, or set [gate] exec = \"off\" (the hooks alone)",
        )
    }
}

/// Local users (from `/etc/passwd`) whose login shell is `shell`.
pub fn login_users(passwd: &str, shell: &Path) -> Vec<String> {
    passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [name, _, _, _, _, _, login_shell] if Path::new(login_shell) == shell => Some((*name).to_owned()),
                _ => None,
            }
        })
        .collect()
}

fn report_login_users(passwd: Option<&str>, shell: &Path) -> Finding {
    let users = passwd.map(|p| login_users(p, shell)).unwrap_or_default();
    if users.is_empty() {
        Finding::info(format!(
            "no local user has {0} as login shell; assign one with ./install.sh --user NAME, or usermod -s {0} NAME",
            shell.display()
        ))
    } else {
        Finding::info(format!("recorded users (login shell {}): {}", shell.display(), users.join(", ")))
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::doctor::render;
    use crate::cmd::doctor::facts::CollectorAnswer;
    use crate::config::Config;
    use rstest::rstest;

    const SVC: ServiceIds = ServiceIds { uid: Some(990), gid: Some(990) };

    fn file(uid: u32, gid: u32, mode: u32) -> Probe {
        Probe::Found(FileFacts { kind: Kind::File, uid, gid, mode })
    }

    fn dir(uid: u32, mode: u32) -> Probe {
        Probe::Found(FileFacts { kind: Kind::Dir, uid, gid: uid, mode })
    }

    fn levels(findings: &[Finding]) -> Vec<Level> {
        findings.iter().map(|f| f.level).collect()
    }

    #[rstest]
    #[case::good(file(0, 0, 0o4755), &[Level::Ok], None)]
    #[case::no_setuid(file(0, 0, 0o0755), &[Level::Fail], Some("chmod u+s /b/custos-shell"))]
    #[case::setgid_service(file(0, 990, 0o6755), &[Level::Fail], Some("chmod g-s /b/custos-shell"))]
    #[case::old_service_owned(file(990, 990, 0o6755), &[Level::Fail, Level::Fail], Some("chown root:root /b/custos-shell && chmod 4755 /b/custos-shell"))]
    #[case::group_writable(file(0, 0, 0o4775), &[Level::Fail], Some("chmod go-w /b/custos-shell"))]
    #[case::not_for_others(file(0, 0, 0o4750), &[Level::Warn], Some("chmod o+x /b/custos-shell"))]
    #[case::missing(Probe::Missing, &[Level::Fail], None)]
    #[case::a_directory(dir(0, 0o755), &[Level::Fail], None)]
    fn the_shell_binary(#[case] probe: Probe, #[case] expected: &[Level], #[case] fix: Option<&str>) {
        let findings = check_shell_binary(Path::new("/b/custos-shell"), &probe, SVC);
        assert_eq!(levels(&findings), expected, "{findings:#?}");
        if let Some(fix) = fix {
            assert_eq!(findings[0].fix.as_deref(), Some(fix));
        }
    }

    #[test]
    fn the_stage_needs_cgroup2_and_reports_terminals_it_gave_back() {
        assert_eq!(levels(&check_stage(Some(Path::new("/sys/fs/cgroup")), &[], &[])), [Level::Ok]);
        let none = check_stage(None, &[], &[]);
        assert_eq!(levels(&none), [Level::Fail]);
        assert!(none[0].text.contains("refuses every login"), "{}", none[0].text);
        let repaired = check_stage(Some(Path::new("/c")), &[PathBuf::from("/dev/pts/1")], &[PathBuf::from("/dev/pts/4")]);
        assert_eq!(levels(&repaired), [Level::Ok, Level::Info, Level::Warn]);
        assert!(repaired[2].text.contains("/dev/pts/4 was left taken"), "{}", repaired[2].text);
    }

    #[test]
    fn a_missing_setuid_bit_is_explained() {
        let f = &check_shell_binary(Path::new("/b/custos-shell"), &file(0, 0, 0o0755), SVC)[0];
        assert!(f.text.contains("setuid bit is missing"), "{}", f.text);
        assert!(f.text.contains("mode 0755"), "{}", f.text);
        assert!(f.text.contains("kill or trace"), "{}", f.text);
    }

    #[rstest]
    #[case::both(SVC, &[Level::Ok, Level::Ok])]
    #[case::no_user(ServiceIds { uid: None, gid: Some(990) }, &[Level::Ok, Level::Fail])]
    #[case::no_group(ServiceIds { uid: Some(990), gid: None }, &[Level::Fail, Level::Ok])]
    #[case::root(ServiceIds { uid: Some(0), gid: Some(990) }, &[Level::Ok, Level::Fail])]
    fn the_service_account(#[case] ids: ServiceIds, #[case] expected: &[Level]) {
        assert_eq!(levels(&check_service(ids)), expected);
    }

    #[test]
    fn owner_is_not_checked_without_the_service_account() {
        let none = ServiceIds { uid: None, gid: None };
        assert_eq!(levels(&check_shell_binary(Path::new("/b/s"), &file(0, 0, 0o4755), none)), [Level::Ok]);
    }

    #[rstest]
    #[case::good(dir(990, 0o700), Level::Ok, None)]
    #[case::readable(dir(990, 0o755), Level::Fail, Some("chmod 0700 /var/lib/custos"))]
    #[case::not_writable(dir(990, 0o500), Level::Fail, Some("chmod 0700 /var/lib/custos"))]
    #[case::root_owned(dir(0, 0o700), Level::Fail, Some("chown custos:custos /var/lib/custos"))]
    #[case::missing(Probe::Missing, Level::Fail, Some("install -d -o custos -g custos -m 0700 /var/lib/custos"))]
    #[case::a_file(file(990, 990, 0o600), Level::Fail, None)]
    fn the_spool(#[case] probe: Probe, #[case] level: Level, #[case] fix: Option<&str>) {
        let f = check_spool(Path::new("/var/lib/custos"), &probe, SVC);
        assert_eq!(f.level, level, "{f:?}");
        if fix.is_some() {
            assert_eq!(f.fix.as_deref(), fix);
        }
    }

    #[rstest]
    #[case::missing(Probe::Missing, Level::Warn, Some("custos keygen"))]
    #[case::private(file(900, 900, 0o600), Level::Ok, None)]
    #[case::exposed(file(900, 900, 0o644), Level::Fail, Some("chmod 0600"))]
    #[case::wrong_owner(file(0, 0, 0o600), Level::Fail, Some("chown custos:custos"))]
    #[case::a_directory(dir(900, 0o700), Level::Fail, Some("custos keygen"))]
    fn the_host_key(#[case] probe: Probe, #[case] level: Level, #[case] fix: Option<&str>) {
        let f = check_host_key(Path::new("/var/lib/custos/host.key"), &probe, ServiceIds { uid: Some(900), gid: Some(900) });
        assert_eq!(f.level, level, "{f:?}");
        assert_eq!(f.fix.as_deref().map(|x| x.contains(fix.unwrap_or(""))), fix.map(|_| true), "{f:?}");
    }

    fn d(path: &str, uid: u32, mode: u32) -> (PathBuf, FileFacts) {
        (PathBuf::from(path), FileFacts { kind: Kind::Dir, uid, gid: 0, mode })
    }

    #[rstest]
    #[case::system(vec![d("/usr/local/bin", 0, 0o755), d("/usr/local", 0, 0o755), d("/usr", 0, 0o755), d("/", 0, 0o755)], &[Level::Ok])]
    #[case::sticky_tmp(vec![d("/tmp/x/bin", 0, 0o755), d("/tmp/x", 0, 0o755), d("/tmp", 0, 0o1777), d("/", 0, 0o755)], &[Level::Ok])]
    #[case::user_owned(vec![d("/home/a/bin", 1000, 0o755), d("/", 0, 0o755)], &[Level::Fail])]
    #[case::world_writable(vec![d("/opt/bin", 0, 0o777), d("/opt", 0, 0o775), d("/", 0, 0o755)], &[Level::Fail, Level::Fail])]
    fn directories_above_the_binary(#[case] dirs: Vec<(PathBuf, FileFacts)>, #[case] expected: &[Level]) {
        assert_eq!(levels(&check_shell_dirs(Path::new("/x/custos-shell"), &dirs)), expected);
    }

    #[test]
    fn an_unsafe_config_names_both_fixes() {
        let facts = ConfigFacts::Present {
            trust: Err("/etc/custos/custos.toml is not safe to trust: its mode is 666".into()),
            parsed: Ok(Config::default()),
        };
        let f = check_config(Path::new("/etc/custos/custos.toml"), &facts);
        assert_eq!(f.level, Level::Fail);
        assert!(f.text.contains("refuses every login"), "{}", f.text);
        assert_eq!(
            f.fix.as_deref(),
            Some("chown root:root /etc/custos /etc/custos/custos.toml && chmod go-w /etc/custos /etc/custos/custos.toml")
        );
    }

    #[rstest]
    #[case::absent(ConfigFacts::Absent, Level::Warn)]
    #[case::unreadable(ConfigFacts::Unreadable("Permission denied".into()), Level::Fail)]
    #[case::invalid(ConfigFacts::Present { trust: Ok(()), parsed: Err("line 1: oops".into()) }, Level::Fail)]
    #[case::good(ConfigFacts::Present { trust: Ok(()), parsed: Ok(Config::default()) }, Level::Ok)]
    fn the_config(#[case] facts: ConfigFacts, #[case] level: Level) {
        assert_eq!(check_config(Path::new("/etc/custos/custos.toml"), &facts).level, level);
    }

    #[rstest]
    #[case::good(file(0, 0, 0o755), Level::Ok)]
    #[case::missing(Probe::Missing, Level::Fail)]
    #[case::not_executable(file(0, 0, 0o644), Level::Fail)]
    #[case::group_only(file(0, 0, 0o750), Level::Warn)]
    #[case::a_directory(dir(0, 0o755), Level::Fail)]
    fn real_shells(#[case] probe: Probe, #[case] level: Level) {
        let shells = [("shell.default".to_owned(), PathBuf::from("/bin/zsh"), probe)];
        let f = check_real_shells(&shells, Path::new("/usr/local/bin/custos-shell"), Path::new("/etc/custos/custos.toml"));
        assert_eq!(levels(&f), [level]);
    }

    #[test]
    fn the_real_shell_cannot_be_custos_shell() {
        let shells = [("shell.users.a".to_owned(), PathBuf::from("/usr/local/bin/custos-shell"), file(0, 0, 0o4755))];
        let f = check_real_shells(&shells, Path::new("/usr/local/bin/custos-shell"), Path::new("/etc/custos/custos.toml"));
        assert_eq!(levels(&f), [Level::Fail]);
    }

    #[rstest]
    #[case::absent("/bin/sh\n/bin/bash\n", Level::Ok)]
    #[case::listed("# /etc/shells\n/bin/bash\n/usr/local/bin/custos-shell\n", Level::Warn)]
    #[case::commented("#/usr/local/bin/custos-shell\n", Level::Ok)]
    #[case::padded("  /usr/local/bin/custos-shell  \n", Level::Warn)]
    fn etc_shells(#[case] text: &str, #[case] level: Level) {
        let f = check_etc_shells(Some(text), Path::new("/usr/local/bin/custos-shell"));
        assert_eq!(f.level, level, "{f:?}");
        if level == Level::Warn {
            assert!(f.text.contains("chsh"));
            assert_eq!(f.fix.as_deref(), Some("sed -i '\\|^/usr/local/bin/custos-shell$|d' /etc/shells"));
        }
    }

    #[test]
    fn the_bashrc_hook_is_found_or_missed() {
        assert_eq!(check_bashrc(Some(&format!("{}\n", crate::gate::inject::BASHRC_HOOK))).level, Level::Ok);
        assert_eq!(check_bashrc(Some("[ -z \"$PS1\" ] && return\n")).level, Level::Warn);
        assert_eq!(check_bashrc(None).level, Level::Warn);
        assert_eq!(check_seccomp(Some("kill_process kill_thread trap errno user_notif trace log allow\n")).level, Level::Ok);
        assert_eq!(check_seccomp(Some("kill_process errno allow")).level, Level::Warn);
        assert_eq!(check_seccomp(None).level, Level::Warn);
    }

    #[rstest]
    #[case::debian_default("Subsystem\tsftp\t/usr/lib/openssh/sftp-server\n", 0)]
    #[case::internal("Subsystem sftp internal-sftp\n", 1)]
    #[case::forced("Match Group sftp\n  ForceCommand internal-sftp -d /srv\n", 1)]
    #[case::commented("#Subsystem sftp internal-sftp\n", 0)]
    fn sshd_internal_sftp(#[case] text: &str, #[case] warnings: usize) {
        let f = check_sshd(&[(PathBuf::from("/etc/ssh/sshd_config"), text.to_owned())]);
        assert_eq!(f.len(), warnings);
        assert!(f.iter().all(|f| f.level == Level::Warn && f.text.contains("not recorded")));
    }

    #[test]
    fn login_users_are_found_by_exact_shell() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/usr/local/bin/custos-shell\n\
                      bob:x:1001:1001::/home/bob:/usr/local/bin/custos-shell-old\ncarol:x:1002:1002::/home/carol:/usr/local/bin/custos-shell\nbroken\n";
        assert_eq!(login_users(passwd, Path::new("/usr/local/bin/custos-shell")), ["alice", "carol"]);
    }

    #[rstest]
    #[case::plain("/usr/local/bin/custos-shell", "/usr/local/bin/custos-shell")]
    #[case::space("/opt/my tools/custos-shell", "'/opt/my tools/custos-shell'")]
    #[case::quote("/tmp/it's", r"'/tmp/it'\''s'")]
    #[case::empty("", "''")]
    fn quoting(#[case] raw: &str, #[case] quoted: &str) {
        assert_eq!(quote(raw), quoted);
    }

    #[test]
    fn the_report_has_one_line_per_check_and_fixes_below() {
        let text = render(&[
            Finding::ok("fine"),
            Finding::fail("broken thing", "fix-it --now"),
            Finding::warn("odd thing", "look"),
        ]);
        assert_eq!(
            text,
            "ok    fine\nFAIL  broken thing\n      fix: fix-it --now\nwarn  odd thing\n      fix: look\n\
             1 failure(s), 1 warning(s): custos does not protect sessions on this host until they are fixed\n"
        );
    }

    #[test]
    fn a_clean_installation_diagnoses_clean() {
        let facts = Facts {
            service: SVC,
            shell: PathBuf::from("/usr/local/bin/custos-shell"),
            shell_probe: file(0, 0, 0o4755),
            shell_dirs: vec![d("/usr/local/bin", 0, 0o755), d("/", 0, 0o755)],
            nosuid: Some(false),
            config_path: PathBuf::from(config::SYSTEM_CONFIG),
            config: ConfigFacts::Present { trust: Ok(()), parsed: Ok(Config::default()) },
            real_shells: vec![("shell.default".into(), PathBuf::from("/bin/bash"), file(0, 0, 0o755))],
            spool: Some((PathBuf::from("/var/lib/custos"), dir(990, 0o700))),
            evidence: Some((PathBuf::from("/var/lib/custos/host.key"), file(990, 990, 0o600), None)),
            collector: None,
            etc_shells: Some("/bin/bash\n".into()),
            passwd: Some("alice:x:1000:1000::/home/alice:/usr/local/bin/custos-shell\n".into()),
            bashrc: Some(format!("# system bashrc\n{}\n[ -z \"$PS1\" ] && return\n", crate::gate::inject::BASHRC_HOOK)),
            seccomp_actions: Some("errno user_notif allow".into()),
            sshd_configs: vec![],
            cgroup2: Some(PathBuf::from("/sys/fs/cgroup")),
            terminals_taken: vec![],
            terminals_repaired: vec![],
            stage_ran: true,
        };
        let findings = diagnose(&facts);
        assert!(findings.iter().all(|f| f.level <= Level::Info), "{findings:#?}");
        assert!(findings.iter().any(|f| f.text.contains("alice")));

        let nosuid = Facts { nosuid: Some(true), ..facts };
        assert!(diagnose(&nosuid).iter().any(|f| f.level == Level::Fail && f.text.contains("nosuid")));
    }

    fn asked(answer: Result<CollectorAnswer, String>) -> Vec<Finding> {
        let facts = CollectorFacts { url: "http://c:8470".into(), answer };
        check_collector(&facts, Path::new("/var/lib/custos/host.key"))
    }

    #[test]
    fn a_collector_that_answers_knows_the_key_and_keeps_time_is_ok() {
        let findings = asked(Ok(CollectorAnswer { skew: Some(-2), enrolled: Some(Ok(())) }));
        assert!(findings.iter().all(|f| f.level == Level::Ok), "{findings:#?}");
        assert!(findings.iter().any(|f| f.text.contains("(-2s)")), "{findings:#?}");
    }

    #[test]
    fn a_silent_collector_an_unknown_key_and_a_wrong_clock_each_say_what_to_do() {
        let down = asked(Err("connection refused".into()));
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].level, Level::Fail);
        assert!(down[0].text.contains("does not answer (connection refused)") && down[0].fix.as_deref().unwrap().contains("custos serve"), "{down:#?}");

        let unknown = asked(Ok(CollectorAnswer { skew: Some(0), enrolled: Some(Err("no host is enrolled with key \"k\"".into())) }));
        let fail = unknown.iter().find(|f| f.level == Level::Fail).unwrap();
        assert!(fail.text.contains("no host is enrolled") && fail.fix.as_deref().unwrap().starts_with("custos enroll --server http://c:8470"), "{fail:#?}");

        for (skew, words) in [(400, "400s behind"), (-31, "31s ahead of")] {
            let findings = asked(Ok(CollectorAnswer { skew: Some(skew), enrolled: Some(Ok(())) }));
            let warn = findings.iter().find(|f| f.level == Level::Warn).unwrap_or_else(|| panic!("{skew}: {findings:#?}"));
            assert!(warn.text.contains(words) && warn.fix.as_deref().unwrap().contains("ntp"), "{warn:#?}");
        }
        let close = asked(Ok(CollectorAnswer { skew: Some(30), enrolled: Some(Ok(())) }));
        assert!(close.iter().all(|f| f.level == Level::Ok), "{close:#?}");
    }
}

