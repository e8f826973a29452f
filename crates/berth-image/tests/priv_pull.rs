//! Pulls from the in-process fake registry: formats, platforms, auth, shared layers, resume,
//! and a registry that lies. After every failure the store must be unchanged and consistent.
//! Privileged: layers contain whiteouts (device nodes) and owned files.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use berth_image::pull::{PullOptions, PullOutcome, PullRequest, Puller};
use berth_image::registry::{Credentials, RegistryClient, RegistryConfig};
use berth_image::{Digest, ImageError, Platform, Reference, Store};
use berth_testkit::fake_registry::{Auth, FakeRegistry, Fault};
use berth_testkit::image::{
    busybox_image, index, platform_layer, Compression, FixtureImage, TarBuilder,
};
use berth_testkit::priv_test;

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    puller: Puller,
}

fn env_with(options: PullOptions, config: RegistryConfig) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let client = Arc::new(RegistryClient::new(config).expect("client"));
    let puller = Puller::new(store.clone(), client, options);
    Env {
        _dir: dir,
        store,
        puller,
    }
}

fn fast_retries() -> RegistryConfig {
    RegistryConfig {
        retry_backoff: Duration::from_millis(5),
        ..Default::default()
    }
}

fn env() -> Env {
    env_with(PullOptions::default(), fast_retries())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn pull(
    e: &Env,
    reference: &str,
    platform: Option<&str>,
    creds: Option<Credentials>,
) -> Result<PullOutcome, ImageError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let req = PullRequest {
        reference: Reference::parse_normalized(reference).expect("valid reference"),
        platform: platform.map(|p| p.parse::<Platform>().expect("platform")),
        credentials: creds,
    };
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let r = e.puller.pull(&req, &tx).await;
    drop(tx);
    let _ = drain.await;
    r
}

/// Blobs, snapshot dirs and images, for "unchanged" checks; also verifies every blob's digest
/// and that no partial snapshot is visible.
fn state(store: &Store) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let mut blobs = BTreeSet::new();
    for e in std::fs::read_dir(store.root().join("blobs/sha256")).expect("blobs") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(e.path()).expect("blob");
        assert_eq!(
            Digest::of(&data).hex(),
            name,
            "blob content matches its name"
        );
        blobs.insert(name);
    }
    let mut snaps = BTreeSet::new();
    for e in std::fs::read_dir(store.root().join("snapshots")).expect("snapshots") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".tmp-"),
            "no unfinished snapshot left behind: {name}"
        );
        let d: Digest = format!("sha256:{name}")
            .parse()
            .expect("snapshot named by chain id");
        assert!(
            store.has_snapshot(&d).expect("db"),
            "snapshot {name} has a row"
        );
        snaps.insert(name);
    }
    let images = store
        .list_images()
        .expect("images")
        .into_iter()
        .map(|i| i.id.to_string())
        .collect();
    (blobs, snaps, images)
}

fn serve(reg: &FakeRegistry, tag: &str, img: &FixtureImage) -> String {
    reg.add_image(tag, img);
    format!("{}/test/bb:{tag}", reg.host())
}

priv_test! {
    fn pulls_every_compression_and_shares_layers() {
        rt().block_on(async {
            let reg = FakeRegistry::start(Auth::None).await;
            let e = env();
            for (tag, c) in [("gzip", Compression::Gzip), ("zstd", Compression::Zstd), ("none", Compression::None)] {
                let img = busybox_image(c, "amd64").expect("fixture");
                let r = serve(&reg, tag, &img);
                let out = pull(&e, &r, None, None).await.unwrap_or_else(|err| panic!("{tag}: {err}"));
                assert_eq!(out.image_id.to_string(), img.config.digest);
                assert!(out.downloaded);
                let rec = e.store.resolve(&r).expect("tagged");
                assert_eq!(rec.layers.len(), 3);
                let mounts = e.store.mounts(&rec);
                assert!(mounts.lowerdirs[2].join("bin/busybox").is_file(), "base layer is the lowest lowerdir");
            }
            // same diff IDs, different compression: the same chain IDs, so the snapshots are shared
            // ... and the config is identical too, so it is one image under three tags
            let (_, snaps, images) = state(&e.store);
            assert_eq!(images.len(), 1);
            assert_eq!(e.store.list_images().expect("list")[0].tags.len(), 3);
            assert_eq!(snaps.len(), 3, "three compressions of one layer stack share three snapshots");

            // a warm pull fetches only the manifest
            let before = reg.requests().len();
            let out = pull(&e, &format!("{}/test/bb:gzip", reg.host()), None, None).await.expect("warm pull");
            assert!(!out.downloaded);
            let new: Vec<String> = reg.requests()[before..].to_vec();
            assert!(new.iter().all(|r| r.contains("/manifests/")), "warm pull only asks for the manifest: {new:?}");
        });
    }
}

priv_test! {
    fn selects_platforms_from_an_index() {
        rt().block_on(async {
            let reg = FakeRegistry::start(Auth::None).await;
            let e = env();
            let amd = busybox_image(Compression::Gzip, "amd64").expect("fixture");
            let arm = busybox_image(Compression::Gzip, "arm64").expect("fixture");
            reg.add_image("amd", &amd);
            reg.add_image("arm", &arm);
            let idx = index(&[("amd64", &amd), ("arm64", &arm)]);
            reg.add_index("multi", &idx);
            let r = format!("{}/test/bb:multi", reg.host());
            let out = pull(&e, &r, Some("linux/arm64"), None).await.expect("arm64 pull");
            assert_eq!(out.image_id.to_string(), arm.config.digest);
            assert_eq!(out.digest.to_string(), idx.digest, "the repo digest is the index's");
            let rec = e.store.resolve(&r).expect("tagged");
            assert_eq!(rec.architecture, "arm64");
            let top = e.store.mounts(&rec).lowerdirs[0].join("etc/platform");
            assert_eq!(std::fs::read_to_string(top).expect("platform file"), "arm64\n");
            // by index digest
            let by_digest = format!("{}/test/bb@{}", reg.host(), idx.digest);
            assert!(e.store.resolve(&by_digest).is_ok(), "resolvable by repo@index-digest");
            // a platform the index lacks
            let before = state(&e.store);
            let err = pull(&e, &r, Some("linux/s390x"), None).await.expect_err("no s390x");
            assert!(matches!(err, ImageError::NoMatchingPlatform { .. }), "{err}");
            assert!(err.to_string().contains("linux/amd64, linux/arm64"), "names what is available: {err}");
            // a single-platform image that does not match an explicit platform
            let err = pull(&e, &format!("{}/test/bb:amd", reg.host()), Some("linux/arm64"), None).await.expect_err("mismatch");
            assert!(matches!(err, ImageError::NoMatchingPlatform { .. }), "{err}");
            assert_eq!(before.2, state(&e.store).2, "no image added by failed pulls");
        });
    }
}

priv_test! {
    fn basic_and_bearer_auth() {
        rt().block_on(async {
            let img = busybox_image(Compression::Gzip, "amd64").expect("fixture");
            let good = Credentials { username: "alice".into(), password: "s3cret".into() };
            let bad = Credentials { username: "alice".into(), password: "wrong".into() };

            let basic = FakeRegistry::start(Auth::Basic("alice".into(), "s3cret".into())).await;
            let r = serve(&basic, "v1", &img);
            let e = env();
            let err = pull(&e, &r, None, None).await.expect_err("anonymous is refused");
            assert!(matches!(err, ImageError::Unauthorized { .. }), "{err}");
            assert!(err.to_string().contains("berth login"), "the error names the fix: {err}");
            let err = pull(&e, &r, None, Some(bad.clone())).await.expect_err("wrong password is refused");
            assert!(matches!(err, ImageError::Unauthorized { .. }), "{err}");
            pull(&e, &r, None, Some(good.clone())).await.expect("basic auth works");
            // one client's credentials never serve another client's anonymous pull
            let r2 = serve(&basic, "v2", &img);
            let err = pull(&e, &r2, None, None).await.expect_err("no credential reuse across clients");
            assert!(matches!(err, ImageError::Unauthorized { .. }), "{err}");

            let bearer = FakeRegistry::start(Auth::Bearer(Some(("alice".into(), "s3cret".into())))).await;
            let r = serve(&bearer, "v1", &img);
            let e = env();
            let err = pull(&e, &r, None, Some(bad)).await.expect_err("token server refuses");
            assert!(matches!(err, ImageError::Unauthorized { .. }), "{err}");
            pull(&e, &r, None, Some(good)).await.expect("bearer auth works");
            assert!(bearer.requests().iter().any(|q| q.contains("/blobs/")), "blobs fetched with the token");

            let anon_bearer = FakeRegistry::start(Auth::Bearer(None)).await;
            let r = serve(&anon_bearer, "v1", &img);
            pull(&env(), &r, None, None).await.expect("anonymous bearer tokens work");
        });
    }
}

/// Pulls through a lie and checks the error and that the store did not change.
async fn lie(
    fault: Fault,
    target: impl Fn(&FixtureImage) -> String,
    check: impl Fn(&ImageError) -> bool,
    what: &str,
) {
    let reg = FakeRegistry::start(Auth::None).await;
    let img = busybox_image(Compression::Gzip, "amd64").expect("fixture");
    let r = serve(&reg, "v1", &img);
    let e = env();
    let before = state(&e.store);
    let fault_kind = fault.clone();
    reg.fault(&target(&img), fault);
    let err = pull(&e, &r, None, None).await.expect_err(what);
    assert!(check(&err), "{what}: unexpected error {err}");
    let after = state(&e.store);
    assert!(after.2.is_empty(), "{what}: no image recorded");
    // complete, verified layers of the same pull may stay (they are content-addressed and reused);
    // the lying blob itself must not be present, and nothing is partial
    let layer_hex = img.layers[1]
        .digest
        .trim_start_matches("sha256:")
        .to_string();
    if target(&img) == img.layers[1].digest {
        assert!(
            !after.0.contains(&layer_hex),
            "{what}: the bad blob was not stored"
        );
        // a short body may be resumed by a later pull, so its verified-so-far prefix may stay in
        // ingest/; data that failed verification never does
        if matches!(fault_kind, Fault::Corrupt | Fault::Long) {
            let ingest = e
                .store
                .ingest_path(&img.layers[1].digest.parse().expect("digest"));
            assert!(
                !ingest.exists(),
                "{what}: no partial download of lied data kept"
            );
        }
    }
    assert!(before.2.is_empty());
    // and the store still works: the registry stops lying, the pull succeeds
    reg.fault(&target(&img), Fault::Fail(0));
    pull(&e, &r, None, None)
        .await
        .unwrap_or_else(|err| panic!("{what}: pull after the lie: {err}"));
    state(&e.store);
}

priv_test! {
    fn lying_registries_get_clear_errors_and_leave_the_store_consistent() {
        rt().block_on(async {
            let layer = |i: &FixtureImage| i.layers[1].digest.clone();
            lie(Fault::Corrupt, layer, |e| matches!(e, ImageError::DigestMismatch { .. } | ImageError::Unpack { .. }), "corrupt blob").await;
            lie(Fault::Short, layer, |e| matches!(e, ImageError::SizeMismatch { .. }), "short blob").await;
            lie(Fault::Long, layer, |e| matches!(e, ImageError::SizeMismatch { .. }), "long blob").await;
            lie(Fault::Fail(99), layer, |e| matches!(e, ImageError::Registry { .. }), "500s").await;
            lie(Fault::Missing, layer, |e| matches!(e, ImageError::RemoteNotFound { .. }), "missing blob").await;
            lie(Fault::Corrupt, |i| i.config.digest.clone(), |e| matches!(e, ImageError::DigestMismatch { .. }), "corrupt config").await;
            lie(Fault::Replace(b"{not json".to_vec()), |_| "v1".into(), |e| matches!(e, ImageError::Manifest { .. } | ImageError::DigestMismatch { .. }), "bad manifest json").await;
            let msg = {
                let reg = FakeRegistry::start(Auth::None).await;
                let img = busybox_image(Compression::Gzip, "amd64").expect("fixture");
                let r = serve(&reg, "v1", &img);
                reg.fault(&img.layers[0].digest, Fault::Corrupt);
                pull(&env(), &r, None, None).await.expect_err("corrupt").to_string()
            };
            assert!(msg.contains("failed verification") || msg.contains("layer"), "message names the layer: {msg}");
        });
    }
}

priv_test! {
    fn transient_failures_retry_and_resume_with_range() {
        rt().block_on(async {
            let reg = FakeRegistry::start(Auth::None).await;
            let img = busybox_image(Compression::Gzip, "amd64").expect("fixture");
            let r = serve(&reg, "v1", &img);
            let e = env();
            // the base layer (busybox, ~1 MB) breaks twice after 300 kB: resumed with Range
            reg.fault(&img.layers[0].digest, Fault::DropAfter(300_000, 2));
            reg.fault(&img.layers[1].digest, Fault::Fail(2));
            pull(&e, &r, None, None).await.expect("succeeds after retries");
            let ranges: Vec<String> = reg.requests().into_iter().filter(|q| q.contains(&img.layers[0].digest) && q.contains("bytes=")).collect();
            assert!(!ranges.is_empty(), "resumed with a Range request: {:?}", reg.requests());
            state(&e.store);
        });
    }
}

priv_test! {
    fn slow_registries_time_out_clearly_or_succeed() {
        rt().block_on(async {
            let reg = FakeRegistry::start(Auth::None).await;
            let img = busybox_image(Compression::Gzip, "amd64").expect("fixture");
            let r = serve(&reg, "v1", &img);
            reg.fault(&img.layers[2].digest, Fault::Slow(Duration::from_millis(50)));
            pull(&env(), &r, None, None).await.expect("slow but steady succeeds");
            reg.fault(&img.layers[2].digest, Fault::Slow(Duration::from_secs(3)));
            let impatient = env_with(
                PullOptions { layer_attempts: 1, ..Default::default() },
                RegistryConfig { read_timeout: Duration::from_millis(300), ..fast_retries() },
            );
            let err = pull(&impatient, &r, None, None).await.expect_err("times out");
            assert!(matches!(err, ImageError::Registry { .. }), "{err}");
            assert!(state(&impatient.store).2.is_empty());
        });
    }
}

priv_test! {
    fn decompression_bombs_are_refused_by_a_bound_the_user_can_raise() {
        rt().block_on(async {
            let reg = FakeRegistry::start(Auth::None).await;
            let zeros = vec![0u8; 32 << 20];
            let bomb = TarBuilder::new().file("zeros", 0o644, &zeros).finish();
            let img = FixtureImage::from_tars(&[bomb, platform_layer("amd64")], Compression::Gzip, "amd64", &["sh"]);
            assert!(img.layers[0].data.len() < 1 << 20, "a small blob that expands a lot");
            let r = serve(&reg, "bomb", &img);
            let strict = env_with(PullOptions { max_layer_size: 8 << 20, ..Default::default() }, fast_retries());
            let err = pull(&strict, &r, None, None).await.expect_err("bomb refused");
            assert!(err.to_string().contains("--max-layer-size") || format!("{:?}", err).contains("TooLarge"), "{err}");
            let (blobs, snaps, images) = state(&strict.store);
            assert!(images.is_empty() && !snaps.contains(img.diff_ids[0].trim_start_matches("sha256:")));
            assert!(!blobs.contains(img.layers[0].digest.trim_start_matches("sha256:")));
            let relaxed = env_with(PullOptions { max_layer_size: 64 << 20, ..Default::default() }, fast_retries());
            pull(&relaxed, &r, None, None).await.expect("a raised bound lets it through");
        });
    }
}

priv_test! {
    fn concurrent_pulls_of_shared_layers_fetch_each_once() {
        rt().block_on(async {
            let reg = FakeRegistry::start(Auth::None).await;
            let a = busybox_image(Compression::Gzip, "amd64").expect("fixture");
            let b = busybox_image(Compression::Gzip, "arm64").expect("fixture");
            let ra = serve(&reg, "a", &a);
            let rb = serve(&reg, "b", &b);
            let e = env();
            let (x, y) = tokio::join!(pull(&e, &ra, None, None), pull(&e, &rb, None, None));
            x.expect("a");
            y.expect("b");
            for shared in [&a.layers[0].digest, &a.layers[1].digest] {
                let n = reg.requests().iter().filter(|q| q.contains(shared.as_str()) && q.contains("/blobs/")).count();
                assert_eq!(n, 1, "shared layer {shared} fetched once");
            }
            let (_, snaps, images) = state(&e.store);
            assert_eq!((snaps.len(), images.len()), (4, 2));
        });
    }
}

priv_test! {
    fn gc_removes_exactly_what_nothing_references() {
        rt().block_on(async {
            let reg = FakeRegistry::start(Auth::None).await;
            let a = busybox_image(Compression::Gzip, "amd64").expect("fixture");
            let b = busybox_image(Compression::Gzip, "arm64").expect("fixture");
            let ra = serve(&reg, "a", &a);
            let rb = serve(&reg, "b", &b);
            let e = env();
            pull(&e, &ra, None, None).await.expect("a");
            pull(&e, &rb, None, None).await.expect("b");
            let rec = e.store.resolve(&ra).expect("a");
            for n in rec.tags.iter().chain(rec.digests.iter()) {
                e.store.remove_name(n).expect("untag");
            }
            e.store.delete_image(&rec.id).expect("delete");
            let report = e.store.gc().await.expect("gc");
            assert_eq!(report.snapshots.len(), 1, "only a's top layer goes: {report:?}");
            let (blobs, snaps, images) = state(&e.store);
            assert_eq!(images.len(), 1);
            assert_eq!(snaps.len(), 3);
            for blob in b.blobs() {
                assert!(blobs.contains(blob.digest.trim_start_matches("sha256:")), "b's {} stays", blob.media_type);
            }
            for gone in [&a.manifest.digest, &a.config.digest, &a.layers[2].digest] {
                assert!(!blobs.contains(gone.trim_start_matches("sha256:")), "{gone} removed");
            }
            // b still unpacks from its snapshots
            let recb = e.store.resolve(&rb).expect("b");
            for dir in e.store.mounts(&recb).lowerdirs {
                assert!(dir.is_dir());
            }
        });
    }
}

priv_test! {
    fn mirrors_are_tried_first_and_fall_through() {
        rt().block_on(async {
            let origin = FakeRegistry::start(Auth::None).await;
            let mirror = FakeRegistry::start(Auth::None).await;
            let empty_mirror = FakeRegistry::start(Auth::None).await;
            let img = busybox_image(Compression::Gzip, "amd64").expect("fixture");
            let r = serve(&origin, "v1", &img);
            mirror.add_image("v1", &img);
            let mut mirrors = std::collections::HashMap::new();
            mirrors.insert(origin.host(), vec![format!("http://{}", mirror.host())]);
            let e = env_with(PullOptions::default(), RegistryConfig { mirrors, ..fast_retries() });
            pull(&e, &r, None, None).await.expect("pull through the mirror");
            assert!(origin.requests().is_empty(), "the origin is not asked when the mirror has it: {:?}", origin.requests());
            assert!(mirror.requests().iter().any(|q| q.contains("/blobs/")));

            let mut mirrors = std::collections::HashMap::new();
            mirrors.insert(origin.host(), vec![format!("http://{}", empty_mirror.host())]);
            let e = env_with(PullOptions::default(), RegistryConfig { mirrors, ..fast_retries() });
            pull(&e, &r, None, None).await.expect("falls through to the origin");
            assert!(!empty_mirror.requests().is_empty(), "the mirror was tried first");
            assert!(origin.requests().iter().any(|q| q.contains("/manifests/")));
        });
    }
}
