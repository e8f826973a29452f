//! End-to-end tests: the `berth` binary, its autostarted daemon, real registries on loopback
//! (Debian's docker-registry, pushed to with skopeo) and the fake one for crashes.
//! All of them are privileged (layers hold whiteout device nodes and owned files).

mod containers;
mod exec;
mod init_rootfs_runtime;
mod network;
mod observe;
mod runtime_cli;
mod support;
mod user_networks;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use berth_testkit::fake_registry::{Auth, FakeRegistry, Fault};
use berth_testkit::image::{busybox_image, Compression};
use berth_testkit::priv_test;
use berth_testkit::registry::{skopeo_push, DockerRegistry};
use support::{fixture_layout, verify_store, Berth};

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

priv_test! {
    fn pull_list_inspect_tag_and_remove_through_a_real_registry() {
        let work = tempfile::tempdir().expect("tempdir");
        let layout = fixture_layout(work.path());
        let reg = DockerRegistry::start(None).expect("docker-registry");
        skopeo_push(&layout, "latest", &format!("{}/e2e/bb:latest", reg.addr), None).expect("push latest");
        skopeo_push(&layout, "multi", &format!("{}/e2e/bb:multi", reg.addr), None).expect("push multi");
        let b = Berth::new();
        let img = format!("{}/e2e/bb:latest", reg.addr);

        // pull: plain progress lines when piped, the full reference last
        let out = b.ok(&["pull", &img]);
        assert!(out.contains("Pull complete"), "{out}");
        assert!(out.contains("Status: Downloaded newer image for"), "{out}");
        assert_eq!(lines(&out).last().copied(), Some(img.as_str()));
        // warm pull: nothing downloaded
        let out = b.ok(&["pull", &img]);
        assert!(out.contains("Image is up to date"), "{out}");
        assert!(!out.contains("Pull complete"), "{out}");
        // -q prints only the reference
        assert_eq!(b.ok(&["pull", "-q", &img]).trim(), img);

        // -a: every tag of the repository (both pushed above), from a fresh root
        let all = Berth::new();
        let repo = format!("{}/e2e/bb", reg.addr);
        let out = all.ok(&["pull", "-a", &repo]);
        assert!(out.contains("latest") && out.contains("multi"), "{out}");
        let tags = all.ok(&["images", "--format", "{{.Tag}}"]);
        let mut tags: Vec<&str> = lines(&tags);
        tags.sort();
        assert_eq!(tags, ["latest", "multi"]);
        let (code, err) = all.fails(&["pull", "-a", &img]);
        assert_eq!(code, 1, "as the docker CLI: a usage error found after parsing");
        assert!(err.contains("can't be used with --all-tags"), "{err}");

        // on a terminal: per-layer progress bars redrawn in place (script(1) gives a pty)
        let tty = Berth::new();
        let cmd = format!(
            "{} --root {} pull {img}",
            Berth::bin().display(),
            tty.root.path().display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("BERTH_CONFIG", tty.config_dir.path())
            .env("TERM", "xterm")
            .env("COLUMNS", "120")
            .output()
            .expect("script runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        // (a pty turns every \n into \r\n, so only cursor movement proves redrawing)
        assert!(text.contains("\x1b[1A") && text.contains("\x1b[2K") && text.contains("[="), "progress bars redrawn in place on a tty: {text:?}");
        assert!(text.contains("Pull complete") && text.contains(&img), "{text:?}");

        // images: Docker's columns
        let out = b.ok(&["images"]);
        let rows = lines(&out);
        assert!(rows[0].starts_with("REPOSITORY") && rows[0].contains("IMAGE ID") && rows[0].ends_with("SIZE"), "{out}");
        assert!(rows[1].starts_with(&format!("{}/e2e/bb", reg.addr)) && rows[1].contains("latest"), "{out}");
        let id = b.ok(&["images", "-q"]);
        assert_eq!(id.trim().len(), 12, "short ID: {id}");
        let out = b.ok(&["images", "--digests"]);
        assert!(out.contains("DIGEST") && out.contains("sha256:"), "{out}");
        let json: serde_json::Value = serde_json::from_str(lines(&b.ok(&["images", "--format", "json"]))[0]).expect("json line");
        assert_eq!(json["Tag"], "latest");
        assert_eq!(b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).trim(), img);

        // inspect
        let v: serde_json::Value = serde_json::from_str(&b.ok(&["image", "inspect", &img])).expect("inspect json");
        assert_eq!(v[0]["RepoTags"][0], img);
        assert_eq!(v[0]["RootFS"]["Layers"].as_array().map(Vec::len), Some(3));
        assert_eq!(v[0]["Config"]["Cmd"][0], "sh");
        assert_eq!(v[0]["Os"], "linux");
        assert_eq!(b.ok(&["image", "inspect", "-f", "{{.Architecture}}", id.trim()]).trim(), "amd64");
        let lower = v[0]["GraphDriver"]["Data"]["LowerDir"].as_str().expect("lowerdir").to_string();
        let dirs: Vec<&str> = lower.split(':').collect();
        assert_eq!(dirs.len(), 3);
        assert!(std::path::Path::new(dirs[2]).join("bin/busybox").is_file(), "lowest lowerdir is the base layer");

        // multi-platform index, explicit platform
        let multi = format!("{}/e2e/bb:multi", reg.addr);
        b.ok(&["pull", "--platform", "linux/arm64", &multi]);
        assert_eq!(b.ok(&["image", "inspect", "-f", "{{.Architecture}}", &multi]).trim(), "arm64");

        // tag, then remove names one by one
        b.ok(&["tag", &img, "mine:v1"]);
        assert!(b.ok(&["images"]).contains("mine"), "tagged");
        let out = b.ok(&["rmi", "mine:v1"]);
        assert_eq!(out.trim(), "Untagged: mine:v1", "only the name goes while another tag remains");
        // an ID with several repositories needs -f
        b.ok(&["tag", &img, "other/repo:x"]);
        let (code, err) = b.fails(&["rmi", id.trim()]);
        assert_eq!(code, 1);
        assert!(err.contains("must be forced"), "{err}");
        let out = b.ok(&["rmi", "-f", id.trim()]);
        assert!(out.contains("Untagged: other/repo:x") && out.contains("Deleted: sha256:"), "{out}");
        assert!(!b.ok(&["images"]).contains("e2e/bb   latest"));

        // system df, prune -a removes the rest and frees space
        let df = b.ok(&["system", "df"]);
        assert!(df.starts_with("TYPE") && df.contains("Images"), "{df}");
        let out = b.ok(&["image", "prune", "-a", "-f"]);
        assert!(out.contains("Deleted:") && out.contains("Total reclaimed space:"), "{out}");
        assert_eq!(lines(&b.ok(&["images"])).len(), 1, "only the header remains");
        let (blobs, snaps) = verify_store(&b.image_root());
        assert_eq!((blobs, snaps), (0, 0), "prune -a leaves nothing behind");
    }
}

priv_test! {
    fn login_then_pull_from_a_registry_with_basic_auth() {
        let work = tempfile::tempdir().expect("tempdir");
        let layout = fixture_layout(work.path());
        let reg = DockerRegistry::start(Some(("alice", "s3cret"))).expect("docker-registry with htpasswd");
        let img = format!("{}/private/bb:latest", reg.addr);
        skopeo_push(&layout, "latest", &img, Some(("alice", "s3cret"))).expect("push");
        let b = Berth::new();
        let (code, err) = b.fails(&["pull", &img]);
        assert_eq!(code, 1);
        assert!(err.contains("berth login"), "names the fix: {err}");

        // a wrong password is refused and not stored
        let mut wrong = b.command(&["login", "-u", "alice", "--password-stdin", &reg.addr]);
        wrong.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = wrong.spawn().expect("login runs");
        child.stdin.take().expect("stdin").write_all(b"nope\n").expect("write");
        let out = child.wait_with_output().expect("login exits");
        assert!(!out.status.success(), "wrong password refused");
        assert!(!b.config_dir.path().join("config.json").exists());

        let mut login = b.command(&["login", "-u", "alice", "--password-stdin", &reg.addr]);
        login.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = login.spawn().expect("login runs");
        child.stdin.take().expect("stdin").write_all(b"s3cret\n").expect("write");
        let out = child.wait_with_output().expect("login exits");
        assert!(out.status.success(), "login: {}", String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.config_dir.path().join("config.json")).expect("config.json")).expect("json");
        assert!(cfg["auths"][&reg.addr]["auth"].is_string(), "Docker's config.json format: {cfg}");
        b.ok(&["pull", &img]);

        // logout forgets; credentials in Docker's own config.json are read too
        let out = b.ok(&["logout", &reg.addr]);
        assert!(out.contains("Removing login credentials"), "{out}");
        b.ok(&["rmi", &img]);
        b.fails(&["pull", &img]);
        let docker_dir = b.config_dir.path().join("docker");
        std::fs::create_dir_all(&docker_dir).expect("mkdir");
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(docker_dir.join("config.json"), format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr)).expect("write");
        b.ok(&["pull", &img]);
    }
}

priv_test! {
    fn bad_input_gets_clear_errors_and_docker_exit_codes() {
        let b = Berth::new();
        let (code, err) = b.fails(&["--no-autostart", "images"]);
        assert_eq!(code, 1);
        assert!(err.contains("Is the daemon running?"), "{err}");
        assert!(!b.socket().exists(), "--no-autostart starts nothing");
        let (code, err) = b.fails(&["pull", "Not//Valid"]);
        assert_eq!(code, 1);
        assert!(err.contains("invalid reference format"), "{err}");
        let (code, err) = b.fails(&["rmi", "nosuchimage"]);
        assert_eq!(code, 1);
        assert!(err.contains("Error response from daemon: No such image: nosuchimage"), "{err}");
        let (code, err) = b.fails(&["image", "inspect", "nosuchimage"]);
        assert_eq!(code, 1);
        assert!(err.contains("No such image"), "{err}");
        let (code, _) = b.fails(&["pull", "--no-such-flag", "x"]);
        assert_eq!(code, 125, "usage errors exit 125 like docker");
        let (code, err) = b.fails(&["tag", "nosuchimage", "x:y"]);
        assert_eq!(code, 1);
        assert!(err.contains("No such image"), "{err}");
        let (code, err) = b.fails(&["pull", "127.0.0.1:1/nothing/here:latest"]);
        assert_eq!(code, 1);
        assert!(err.contains("127.0.0.1:1"), "names the registry: {err}");
        let (code, err) = b.fails(&["pull", "--platform", "linux", "busybox"]);
        assert_eq!(code, 1);
        assert!(err.contains("invalid platform"), "{err}");
        // nothing half-made: no images, and the store is consistent
        assert_eq!(lines(&b.ok(&["images"])).len(), 1);
        verify_store(&b.image_root());
    }
}

priv_test! {
    fn raw_api_speaks_docker() {
        let b = Berth::new();
        b.ok(&["version"]);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            use berth_api::ApiClient;
            use hyper::Method;
            let c = ApiClient::new(b.socket());
            let raw = |path: &'static str, method: Method| {
                let c = c.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(c.socket()).await.expect("connect");
                    let (mut s, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
                    tokio::spawn(conn);
                    let req = hyper::Request::builder().method(method).uri(path).header("host", "x").body(http_body_util::Empty::<bytes::Bytes>::new()).expect("request");
                    let resp = s.send_request(req).await.expect("response");
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let body = http_body_util::BodyExt::collect(resp.into_body()).await.expect("body").to_bytes();
                    (status, headers, String::from_utf8_lossy(&body).into_owned())
                }
            };
            let (s, h, body) = raw("/_ping", Method::GET).await;
            assert_eq!((s, body.as_str()), (200, "OK"));
            assert_eq!(h.get("api-version").and_then(|v| v.to_str().ok()), Some(berth_api::API_VERSION));
            let (s, _, _) = raw("/_ping", Method::HEAD).await;
            assert_eq!(s, 200);
            let (s, _, body) = raw("/v1.41/version", Method::GET).await;
            assert_eq!(s, 200);
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(v["ApiVersion"], berth_api::API_VERSION);
            assert_eq!(v["MinAPIVersion"], berth_api::MIN_API_VERSION);
            let (s, _, body) = raw("/v1.99/version", Method::GET).await;
            assert_eq!(s, 400);
            assert!(body.contains("too new"), "{body}");
            let (s, _, body) = raw("/v1.12/version", Method::GET).await;
            assert_eq!(s, 400);
            assert!(body.contains("too old"), "{body}");
            let (s, _, body) = raw("/v1.50/images/nosuch/json", Method::GET).await;
            assert_eq!(s, 404);
            let e: serde_json::Value = serde_json::from_str(&body).expect("error json");
            assert!(e["message"].as_str().expect("message").contains("No such image"));
            let (s, _, body) = raw("/v1.50/images/create?fromImage=bb/UPPER", Method::POST).await;
            assert_eq!(s, 400, "{body}");
            let (s, _, body) = raw("/v1.50/images/json?filters=%7Bbad", Method::GET).await;
            assert_eq!(s, 400, "{body}");
            let (s, _, body) = raw("/v1.50/nosuchendpoint", Method::GET).await;
            assert_eq!(s, 404, "{body}");
            let (s, _, body) = raw("/v1.50/info", Method::GET).await;
            assert_eq!(s, 200);
            let info: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(info["Images"], 0);
            assert_eq!(info["OSType"], "linux");
            let (s, _, body) = raw("/v1.50/system/df", Method::GET).await;
            assert_eq!(s, 200);
            assert!(body.contains("LayersSize"), "{body}");
        });
    }
}

priv_test! {
    fn daemon_kill_9_at_random_points_of_a_pull_leaves_a_repairable_store() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let reg = rt.block_on(FakeRegistry::start(Auth::None));
        let img = busybox_image(Compression::Gzip, "amd64").expect("fixture");
        reg.add_image("latest", &img);
        // stretch every layer so that a kill lands mid-download and mid-unpack
        for l in &img.layers {
            reg.fault(&l.digest, Fault::Slow(Duration::from_millis(15)));
        }
        let reference = format!("{}/crash/bb:latest", reg.host());
        let b = Berth::new();
        b.ok(&["version"]);
        let mut seed: u64 = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
        for round in 0..20 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let delay = Duration::from_millis(seed % 900);
            let mut pull = b.command(&["pull", &reference]);
            pull.stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = pull.spawn().expect("pull runs");
            std::thread::sleep(delay);
            b.kill_daemon(9);
            let _ = child.wait();
            // the next command restarts the daemon, whose start-up repairs the store
            b.ok(&["images"]);
            let (_, snaps) = verify_store(&b.image_root());
            assert!(snaps <= 3, "round {round}: at most the image's layers");
            // anything listed is complete
            let listed = b.ok(&["images", "-q"]);
            if !listed.trim().is_empty() {
                let v: serde_json::Value = serde_json::from_str(&b.ok(&["image", "inspect", &reference])).expect("inspect");
                for dir in v[0]["GraphDriver"]["Data"]["LowerDir"].as_str().expect("lowerdir").split(':') {
                    assert!(std::path::Path::new(dir).is_dir(), "round {round}: listed image has all its layers");
                }
            }
        }
        let out = b.ok(&["pull", &reference]);
        assert!(out.contains(&reference), "{out}");
        let (blobs, snaps) = verify_store(&b.image_root());
        assert_eq!(snaps, 3);
        assert_eq!(blobs, 5, "manifest, config and three layers, each verified");
        drop(reg);
    }
}

/// Runs a compat client from tests/compat against a fresh daemon and a registry holding
/// `compat/bb:latest`.
fn run_compat(program: &str, args: &[&str]) {
    run_compat_on(Berth::new(), program, args);
}

fn run_compat_on(b: Berth, program: &str, args: &[&str]) {
    let work = tempfile::tempdir().expect("tempdir");
    let layout = fixture_layout(work.path());
    let reg = DockerRegistry::start(None).expect("docker-registry");
    skopeo_push(
        &layout,
        "latest",
        &format!("{}/compat/bb:latest", reg.addr),
        None,
    )
    .expect("push");
    b.ok(&["version"]);
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat");
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(&repo)
        .env("DOCKER_HOST", format!("unix://{}", b.socket().display()))
        .env("REGISTRY", &reg.addr)
        .env("DOCKER_CONFIG", b.config_dir.path())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

priv_test! {
    fn docker_py_works_unchanged() {
        // Debian's python (python3-docker lives in its dist-packages), not one on PATH
        run_compat("/usr/bin/python3", &["docker_py.py"]);
    }
}

priv_test! {
    fn docker_cli_works_unchanged() {
        run_compat("bash", &["docker_cli.sh"]);
    }
}

priv_test! {
    fn docker_py_networks_work_unchanged() {
        support::in_fresh_netns(|| {
            run_compat_on(Berth::with_bridge(), "/usr/bin/python3", &["docker_py_network.py"]);
        });
    }
}

priv_test! {
    fn docker_compose_works_unchanged() {
        support::in_fresh_netns(|| {
            run_compat_on(Berth::with_bridge(), "bash", &["compose.sh"]);
        });
    }
}

priv_test! {
    fn docker_cli_networking_works_unchanged() {
        support::in_fresh_netns(|| {
            run_compat_on(Berth::with_bridge(), "bash", &["docker_cli_network.sh"]);
        });
    }
}
