//! Builds berth-init (crates/berth-init) as a static binary for embedding: `--init`
//! containers get it bind-mounted at /sbin/docker-init, and their images may have no libc.
//! A bare `rustc` call (the crate has no dependencies) with `+crt-static`; the result is
//! checked for a program interpreter, which a static binary does not have.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let init_src = manifest.join("../berth-init/src");
    println!("cargo:rerun-if-changed={}", init_src.display());
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("berth-init");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("set by cargo");
    let output = Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "berth_init",
            "--crate-type",
            "bin",
            "--target",
            &target,
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "relocation-model=static",
            "-o",
        ])
        .arg(&out)
        .arg(init_src.join("main.rs"))
        .output()
        .unwrap_or_else(|e| panic!("running {rustc:?} for berth-init: {e}"));
    if !output.status.success() {
        panic!(
            "building the static berth-init failed (on glibc hosts it needs libc.a from libc6-dev):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let bin = std::fs::read(&out).expect("built berth-init");
    assert!(
        !has_interpreter(&bin),
        "berth-init came out dynamically linked; check that libc.a is installed"
    );
}

/// Whether a 64-bit little-endian ELF has a PT_INTERP program header (a dynamic executable).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().expect("4 bytes")) == 3
    })
}
