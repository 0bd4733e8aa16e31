//! The vocabulary stays pure: its dependencies (and the contract's below it) are crates that do
//! no I/O, and its own code names no part of the standard library that reaches outside the
//! process. A new dependency or an `std::net` here fails this test, naming what to move out.

use std::path::Path;

/// Crates the vocabulary and the contract may depend on: data, encodings and hashes.
const PURE: &[&str] = &[
    "stickyscope-contract",
    "serde",
    "serde_json",
    "thiserror",
    "base64",
    "bytes",
    "sha2",
    "http",
    "humantime",
    "clap",
];

/// Parts of the standard library that reach outside the process.
const IMPURE_STD: &[&str] = &[
    "std::net",
    "std::fs",
    "std::process",
    "std::thread",
    "std::env",
    "std::io::stdin",
    "std::os",
];

fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("the manifest reads");
    let doc: toml::Table = text.parse().expect("the manifest is TOML");
    doc.get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|deps| deps.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_vocabulary_and_the_contract_depend_on_pure_crates_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for manifest in [
        root.join("Cargo.toml"),
        root.join("../stack/contract/Cargo.toml"),
    ] {
        let deps = dependencies(&manifest);
        assert!(
            !deps.is_empty(),
            "{} lists no dependencies",
            manifest.display()
        );
        let impure: Vec<&String> = deps
            .iter()
            .filter(|d| !PURE.contains(&d.as_str()))
            .collect();
        assert!(
            impure.is_empty(),
            "{} depends on {impure:?}, which may do I/O: the vocabulary is pure; put what needs it in the app",
            manifest.display()
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source folder reads") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_vocabulary_names_no_std_module_that_reaches_outside() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("../stack/contract/src"), &mut files);
    assert!(files.len() > 10, "found only {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a source file reads");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for module in IMPURE_STD {
                if code.contains(module) {
                    found.push(format!("{}:{}: {module}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the vocabulary reaches outside: {found:#?}"
    );
}
