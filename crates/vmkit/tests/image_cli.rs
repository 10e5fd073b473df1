//! `vmkit image` paths that need no guest: recipe mistakes at FILE:LINE:COL with exit 2, a cloud image whose
//! SHA-256 does not match (exit 1, nothing cached, no output and no work directory), `image test` on a directory
//! that is not an image (exit 2), and an output path that holds something else (refused, untouched).

use assert_cmd::Command;
use predicates::prelude::*;

fn vmkit() -> Command {
    Command::cargo_bin("vmkit").unwrap()
}

#[test]
fn recipe_mistakes_exit_2_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("bad.toml");
    std::fs::write(
        &recipe,
        "name = \"x\"\nusername = \"agent\"\nmemroy = 1024\nsource = { debian = { suite = \"bookworm\" } }\n",
    )
    .unwrap();
    vmkit()
        .args(["image", "build"])
        .arg(&recipe)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{}:3:1: unknown field `memroy`", recipe.display())));
    assert!(!dir.path().join("out").exists());
}

#[test]
fn cloud_image_with_the_wrong_digest_fails_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("cloud.img");
    std::fs::write(&image, vec![7u8; 4096]).unwrap();
    let recipe = dir.path().join("cloud.toml");
    std::fs::write(
        &recipe,
        format!(
            "name = \"cloud\"\nusername = \"agent\"\n[source.cloudImage]\nurl = \"file://{}\"\nsha256 = \"{}\"\n",
            image.display(),
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    vmkit()
        .args(["image", "build"])
        .arg(&recipe)
        .arg("--out")
        .arg(dir.path().join("cloud"))
        .arg("--cache-dir")
        .arg(&cache)
        .args(["--progress", "off"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("SHA-256 mismatch").and(predicate::str::contains("nothing was cached")));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("cloud") && n != "cloud.img" && n != "cloud.toml")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let cached = std::fs::read_dir(cache.join("sha256")).map(Iterator::count).unwrap_or(0);
    assert_eq!(cached, 0);
}

#[test]
fn an_output_path_holding_something_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("precious");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let recipe = dir.path().join("r.toml");
    std::fs::write(&recipe, "name = \"r\"\nusername = \"agent\"\nsource = { debian = { suite = \"bookworm\" } }\n")
        .unwrap();
    vmkit()
        .args(["image", "build"])
        .arg(&recipe)
        .arg("--out")
        .arg(&out)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a vmkit image directory"));
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn image_test_of_a_plain_directory_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    vmkit()
        .args(["image", "test"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no manifest.json"));
    vmkit().args(["image", "--help"]).assert().success();
    vmkit().args(["image", "build", "--help"]).assert().success();
}
