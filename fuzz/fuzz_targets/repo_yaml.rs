//! The prompt repository's YAML loader, in memory. The example repository is loaded once per
//! process (read, never copied or written); then for each input, whose first byte picks what the
//! rest is (a flag, a segment, a rollout or `promptflag.yaml`, each kind under one of the
//! example's keys or a new one), the text goes through `repo::read_yaml_text`, the loader's own
//! parsing and decoding, into a clone of the loaded repository, which `lint::lint` and
//! `lint::validate_environments` (every environment's ruleset through core) then check. Text
//! that does not parse as YAML stops at the parser.
//! Property: nothing panics; a bad file is a diagnostic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use promptflag_authoring::diagnostic::Diagnostics;
use promptflag_authoring::repo::{self, Repo, YamlKind};
use promptflag_authoring::{lint, yaml};

/// The example repository's files the inputs stand in for, by kind and key.
const SLOTS: [(YamlKind, &str); 6] = [
    (YamlKind::Flag, "support_prompt"),
    (YamlKind::Segment, "beta_testers"),
    (YamlKind::Rollout, "support_prompt"),
    (YamlKind::Config, "promptflag"),
    (YamlKind::Flag, "summary_prompt"),
    (YamlKind::Flag, "fuzz_new_flag"),
];

fn example() -> &'static Repo {
    static EXAMPLE: OnceLock<Repo> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/prompts-repo");
        repo::load(&root).expect("the example repository loads").0
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    // Text that is not YAML ends at the parser (the loader's diagnostic for it is the parse
    // error), so only documents go on to the decoders, lint and the rulesets.
    let Ok(node) = yaml::parse(text) else {
        return;
    };
    let _ = yaml::to_json(&node.value);
    let (kind, key) = SLOTS[usize::from(selector) % SLOTS.len()];
    let mut repo = example().clone();
    let mut diagnostics = Diagnostics::new();
    repo::read_yaml_text(&mut repo, kind, key, text, &mut diagnostics);
    let linted = lint::lint(&repo);
    let _ = lint::validate_environments(&repo, linted.as_slice());
});
