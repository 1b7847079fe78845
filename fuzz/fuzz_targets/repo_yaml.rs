//! The prompt repository's YAML loader. The input's first byte picks one of the example
//! repository's YAML files (a flag, a segment, a rollout, the prompt metadata or
//! `promptflag.yaml`); the rest, as UTF-8, goes through `yaml::parse` and, when it parses, is
//! written over that file in a copy of the example repository made once per process, which
//! `lint::check` (the loader, lint and every environment's ruleset through core) then reads.
//! Property: nothing panics; a bad file is a diagnostic or an error.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use promptflag_authoring::{lint, yaml};

const SLOTS: [&str; 6] = [
    "flags/support_prompt.yaml",
    "segments/beta_testers.yaml",
    "rollouts/support_prompt.yaml",
    "prompts/support_reply/metadata.yaml",
    "promptflag.yaml",
    "flags/summary_prompt.yaml",
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the example repository in a fresh temporary folder, with each slot's original text.
fn skeleton() -> &'static (PathBuf, Vec<String>) {
    static SKELETON: OnceLock<(PathBuf, Vec<String>)> = OnceLock::new();
    SKELETON.get_or_init(|| {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/prompts-repo");
        let root =
            std::env::temp_dir().join(format!("promptflag-fuzz-repo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        copy_dir(&example, &root);
        let originals = SLOTS
            .iter()
            .map(|slot| std::fs::read_to_string(root.join(slot)).unwrap())
            .collect();
        (root, originals)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(node) = yaml::parse(text) else {
        return;
    };
    let _ = yaml::to_json(&node.value);
    let (root, originals) = skeleton();
    let slot = usize::from(selector) % SLOTS.len();
    let path = root.join(SLOTS[slot]);
    std::fs::write(&path, text).unwrap();
    let _ = lint::check(root);
    std::fs::write(&path, &originals[slot]).unwrap();
});
