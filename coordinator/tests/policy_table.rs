//! The policy as a table: every action by every role, on granted and
//! ungranted pipelines and colours; patterns; refusals naming the identity
//! and the missing grant; bad policies refused.

use cutover_coordinator::auth::policy::{Action, Policy, Refusal, matches};
use cutover_core::Colour;

const POLICY: &str = r#"
grants:
  - identity: spiffe://a/gate-blue
    role: gate
    pipelines: ["orders"]
    colours: [BLUE]
  - identity: spiffe://a/gate-any
    role: gate
    pipelines: ["pay-*"]
  - identity: spiffe://a/viewer
    role: viewer
  - identity: spiffe://a/operator
    role: operator
    pipelines: ["orders", "pay-*"]
  - identity: spiffe://a/admin
    role: admin
    pipelines: ["orders"]
"#;

const ACTIONS: [Action; 5] = [
    Action::RegisterGate(Colour::Blue),
    Action::RegisterGate(Colour::Green),
    Action::View,
    Action::Operate,
    Action::Administer,
];

/// (identity, pipeline, the actions allowed there, in ACTIONS order).
const TABLE: &[(&str, &str, [bool; 5])] = &[
    (
        "spiffe://a/gate-blue",
        "orders",
        [true, false, false, false, false],
    ),
    (
        "spiffe://a/gate-blue",
        "payments",
        [false, false, false, false, false],
    ),
    (
        "spiffe://a/gate-any",
        "pay-eu",
        [true, true, false, false, false],
    ),
    (
        "spiffe://a/gate-any",
        "orders",
        [false, false, false, false, false],
    ),
    (
        "spiffe://a/viewer",
        "orders",
        [false, false, true, false, false],
    ),
    (
        "spiffe://a/viewer",
        "anything",
        [false, false, true, false, false],
    ),
    (
        "spiffe://a/operator",
        "orders",
        [false, false, true, true, false],
    ),
    (
        "spiffe://a/operator",
        "pay-us",
        [false, false, true, true, false],
    ),
    (
        "spiffe://a/operator",
        "other",
        [false, false, false, false, false],
    ),
    (
        "spiffe://a/admin",
        "orders",
        [false, false, true, true, true],
    ),
    (
        "spiffe://a/admin",
        "pay-eu",
        [false, false, false, false, false],
    ),
    (
        "spiffe://a/stranger",
        "orders",
        [false, false, false, false, false],
    ),
];

#[test]
fn every_action_by_every_role_on_granted_and_other_pipelines() {
    let policy = Policy::parse(POLICY).expect("a valid policy");
    for (identity, pipeline, allowed) in TABLE {
        for (action, allowed) in ACTIONS.iter().zip(allowed) {
            let checked = policy.check(Some(identity), *action, pipeline);
            assert_eq!(
                checked.is_ok(),
                *allowed,
                "{identity} {action:?} on {pipeline}: {checked:?}"
            );
            if let Err(refusal) = checked {
                let text = refusal.to_string();
                assert!(
                    text.contains(identity)
                        && text.contains(action.needs())
                        && text.contains(pipeline),
                    "the refusal names who, what and where: {text}"
                );
            }
        }
    }
}

#[test]
fn without_an_identity_every_action_is_unauthenticated() {
    let policy = Policy::parse(POLICY).expect("a valid policy");
    for action in ACTIONS {
        assert_eq!(
            policy.check(None, action, "orders"),
            Err(Refusal::Unauthenticated)
        );
    }
    // An empty policy grants nothing.
    let empty = Policy::parse("grants: []").expect("valid");
    assert!(
        empty
            .check(Some("spiffe://a/admin"), Action::View, "orders")
            .is_err()
    );
}

#[test]
fn a_wildcard_identity_grants_every_authenticated_caller() {
    let policy = Policy::parse("grants:\n  - identity: '*'\n    role: viewer\n").expect("valid");
    assert!(policy.check(Some("anyone"), Action::View, "orders").is_ok());
    assert!(
        policy
            .check(Some("anyone"), Action::Operate, "orders")
            .is_err()
    );
    assert_eq!(
        policy.check(None, Action::View, "orders"),
        Err(Refusal::Unauthenticated)
    );
}

#[test]
fn patterns() {
    for (pattern, name, matched) in [
        ("*", "anything", true),
        ("orders", "orders", true),
        ("orders", "orders-2", false),
        ("pay-*", "pay-", true),
        ("pay-*", "pay-eu", true),
        ("pay-*", "pa", false),
        ("*-eu", "pay-eu", true),
        ("*-eu", "pay-us", false),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "acb", false),
        ("a*a", "a", false),
    ] {
        assert_eq!(matches(pattern, name), matched, "{pattern} ~ {name}");
    }
}

#[test]
fn bad_policies_are_refused_with_the_grant_named() {
    for (text, expected) in [
        (
            "grants:\n  - identity: ''\n    role: viewer\n",
            "grant 0: identity is empty",
        ),
        (
            "grants:\n  - identity: x\n    role: viewer\n    colours: [BLUE]\n",
            "grant 0: colours apply to the gate role only",
        ),
        (
            "grants:\n  - identity: x\n    role: root\n",
            "unknown variant",
        ),
        (
            "grants:\n  - identity: x\n    role: viewer\n    extra: 1\n",
            "unknown field",
        ),
        (
            "grants:\n  - identity: x\n    role: gate\n    pipelines: ['']\n",
            "grant 0: a pipeline pattern is empty",
        ),
    ] {
        let error = Policy::parse(text).expect_err(text).to_string();
        assert!(error.contains(expected), "{text} → {error}");
    }
}
