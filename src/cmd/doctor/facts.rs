//! What doctor reads of the system: file modes and owners, the service
//! user, `/etc/passwd`, `/etc/shells`, sshd's configuration, and the custos
//! configuration loaded through the same code the shell trusts. Plain
//! [`Facts`] out, so the checks can be tested with hand-written ones.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::config::{self, Config};

use super::SERVICE_USER;

/// What doctor needs of a file's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFacts {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits, setuid/setgid/sticky included (`st_mode & 0o7777`).
    pub mode: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Other,
}

/// The result of looking at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Missing,
    Unreadable(String),
    Found(FileFacts),
}

impl Probe {
    fn of(path: &Path) -> Self {
        match std::fs::metadata(path) {
            Ok(meta) => Probe::Found(file_facts(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Probe::Missing,
            Err(e) => Probe::Unreadable(e.to_string()),
        }
    }
}

fn file_facts(meta: &std::fs::Metadata) -> FileFacts {
    let kind = if meta.is_file() {
        Kind::File
    } else if meta.is_dir() {
        Kind::Dir
    } else {
        Kind::Other
    };
    FileFacts { kind, uid: meta.uid(), gid: meta.gid(), mode: meta.mode() & 0o7777 }
}

/// The `custos` user's uid and the `custos` group's gid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceIds {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The custos configuration file, as the shell would find it.
// Made once per `doctor` run: a boxed Config would buy nothing but noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ConfigFacts {
    Absent,
    Unreadable(String),
    Present {
        /// `check_root_owned`'s verdict.
        trust: Result<(), String>,
        parsed: Result<Config, String>,
    },
}

/// What the configured collector answered when doctor asked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorFacts {
    pub url: String,
    /// `Err`: why it did not answer `/healthz`.
    pub answer: Result<CollectorAnswer, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorAnswer {
    /// The collector's clock minus this host's, in seconds (its `Date`
    /// header), when it sent one.
    pub skew: Option<i64>,
    /// Whether the collector knows this host's key (`Err`: it refused the
    /// key, with its reason). `None`: not asked, as the key is not readable.
    pub enrolled: Option<Result<(), String>>,
}

/// Everything [`diagnose`] looks at.
#[derive(Clone, Debug)]
pub struct Facts {
    pub service: ServiceIds,
    /// custos-shell as given (login shells in `/etc/passwd` name it so).
    pub shell: PathBuf,
    pub shell_probe: Probe,
    /// The directories above the binary (canonical path), nearest first.
    pub shell_dirs: Vec<(PathBuf, FileFacts)>,
    /// The binary's filesystem is mounted `nosuid`; `None` if unknown.
    pub nosuid: Option<bool>,
    pub config_path: PathBuf,
    pub config: ConfigFacts,
    /// Each configured real shell: where it is configured, path, probe.
    pub real_shells: Vec<(String, PathBuf, Probe)>,
    pub spool: Option<(PathBuf, Probe)>,
    /// The host key (`[evidence] key`) and the collector URL, if any.
    pub evidence: Option<(PathBuf, Probe, Option<String>)>,
    /// The collector's answers, when one is configured.
    pub collector: Option<CollectorFacts>,
    /// `/etc/shells`, if readable.
    pub etc_shells: Option<String>,
    /// `/etc/passwd`, if readable.
    pub passwd: Option<String>,
    /// `/etc/bash.bashrc`, if readable.
    pub bashrc: Option<String>,
    /// `/proc/sys/kernel/seccomp/actions_avail`: what seccomp can do here.
    pub seccomp_actions: Option<String>,
    /// sshd configuration files and their text.
    pub sshd_configs: Vec<(PathBuf, String)>,
    /// The cgroup v2 mount the privileged stage contains sessions in.
    pub cgroup2: Option<PathBuf>,
    /// Terminals live sessions have taken from their users.
    pub terminals_taken: Vec<PathBuf>,
    /// `/run/custos` exists: an interactive login ran the privileged stage
    /// since boot.
    pub stage_ran: bool,
    /// Terminals left taken by a session whose warden was killed, which
    /// `gather` gave back (it runs as root).
    pub terminals_repaired: Vec<PathBuf>,
}

/// Looks at the system. The only function here that does I/O.
pub fn gather(shell: &Path, config_path: &Path) -> Facts {
    let user = nix::unistd::User::from_name(SERVICE_USER).ok().flatten();
    let group = nix::unistd::Group::from_name(SERVICE_USER).ok().flatten();
    let service = ServiceIds { uid: user.map(|u| u.uid.as_raw()), gid: group.map(|g| g.gid.as_raw()) };

    let canonical = std::fs::canonicalize(shell).ok();
    let shell_dirs = canonical
        .iter()
        .flat_map(|c| c.ancestors().skip(1))
        .filter_map(|dir| std::fs::metadata(dir).ok().map(|m| (dir.to_owned(), file_facts(&m))))
        .collect();
    let nosuid = nix::sys::statvfs::statvfs(shell)
        .ok()
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID));

    let config = match std::fs::metadata(config_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFacts::Absent,
        Err(e) => ConfigFacts::Unreadable(e.to_string()),
        Ok(meta) => ConfigFacts::Present {
            trust: config::check_root_owned(config_path, &meta).map_err(|e| e.to_string()),
            parsed: Config::read(config_path).map_err(|e| e.to_string()),
        },
    };
    let effective = match &config {
        ConfigFacts::Absent => Some(Config::default()),
        ConfigFacts::Present { parsed: Ok(c), .. } => Some(c.clone()),
        _ => None,
    };
    let real_shells = effective
        .as_ref()
        .map(|c| {
            configured_shells(c)
                .into_iter()
                .map(|(label, path)| {
                    let probe = Probe::of(&path);
                    (label, path, probe)
                })
                .collect()
        })
        .unwrap_or_default();
    let evidence = effective.as_ref().map(|c| {
        let probe = Probe::of(&c.evidence.key);
        (c.evidence.key.clone(), probe, c.collector.url.clone())
    });
    let collector = evidence.as_ref().and_then(|(key, _, url)| url.as_ref().map(|url| ask_collector(url, key)));
    let spool = effective.map(|c| {
        let dir = c.recording.spool_dir;
        let probe = Probe::of(&dir);
        (dir, probe)
    });

    let mut sshd_configs = Vec::new();
    let mut sshd_files = vec![PathBuf::from("/etc/ssh/sshd_config")];
    if let Ok(entries) = std::fs::read_dir("/etc/ssh/sshd_config.d") {
        let mut extra: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        extra.sort();
        sshd_files.extend(extra);
    }
    for file in sshd_files {
        if let Ok(text) = std::fs::read_to_string(&file) {
            sshd_configs.push((file, text));
        }
    }

    // A terminal left taken (its session's root warden was SIGKILLed) goes
    // back to its owner now, as the next login would do.
    let terminals_repaired = match service.uid {
        Some(uid) if nix::unistd::geteuid().is_root() => crate::recorder::privilege::repair_left_terminals(uid, |_| {}),
        _ => Vec::new(),
    };
    Facts {
        cgroup2: crate::recorder::privilege::cgroup2(),
        terminals_taken: crate::recorder::privilege::terminals_taken(),
        stage_ran: Path::new(crate::recorder::privilege::STATE_DIR).is_dir(),
        terminals_repaired,
        service,
        shell: shell.to_owned(),
        shell_probe: Probe::of(shell),
        shell_dirs,
        nosuid,
        config_path: config_path.to_owned(),
        config,
        real_shells,
        spool,
        evidence,
        collector,
        etc_shells: std::fs::read_to_string("/etc/shells").ok(),
        passwd: std::fs::read_to_string("/etc/passwd").ok(),
        bashrc: std::fs::read_to_string("/etc/bash.bashrc").ok(),
        seccomp_actions: std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").ok(),
        sshd_configs,
    }
}

/// Asks the collector at `url` whether it is up and what its clock says,
/// then whether it knows the key at `key`: the question an uploading host
/// asks (the head of a session), about a session that does not exist, so
/// an enrolled key gets "not found" and any other key "unauthorized".
fn ask_collector(url: &str, key: &Path) -> CollectorFacts {
    let answer = (|| {
        let collector = crate::client::Collector::new(url, None).map_err(|e| e.to_string())?;
        let runtime = crate::client::runtime().map_err(|e| format!("{e:#}"))?;
        runtime.block_on(async {
            let clock = collector.health().await.map_err(|e| e.to_string())?;
            let skew = clock.map(|c| c - crate::when::unix_now_i64());
            let enrolled = match crate::evidence::HostKey::load(key) {
                Err(_) => None,
                Ok(key) => Some(match collector.head(&uuid::Uuid::now_v7().to_string(), Some(&key)).await {
                    Ok(_) => Ok(()),
                    Err(crate::client::ClientError::Refused { status: 401, message, .. }) => Err(message),
                    Err(e) => Err(e.to_string()),
                }),
            };
            Ok(CollectorAnswer { skew, enrolled })
        })
    })();
    CollectorFacts { url: url.to_owned(), answer }
}

/// Every real shell the configuration can choose, labelled by where.
fn configured_shells(c: &Config) -> Vec<(String, PathBuf)> {
    let mut shells = vec![("shell.default".to_owned(), c.shell.default.clone())];
    shells.extend(c.shell.users.iter().map(|(u, p)| (format!("shell.users.{u}"), p.clone())));
    shells.extend(c.shell.groups.iter().map(|(g, p)| (format!("shell.groups.{g}"), p.clone())));
    shells
}

// ---------------------------------------------------------------- checks
