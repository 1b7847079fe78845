//! Prompt and flag hygiene (`promptflag hygiene`, `docs/companion.md`): what is past its review
//! date (the staleness SLA), past its deletion date, without an owner, or served to nobody in
//! the exposure window.
//!
//! Dates are calendar days (`YYYY-MM-DD`, UTC). A review date is due on the day itself: a
//! `review_by: 2030-06-30` family is overdue from 2030-07-01. Exposure counts come from the
//! telemetry store through the caller ([`Exposure`]), so this module stays free of databases;
//! without them the exposure check is skipped and says so.

use std::collections::BTreeMap;

use crate::repo::Repo;
use crate::yaml::Located;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn parse_day(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.len() != 10 {
        return None;
    }
    promptflag_core::literal::parse_rfc3339_millis(&format!("{text}T00:00:00Z"))
        .map(|millis| millis.div_euclid(86_400_000))
}

/// Today (UTC) in days since 1970-01-01.
pub fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| (elapsed.as_secs() / 86_400) as i64)
        .unwrap_or(0)
}

/// Exposures and calls seen in the window, as the telemetry store counted them.
#[derive(Debug, Clone, Default)]
pub struct Exposure {
    /// Exposures and calls per flag key.
    pub flags: BTreeMap<String, u64>,
    /// Exposures and calls per prompt family (by prompt id, or by a body hash of its versions).
    pub families: BTreeMap<String, u64>,
}

/// One stale prompt family or flag.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// `prompt` or `flag`.
    pub kind: &'static str,
    /// The family folder or flag key.
    pub name: String,
    /// The file that declares it.
    pub file: String,
    /// Its owner, if any.
    pub owner: Option<String>,
    /// Its review date, if any.
    pub review_by: Option<String>,
    /// Its deletion date, if any.
    pub delete_after: Option<String>,
    /// Exposures and calls in the window (`None` when the telemetry store was not read).
    pub exposures: Option<u64>,
    /// Why it is listed: `no_owner`, `review_overdue`, `past_delete_after`, `no_exposure`.
    pub reasons: Vec<&'static str>,
}

/// Everything stale in a repository on `today` (days since the epoch).
pub fn audit(repo: &Repo, today: i64, exposure: Option<&Exposure>) -> Vec<Finding> {
    let mut out = Vec::new();
    let value = |field: &Option<Located<String>>| field.as_ref().map(|f| f.value.clone());
    for family in repo.families.values().filter(|f| f.loaded) {
        let finding = Finding {
            kind: "prompt",
            name: family.dir.clone(),
            file: family.metadata_file.clone(),
            owner: value(&family.owner),
            review_by: value(&family.review_by),
            delete_after: value(&family.delete_after),
            exposures: exposure.map(|e| e.families.get(&family.dir).copied().unwrap_or(0)),
            reasons: Vec::new(),
        };
        push_if_stale(finding, today, &mut out);
    }
    for flag in repo.flags.values().filter(|f| f.loaded) {
        // A prompt flag without its own owner is owned by the family it serves.
        let owner = value(&flag.owner).or_else(|| {
            repo.families
                .values()
                .find(|family| family.flag.as_ref().is_some_and(|f| f.value == flag.key))
                .and_then(|family| value(&family.owner))
        });
        let finding = Finding {
            kind: "flag",
            name: flag.key.clone(),
            file: flag.file.clone(),
            owner,
            review_by: value(&flag.review_by),
            delete_after: value(&flag.delete_after),
            exposures: exposure.map(|e| e.flags.get(&flag.key).copied().unwrap_or(0)),
            reasons: Vec::new(),
        };
        push_if_stale(finding, today, &mut out);
    }
    out
}

fn push_if_stale(mut finding: Finding, today: i64, out: &mut Vec<Finding>) {
    if finding.owner.as_deref().is_none_or(|o| o.trim().is_empty()) {
        finding.reasons.push("no_owner");
    }
    if finding
        .review_by
        .as_deref()
        .and_then(parse_day)
        .is_some_and(|day| day < today)
    {
        finding.reasons.push("review_overdue");
    }
    if finding
        .delete_after
        .as_deref()
        .and_then(parse_day)
        .is_some_and(|day| day < today)
    {
        finding.reasons.push("past_delete_after");
    }
    if finding.exposures == Some(0) {
        finding.reasons.push("no_exposure");
    }
    if !finding.reasons.is_empty() {
        out.push(finding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_strictly() {
        assert_eq!(parse_day("1970-01-02"), Some(1));
        assert_eq!(
            parse_day("2030-07-01").map(|d| d - parse_day("2030-06-30").unwrap()),
            Some(1)
        );
        assert_eq!(parse_day("2030-7-1"), None);
        assert_eq!(parse_day("2030-02-30"), None);
        assert_eq!(parse_day("soon"), None);
    }
}
