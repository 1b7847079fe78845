//! promptflag-client (being built).
