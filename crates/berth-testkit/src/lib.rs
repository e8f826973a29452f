//! berth-testkit: fixture images made from Debian's static busybox, loopback registries (Debian's
//! `docker-registry` and an in-process fake that can lie), and the `priv_test!` macro.

pub mod fake_registry;
pub mod image;
pub mod registry;

/// Declares a privileged test (real mounts, namespaces, device nodes). It compiles to an
/// `#[ignore]`d test that `scripts/test.sh` runs as root with `--include-ignored`; run by hand
/// without root it fails loudly instead of passing quietly.
///
/// A declarative macro rather than the `#[priv_test]` attribute STYLE.md sketches: same effect,
/// no proc-macro crate to build.
#[macro_export]
macro_rules! priv_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        #[ignore = "needs root: scripts/test.sh runs it with --include-ignored"]
        fn $name() {
            $crate::require_root();
            $body
        }
    };
}

/// Panics unless running as root (privileged tests must not pass by skipping).
pub fn require_root() {
    // SAFETY-free check: /proc/self/status names the effective uid
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    assert_eq!(
        euid, "0",
        "this privileged test needs root; run scripts/test.sh as root"
    );
}
