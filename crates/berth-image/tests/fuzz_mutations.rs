//! Deterministic mutation fuzzing of berth-image's parsers and unpacker (the bodies of the
//! `cargo fuzz` targets in `fuzz/`), seeded from the test kit's real image: bit flips, byte
//! inserts and deletes, truncations and splices of valid inputs. Stable Rust, runs in CI; the
//! coverage-guided targets go deeper when run with `cargo fuzz`.

use berth_image::fuzzing;
use berth_testkit::image::{busybox_image, feature_layer, index, Compression, TarBuilder};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(v.len() + 1);
                let b = [0u8, 0xff, b'"', b'{', b'/', b'.', b'\n', b'0'][rng.below(8)];
                v.insert(i, b);
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            3 => v.truncate(rng.below(v.len() + 1)),
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let (a, b) = (rng.below(v.len() + 1), rng.below(other.len() + 1));
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            _ => {}
        }
    }
    v
}

#[test]
fn manifests_and_configs_never_panic() {
    let img = busybox_image(Compression::Gzip, "amd64").expect("fixture");
    let seeds = vec![
        img.manifest.data.clone(),
        img.config.data.clone(),
        index(&[("amd64", &img)]).data,
        b"{\"schemaVersion\":2,\"manifests\":[]}".to_vec(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for s in &seeds {
        fuzzing::manifest(s);
    }
    for _ in 0..20_000 {
        fuzzing::manifest(&mutate(&mut rng, &seeds));
    }
}

#[test]
fn references_never_panic_and_round_trip() {
    let seeds: Vec<Vec<u8>> = [
        "busybox",
        "docker.io/library/busybox:latest",
        "localhost:5000/a/b-c_d.e:v1.2",
        "reg.example.com/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "[::1]:5000/img:tag",
        "linux/arm64/v8",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..50_000 {
        fuzzing::reference(&mutate(&mut rng, &seeds));
    }
}

#[test]
fn layer_tars_never_panic_or_escape() {
    let hostile = TarBuilder::new()
        .dir("d", 0o755)
        .symlink("d/up", "../..")
        .symlink("abs", "/etc")
        .hardlink("h", "d/up")
        .file("d/.wh..wh..opq", 0o644, b"")
        .file(".wh.gone", 0o644, b"")
        .fifo("p")
        .file("d/f", 0o4755, b"data")
        .finish();
    let seeds = vec![feature_layer(), hostile];
    for s in &seeds {
        fuzzing::unpack(s);
    }
    let mut rng = Rng(0xd1b5_4a32_d192_ed03);
    for _ in 0..1500 {
        fuzzing::unpack(&mutate(&mut rng, &seeds));
    }
}
