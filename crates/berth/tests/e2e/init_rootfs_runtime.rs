//! `--init`, `--rootfs DIR` and `--runtime runc|crun|PATH` end to end, observed from inside
//! the container and on the host (mounts, runtime state, cgroups left behind).

use std::time::{Duration, Instant};

use berth_testkit::priv_test;

use crate::containers::fixture;
use crate::support::{code, Berth};

priv_test! {
    fn init_is_pid_1_reaps_forwards_and_passes_codes() {
        let f = fixture();
        let b = &f.b;
        // PID 1 is berth-init, the command its child
        let s = b.ok(&["run", "--rm", "--init", &f.img, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; ps -o pid,comm"]);
        assert!(s.starts_with("/sbin/docker-init -- sh -c"), "{s}");
        assert!(s.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "docker-init"]), "{s}");
        // without --init the command is PID 1
        let s = b.ok(&["run", "--rm", &f.img, "sh", "-c", "cat /proc/1/comm; true"]);
        assert_eq!(s, "sh\n");
        // the init is read-only in the container
        let (c, _, err) = code(b, &["run", "--rm", "--init", &f.img, "sh", "-c", "echo x > /sbin/docker-init"]);
        assert_ne!(c, 0, "{err}");
        // -t: the command gets the terminal (its own process group in the foreground); the
        // shim must not hold the pty as its controlling terminal, with or without the init
        let s = b.ok(&["run", "--rm", "-t", &f.img, "sh", "-c", "test -t 0 && test -t 1 && echo tty"]);
        assert_eq!(s.replace('\r', ""), "tty\n");
        let s = b.ok(&["run", "--rm", "-t", "--init", &f.img, "sh", "-c", "test -t 0 && test -t 1 && echo tty; ps -o pid,comm | grep -c docker-init"]);
        assert_eq!(s.replace('\r', ""), "tty\n1\n");
        // exit codes pass through
        let (c, _, _) = code(b, &["run", "--rm", "--init", &f.img, "sh", "-c", "exit 5"]);
        assert_eq!(c, 5);
        let (c, _, err) = code(b, &["run", "--rm", "--init", &f.img, "nosuchcommand"]);
        assert_eq!(c, 127, "{err}");
        // zombies: orphans that exit come to PID 1; the init reaps them, while a PID 1 that
        // never waits (here `sleep`, exec'd by the shell) leaves them <defunct>
        let script = "for i in 1 2 3; do sh -c 'sleep 0.2 &'; done; exec sleep 30";
        for (init, expect_zombies) in [(true, false), (false, true)] {
            let mut args = vec!["run", "-d"];
            if init {
                args.push("--init");
            }
            args.extend([f.img.as_str(), "sh", "-c", script]);
            let id = b.ok(&args).trim().to_string();
            std::thread::sleep(Duration::from_millis(1500));
            let pid: i32 = b.ok(&["inspect", "--format", "{{.State.Pid}}", &id]).trim().parse().expect("pid");
            let zombies = zombie_children(pid);
            assert_eq!(!zombies.is_empty(), expect_zombies, "--init {init}: zombies {zombies:?}");
            b.ok(&["rm", "-f", &id]);
        }
        // TERM: a shell as PID 1 ignores it; the init forwards it to the shell's `sleep`... the
        // shell (not PID 1) then dies of it: 143 at once
        let id = b.ok(&["run", "-d", "--init", &f.img, "sh", "-c", "sleep 60"]).trim().to_string();
        std::thread::sleep(Duration::from_millis(500));
        let inspect = b.ok(&["inspect", "--format", "{{.HostConfig.Init}} {{.Path}}", &id]);
        assert_eq!(inspect.trim(), "true sh", "inspect shows Init and the command as Path");
        let t = Instant::now();
        b.ok(&["kill", "-s", "TERM", &id]);
        assert_eq!(b.ok(&["wait", &id]).trim(), "143");
        assert!(t.elapsed() < Duration::from_secs(5), "stopped promptly: {:?}", t.elapsed());
        b.ok(&["rm", &id]);
        let id = b.ok(&["run", "-d", &f.img, "sh", "-c", "sleep 60"]).trim().to_string();
        std::thread::sleep(Duration::from_millis(500));
        b.ok(&["kill", "-s", "TERM", &id]);
        std::thread::sleep(Duration::from_millis(1000));
        let st = b.ok(&["inspect", "--format", "{{.State.Status}}", &id]);
        assert_eq!(st.trim(), "running", "a shell as PID 1 ignores TERM");
        b.ok(&["rm", "-f", &id]);
        // the init was installed once under the root, static, read-only
        let init = b.root.path().join("bin/berth-init");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&init).expect("installed").permissions());
        assert_eq!(mode & 0o777, 0o555);
        let file = std::process::Command::new("file").arg(&init).output().expect("file");
        let file = String::from_utf8_lossy(&file.stdout);
        assert!(file.contains("statically linked"), "{file}");
    }
}

/// Host pids of zombie children of `pid`.
fn zombie_children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[0] == "Z" && f[1] == pid.to_string() {
            out.push(e.file_name().to_string_lossy().parse().unwrap_or(0));
        }
    }
    out
}

/// A plain directory tree: the busybox fixture's base layer, unpacked.
fn busybox_tree(dir: &std::path::Path) -> std::path::PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    let tar = dir.join("base.tar");
    std::fs::write(
        &tar,
        berth_testkit::image::busybox_base_layer().expect("layer"),
    )
    .expect("write");
    let st = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&tree)
        .status()
        .expect("tar");
    assert!(st.success());
    tree
}

priv_test! {
    fn rootfs_runs_a_directory_tree_in_place() {
        let b = Berth::new();
        let work = tempfile::tempdir().expect("tempdir");
        let tree = busybox_tree(work.path());
        let t = tree.to_string_lossy().to_string();
        // no image, no pull: the tree is the root, writable, in place
        let s = b.ok(&["run", "--rm", "--rootfs", &t, "sh", "-c", "echo written > /from-container; id -un; cat /etc/hostname >/dev/null && echo ok"]);
        assert_eq!(s, "root\nok\n");
        assert_eq!(std::fs::read_to_string(tree.join("from-container")).expect("written into the tree"), "written\n");
        let (c, _, _) = code(&b, &["run", "--rm", "--rootfs", &t, "sh", "-c", "exit 4"]);
        assert_eq!(c, 4);
        // users resolve against the tree's /etc/passwd; --init works on it too
        let s = b.ok(&["run", "--rm", "--init", "-u", "user", "--rootfs", &t, "sh", "-c", "id -u; cat /proc/1/comm"]);
        assert_eq!(s, "1000\ndocker-init\n");
        // an external runtime runs the tree too
        b.ok(&["run", "--rm", "--runtime", "runc", "--rootfs", &t, "sh", "-c", "echo runc > /via-runc"]);
        assert_eq!(std::fs::read_to_string(tree.join("via-runc")).expect("written by the runc container"), "runc\n");
        // ps and inspect name the tree as the image
        let id = b.ok(&["create", "--name", "tree", "--rootfs", &t, "true"]).trim().to_string();
        let ps = b.ok(&["ps", "-a", "--format", "{{.Image}}"]);
        assert_eq!(ps.trim(), t, "{ps}");
        let img = b.ok(&["inspect", "--format", "{{.Config.Image}} {{.HostConfig.BerthRootfs}}", &id]);
        assert_eq!(img.trim(), format!("{t} {t}"));
        let driver = b.ok(&["inspect", "--format", "{{.Driver}} {{.GraphDriver.Name}} {{.GraphDriver.Data.RootDir}} {{.Rootfs}}", &id]);
        assert_eq!(driver.trim(), format!("rootfs rootfs {t} {t}"), "no overlay dirs are claimed for a tree run in place");
        b.ok(&["start", "-a", &id]);
        b.ok(&["rm", &id]);
        // nothing mounted on the host, the tree still there
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!mounts.contains(&t), "{mounts}");
        assert!(tree.join("bin/busybox").exists());
        // bad trees: clear errors, exit 125, nothing created
        let file = tree.join("etc/passwd").to_string_lossy().to_string();
        for (dir, what) in [("relative/tree", "absolute path"), ("/nonexistent/berth-tree", "existing directory"), (file.as_str(), "not a directory")] {
            let (c, _, err) = code(&b, &["run", "--rm", "--rootfs", dir, "true"]);
            assert_eq!(c, 125, "{err}");
            assert!(err.contains(dir) && err.contains(what), "{err}");
        }
        assert_eq!(b.ok(&["ps", "-a", "-q"]).trim(), "");
        let dirs: Vec<_> = std::fs::read_dir(b.root.path().join("containers")).expect("dir").collect();
        assert!(dirs.is_empty(), "no container directory left");
    }
}

fn cgroup_dirs(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroupfs")
        .flatten()
    {
        for p in [e.path().join("berth").join(id), e.path().join(id)] {
            if p.exists() {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

fn runtime_list(b: &Berth, runtime: &str) -> String {
    let root = b.root.path().join("runtimes").join(runtime);
    let out = std::process::Command::new(runtime)
        .arg("--root")
        .arg(&root)
        .args(["list", "-q"])
        .output()
        .expect("runtime list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The same spec run by an external runtime under berth's shim: output, codes, -t, logs,
/// the cgroup berth reads, pause, top, stop, and nothing left behind.
fn external_runtime(rt: &str) {
    let f = fixture();
    let b = &f.b;
    let (c, out, err) = code(
        b,
        &[
            "run",
            "--rm",
            "--runtime",
            rt,
            &f.img,
            "sh",
            "-c",
            "echo hi; echo oops >&2; exit 3",
        ],
    );
    assert_eq!((c, out.as_str()), (3, "hi\n"), "{err}");
    assert!(err.contains("oops"), "{err}");
    // the spec's user, seccomp profile and /etc files apply under that runtime too
    let s = b.ok(&["run", "--rm", "--runtime", rt, "-u", "user", &f.img, "sh", "-c", "id -u; grep -E '^(CapEff|CapAmb|Seccomp):' /proc/self/status; cat /etc/hostname >/dev/null && echo ok"]);
    assert!(
        s.starts_with("1000\n") && s.contains("Seccomp:\t2") && s.ends_with("ok\n"),
        "{s}"
    );
    assert!(
        s.contains("CapEff:\t0000000000000000") && s.contains("CapAmb:\t0000000000000000"),
        "a non-root user has no capabilities under {rt} either: {s}"
    );
    let (c, _, err) = code(
        b,
        &["run", "--rm", "--runtime", rt, &f.img, "nosuchcommand"],
    );
    assert_eq!(c, 127, "{err}");
    // -t: the pty comes from the runtime over the console socket
    let s = b.ok(&[
        "run",
        "--rm",
        "-t",
        "--runtime",
        rt,
        &f.img,
        "sh",
        "-c",
        "test -t 0 && test -t 1 && echo tty",
    ]);
    assert_eq!(s.trim(), "tty");
    // detached: logs, pause, stop (TERM ignored by PID 1 sh → KILL after the timeout), rm
    let id = b
        .ok(&[
            "run",
            "-d",
            "--runtime",
            rt,
            "--memory",
            "64m",
            &f.img,
            "sh",
            "-c",
            "echo up; sleep 60",
        ])
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.ok(&["logs", &id]), "up\n");
    assert_eq!(
        b.ok(&[
            "inspect",
            "--format",
            "{{.HostConfig.Runtime}} {{.State.Status}}",
            &id
        ])
        .trim(),
        format!("{rt} running")
    );
    let dirs = cgroup_dirs(&id);
    assert!(
        dirs.iter()
            .any(|d| d.ends_with(&format!("memory/berth/{id}"))),
        "{rt} made berth's cgroup: {dirs:?}"
    );
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes"
    ))
    .expect("limit");
    assert_eq!(limit.trim(), "67108864");
    assert_eq!(runtime_list(b, rt).trim(), id, "{rt} knows it");
    b.ok(&["pause", &id]);
    assert_eq!(
        b.ok(&["inspect", "--format", "{{.State.Status}}", &id])
            .trim(),
        "paused"
    );
    b.ok(&["unpause", &id]);
    let top = b.ok(&["top", &id]);
    assert!(top.contains("sleep"), "{top}");
    b.ok(&["stop", "-t", "1", &id]);
    assert_eq!(
        b.ok(&["inspect", "--format", "{{.State.ExitCode}}", &id])
            .trim(),
        "137"
    );
    let dir = b.root.path().join("containers").join(&id);
    b.ok(&["rm", &id]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&id), "no mount left: {mounts}");
    assert!(!dir.exists());
    assert_eq!(runtime_list(b, rt).trim(), "", "no {rt} state left");
    assert!(
        cgroup_dirs(&id).is_empty(),
        "no cgroup left: {:?}",
        cgroup_dirs(&id)
    );
    // a shim killed with -9 leaves the runtime's state: the next start and rm clear it
    let id = b
        .ok(&[
            "run",
            "-d",
            "--runtime",
            rt,
            "--init",
            &f.img,
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.ok(&["top", &id]).matches("docker-init").count(),
        1,
        "--init under {rt}"
    );
    let shim: i32 = std::fs::read_to_string(
        b.root
            .path()
            .join("containers")
            .join(&id)
            .join("state.json"),
    )
    .ok()
    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
    .and_then(|v| v["shim_pid"].as_i64())
    .expect("shim pid") as i32;
    assert!(std::process::Command::new("kill")
        .args(["-9", &shim.to_string()])
        .status()
        .expect("kill")
        .success());
    let t = Instant::now();
    while b
        .ok(&["inspect", "--format", "{{.State.Status}}", &id])
        .trim()
        != "exited"
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the daemon notices the dead shim"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    b.ok(&["start", &id]);
    assert_eq!(
        b.ok(&["inspect", "--format", "{{.State.Status}}", &id])
            .trim(),
        "running"
    );
    b.ok(&["rm", "-f", &id]);
    assert_eq!(runtime_list(b, rt).trim(), "", "no {rt} state left");
    assert!(
        cgroup_dirs(&id).is_empty(),
        "no cgroup left: {:?}",
        cgroup_dirs(&id)
    );
    // bad runtimes: clear errors, 125, nothing created
    let work = tempfile::tempdir().expect("tempdir");
    let plain = work.path().join("plain-file");
    std::fs::write(&plain, "not a program").expect("write");
    let plain = plain.to_string_lossy().to_string();
    for (rt, what) in [
        ("nosuchruntime", "unknown or invalid runtime name"),
        (plain.as_str(), "not an executable"),
        ("/nonexistent/runc", "not an executable"),
    ] {
        let (c, _, err) = code(b, &["run", "--rm", "--runtime", rt, &f.img, "true"]);
        assert_eq!(c, 125, "{err}");
        assert!(err.contains(rt) && err.contains(what), "{err}");
    }
    assert_eq!(b.ok(&["ps", "-a", "-q"]).trim(), "");
    let left: Vec<_> = std::fs::read_dir(b.root.path().join("containers"))
        .expect("dir")
        .collect();
    assert!(left.is_empty(), "no container directory left");
}

priv_test! {
    fn runc_runs_the_same_spec_under_the_shim() {
        external_runtime("runc");
    }
}

priv_test! {
    fn crun_runs_the_same_spec_under_the_shim() {
        external_runtime("crun");
    }
}
