//! Approval of a command given with `-c` (`ssh host cmd`, a CI job): there
//! is no prompt to hold the line at, so the recorder asks before the
//! session starts and waits, telling stderr what it waits for.
//!
//! The same agent, request and checks as an interactive held line
//! ([`super::link::Approvals`]): the decisions are bound to this line,
//! session and host, and the recorder checks the binding and quorum itself.
//! What happened (request, decisions) is kept as [`Effect`]s and written
//! at the start of the session's recording, which exists whatever the
//! outcome: approved, the command runs recorded; otherwise the session is
//! recorded as refused.
//!
//! SIGINT, SIGTERM and SIGHUP (Ctrl-C, a cancelled CI job, a dropped
//! connection) withdraw the request and refuse the command; the agent
//! also withdraws it if the recorder dies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::link::{Approvals, Effect, Settings};
use crate::gate::Held;

/// How a wait ended.
pub struct Waited {
    /// Audit records and markers for the recording, in order.
    pub effects: Vec<Effect>,
    /// `None`: approved, run it. Otherwise the outcome and why not.
    pub refusal: Option<(crate::evidence::marker::Outcome, String)>,
}

/// The status text without its clock, so stderr hears of changes only.
fn without_clock(status: &str) -> String {
    let clock = |w: &&str| w.contains(':') && w.chars().all(|c| c.is_ascii_digit() || c == ':');
    status.split_whitespace().filter(|w| !clock(w)).collect::<Vec<_>>().join(" ")
}

/// Asks for approval of `held` (its line shown as `shown`, masked) and
/// waits for the decision.
pub fn wait(settings: Settings, held: &Held, shown: String) -> Waited {
    let stop = Arc::new(AtomicBool::new(false));
    let ids: Vec<signal_hook::SigId> = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP]
        .into_iter()
        .filter_map(|sig| signal_hook::flag::register(sig, Arc::clone(&stop)).ok())
        .collect();
    let mut approvals = Approvals::new(settings);
    let mut log = Vec::new();
    let mut effects = approvals.start(held, shown.clone(), String::new(), Instant::now());
    let mut told = String::new();
    let mut withdrawn = false;
    eprintln!("custos-shell: {shown:?} needs approval under rule {} ({}); waiting", held.rule.name, held.rule.message);
    let refusal = 'wait: loop {
        for effect in effects.drain(..) {
            match effect {
                Effect::Resolve(outcome) => break 'wait outcome,
                other => log.push(other),
            }
        }
        if let Some(status) = approvals.status(Instant::now()) {
            let key = without_clock(&status);
            if key != told {
                eprintln!("custos-shell:{status}");
                told = key;
            }
        }
        if stop.load(Ordering::SeqCst) && !withdrawn {
            withdrawn = true;
            effects = approvals.keys(b"\x03");
            continue;
        }
        let readable = approvals.fd().is_some_and(|fd| {
            let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)).is_ok_and(|n| n > 0)
        });
        if readable {
            effects = approvals.readable();
        } else if approvals.fd().is_none() {
            std::thread::sleep(Duration::from_millis(200));
            if !approvals.holding() {
                break Some((crate::evidence::marker::Outcome::Error, "approval unavailable: the approval agent is not running".into()));
            }
        }
    };
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    Waited { effects: log, refusal }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_does_not_count_as_news() {
        assert_eq!(without_clock(" waiting 0:01 request ab"), without_clock(" waiting 0:59 request ab"));
        assert_ne!(without_clock(" waiting 0:01 0/2 approvals"), without_clock(" waiting 0:02 1/2 approvals"));
    }
}
