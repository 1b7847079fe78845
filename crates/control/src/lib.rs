//! promptflag-control (being built).
