//! The YAML reader: every node carries its line, syntax errors are short and located, and
//! duplicate keys are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use promptflag_authoring::yaml::{Node, parse};

#[test]
fn nodes_carry_their_lines() {
    let node = parse("a: 1\nb:\n  - x\n  - y: true\n").unwrap();
    let Node::Map(entries) = &node.value else {
        panic!("not a map")
    };
    assert_eq!(entries[1].0.line, 2);
    let Node::Seq(items) = &entries[1].1.value else {
        panic!("not a seq")
    };
    assert_eq!(items[1].line, 4);
}

#[test]
fn syntax_errors_have_a_line_and_a_short_message() {
    let error = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
    assert_eq!(error.line, 3);
    assert!(!error.message.contains('\n'));
    assert!(!error.message.starts_with("error"));
}

#[test]
fn duplicate_keys_are_errors() {
    let error = parse("a: 1\na: 2\n").unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("duplicate"), "{}", error.message);
}

#[test]
fn empty_documents_are_null() {
    assert_eq!(parse("  \n").unwrap().value, Node::Null);
}
