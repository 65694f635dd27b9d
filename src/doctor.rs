//! `custos doctor`: checks an installation.
