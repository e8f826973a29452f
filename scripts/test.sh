#!/usr/bin/env bash
# berth's whole test suite, as root on Debian 12: unit tests, privileged tests (real mounts,
# device nodes, xattrs) and end-to-end tests (the berth binary, its daemon, Debian's
# docker-registry and skopeo on loopback). Privileged and e2e tests are #[ignore]d for plain
# `cargo test`; this script runs them with --include-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh must run as root: the privileged and end-to-end tests need it" >&2
    exit 1
fi
scripts/deps.sh
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --include-ignored
