//! The prompt-token estimator used by `diff` (and anything else that wants a rough size).
//!
//! Exact counts need the model's tokenizer, which the companion does not ship. The estimate is
//! the common rule of thumb for English text and BPE tokenizers (GPT, Claude, Llama): about four
//! characters per token, computed as `ceil(chars / 4)` where `chars` counts Unicode scalar
//! values. It is stable and monotone, which is what a diff needs: the sign and rough size of a
//! change, not a bill.

/// Estimated prompt tokens of a text: `ceil(chars / 4)`.
pub fn estimate(text: &str) -> u64 {
    let chars = text.chars().count() as u64;
    chars.div_ceil(4)
}
