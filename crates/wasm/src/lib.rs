//! promptflag-wasm (being built).
