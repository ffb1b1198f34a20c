//! What the integration tests share.
#![allow(dead_code)]

/// Set in CI (`.ci/run`): a test whose input is missing fails instead of skipping.
pub const REQUIRE_INPUTS: &str = "EMBER_REQUIRE_TEST_INPUTS";

/// Whether a Vulkan device may be used: `EMBER_TEST_WGPU` is set (CI sets it after installing
/// Mesa's lavapipe). Otherwise the test skips, saying why, or fails when [`REQUIRE_INPUTS`] is
/// set.
pub fn vulkan_available() -> bool {
    if std::env::var_os("EMBER_TEST_WGPU").is_some() {
        return true;
    }
    let reason = "set EMBER_TEST_WGPU=1 to run on a Vulkan device (CI: Mesa lavapipe)";
    if std::env::var_os(REQUIRE_INPUTS).is_some() {
        panic!("{reason}; {REQUIRE_INPUTS} is set: a test with a missing input fails");
    }
    eprintln!("skipped: {reason}");
    false
}
