//! `custos demo`: a recorded shell in the current terminal, with everything
//! (configuration, spool) under a temporary directory and no root needed.
