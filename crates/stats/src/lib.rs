//! promptflag-stats (being built).
