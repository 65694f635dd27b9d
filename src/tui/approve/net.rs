//! The approver TUI's network side: who the approver is to the collector,
//! the long-poll for pending requests, and sending decisions.
//!
//! An approver is either registered (`custos serve approver` gave them a
//! token; they sign each decision with their own key) or signed in with the
//! identity provider (`custos login`; the ID token is the bearer, and the
//! collector signs an attested decision for them). The second needs no key
//! file on the approver's machine, which is what makes the in-shell pane
//! usable by any on-call engineer who has signed in.
//!
//! ID tokens expire; when the collector answers 401 the token is renewed
//! silently from the refresh token and the request repeated once.
//!
//! The selected request's session is followed live
//! (`GET /v1/sessions/{id}/follow`, which the collector opens to approvers
//! of a request pending in it): its chunks' output events are played into
//! a [`LiveScreen`] and the text sent to the UI, so the approver sees what
//! the requester sees now, masked as recorded, not only the screen when
//! they asked.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;

use super::{Decide, Net};
use crate::approval::decision::{Binding, Decision};
use crate::approval::wire::RequestView;
use crate::evidence::HostKey;
use crate::tui::theme::Role;

/// How the approver proves who they are.
pub enum Credentials {
    /// A token from `custos serve approver` and the key that signs.
    Registered {
        token: String,
        name: String,
        key: Box<HostKey>,
    },
    /// The ID token of `custos login`; the collector attests.
    SignedIn { token: String, name: String },
}

fn flag_or_env(flag: Option<&str>, var: &str) -> Option<String> {
    flag.map(str::to_owned)
        .or_else(|| std::env::var(var).ok())
        .filter(|v| !v.is_empty())
}

impl Credentials {
    /// `--token` (or `CUSTOS_APPROVER_TOKEN`) with a name and key, else the
    /// sign-in of `custos login`.
    pub fn resolve(name: Option<&str>, token: Option<&str>, key: Option<&std::path::Path>) -> anyhow::Result<Credentials> {
        if let Some(token) = flag_or_env(token, "CUSTOS_APPROVER_TOKEN") {
            let name = flag_or_env(name, "CUSTOS_APPROVER_NAME")
                .context("an approver token needs your approver name: give --name or set CUSTOS_APPROVER_NAME")?;
            let key = key
                .map(std::path::Path::to_path_buf)
                .or_else(|| flag_or_env(None, "CUSTOS_APPROVER_KEY").map(std::path::PathBuf::from))
                .context("an approver token needs your signing key: give --key or set CUSTOS_APPROVER_KEY")?;
            let key = HostKey::load(&key)
                .with_context(|| format!("your signing key {}", key.display()))?;
            return Ok(Credentials::Registered {
                token,
                name,
                key: Box::new(key),
            });
        }
        let token = crate::identity::signin::client_id_token()?
            .context("no approver credentials: sign in with `custos login`, or give --token, --name and --key")?;
        let name = display_name(&token).unwrap_or_else(|| "you".to_owned());
        Ok(Credentials::SignedIn { token, name })
    }

    /// The name decisions carry (shown as "you" in the TUI).
    pub fn name(&self) -> &str {
        match self {
            Credentials::Registered { name, .. } | Credentials::SignedIn { name, .. } => name,
        }
    }

    fn token(&self) -> &str {
        match self {
            Credentials::Registered { token, .. } | Credentials::SignedIn { token, .. } => token,
        }
    }

    /// Renews a signed-in approver's ID token; `false` when there is
    /// nothing to renew or renewal failed.
    fn renew(&mut self) -> bool {
        let Credentials::SignedIn { token, .. } = self else {
            return false;
        };
        // `client_id_token` runs its own runtime: not on this one's thread.
        match std::thread::spawn(crate::identity::signin::client_id_token).join() {
            Ok(Ok(Some(fresh))) if fresh != *token => {
                *token = fresh;
                true
            }
            _ => false,
        }
    }

    /// The body of a decision on `d`.
    fn body(&self, d: &Decide) -> Result<Vec<u8>, String> {
        match self {
            Credentials::Registered { name, key, .. } => {
                let r = &d.request;
                let binding = Binding {
                    request_id: r.id.clone(),
                    session: r.request.session.clone(),
                    host: r.request.host.clone(),
                    line_sha256: r.request.line_sha256.clone(),
                };
                let decision = Decision::sign(key, binding, d.verdict, name, &d.reason)
                    .map_err(|e| format!("cannot sign: {e}"))?;
                serde_json::to_vec(&decision).map_err(|e| e.to_string())
            }
            Credentials::SignedIn { .. } => {
                if d.reason.trim().is_empty() {
                    return Err("a reason is required".into());
                }
                serde_json::to_vec(&serde_json::json!({"verdict": d.verdict, "reason": d.reason}))
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// The email (or subject) in an ID token's claims, for display only: the
/// collector verifies the token, this does not.
fn display_name(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("email")
        .or_else(|| claims.get("sub"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// A followed session's screen: asciicast lines in, text out.
pub struct LiveScreen {
    screen: crate::term::screen::Screen,
}

impl Default for LiveScreen {
    fn default() -> Self {
        Self {
            screen: crate::term::screen::Screen::new(crate::term::screen::Size { rows: 24, cols: 80 }),
        }
    }
}

impl LiveScreen {
    /// Plays a piece of a cast: the header (for the terminal size), output
    /// and resize events; anything else, or a malformed line, is skipped.
    pub fn feed(&mut self, cast: &str) {
        use crate::term::screen::Size;
        for line in cast.lines() {
            let line = line.trim();
            if line.starts_with('{') {
                let Ok(header) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let dim = |v3: &str, v2: &str| {
                    header
                        .pointer(v3)
                        .or_else(|| header.get(v2))
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|n| u16::try_from(n).ok())
                };
                if let (Some(cols), Some(rows)) =
                    (dim("/term/cols", "width"), dim("/term/rows", "height"))
                {
                    self.screen.resize(Size { rows, cols });
                }
                continue;
            }
            let Ok(Some((_, code, data))) = crate::evidence::asciicast::parse_event_line(line, 0) else {
                continue;
            };
            match code.as_str() {
                "o" => self.screen.process(data.as_bytes()),
                "r" => {
                    if let Some((cols, rows)) = crate::evidence::asciicast::parse_size(&data) {
                        self.screen.resize(Size { rows, cols });
                    }
                }
                _ => {}
            }
        }
        // Only the visible screen matters here.
        self.screen.clear_scrolled();
        let _ = self.screen.take_replies();
        let _ = self.screen.take_passthrough();
    }

    /// The visible rows, blank rows at the bottom left out (as in the
    /// screen a request carries), so the pane shows where the prompt is.
    pub fn text(&self) -> String {
        self.screen.text().trim_end_matches('\n').to_owned()
    }
}

/// Follows `session` until its stream ends or fails, sending its screen
/// to the UI after each chunk.
async fn follow(
    client: &reqwest::Client,
    server: &str,
    token: &str,
    session: &str,
    to_ui: &mpsc::Sender<Net>,
) {
    let url = format!("{server}/v1/sessions/{session}/follow");
    let Ok(mut response) = client
        .get(&url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(24 * 3600))
        .send()
        .await
    else {
        return;
    };
    if !response.status().is_success() {
        return;
    }
    let mut parser = crate::client::sse::SseParser::default();
    let mut live = LiveScreen::default();
    while let Ok(Some(piece)) = response.chunk().await {
        for event in parser.feed(&piece) {
            if event.event != "chunk" {
                continue;
            }
            let cast = serde_json::from_str::<serde_json::Value>(&event.data)
                .ok()
                .and_then(|v| {
                    v.get("cast")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                });
            if let Some(cast) = cast {
                live.feed(&cast);
                if to_ui
                    .send(Net::Screen(session.to_owned(), live.text()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Follows whichever session the UI has selected, switching when the
/// selection does.
async fn watch_sessions(
    client: reqwest::Client,
    server: String,
    token: String,
    mut watched: tokio::sync::watch::Receiver<Option<String>>,
    to_ui: mpsc::Sender<Net>,
) {
    loop {
        let current = watched.borrow_and_update().clone();
        if let Some(session) = current {
            tokio::select! {
                () = follow(&client, &server, &token, &session, &to_ui) => {}
                changed = watched.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        if watched.changed().await.is_err() {
            return;
        }
    }
}

/// The network thread: long-polls the pending queue and sends decisions,
/// reporting to the UI over `to_ui`; follows the session `watched` names.
pub fn network(
    server: String,
    mut credentials: Credentials,
    to_ui: mpsc::Sender<Net>,
    mut from_ui: tokio::sync::mpsc::UnboundedReceiver<Decide>,
    watched: tokio::sync::watch::Receiver<Option<String>>,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        let _ = to_ui.send(Net::Result(
            Role::Danger,
            "cannot start the network runtime".into(),
        ));
        return;
    };
    runtime.block_on(async move {
        let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(40)).build() else { return };
        // The screen is not `Send`: the watcher runs beside the loop on
        // this thread rather than as a spawned task.
        let watcher = watch_sessions(client.clone(), server.clone(), credentials.token().to_owned(), watched, to_ui.clone());
        let queue = async move {
        let mut after: Option<i64> = None;
        loop {
            let url = match after {
                None => format!("{server}/v1/approvals?state=pending"),
                Some(v) => format!("{server}/v1/approvals?after={v}&wait=20"),
            };
            let poll = client.get(&url).bearer_auth(credentials.token()).send();
            tokio::select! {
                sent = poll => {
                    let parsed = match sent {
                        Ok(r) if r.status().is_success() => r.bytes().await.ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()),
                        Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED && credentials.renew() => continue,
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            let _ = to_ui.send(Net::Result(Role::Danger, format!("the collector answered {status}: {text}")));
                            None
                        }
                        Err(_) => None,
                    };
                    match parsed {
                        Some(v) => {
                            let _ = to_ui.send(Net::Connected(true));
                            if let Some(version) = v.get("version").and_then(serde_json::Value::as_i64) {
                                after = Some(version.max(after.unwrap_or(0)));
                            }
                            let list: Vec<RequestView> = v.get("requests").cloned().and_then(|r| serde_json::from_value(r).ok()).unwrap_or_default();
                            if to_ui.send(Net::Changed(list)).is_err() {
                                return;
                            }
                        }
                        None => {
                            let _ = to_ui.send(Net::Connected(false));
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
                decide = from_ui.recv() => {
                    let Some(d) = decide else { return };
                    let mut text = send_decision(&client, &server, &credentials, &d).await;
                    if matches!(text, Sent::Unauthorized) && credentials.renew() {
                        text = send_decision(&client, &server, &credentials, &d).await;
                    }
                    let _ = to_ui.send(text.into_net(&d));
                }
            }
        }
        };
        tokio::join!(queue, watcher);
    });
}

enum Sent {
    Ok,
    Unauthorized,
    Failed(String),
}

impl Sent {
    fn into_net(self, d: &Decide) -> Net {
        match self {
            Sent::Ok => Net::Result(
                Role::Ok,
                format!(
                    "{} {}: sent",
                    d.verdict.as_str(),
                    crate::approval::hold::short(&d.request.id)
                ),
            ),
            Sent::Unauthorized => Net::Result(
                Role::Danger,
                "refused: your sign-in is not valid (run `custos login`)".into(),
            ),
            Sent::Failed(text) => Net::Result(Role::Danger, text),
        }
    }
}

async fn send_decision(
    client: &reqwest::Client,
    server: &str,
    credentials: &Credentials,
    d: &Decide,
) -> Sent {
    let body = match credentials.body(d) {
        Ok(b) => b,
        Err(e) => return Sent::Failed(e),
    };
    let sent = client
        .post(format!("{server}/v1/approvals/{}/decide", d.request.id))
        .bearer_auth(credentials.token())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => Sent::Ok,
        Ok(resp) if resp.status() == reqwest::StatusCode::UNAUTHORIZED => Sent::Unauthorized,
        Ok(resp) => {
            let text = resp
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            let message = text
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_default();
            Sent::Failed(format!("refused: {message}"))
        }
        Err(e) => Sent::Failed(format!("the collector is unreachable: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_live_screen_plays_output_and_resizes_and_skips_junk() {
        let mut live = LiveScreen::default();
        live.feed("{\"version\":3,\"term\":{\"cols\":20,\"rows\":3}}\n[0.1, \"o\", \"hello\\r\\n\"]\nnot json\n[0.2, \"i\", \"typed\"]\n");
        assert_eq!(live.text(), "hello");
        live.feed("[0.3, \"o\", \"one\\r\\ntwo\\r\\nthree\"]\n[0.4, \"r\", \"30x2\"]\n[0.5, \"r\", \"bad\"]\n");
        // Three rows scrolled to the last two on resize; input never shows.
        let text = live.text();
        assert!(text.ends_with("three"), "{text:?}");
        assert_eq!(text.lines().count(), 2, "{text:?}");
        assert!(!text.contains("typed"));
    }

    #[test]
    fn the_display_name_is_the_tokens_email_or_subject_and_junk_gives_none() {
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let jwt = |claims| {
            format!(
                "{}.{}.sig",
                enc(serde_json::json!({"alg": "RS256"})),
                enc(claims)
            )
        };
        assert_eq!(
            display_name(&jwt(serde_json::json!({"sub": "s1", "email": "a@x"}))).as_deref(),
            Some("a@x")
        );
        assert_eq!(
            display_name(&jwt(serde_json::json!({"sub": "s1"}))).as_deref(),
            Some("s1")
        );
        assert_eq!(display_name("not-a-jwt"), None);
        assert_eq!(display_name("a.!!!.c"), None);
    }
}
