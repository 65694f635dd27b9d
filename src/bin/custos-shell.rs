//! `custos-shell`: the recording login shell. All logic lives in
//! `custos::recorder::shell`; this binary links nothing of the server.

use std::process::ExitCode;

fn main() -> ExitCode {
    let status = custos::recorder::shell::main(std::env::args_os().collect());
    ExitCode::from(u8::try_from(status & 0xff).unwrap_or(u8::MAX))
}
