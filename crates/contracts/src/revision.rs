//! The revision rules, the same for the Worker, every companion store and every fake:
//!
//! - Bounds: a revision is at most [`MAX_REVISION`] (2^53 − 1), so JavaScript holds every
//!   revision exactly; all arithmetic is checked, so nothing wraps.
//! - The next revision is one above the highest revision published or live ([`next`]).
//! - A publish is stale unless it is above that highest revision, and refused when the caller's
//!   expected live revision is not the live one ([`check_publish`]).
//! - A rollback goes to a kept revision: the one named, or the highest kept revision below the
//!   live one ([`rollback_target`]).

use alloc::vec::Vec;

use crate::error::Error;

/// The highest revision: 2^53 − 1 (`Number.MAX_SAFE_INTEGER`).
pub const MAX_REVISION: u64 = (1 << 53) - 1;

/// `revision` when it is within [`MAX_REVISION`], else [`Error::RevisionOutOfRange`].
pub fn check(revision: u64) -> Result<u64, Error> {
    if revision <= MAX_REVISION {
        Ok(revision)
    } else {
        Err(Error::RevisionOutOfRange { revision })
    }
}

/// The highest revision published (`latest`) or live: a pointer written by hand above `latest`
/// counts too.
pub fn highest(latest: Option<u64>, live: Option<u64>) -> Option<u64> {
    latest.max(live)
}

/// The revision the next publish takes: 1 when nothing was published, else one above
/// [`highest`]. [`Error::RevisionsExhausted`] when that would pass [`MAX_REVISION`].
pub fn next(latest: Option<u64>, live: Option<u64>) -> Result<u64, Error> {
    match highest(latest, live) {
        None => Ok(1),
        Some(highest) => highest
            .checked_add(1)
            .filter(|next| *next <= MAX_REVISION)
            .ok_or(Error::RevisionsExhausted { highest }),
    }
}

/// Whether a publish of `revision` may go ahead, given the stored `latest` and `live`:
/// [`Error::RevisionOutOfRange`] above the bound, [`Error::StaleRevision`] at or below
/// [`highest`], and [`Error::LiveMoved`] when `expected_live` is given (`Some(None)`: no live
/// revision expected) and is not the live revision. Checked in that order.
pub fn check_publish(
    latest: Option<u64>,
    live: Option<u64>,
    revision: u64,
    expected_live: Option<Option<u64>>,
) -> Result<(), Error> {
    check(revision)?;
    if let Some(highest) = highest(latest, live).filter(|highest| revision <= *highest) {
        return Err(Error::StaleRevision { revision, highest });
    }
    match expected_live {
        Some(expected) if expected != live => Err(Error::LiveMoved { expected, live }),
        _ => Ok(()),
    }
}

/// The revision a rollback goes to: `requested` when it is kept, or (`None`) the highest kept
/// revision below the live one (any kept revision when nothing is live). `kept` need not be
/// sorted. Otherwise [`Error::RevisionNotKept`] with the kept revisions ascending.
pub fn rollback_target(
    kept: &[u64],
    live: Option<u64>,
    requested: Option<u64>,
) -> Result<u64, Error> {
    let target = match requested {
        Some(revision) => Some(revision).filter(|revision| kept.contains(revision)),
        None => kept
            .iter()
            .copied()
            .filter(|revision| live.is_none_or(|live| *revision < live))
            .max(),
    };
    target.ok_or_else(|| {
        let mut kept: Vec<u64> = kept.to_vec();
        kept.sort_unstable();
        kept.dedup();
        Error::RevisionNotKept {
            requested,
            live,
            kept,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_revision_is_above_everything_published_or_live() {
        assert_eq!(next(None, None), Ok(1));
        assert_eq!(next(Some(9), Some(7)), Ok(10));
        // A pointer written by hand above `latest` counts.
        assert_eq!(next(Some(3), Some(4)), Ok(5));
        assert_eq!(next(None, Some(4)), Ok(5));
        assert_eq!(next(Some(MAX_REVISION - 1), None), Ok(MAX_REVISION));
    }

    #[test]
    fn a_latest_revision_at_the_bound_refuses_the_next_publish_instead_of_wrapping() {
        for latest in [MAX_REVISION, MAX_REVISION + 1, u64::MAX] {
            assert_eq!(
                next(Some(latest), None),
                Err(Error::RevisionsExhausted { highest: latest })
            );
            assert_eq!(
                next(None, Some(latest)),
                Err(Error::RevisionsExhausted { highest: latest })
            );
        }
        assert_eq!(
            check_publish(None, None, MAX_REVISION + 1, None),
            Err(Error::RevisionOutOfRange {
                revision: MAX_REVISION + 1
            })
        );
        assert_eq!(check(MAX_REVISION), Ok(MAX_REVISION));
    }

    #[test]
    fn publishes_must_be_above_everything_published_or_live() {
        assert_eq!(
            check_publish(Some(9), Some(9), 9, None),
            Err(Error::StaleRevision {
                revision: 9,
                highest: 9
            })
        );
        assert_eq!(
            check_publish(Some(9), Some(7), 8, None).unwrap_err().code(),
            "stale_revision"
        );
        assert_eq!(
            check_publish(None, Some(4), 3, None),
            Err(Error::StaleRevision {
                revision: 3,
                highest: 4
            })
        );
        assert_eq!(check_publish(Some(9), Some(9), 10, None), Ok(()));
        assert_eq!(check_publish(None, None, 1, None), Ok(()));
    }

    #[test]
    fn expected_live_guards_against_concurrent_changes() {
        assert_eq!(
            check_publish(Some(9), Some(9), 10, Some(Some(8))),
            Err(Error::LiveMoved {
                expected: Some(8),
                live: Some(9)
            })
        );
        assert_eq!(
            check_publish(Some(9), Some(9), 10, Some(None))
                .unwrap_err()
                .code(),
            "conflict"
        );
        assert_eq!(check_publish(Some(9), Some(9), 10, Some(Some(9))), Ok(()));
        assert_eq!(check_publish(None, None, 1, Some(None)), Ok(()));
        // Stale comes first.
        assert_eq!(
            check_publish(Some(9), Some(9), 9, Some(Some(8)))
                .unwrap_err()
                .code(),
            "stale_revision"
        );
    }

    #[test]
    fn rollback_goes_to_a_kept_revision() {
        let kept = [5, 7, 9];
        assert_eq!(rollback_target(&kept, Some(9), None), Ok(7));
        assert_eq!(rollback_target(&kept, Some(7), None), Ok(5));
        assert_eq!(rollback_target(&kept, Some(9), Some(5)), Ok(5));
        assert_eq!(rollback_target(&kept, None, None), Ok(9));
        // A live revision that is not kept (written by hand): the highest kept one below it.
        assert_eq!(rollback_target(&kept, Some(8), None), Ok(7));
        assert_eq!(
            rollback_target(&kept, Some(5), None),
            Err(Error::RevisionNotKept {
                requested: None,
                live: Some(5),
                kept: kept.to_vec()
            })
        );
        assert_eq!(
            rollback_target(&[9, 5, 7], Some(9), Some(6)),
            Err(Error::RevisionNotKept {
                requested: Some(6),
                live: Some(9),
                kept: kept.to_vec()
            })
        );
        assert_eq!(
            rollback_target(&[], None, None).unwrap_err().code(),
            "revision_not_kept"
        );
    }
}
