//! The `cutover` binary's command line: subcommands and the flags' help.
//! (Building this test also builds the binary that the process-level tests
//! in `tests/` start.)

use std::process::Command;

fn cutover(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .output()
        .expect("the cutover binary runs");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn help_lists_the_subcommands() {
    let (ok, text) = cutover(&["--help"]);
    assert!(ok, "{text}");
    for subcommand in [
        "serve", "demo", "status", "schedule", "abort", "promote", "complete", "crds", "bench",
    ] {
        assert!(text.contains(subcommand), "{subcommand} missing:\n{text}");
    }
}

#[test]
fn serve_help_explains_every_flag_and_its_environment_variable() {
    let (ok, text) = cutover(&["serve", "--help"]);
    assert!(ok, "{text}");
    for flag in [
        "--listen",
        "CUTOVER_LISTEN",
        "--store",
        "CUTOVER_STORE",
        "etcd:",
        "--horizon-window",
        "CUTOVER_HORIZON_WINDOW",
        "--etcd-prefix",
        "--metrics-listen",
        "--tls-cert",
        "CUTOVER_TLS_CERT",
        "--tls-client-ca",
        "--insecure-plaintext",
    ] {
        assert!(text.contains(flag), "{flag} missing:\n{text}");
    }
}

#[test]
fn a_bad_store_is_refused_with_a_clear_message() {
    let (ok, text) = cutover(&["serve", "--store", "zookeeper:x"]);
    assert!(!ok);
    assert!(text.contains("expected file:PATH"), "{text}");
}
