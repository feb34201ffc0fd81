//! Every example config in `examples/` parses, so the docs never show a
//! config the server would refuse.

use heroic::config::Config;

#[test]
fn every_example_config_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!config.metrics.is_empty() || !config.consumers.is_empty(), "{} has no backends", path.display());
            parsed += 1;
        }
    }
    assert!(parsed >= 1, "no example configs found in {}", dir.display());
}
