//! The token estimate diff reports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use promptflag_authoring::tokens::estimate;

#[test]
fn four_characters_make_a_token() {
    assert_eq!(estimate(""), 0);
    assert_eq!(estimate("abcd"), 1);
    assert_eq!(estimate("abcde"), 2);
    assert_eq!(estimate("éééé"), 1);
}
