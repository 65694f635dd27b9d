//! `custos serve`: the collector. Hosts enroll their public key, upload
//! signed chunks, and auditors read sessions back (list, search, download,
//! follow live); approvers decide held command lines.
//!
//! One process, axum on tokio, SQLite plus a data directory. The parts, from
//! the cores to the routes (a module imports only those above it, and
//! [`api`] ties the routes together):
//!
//! - `store` (chunk files and SQLite; `index`: what search learns from a
//!   payload; `group`: commits concurrent chunk rows together), `config`
//!   (the TOML file), `metrics` (counters), `identity` (ID token verifier,
//!   whose a session is);
//! - `app` (the shared state of a running collector), `error` (the JSON
//!   error answer), `auth` (bearer tokens, roles, who may read a session);
//! - the route groups: `ingest` (the uploaders' side: the rules for
//!   accepting a chunk, `PUT .../chunks/{seq}`, `GET .../head`), `sessions`
//!   (list, search, metadata, download, follow live, alerts; `verify`
//!   re-checks stored sessions), `enroll` (host keys and enrollment
//!   tokens), `audit` (the access trail and markers), `approvals`;
//! - `api`: the route table, health, metrics and the OpenAPI document.
//!
//! The command front end (`custos serve`, its flags and `token`/`approver`
//! actions) is `cmd::serve`. Nothing outside this folder but that front end
//! imports it, and it imports nothing from the clients (`client`): what
//! both sides must agree on lives in neutral modules (`evidence`,
//! `approval`).
//!
//! Start-up contract: the bound address is printed on stdout as one line,
//! `http://IP:PORT`, once the socket listens (tests start on port 0 and read
//! it). On the first start an admin token is created, stored only as a hash,
//! and printed once on stderr. `custos serve token` creates further tokens
//! (enrollment or admin) by acting on the data directory directly: whoever
//! can write the data directory already owns the collector.

pub mod api;
pub mod app;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod config;
pub mod enroll;
pub mod error;
pub mod group;
pub mod identity;
pub mod index;
pub mod ingest;
pub mod metrics;
pub mod sessions;
pub mod store;
pub mod verify;
