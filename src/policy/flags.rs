//! Option normalisation: `-rf`, `-r -f`, `-fr`, `--recursive --force` and
//! `--rec --force` are the same request to `rm`, so a rule names flags once
//! and every spelling matches.
//!
//! Each program the default policy cares about has a table of its options:
//! the spellings of one option (`-r`, `-R`, `--recursive`), the canonical
//! name a rule sees (`--recursive`), and whether it takes a value. Other
//! programs get the getopt convention: `-abc` is `-a -b -c`, `--name=value`
//! is `--name` with a value.
//!
//! Declaring an option as taking a value hides the next word from the
//! operands, so a table only declares that when it is certain; an option
//! wrongly treated as a plain flag only makes an extra word an operand,
//! which can make a rule match more, never less. Long options may be
//! abbreviated to any unique prefix, as getopt_long allows (`rm --rec`).
//! GNU programs accept options after operands (`rm / -rf`), so options are
//! recognised anywhere before `--`.

use std::collections::BTreeSet;

/// Whether an option takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// `-c VALUE`, `-cVALUE`, `--command=VALUE`, `--command VALUE`.
    Value,
    /// Only attached: `-pSECRET`, `--password=SECRET`; a bare `-p` prompts.
    Attached,
}

struct Opt {
    names: &'static [&'static str],
    canonical: &'static str,
    takes: Takes,
}

const fn flag(names: &'static [&'static str], canonical: &'static str) -> Opt {
    Opt { names, canonical, takes: Takes::Nothing }
}

const fn value(names: &'static [&'static str], canonical: &'static str) -> Opt {
    Opt { names, canonical, takes: Takes::Value }
}

const fn attached(names: &'static [&'static str], canonical: &'static str) -> Opt {
    Opt { names, canonical, takes: Takes::Attached }
}

struct Spec {
    /// Basenames; a trailing `*` matches any suffix (`mkfs*`).
    programs: &'static [&'static str],
    /// Options are spelled `-name` (terraform): no bundling of letters.
    single_dash_long: bool,
    opts: &'static [Opt],
}

const HELP: Opt = flag(&["--help"], "--help");
const VERSION: Opt = flag(&["--version"], "--version");

static SPECS: &[Spec] = &[
    Spec {
        programs: &["rm"],
        single_dash_long: false,
        opts: &[
            flag(&["-r", "-R", "--recursive"], "--recursive"),
            flag(&["-f", "--force"], "--force"),
            flag(&["-i"], "-i"),
            flag(&["-I"], "-I"),
            attached(&["--interactive"], "--interactive"),
            flag(&["-d", "--dir"], "--dir"),
            flag(&["-v", "--verbose"], "--verbose"),
            flag(&["--one-file-system"], "--one-file-system"),
            flag(&["--no-preserve-root"], "--no-preserve-root"),
            attached(&["--preserve-root"], "--preserve-root"),
            HELP,
            VERSION,
        ],
    },
    Spec {
        programs: &["chmod"],
        single_dash_long: false,
        opts: &[
            flag(&["-R", "--recursive"], "--recursive"),
            flag(&["-c", "--changes"], "--changes"),
            flag(&["-f", "--silent", "--quiet"], "--silent"),
            flag(&["-v", "--verbose"], "--verbose"),
            flag(&["--no-preserve-root"], "--no-preserve-root"),
            flag(&["--preserve-root"], "--preserve-root"),
            value(&["--reference"], "--reference"),
            HELP,
            VERSION,
        ],
    },
    Spec {
        programs: &["chown", "chgrp"],
        single_dash_long: false,
        opts: &[
            flag(&["-R", "--recursive"], "--recursive"),
            flag(&["-c", "--changes"], "--changes"),
            flag(&["-f", "--silent", "--quiet"], "--silent"),
            flag(&["-v", "--verbose"], "--verbose"),
            flag(&["-h", "--no-dereference"], "--no-dereference"),
            flag(&["--dereference"], "--dereference"),
            flag(&["-H"], "-H"),
            flag(&["-L"], "-L"),
            flag(&["-P"], "-P"),
            flag(&["--no-preserve-root"], "--no-preserve-root"),
            flag(&["--preserve-root"], "--preserve-root"),
            value(&["--reference"], "--reference"),
            value(&["--from"], "--from"),
            HELP,
            VERSION,
        ],
    },
    Spec {
        programs: &["mkfs*", "mke2fs", "mkswap"],
        single_dash_long: false,
        opts: &[value(&["-t", "--type"], "--type"), value(&["-L", "--label"], "--label"), HELP, VERSION],
    },
    Spec {
        programs: &["kubectl", "oc"],
        single_dash_long: false,
        opts: &[
            value(&["-n", "--namespace"], "--namespace"),
            value(&["--context"], "--context"),
            value(&["--cluster"], "--cluster"),
            value(&["--kubeconfig"], "--kubeconfig"),
            value(&["-s", "--server"], "--server"),
            value(&["--token"], "--token"),
            value(&["--user"], "--user"),
            value(&["-f", "--filename"], "--filename"),
            value(&["-k", "--kustomize"], "--kustomize"),
            value(&["-l", "--selector"], "--selector"),
            value(&["-o", "--output"], "--output"),
            value(&["--grace-period"], "--grace-period"),
            value(&["--timeout"], "--timeout"),
            value(&["--field-selector"], "--field-selector"),
            attached(&["--dry-run"], "--dry-run"),
            attached(&["--cascade"], "--cascade"),
            flag(&["-A", "--all-namespaces"], "--all-namespaces"),
            flag(&["--all"], "--all"),
            flag(&["--force"], "--force"),
            flag(&["--now"], "--now"),
            flag(&["-R", "--recursive"], "--recursive"),
            flag(&["-h", "--help"], "--help"),
        ],
    },
    Spec {
        programs: &["terraform", "tofu"],
        single_dash_long: true,
        opts: &[
            attached(&["-chdir"], "-chdir"),
            flag(&["-destroy"], "-destroy"),
            flag(&["-auto-approve"], "-auto-approve"),
            attached(&["-target"], "-target"),
            attached(&["-var"], "-var"),
            attached(&["-var-file"], "-var-file"),
            flag(&["-help", "-h", "--help"], "-help"),
            flag(&["-version", "-v", "--version"], "-version"),
        ],
    },
    Spec {
        programs: &["psql"],
        single_dash_long: false,
        opts: &[
            value(&["-c", "--command"], "--command"),
            value(&["-f", "--file"], "--file"),
            value(&["-d", "--dbname"], "--dbname"),
            value(&["-h", "--host"], "--host"),
            value(&["-p", "--port"], "--port"),
            value(&["-U", "--username"], "--username"),
            value(&["-v", "--set", "--variable"], "--set"),
            value(&["-o", "--output"], "--output"),
            value(&["-P", "--pset"], "--pset"),
            value(&["-F", "--field-separator"], "--field-separator"),
            value(&["-R", "--record-separator"], "--record-separator"),
            value(&["-L", "--log-file"], "--log-file"),
            value(&["-T", "--table-attr"], "--table-attr"),
            flag(&["-?", "--help"], "--help"),
            flag(&["-V", "--version"], "--version"),
            flag(&["-l", "--list"], "--list"),
        ],
    },
    Spec {
        programs: &["mysql", "mariadb"],
        single_dash_long: false,
        opts: &[
            value(&["-e", "--execute"], "--execute"),
            value(&["-u", "--user"], "--user"),
            attached(&["-p", "--password"], "--password"),
            value(&["-h", "--host"], "--host"),
            value(&["-P", "--port"], "--port"),
            value(&["-D", "--database"], "--database"),
            value(&["-S", "--socket"], "--socket"),
            attached(&["--defaults-file"], "--defaults-file"),
            flag(&["-?", "-I", "--help"], "--help"),
            flag(&["-V", "--version"], "--version"),
        ],
    },
    Spec {
        programs: &["pg_dump", "pg_dumpall"],
        single_dash_long: false,
        opts: &[
            value(&["-f", "--file"], "--file"),
            value(&["-F", "--format"], "--format"),
            value(&["-h", "--host"], "--host"),
            value(&["-p", "--port"], "--port"),
            value(&["-U", "--username"], "--username"),
            value(&["-d", "--dbname"], "--dbname"),
            value(&["-t", "--table"], "--table"),
            value(&["-n", "--schema"], "--schema"),
            value(&["-j", "--jobs"], "--jobs"),
            value(&["-T", "--exclude-table"], "--exclude-table"),
            value(&["-N", "--exclude-schema"], "--exclude-schema"),
            flag(&["-?", "--help"], "--help"),
            flag(&["-V", "--version"], "--version"),
        ],
    },
    Spec {
        programs: &["mysqldump", "mariadb-dump"],
        single_dash_long: false,
        opts: &[
            value(&["-u", "--user"], "--user"),
            attached(&["-p", "--password"], "--password"),
            value(&["-h", "--host"], "--host"),
            value(&["-P", "--port"], "--port"),
            value(&["-r", "--result-file"], "--result-file"),
            flag(&["-?", "-I", "--help"], "--help"),
            flag(&["-V", "--version"], "--version"),
        ],
    },
    Spec {
        programs: &["mongodump"],
        single_dash_long: false,
        opts: &[flag(&["-h", "--help"], "--help"), flag(&["--version"], "--version")],
    },
    Spec {
        programs: &["curl"],
        single_dash_long: false,
        opts: &[
            value(&["-o", "--output"], "--output"),
            flag(&["-O", "--remote-name"], "--remote-name"),
            flag(&["-s", "--silent"], "--silent"),
            flag(&["-S", "--show-error"], "--show-error"),
            flag(&["-f", "--fail"], "--fail"),
            flag(&["-L", "--location"], "--location"),
            value(&["-H", "--header"], "--header"),
            value(&["-d", "--data", "--data-raw", "--data-binary"], "--data"),
            value(&["-X", "--request"], "--request"),
            value(&["-u", "--user"], "--user"),
            value(&["-x", "--proxy"], "--proxy"),
            value(&["-A", "--user-agent"], "--user-agent"),
            value(&["-e", "--referer"], "--referer"),
            value(&["-b", "--cookie"], "--cookie"),
            value(&["-c", "--cookie-jar"], "--cookie-jar"),
            value(&["-F", "--form"], "--form"),
            value(&["-T", "--upload-file"], "--upload-file"),
            value(&["-w", "--write-out"], "--write-out"),
            value(&["-m", "--max-time"], "--max-time"),
            value(&["-K", "--config"], "--config"),
            value(&["-D", "--dump-header"], "--dump-header"),
            value(&["--connect-timeout"], "--connect-timeout"),
            value(&["--retry"], "--retry"),
            flag(&["-k", "--insecure"], "--insecure"),
            flag(&["-h", "--help"], "--help"),
            flag(&["-V", "--version"], "--version"),
        ],
    },
    Spec {
        programs: &["wget"],
        single_dash_long: false,
        opts: &[
            value(&["-O", "--output-document"], "--output-document"),
            value(&["-o", "--output-file"], "--output-file"),
            value(&["-a", "--append-output"], "--append-output"),
            value(&["-P", "--directory-prefix"], "--directory-prefix"),
            value(&["-U", "--user-agent"], "--user-agent"),
            value(&["-t", "--tries"], "--tries"),
            value(&["-T", "--timeout"], "--timeout"),
            value(&["-i", "--input-file"], "--input-file"),
            value(&["-e", "--execute"], "--execute"),
            value(&["--header"], "--header"),
            flag(&["-q", "--quiet"], "--quiet"),
            flag(&["-c", "--continue"], "--continue"),
            flag(&["-r", "--recursive"], "--recursive"),
            flag(&["-h", "--help"], "--help"),
            flag(&["-V", "--version"], "--version"),
        ],
    },
    Spec {
        programs: &["scp"],
        single_dash_long: false,
        opts: &[
            value(&["-P"], "-P"),
            value(&["-i"], "-i"),
            value(&["-o"], "-o"),
            value(&["-F"], "-F"),
            value(&["-l"], "-l"),
            value(&["-c"], "-c"),
            value(&["-S"], "-S"),
            value(&["-J"], "-J"),
            value(&["-X"], "-X"),
        ],
    },
    Spec {
        programs: &["rsync"],
        single_dash_long: false,
        opts: &[
            value(&["-e", "--rsh"], "--rsh"),
            flag(&["-r", "--recursive"], "--recursive"),
            flag(&["-a", "--archive"], "--archive"),
            flag(&["--server"], "--server"),
            flag(&["--sender"], "--sender"),
            // Every way of deleting at the destination is a `--delete`.
            flag(&["--delete", "--del", "--delete-before", "--delete-during", "--delete-delay", "--delete-after", "--delete-excluded", "--remove-source-files"], "--delete"),
            flag(&["-h", "--human-readable"], "--human-readable"),
            flag(&["--help"], "--help"),
        ],
    },
    Spec {
        programs: &["mv", "cp"],
        single_dash_long: false,
        opts: &[
            value(&["-t", "--target-directory"], "--target-directory"),
            value(&["-S", "--suffix"], "--suffix"),
            flag(&["-T", "--no-target-directory"], "--no-target-directory"),
            flag(&["-r", "-R", "--recursive"], "--recursive"),
            flag(&["-f", "--force"], "--force"),
            flag(&["-a", "--archive"], "--archive"),
            HELP,
            VERSION,
        ],
    },
    Spec {
        programs: &["truncate"],
        single_dash_long: false,
        opts: &[value(&["-s", "--size"], "--size"), value(&["-r", "--reference"], "--reference"), flag(&["-c", "--no-create"], "--no-create"), HELP, VERSION],
    },
    Spec {
        // find's options and tests are words of their own (`-delete`,
        // `-name PATTERN`); the operands are the start paths, plus
        // whatever `-exec` runs (which the walker checks as a command).
        programs: &["find"],
        single_dash_long: true,
        opts: &[
            flag(&["-delete"], "-delete"),
            value(&["-name"], "-name"),
            value(&["-iname"], "-iname"),
            value(&["-path"], "-path"),
            value(&["-ipath"], "-ipath"),
            value(&["-wholename"], "-wholename"),
            value(&["-regex"], "-regex"),
            value(&["-iregex"], "-iregex"),
            value(&["-type"], "-type"),
            value(&["-xtype"], "-xtype"),
            value(&["-maxdepth"], "-maxdepth"),
            value(&["-mindepth"], "-mindepth"),
            value(&["-newer"], "-newer"),
            value(&["-perm"], "-perm"),
            value(&["-size"], "-size"),
            value(&["-user"], "-user"),
            value(&["-group"], "-group"),
            value(&["-uid"], "-uid"),
            value(&["-gid"], "-gid"),
            value(&["-mtime"], "-mtime"),
            value(&["-atime"], "-atime"),
            value(&["-ctime"], "-ctime"),
            value(&["-mmin"], "-mmin"),
            value(&["-amin"], "-amin"),
            value(&["-cmin"], "-cmin"),
            value(&["-links"], "-links"),
            value(&["-inum"], "-inum"),
            value(&["-samefile"], "-samefile"),
            value(&["-fstype"], "-fstype"),
            value(&["-printf"], "-printf"),
            value(&["-fprint"], "-fprint"),
            value(&["-fprintf"], "-fprintf"),
            value(&["-used"], "-used"),
            value(&["-context"], "-context"),
            flag(&["-help", "--help"], "--help"),
            flag(&["-version", "--version"], "--version"),
        ],
    },
    // What a container may reach of the host (`docker-host-access`); the
    // command it runs is checked on its own (`policy::wrappers`).
    Spec {
        programs: &["docker", "podman", "nerdctl", "docker-compose"],
        single_dash_long: false,
        opts: &[
            value(&["-v", "--volume"], "--volume"),
            value(&["--mount"], "--mount"),
            value(&["--pid"], "--pid"),
            value(&["--ipc"], "--ipc"),
            value(&["--uts"], "--uts"),
            value(&["--userns"], "--userns"),
            value(&["--cap-add"], "--cap-add"),
            value(&["--security-opt"], "--security-opt"),
            value(&["--device"], "--device"),
            value(&["--volumes-from"], "--volumes-from"),
            value(&["-e", "--env"], "--env"),
            value(&["--env-file"], "--env-file"),
            value(&["-u", "--user"], "--user"),
            value(&["-w", "--workdir"], "--workdir"),
            value(&["--name"], "--name"),
            value(&["-p", "--publish"], "--publish"),
            value(&["--network", "--net"], "--network"),
            value(&["--entrypoint"], "--entrypoint"),
            value(&["-H", "--host"], "--host"),
            value(&["-c", "--context"], "--context"),
            flag(&["--privileged"], "--privileged"),
            flag(&["-i", "--interactive"], "--interactive"),
            flag(&["-t", "--tty"], "--tty"),
            flag(&["-d", "--detach"], "--detach"),
            flag(&["--rm"], "--rm"),
            HELP,
            VERSION,
        ],
    },
    Spec {
        programs: &["tee"],
        single_dash_long: false,
        opts: &[
            flag(&["-a", "--append"], "--append"),
            flag(&["-i", "--ignore-interrupts"], "--ignore-interrupts"),
            flag(&["-p"], "-p"),
            attached(&["--output-error"], "--output-error"),
            HELP,
            VERSION,
        ],
    },
    Spec {
        programs: &["shred", "wipefs", "blkdiscard"],
        single_dash_long: false,
        opts: &[
            value(&["-n", "--iterations"], "--iterations"),
            value(&["-s", "--size"], "--size"),
            flag(&["-a", "--all"], "--all"),
            flag(&["-f", "--force"], "--force"),
            flag(&["-z", "--zero"], "--zero"),
            flag(&["-u", "--remove"], "--remove"),
            HELP,
            VERSION,
        ],
    },
];

fn spec_for(program: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| {
        s.programs.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => program.starts_with(prefix),
            None => *p == program,
        })
    })
}

/// Options and operands of one command, after normalisation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Canonical names (`--recursive`), or the spelling when unknown (`-x`).
    pub flags: BTreeSet<String>,
    /// Options with values, canonical name first, in command-line order.
    pub values: Vec<(String, String)>,
    /// Indices (into the words given) of the operands.
    pub operands: Vec<usize>,
}

fn lookup_long<'s>(spec: &'s Spec, name: &str) -> Option<&'s Opt> {
    if let Some(o) = spec.opts.iter().find(|o| o.names.contains(&name)) {
        return Some(o);
    }
    // getopt_long: a unique prefix of a long option is that option.
    if name.len() < 3 || !name.starts_with("--") {
        return None;
    }
    let mut found: Option<&Opt> = None;
    for o in spec.opts {
        if o.names.iter().any(|n| n.starts_with("--") && n.starts_with(name)) {
            if found.is_some_and(|f| f.canonical != o.canonical) {
                return None;
            }
            found = Some(o);
        }
    }
    found
}

/// Splits `words` (everything after the program name) into normalised
/// flags, option values and operands, for the program called `name`.
pub fn normalise(name: &str, words: &[String]) -> Options {
    let spec = spec_for(name);
    let mut out = Options::default();
    let mut i = 0;
    let mut only_operands = false;
    while let Some(w) = words.get(i) {
        i += 1;
        if only_operands || w == "-" || !w.starts_with('-') || w.len() < 2 {
            out.operands.push(i - 1);
            continue;
        }
        if w == "--" {
            only_operands = true;
            continue;
        }
        let long = w.starts_with("--") || spec.is_some_and(|s| s.single_dash_long);
        if long {
            let (name, attached_value) = match w.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (w.as_str(), None),
            };
            match spec.and_then(|s| lookup_long(s, name)) {
                Some(o) => {
                    out.flags.insert(o.canonical.to_owned());
                    match (o.takes, attached_value) {
                        (_, Some(v)) => out.values.push((o.canonical.to_owned(), v.to_owned())),
                        (Takes::Value, None) => {
                            if let Some(v) = words.get(i) {
                                out.values.push((o.canonical.to_owned(), v.clone()));
                                i += 1;
                            }
                        }
                        _ => {}
                    }
                }
                None => {
                    out.flags.insert(name.to_owned());
                    if let Some(v) = attached_value {
                        out.values.push((name.to_owned(), v.to_owned()));
                    }
                }
            }
            continue;
        }
        // A cluster of short options: `-rf`, `-cDROP`, `-n5`.
        let letters = w.get(1..).unwrap_or_default();
        for (at, c) in letters.char_indices() {
            let short = format!("-{c}");
            let opt = spec.and_then(|s| s.opts.iter().find(|o| o.names.contains(&short.as_str())));
            let Some(o) = opt else {
                out.flags.insert(short);
                continue;
            };
            out.flags.insert(o.canonical.to_owned());
            if o.takes == Takes::Nothing {
                continue;
            }
            let rest = letters.get(at + c.len_utf8()..).unwrap_or_default();
            if !rest.is_empty() {
                out.values.push((o.canonical.to_owned(), rest.to_owned()));
            } else if o.takes == Takes::Value {
                if let Some(v) = words.get(i) {
                    out.values.push((o.canonical.to_owned(), v.clone()));
                    i += 1;
                }
            }
            break;
        }
    }
    out
}

/// Normalises the flags a rule names for `program`, the same way as a
/// command's: `["-rf"]` and `["--recursive", "--force"]` give one set.
pub fn normalise_rule_flags(program: &str, flags: &[String]) -> BTreeSet<String> {
    // One at a time: a rule's `["--pid", "--ipc"]` is two options, not
    // `--pid` with the value `--ipc`.
    flags.iter().flat_map(|f| normalise(program, std::slice::from_ref(f)).flags).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn flags(program: &str, line: &str) -> Vec<String> {
        normalise(program, &words(line)).flags.into_iter().collect()
    }

    #[rstest]
    #[case("rm", "-rf /", &["--force", "--recursive"])]
    #[case("rm", "-fr /", &["--force", "--recursive"])]
    #[case("rm", "-r -f /", &["--force", "--recursive"])]
    #[case("rm", "-R -f /", &["--force", "--recursive"])]
    #[case("rm", "--recursive --force /", &["--force", "--recursive"])]
    #[case("rm", "--rec --for /", &["--force", "--recursive"])]
    #[case("rm", "/ -rf", &["--force", "--recursive"])]
    #[case("rm", "-rfv /", &["--force", "--recursive", "--verbose"])]
    #[case("rm", "-- -rf", &[])]
    #[case("chmod", "-R 777 /", &["--recursive"])]
    #[case("chmod", "-r file", &["-r"])]
    #[case("ls", "-la", &["-a", "-l"])]
    #[case("ls", "--color=auto", &["--color"])]
    #[case("terraform", "-chdir=x destroy -auto-approve", &["-auto-approve", "-chdir"])]
    fn flags_normalise(#[case] program: &str, #[case] line: &str, #[case] expected: &[&str]) {
        assert_eq!(flags(program, line), expected);
    }

    #[rstest]
    #[case("psql", "-c 'DROP TABLE x' db", "--command", "'DROP", &["db"])]
    #[case("psql", "-cDROP db", "--command", "DROP", &["db"])]
    #[case("psql", "--command=DROP db", "--command", "DROP", &["db"])]
    #[case("psql", "-U postgres -d app -c DROP", "--command", "DROP", &[])]
    #[case("mysql", "-u root -psecret -e DROP", "--execute", "DROP", &[])]
    #[case("kubectl", "-n prod delete pod x", "--namespace", "prod", &["delete", "pod", "x"])]
    fn values_and_operands(#[case] program: &str, #[case] line: &str, #[case] name: &str, #[case] value: &str, #[case] operands: &[&str]) {
        let w = words(line);
        let o = normalise(program, &w);
        assert!(o.values.iter().any(|(n, v)| n == name && v == value), "{o:?}");
        let ops: Vec<&str> = o.operands.iter().map(|&i| w[i].as_str()).filter(|s| !s.contains('\'') && *s != "TABLE").collect();
        assert_eq!(ops, operands);
    }

    #[test]
    fn mysql_bare_p_prompts_and_does_not_eat_the_next_word() {
        let w = words("-p -e DROP");
        let o = normalise("mysql", &w);
        assert!(o.values.iter().any(|(n, v)| n == "--execute" && v == "DROP"));
    }

    #[test]
    fn rule_flags_normalise_like_commands() {
        assert_eq!(
            normalise_rule_flags("rm", &["-rf".into()]),
            normalise_rule_flags("rm", &["--recursive".into(), "--force".into()])
        );
    }
}
