//! Deterministic bucketing, identical on every runtime (SPEC §3):
//! `h = xxh3_64(seed + "/" + unit)`, `slot = (h * 100_000) >> 64`.

use xxhash_rust::xxh3::xxh3_64;

/// Slots in the bucketing space: an allocation of 1 slot is 1/1000 of a percent.
pub const SLOTS: u32 = 100_000;

/// The prefix a layer's seed carries, so a layer never shares hashes with a flag of the same name.
pub const LAYER_SEED_PREFIX: &str = "layer:";

// Seeds and units up to this many bytes are hashed from a stack buffer; longer ones allocate.
const STACK_KEY_BYTES: usize = 256;

// Most keys (a flag key and a user id) fit this smaller buffer, which costs less to clear.
const SMALL_KEY_BYTES: usize = 64;

/// `xxh3_64` of `seed + "/" + unit`.
pub fn bucket_hash(seed: &str, unit: &str) -> u64 {
    hash_prefixed(seed.as_bytes(), Some(b'/'), unit.as_bytes())
}

/// The slot, in `[0, SLOTS)`, of a 64-bit hash.
pub fn slot_of_hash(hash: u64) -> u32 {
    // The product of a u64 and 100 000 fits a u128, and shifting by 64 leaves less than 100 000.
    ((u128::from(hash) * u128::from(SLOTS)) >> 64) as u32
}

/// The slot of `unit` under `seed`.
pub fn slot(seed: &str, unit: &str) -> u32 {
    slot_of_hash(bucket_hash(seed, unit))
}

/// The slot of an already `"seed/"`-terminated prefix and a unit: the hot path, with the
/// separator stored in the compiled ruleset.
pub(crate) fn slot_with_prefix(prefix_with_separator: &[u8], unit: &str) -> u32 {
    slot_of_hash(hash_prefixed(prefix_with_separator, None, unit.as_bytes()))
}

fn hash_prefixed(prefix: &[u8], separator: Option<u8>, unit: &[u8]) -> u64 {
    let total = prefix.len() + usize::from(separator.is_some()) + unit.len();
    if total <= SMALL_KEY_BYTES {
        hash_on_stack::<SMALL_KEY_BYTES>(prefix, separator, unit)
    } else if total <= STACK_KEY_BYTES {
        hash_on_stack::<STACK_KEY_BYTES>(prefix, separator, unit)
    } else {
        let mut key = alloc::vec::Vec::with_capacity(total);
        key.extend_from_slice(prefix);
        key.extend(separator);
        key.extend_from_slice(unit);
        xxh3_64(&key)
    }
}

/// Hashes the concatenation in an `N`-byte stack buffer; the caller checks that it fits.
fn hash_on_stack<const N: usize>(prefix: &[u8], separator: Option<u8>, unit: &[u8]) -> u64 {
    let mut buffer = [0u8; N];
    buffer[..prefix.len()].copy_from_slice(prefix);
    let mut end = prefix.len();
    if let Some(byte) = separator {
        buffer[end] = byte;
        end += 1;
    }
    buffer[end..end + unit.len()].copy_from_slice(unit);
    xxh3_64(&buffer[..end + unit.len()])
}

/// Which lane a slot falls in: `Some(i)` for treatment `i`, `None` for the baseline.
/// Treatment `i` owns `[i*W, i*W + weights[i])` with `W = SLOTS / weights.len()`.
pub fn lane_of_slot(slot: u32, weights: &[u32]) -> Option<usize> {
    if weights.is_empty() {
        return None;
    }
    let width = SLOTS / weights.len() as u32;
    let lane = (slot / width) as usize;
    let weight = *weights.get(lane)?;
    (slot - lane as u32 * width < weight).then_some(lane)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_follow_the_spec_layout() {
        // Two treatments: lanes of 50 000 slots; 1 000 slots each is 1 %.
        let weights = [1_000, 2_000];
        assert_eq!(lane_of_slot(0, &weights), Some(0));
        assert_eq!(lane_of_slot(999, &weights), Some(0));
        assert_eq!(lane_of_slot(1_000, &weights), None);
        assert_eq!(lane_of_slot(50_000, &weights), Some(1));
        assert_eq!(lane_of_slot(51_999, &weights), Some(1));
        assert_eq!(lane_of_slot(52_000, &weights), None);
        assert_eq!(lane_of_slot(99_999, &weights), None);
    }

    #[test]
    fn remainder_slots_past_the_last_lane_get_the_baseline() {
        // Three lanes of 33 333 leave slot 99 999 outside every lane.
        let weights = [33_333, 33_333, 33_333];
        assert_eq!(lane_of_slot(99_998, &weights), Some(2));
        assert_eq!(lane_of_slot(99_999, &weights), None);
    }

    #[test]
    fn long_units_hash_like_short_ones() {
        let unit = "u".repeat(1_000);
        let mut key = alloc::string::String::from("seed/");
        key.push_str(&unit);
        assert_eq!(bucket_hash("seed", &unit), xxh3_64(key.as_bytes()));
        assert_eq!(
            slot_with_prefix(b"seed/", &unit),
            slot_of_hash(xxh3_64(key.as_bytes()))
        );
    }
}
