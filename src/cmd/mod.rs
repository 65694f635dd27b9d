//! The `custos` subcommands' front ends: arguments, output formatting,
//! exit codes. The work itself lives in the parts they call.

pub mod approve;
pub mod collector;
pub mod demo;
pub mod docs;
pub mod doctor;
pub mod enroll;
pub mod evidence;
pub mod identity;
pub mod mask;
pub mod policy;
pub mod replay;
pub mod serve;
pub mod sessions;
pub mod upload;
