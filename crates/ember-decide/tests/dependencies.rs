//! ember-decide must stay light (it runs where inference runs): no training stack anywhere in
//! its dependency tree.

use std::process::Command;

#[test]
fn no_training_dependencies() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "ember-decide",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--manifest-path",
            manifest,
        ])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("ember-infer"), "unexpected tree:\n{tree}");
    for heavy in [
        "burn",
        "polars",
        "cubecl",
        "wgpu",
        "ember-train",
        "ember-data",
        "ember-models",
    ] {
        let found: Vec<&str> = tree.lines().filter(|l| l.starts_with(heavy)).collect();
        assert!(found.is_empty(), "ember-decide depends on {found:?}");
    }
}
