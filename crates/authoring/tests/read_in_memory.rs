//! The loader's in-memory entry, `repo::read_yaml_text`: a file's text decodes into the
//! repository exactly as the same file read from disk does, and bad text is a located
//! diagnostic, never a panic or a write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use promptflag_authoring::diagnostic::Diagnostics;
use promptflag_authoring::lint;
use promptflag_authoring::repo::{self, YamlKind};

fn example() -> repo::Repo {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/prompts-repo");
    repo::load(&root).unwrap().0
}

#[test]
fn a_files_text_decodes_as_the_file_read_from_disk_does() {
    let loaded = example();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/prompts-repo");
    for (kind, key, file) in [
        (
            YamlKind::Flag,
            "support_prompt",
            "flags/support_prompt.yaml",
        ),
        (
            YamlKind::Segment,
            "beta_testers",
            "segments/beta_testers.yaml",
        ),
        (
            YamlKind::Rollout,
            "support_prompt",
            "rollouts/support_prompt.yaml",
        ),
        (YamlKind::Config, "promptflag", "promptflag.yaml"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut repo = loaded.clone();
        let mut diagnostics = Diagnostics::new();
        repo::read_yaml_text(&mut repo, kind, key, &text, &mut diagnostics);
        assert!(
            diagnostics.as_slice().is_empty(),
            "{file}: {:?}",
            diagnostics.as_slice()
        );
        assert_eq!(format!("{repo:?}"), format!("{loaded:?}"), "{file}");
    }
}

#[test]
fn bad_text_is_a_located_diagnostic() {
    let mut repo = example();
    let mut diagnostics = Diagnostics::new();
    repo::read_yaml_text(
        &mut repo,
        YamlKind::Flag,
        "broken",
        "kind: [prompt\n",
        &mut diagnostics,
    );
    let found = diagnostics.as_slice();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].file.as_str(), found[0].code),
        ("flags/broken.yaml", "yaml_syntax")
    );

    let mut diagnostics = Diagnostics::new();
    repo::read_yaml_text(
        &mut repo,
        YamlKind::Segment,
        "beta_testers",
        "units: 12\n",
        &mut diagnostics,
    );
    assert!(diagnostics.as_slice().iter().any(|d| d.is_error()));
    // The repository with the bad segment still lints and validates without a panic.
    let linted = lint::lint(&repo);
    let _ = lint::validate_environments(&repo, linted.as_slice());
}
