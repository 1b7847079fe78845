//! Deterministic bucketing, identical on every runtime (`docs/ruleset.md`):
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
pub(crate) fn slot_with_prefix(prefix_with_separator: &[u8], unit: &[u8]) -> u32 {
    slot_of_hash(hash_prefixed(prefix_with_separator, None, unit))
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
    put(&mut buffer, 0, prefix);
    let mut end = prefix.len();
    if let Some(byte) = separator {
        buffer[end] = byte;
        end += 1;
    }
    put(&mut buffer, end, unit);
    xxh3_64(&buffer[..end + unit.len()])
}

/// `buffer[at..at + bytes.len()].copy_from_slice(bytes)` in fixed-size moves (overlapping at
/// the end) rather than a call to `memcpy`, which costs more than the copy for seeds and ids
/// this short. The caller checks that the bytes fit.
#[inline(always)]
fn put(buffer: &mut [u8], at: usize, bytes: &[u8]) {
    let length = bytes.len();
    if length >= 16 {
        let mut offset = 0;
        while offset + 16 <= length {
            buffer[at + offset..at + offset + 16].copy_from_slice(&bytes[offset..offset + 16]);
            offset += 16;
        }
        if offset < length {
            buffer[at + length - 16..at + length].copy_from_slice(&bytes[length - 16..]);
        }
    } else if length >= 8 {
        buffer[at..at + 8].copy_from_slice(&bytes[..8]);
        buffer[at + length - 8..at + length].copy_from_slice(&bytes[length - 8..]);
    } else if length >= 4 {
        buffer[at..at + 4].copy_from_slice(&bytes[..4]);
        buffer[at + length - 4..at + length].copy_from_slice(&bytes[length - 4..]);
    } else {
        for (offset, &byte) in bytes.iter().enumerate() {
            buffer[at + offset] = byte;
        }
    }
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

/// A split's lanes, ready for the hot path: [`lane_of_slot`] with the lane width worked out
/// once and the division by it done as a multiplication.
#[derive(Debug, Clone)]
pub(crate) struct Lanes {
    /// Slots each treatment holds of its lane.
    weights: alloc::vec::Vec<u32>,
    width: u32,
    /// `ceil(2^40 / width)`: for every slot below [`SLOTS`], `slot * reciprocal >> 40` is
    /// exactly `slot / width` (the rounding error stays under `SLOTS / 2^40`, far below the
    /// `1 / width` it would take to cross an integer).
    reciprocal: u64,
}

impl Lanes {
    pub(crate) fn new(weights: alloc::vec::Vec<u32>) -> Lanes {
        let width = if weights.is_empty() {
            SLOTS
        } else {
            (SLOTS / weights.len() as u32).max(1)
        };
        let reciprocal = (1u64 << 40).div_ceil(u64::from(width));
        Lanes {
            weights,
            width,
            reciprocal,
        }
    }

    /// [`lane_of_slot`]`(slot, weights)`, for a slot below [`SLOTS`].
    #[inline]
    pub(crate) fn lane_of(&self, slot: u32) -> Option<usize> {
        let lane = ((u64::from(slot) * self.reciprocal) >> 40) as usize;
        let weight = *self.weights.get(lane)?;
        (slot - lane as u32 * self.width < weight).then_some(lane)
    }
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
    fn lanes_agree_with_lane_of_slot_for_every_slot() {
        for count in [1usize, 2, 3, 4, 5, 6, 7, 9, 10, 16, 31, 50, 64, 100] {
            let width = SLOTS / count as u32;
            // Weights from empty to full, different per lane.
            let weights: alloc::vec::Vec<u32> = (0..count as u32)
                .map(|lane| (lane * 7_919) % (width + 1))
                .collect();
            let lanes = Lanes::new(weights.clone());
            for slot in 0..SLOTS {
                assert_eq!(
                    lanes.lane_of(slot),
                    lane_of_slot(slot, &weights),
                    "slot {slot} of {count} lanes"
                );
            }
        }
        let none = Lanes::new(alloc::vec::Vec::new());
        assert_eq!(none.lane_of(0), None);
        assert_eq!(none.lane_of(SLOTS - 1), None);
    }

    #[test]
    fn every_length_hashes_its_concatenation() {
        let text: alloc::string::String = (0..300u32)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();
        for prefix_length in [0usize, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40] {
            for unit_length in 0..=(STACK_KEY_BYTES + 4 - prefix_length) {
                let prefix = &text[..prefix_length];
                let unit = &text[prefix_length..prefix_length + unit_length];
                let mut key = alloc::string::String::from(prefix);
                key.push('/');
                key.push_str(unit);
                assert_eq!(
                    bucket_hash(prefix, unit),
                    xxh3_64(key.as_bytes()),
                    "{prefix_length} + {unit_length}"
                );
            }
        }
    }

    #[test]
    fn long_units_hash_like_short_ones() {
        let unit = "u".repeat(1_000);
        let mut key = alloc::string::String::from("seed/");
        key.push_str(&unit);
        assert_eq!(bucket_hash("seed", &unit), xxh3_64(key.as_bytes()));
        assert_eq!(
            slot_with_prefix(b"seed/", unit.as_bytes()),
            slot_of_hash(xxh3_64(key.as_bytes()))
        );
    }
}
