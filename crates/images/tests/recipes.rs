//! The shipped example recipes load, and the user-data a build would generate from each passes `cloud-init schema`
//! (Debian's cloud-init, the consumer that matters).

use std::path::Path;
use std::process::Command;

use images::recipe::{Recipe, Source};

fn examples() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    ["debian-12.toml", "ubuntu-24.04.toml"].iter().map(|f| dir.join(f)).collect()
}

#[test]
fn example_recipes_load_and_their_user_data_is_valid_cloud_config() {
    let files = examples();
    assert!(files.len() >= 2, "{files:?}");
    let dir = tempfile::tempdir().unwrap();
    let key = cloudinit::KeyPair::generate("vmkit@test").unwrap();
    for file in files {
        let recipe = Recipe::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let mut variants = vec![recipe.clone()];
        let mut with_nix = recipe.clone();
        with_nix.install_nix = true;
        variants.push(with_nix);
        for (i, r) in variants.iter().enumerate() {
            let user_data = images::build::cloud_config(r, &key).render().unwrap();
            let path = dir.path().join(format!("{}-{i}.yaml", r.name));
            std::fs::write(&path, &user_data).unwrap();
            let out = Command::new("cloud-init").args(["schema", "--config-file"]).arg(&path).output().unwrap();
            assert!(out.status.success(), "{}: {}\n{user_data}", file.display(), String::from_utf8_lossy(&out.stdout));
        }
    }
}

#[test]
fn the_ubuntu_example_pins_a_dated_release_directory() {
    let recipe = Recipe::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ubuntu-24.04.toml")).unwrap();
    match recipe.source {
        Source::CloudImage { url, sha256 } => {
            assert_eq!(
                url,
                "https://cloud-images.ubuntu.com/releases/noble/release-20260615/ubuntu-24.04-server-cloudimg-amd64.img"
            );
            assert_eq!(sha256, "5fa5b05e5ec239858c4531485d6023b0896448c2df7c63b34f8dae6ea6051a44");
        }
        other => panic!("{other:?}"),
    }
}
