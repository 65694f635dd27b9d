//! The terminal user interfaces of the `custos` binary: `replay` (the
//! auditor's player), `approve` (the approver's queue) and their `theme`.

pub mod approve;
pub mod replay;
pub mod theme;
