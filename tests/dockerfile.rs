//! The Dockerfile's build stage copies everything the manifest needs: cargo is run on a
//! folder holding only what the Dockerfile's COPY lines bring, as `docker build` would.
//! (No Docker engine runs on the test machines; this checks the part that can break.)

use std::path::Path;
use std::process::Command;

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

#[test]
fn the_build_stage_copies_what_cargo_needs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let context = tempfile::tempdir().unwrap();
    let mut copied = 0;
    // The first stage's COPY lines from the build context (not `--from=` another stage).
    for line in dockerfile
        .lines()
        .take_while(|l| !l.starts_with("FROM debian"))
    {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        let parts: Vec<&str> = args.split_whitespace().collect();
        let (sources, dest) = parts.split_at(parts.len() - 1);
        for source in sources {
            let target = if dest[0].ends_with('/') {
                context.path().join(source)
            } else {
                context.path().join(dest[0])
            };
            copy_tree(&root.join(source), &target);
            copied += 1;
        }
    }
    assert!(copied >= 3, "no COPY lines found in the Dockerfile");
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| root.join("target").display().to_string());
    let out = Command::new(env!("CARGO"))
        .args([
            "check",
            "--offline",
            "--locked",
            "--bin",
            "fleetsim",
            "--message-format",
            "short",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(context.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo cannot build from the Dockerfile's context:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
