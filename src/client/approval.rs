//! `custos approval-agent`: the recorder's messenger to the collector
//! (hidden; started by `custos-shell` for its first held line).
//!
//! It reads [`ToAgent`] lines on stdin and writes [`FromAgent`] lines on
//! stdout (see `wire`). A request is created with one signed POST (the
//! host key signs `custos-approval-request-v1\n` + the body), then followed
//! with long-polls of `GET /v1/approvals/{id}?after=V&wait=20`, so a change
//! arrives as soon as the collector saves it.
//!
//! The collector is the authority on state, so the agent keeps none it
//! cannot re-read: when the collector is unreachable (restarting), it
//! retries every half second and resumes the same request by id. It stops
//! when stdin closes (the recorder went away), withdrawing a request still
//! pending: nobody would run the line, so nobody should be asked to
//! approve it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;

use crate::approval::decision::Choice;
use crate::approval::wire::{encode, FromAgent, NewRequest, RequestView, State, ToAgent, VERSION};
use crate::evidence::HostKey;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The collector's base URL.
    #[arg(long)]
    pub server: String,
    /// The host key that signs requests.
    #[arg(long)]
    pub key: PathBuf,
}

/// How long one long-poll waits at the collector.
const POLL_WAIT_SECS: u64 = 20;
const RETRY: Duration = Duration::from_millis(500);

struct Current {
    id: String,
    token: String,
    version: i64,
    approvals: u32,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let key = HostKey::load(&args.key).with_context(|| format!("the host key {}", args.key.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(agent(args.server.trim_end_matches('/').to_owned(), key))
}

/// Writes one message to the recorder. Lines are short and the recorder
/// reads them as they come, so a blocking write is fine here.
async fn say(out: &mut std::io::Stdout, msg: &FromAgent) -> anyhow::Result<()> {
    use std::io::Write as _;
    out.write_all(&encode(msg))?;
    out.flush()?;
    Ok(())
}

async fn agent(server: String, key: HostKey) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(POLL_WAIT_SECS + 10))
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let mut out = std::io::stdout();
    say(&mut out, &FromAgent::Ready { version: VERSION }).await?;
    // Lines from the recorder, read on a thread (stdin is a pipe).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<ToAgent, String>>();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let msg = serde_json::from_str::<ToAgent>(&line).map_err(|e| format!("a malformed line from the recorder: {e}"));
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
    let mut current: Option<Current> = None;
    loop {
        let following = current.as_ref().map(|c| (c.id.clone(), c.token.clone(), c.version));
        let poll = async {
            match following {
                Some(f) => follow_once(&client, &server, f).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => {
                match msg {
                    None => {
                        if let Some(c) = current.take() {
                            withdraw(&client, &server, &c).await;
                        }
                        return Ok(ExitCode::SUCCESS);
                    }
                    Some(Err(message)) => say(&mut out, &FromAgent::Error { message }).await?,
                    Some(Ok(ToAgent::Create { request })) => {
                        match create(&client, &server, &key, &request, &mut rx).await {
                            Ok(Some((id, token, expires_at, version))) => {
                                say(&mut out, &FromAgent::Created { id: id.clone(), expires_at }).await?;
                                current = Some(Current { id, token, version, approvals: 0 });
                            }
                            Ok(None) => return Ok(ExitCode::SUCCESS),
                            Err(message) => say(&mut out, &FromAgent::Error { message }).await?,
                        }
                    }
                    Some(Ok(ToAgent::Withdraw { id })) => {
                        if let Some(c) = current.take() {
                            if c.id == id {
                                withdraw(&client, &server, &c).await;
                            }
                        }
                    }
                }
            }
            view = poll => {
                let Some(c) = current.as_mut() else { continue };
                match view {
                    Ok(view) if view.id == c.id => {
                        c.version = view.version;
                        let n = view.approvals();
                        if n > c.approvals && view.state == State::Pending {
                            c.approvals = n;
                            let by = view.decisions.last().map(|d| d.approver.clone()).unwrap_or_default();
                            say(&mut out, &FromAgent::Progress { approvals: n, quorum: view.request.quorum, by }).await?;
                        }
                        let done = match view.state {
                            State::Pending => None,
                            State::Approved => Some(FromAgent::Approved { decisions: view.decisions.clone() }),
                            State::Denied => match view.decisions.iter().find(|d| d.verdict == Choice::Deny) {
                                Some(d) => Some(FromAgent::Denied { decision: d.clone() }),
                                None => Some(FromAgent::Error { message: "the collector says denied but shows no denial".into() }),
                            },
                            State::Expired => Some(FromAgent::Expired),
                            State::Withdrawn => Some(FromAgent::Withdrawn),
                        };
                        if let Some(done) = done {
                            say(&mut out, &done).await?;
                            current = None;
                        }
                    }
                    Ok(_) => {}
                    Err(Poll::Retry) => tokio::time::sleep(RETRY).await,
                    Err(Poll::Fatal(message)) => {
                        say(&mut out, &FromAgent::Error { message }).await?;
                        current = None;
                    }
                }
            }
        }
    }
}

enum Poll {
    Retry,
    Fatal(String),
}

async fn follow_once(client: &reqwest::Client, server: &str, (id, token, version): (String, String, i64)) -> Result<RequestView, Poll> {
    let url = format!("{server}/v1/approvals/{id}?after={version}&wait={POLL_WAIT_SECS}");
    let response = client.get(&url).bearer_auth(&token).send().await.map_err(|_| Poll::Retry)?;
    let status = response.status();
    if status.is_server_error() {
        return Err(Poll::Retry);
    }
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(Poll::Fatal(format!("the collector answered {status}: {text}")));
    }
    let bytes = response.bytes().await.map_err(|_| Poll::Retry)?;
    serde_json::from_slice(&bytes).map_err(|e| Poll::Fatal(format!("the collector's answer: {e}")))
}

/// Creates the request, retrying while the collector is unreachable.
/// `Ok(None)`: the recorder went away meanwhile.
async fn create(
    client: &reqwest::Client,
    server: &str,
    key: &HostKey,
    request: &NewRequest,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<ToAgent, String>>,
) -> Result<Option<(String, String, i64, i64)>, String> {
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let mut signed = crate::approval::wire::REQUEST_CONTEXT.as_bytes().to_vec();
    signed.extend_from_slice(&body);
    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&signed));
    let key_id = key.public().id().to_string();
    loop {
        let sent = client
            .post(format!("{server}/v1/approvals"))
            .header("x-custos-key", &key_id)
            .header("x-custos-signature", &signature)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                let bytes = r.bytes().await.map_err(|e| format!("the collector's answer: {e}"))?;
                let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("the collector's answer: {e}"))?;
                let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
                let (Some(id), Some(token)) = (field("id"), field("requester_token")) else {
                    return Err("the collector's answer has no id".into());
                };
                let expires_at = v.get("expires_at").and_then(serde_json::Value::as_i64).unwrap_or(0);
                let version = v.get("version").and_then(serde_json::Value::as_i64).unwrap_or(0);
                return Ok(Some((id, token, expires_at, version)));
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                return Err(format!("the collector refused the request ({status}): {text}"));
            }
            _ => {
                // Unreachable or failing: wait, unless the recorder gave up.
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => {}
                    msg = rx.recv() => match msg {
                        None => return Ok(None),
                        Some(Ok(ToAgent::Withdraw { .. })) => return Err("withdrawn before the collector was reached".into()),
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

async fn withdraw(client: &reqwest::Client, server: &str, c: &Current) {
    for _ in 0..10 {
        let sent = client.post(format!("{server}/v1/approvals/{}/withdraw", c.id)).bearer_auth(&c.token).send().await;
        match sent {
            Ok(r) if !r.status().is_server_error() => return,
            _ => tokio::time::sleep(RETRY).await,
        }
    }
}
