//! The app's floors, held by its imports: the view model and the scenarios speak only the
//! vocabulary (`stickyscope-vocab`, `stickyscope-contract`), so they sit beside the sessions,
//! not above them; the window reaches the network only through the conductor's bridge; the
//! network side never reaches up into the window, the view model or the scenarios. A `use`
//! that breaks a rule fails here with the file, the line and the rule.

use std::path::{Path, PathBuf};

/// A folder (or file) of `src/`, and the `crate::` modules its code may name.
struct Rule {
    place: &'static str,
    /// Files of `place` the rule does not cover, and why.
    except: &'static [&'static str],
    may: Option<&'static [&'static str]>,
    must_not: &'static [&'static str],
    why: &'static str,
}

const NETWORK_SIDE: &[&str] = &[
    "src/session",
    "src/wire",
    "src/conductor",
    "src/stack",
    "src/balancer",
    "src/probe",
    "src/doctor",
    "src/http_serve.rs",
    "src/traefik_client.rs",
    "src/topology_read.rs",
    "src/tls_trust.rs",
    "src/event_sink.rs",
];

const RULES: &[Rule] = &[
    Rule {
        place: "src/model",
        except: &[],
        may: Some(&["model"]),
        must_not: &[],
        why: "the view model folds the vocabulary's events and nothing else (pure)",
    },
    Rule {
        place: "src/scenario",
        // The headless runner starts a conductor: it is the one networked file.
        except: &["src/scenario/run.rs"],
        may: Some(&["scenario"]),
        must_not: &[],
        why: "a scenario's format, checks and player speak the vocabulary only (pure)",
    },
    Rule {
        place: "src/clip",
        except: &[],
        may: Some(&["clip"]),
        must_not: &[],
        why: "clips turn frames into GIFs and know nothing else",
    },
    Rule {
        place: "src/ui",
        except: &[],
        may: None,
        must_not: &[
            "session",
            "wire",
            "balancer",
            "http_serve",
            "traefik_client",
            "tls_trust",
            "probe",
            "doctor",
            "topology_read",
        ],
        why:
            "the window never opens a socket: it reaches the network through the conductor's bridge",
    },
];

fn rust_files(place: &Path, out: &mut Vec<PathBuf>) {
    if place.is_file() {
        out.push(place.to_owned());
        return;
    }
    for entry in std::fs::read_dir(place).expect("a source folder reads") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::MODULE` named in code (not in comments), with its line number.
fn crate_modules(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).expect("a source file reads");
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
            rest = after;
        }
        // `use crate::{a, b}` names several.
        if let Some(group) = code.split("crate::{").nth(1) {
            let group = group.split('}').next().unwrap_or_default();
            for name in group.split(',') {
                let name = name.trim().split("::").next().unwrap_or_default().trim();
                if !name.is_empty() {
                    found.push((n + 1, name.to_owned()));
                }
            }
        }
    }
    found
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn each_floor_names_only_what_is_below_it() {
    let mut broken = Vec::new();
    for rule in RULES {
        let mut files = Vec::new();
        rust_files(&root().join(rule.place), &mut files);
        assert!(!files.is_empty(), "{} has no source files", rule.place);
        for file in files {
            let relative = file.strip_prefix(root()).expect("under the root");
            if rule.except.iter().any(|e| relative == Path::new(e)) {
                continue;
            }
            for (line, module) in crate_modules(&file) {
                let allowed = match rule.may {
                    Some(may) => may.contains(&module.as_str()),
                    None => !rule.must_not.contains(&module.as_str()),
                };
                if !allowed {
                    broken.push(format!(
                        "{}:{line}: crate::{module} — {}",
                        relative.display(),
                        rule.why
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the floors:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_network_side_never_reaches_up_into_the_window() {
    let mut broken = Vec::new();
    for place in NETWORK_SIDE {
        let mut files = Vec::new();
        rust_files(&root().join(place), &mut files);
        assert!(!files.is_empty(), "{place} has no source files");
        for file in files {
            let relative = file
                .strip_prefix(root())
                .expect("under the root")
                .to_owned();
            for (line, module) in crate_modules(&file) {
                if ["ui", "model", "scenario", "clip"].contains(&module.as_str()) {
                    broken.push(format!("{}:{line}: crate::{module}", relative.display()));
                }
            }
            let text = std::fs::read_to_string(&file).expect("a source file reads");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                if code.contains("egui") || code.contains("eframe") {
                    broken.push(format!("{}:{}: egui", relative.display(), n + 1));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the network side names the window's side:\n{}",
        broken.join("\n")
    );
}

#[test]
fn a_broken_rule_is_found() {
    // The reader itself: a `use` of the sessions in a file of the view model is found.
    let dir = std::env::temp_dir().join(format!("stickyscope-layering-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let file = dir.join("bad.rs");
    std::fs::write(
        &file,
        "// crate::ui in a comment is fine\nuse crate::session::ChatSession;\nuse crate::{model, wire::Tap};\n",
    )
    .expect("a temporary file");
    let found = crate_modules(&file);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        found,
        [
            (2, "session".to_owned()),
            (3, "model".to_owned()),
            (3, "wire".to_owned())
        ]
    );
}
