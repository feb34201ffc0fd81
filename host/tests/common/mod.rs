//! Test harness: the plugin-api testkit's node harness (the real `heroic`
//! binary on a free port with a config written to a temp dir, talked to over
//! HTTP). Cargo builds this package's `heroic` into `target/<profile>/`
//! before running its tests, which is where the harness looks first.
#![allow(unused_imports)]

pub use heroic_plugin_api::testkit::node::{
    free_port, heroic_binary, plugin_dir, start_failure, values, write_config, Node,
};
