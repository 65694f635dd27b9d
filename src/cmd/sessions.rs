//! `custos sessions`: lists and searches the sessions a collector holds,
//! as a table or JSON (`GET /v1/sessions`, `Collector::sessions`).
//!
//! Times (`--since`, `--until`) are read on this machine, so `2h` means two
//! hours before this machine's clock, and sent as unix seconds.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use crate::cmd::collector::{Remote, SessionFilter};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub remote: Remote,
    #[command(flatten)]
    pub filter: SessionFilter,
    /// At most this many sessions, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let now = crate::when::unix_now_i64();
    let mut query: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    if let Some(u) = &args.filter.user {
        query.push(("user", u.clone()));
    }
    if let Some(h) = &args.filter.host {
        query.push(("host", h.clone()));
    }
    if let Some(t) = &args.filter.since {
        query.push(("since", crate::when::parse_time(t, now).context("--since")?.to_string()));
    }
    if let Some(t) = &args.filter.until {
        query.push(("until", crate::when::parse_time(t, now).context("--until")?.to_string()));
    }
    if let Some(c) = &args.filter.command {
        query.push(("command", c.clone()));
    }
    let collector = args.remote.connect()?;
    let sessions = crate::client::runtime()?.block_on(collector.sessions(&query))?;
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&sessions).context("encoding JSON")? + "\n",
        Format::Table => table(&sessions),
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The human table: one session per line.
pub fn table(sessions: &[Value]) -> String {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
    let mut rows = vec![["SESSION".to_owned(), "USER".into(), "HOST".into(), "STARTED (UTC)".into(), "STATE".into(), "CHUNKS".into()]];
    for v in sessions {
        let started = v.get("started_at").and_then(Value::as_i64).map_or_else(|| "?".into(), crate::when::format_utc);
        let state = if v.get("ended_abnormally").and_then(Value::as_bool) == Some(true) {
            "ended abnormally".to_owned()
        } else if v.get("is_final").and_then(Value::as_bool) == Some(true) {
            match v.get("exit_status").and_then(Value::as_i64) {
                Some(code) => format!("exit {code}"),
                None => "ended".into(),
            }
        } else {
            "live".into()
        };
        let chunks = v.get("chunks").and_then(Value::as_i64).unwrap_or(0).to_string();
        rows.push([s(v, "id"), s(v, "user"), s(v, "host"), started, state, chunks]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if sessions.is_empty() {
        out.push_str("(no sessions match)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_state_and_aligns() {
        let sessions = vec![
            serde_json::json!({"id": "a", "user": "alice", "host": "db1", "started_at": 0, "is_final": true, "exit_status": 0, "ended_abnormally": false, "chunks": 3}),
            serde_json::json!({"id": "b", "user": "bob", "host": "web-2", "started_at": 86400, "is_final": true, "exit_status": null, "ended_abnormally": true, "chunks": 1}),
            serde_json::json!({"id": "c", "user": "carol", "host": "db1", "started_at": null, "is_final": false, "chunks": 9}),
        ];
        let text = table(&sessions);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].contains("1970-01-01 00:00:00Z") && lines[1].contains("exit 0"), "{text}");
        assert!(lines[2].contains("ended abnormally"), "{text}");
        assert!(lines[3].contains("live") && lines[3].contains(" ? "), "{text}");
        assert_eq!(lines[0].find("USER"), lines[1].find("alice"));
        assert!(table(&[]).contains("no sessions match"));
    }
}
