//! Every way loading a plugin can fail gives a message that names the
//! plugin and says what to do.

mod common;

use common::start_failure;
use heroic_plugin_api::ffi::API_VERSION;

fn fails_with<S: AsRef<str>>(config: &str, expected: &[S]) {
    let dir = tempfile::tempdir().unwrap();
    let log = start_failure(dir.path(), config);
    for e in expected {
        let e = e.as_ref();
        assert!(log.contains(e), "expected {e:?} in:\n{log}");
    }
}

#[test]
fn plugin_not_found_lists_dirs_and_plugins() {
    fails_with(
        "[plugins]\ndirs = [\"{dir}/nowhere\", \"{plugins}\"]\n[[metrics]]\nplugin = \"nope\"\n",
        &["plugin \"nope\" not found", "libheroic_plugin_nope", "nowhere", "plugins found there:", "faulty"],
    );
}

#[test]
fn plugin_built_against_another_api_version() {
    fails_with(
        "[plugins]\ndirs = [\"{plugins}\"]\n[[metrics]]\nplugin = \"old-abi\"\n",
        &[
            "libheroic_plugin_old_abi",
            "built against heroic-plugin-api 0.0.1",
            format!("this host has heroic-plugin-api {API_VERSION}").as_str(),
            "rebuild the plugin against 1.",
        ],
    );
}

#[test]
fn plugin_built_against_a_newer_minor_version_is_refused() {
    fails_with(
        "[plugins]\ndirs = [\"{plugins}\"]\n[[metrics]]\nplugin = \"future-abi\"\n",
        &[
            "libheroic_plugin_future_abi",
            "built against heroic-plugin-api 1.999.0",
            format!("this host has heroic-plugin-api {API_VERSION}").as_str(),
            "upgrade the host",
        ],
    );
}

#[test]
fn unknown_key_in_plugin_config_names_key_and_plugin() {
    fails_with(
        "[plugins]\ndirs = [\"{plugins}\"]\n[[metrics]]\nplugin = \"faulty\"\n[metrics.config]\nbogus = 1\n",
        &["plugin \"faulty\"", "unknown field `bogus`"],
    );
}

#[test]
fn unknown_key_in_host_config_is_refused() {
    fails_with("[server]\nlistn = \"127.0.0.1:1\"\n", &["unknown field `listn`", "line 2"]);
}

#[test]
fn backend_unreachable_at_start() {
    fails_with(
        "[plugins]\ndirs = [\"{plugins}\"]\n[[metrics]]\nid = \"primary\"\nplugin = \"faulty\"\n[metrics.config]\nunreachable = true\n",
        &["metrics \"primary\" (plugin \"faulty\")", "unavailable", "connection refused"],
    );
}

#[test]
fn plugin_without_the_requested_role() {
    fails_with(
        "[plugins]\ndirs = [\"{plugins}\"]\n[[metadata]]\nplugin = \"faulty\"\n",
        &["plugin \"faulty\"", "provides no metadata backend", "it provides: metrics"],
    );
}
