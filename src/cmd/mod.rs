//! The `custos` subcommands' front ends: arguments, output formatting,
//! exit codes. The work itself lives in the parts they call.

pub mod collector;
pub mod demo;
pub mod doctor;
pub mod enroll;
pub mod evidence;
pub mod mask;
pub mod policy;
pub mod serve;
pub mod sessions;
pub mod upload;
