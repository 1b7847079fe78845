//! promptflag-worker (being built).
