//! File transfers, described rather than dumped (see the helper's work).
