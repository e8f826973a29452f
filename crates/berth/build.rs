//! Links the `berth` binary as a position-dependent executable on x86_64 Linux.
//!
//! Every `berth run` starts this binary three times over (the CLI, and the daemon's shim
//! fork server forks it), and a position-independent one spends about 0.7 ms of each CLI
//! start in the dynamic loader applying its ~40,000 relative relocations (touching ~200
//! pages of `.data.rel.ro`). Linked without PIE, the addresses are fixed at link time and
//! nothing is relocated. The cost is ASLR of the binary's own image (libraries, heap and
//! stacks stay randomized), as with Go's default builds of docker, containerd and runc.
//! `BERTH_PIE=1` keeps PIE.

fn main() {
    println!("cargo:rerun-if-env-changed=BERTH_PIE");
    let target = std::env::var("TARGET").unwrap_or_default();
    let pie = std::env::var("BERTH_PIE").is_ok_and(|v| v == "1");
    if target == "x86_64-unknown-linux-gnu" && !pie {
        println!("cargo:rustc-link-arg-bin=berth=-no-pie");
    }
}
