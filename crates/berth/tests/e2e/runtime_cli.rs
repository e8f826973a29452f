//! `berth runtime` (runc's command line) on OCI bundles made from Debian's static busybox:
//! every command, the state machine, config fields observed from inside the container, hooks
//! in order with the state on stdin, the seccomp listener, refusals by name, and podman
//! driving `berth-runc`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_testkit::priv_test;
use serde_json::{json, Value};

use crate::support::Berth;

/// A change to a bundle's config.
type Tweak = Box<dyn Fn(&mut Value)>;

/// A state root for `berth runtime`; every container left in it is force-deleted on drop.
struct Rt {
    root: tempfile::TempDir,
}

impl Rt {
    fn new() -> Rt {
        Rt {
            root: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(Berth::bin());
        c.arg("runtime")
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs to its exit. stdout and stderr go to files, not pipes: a container process that
    /// `create` or `run -d` leaves behind inherits them (as with runc) and would hold a pipe
    /// open.
    fn run(&self, args: &[&str]) -> Output {
        output_via_files(self.command(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth runtime {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth runtime {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state json")
    }

    fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .expect("status")
            .to_string()
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Ok(out) = self.command(&["list", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.command(&["delete", "-f", id]).output();
            }
        }
    }
}

fn output_via_files(mut c: Command) -> Output {
    let out = tempfile::tempfile().expect("tempfile");
    let err = tempfile::tempfile().expect("tempfile");
    c.stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"));
    let status = c.status().expect("runs");
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).expect("seek");
        f.read_to_end(&mut v).expect("read");
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// A bundle: busybox root file system and `berth runtime spec`'s config, not a terminal,
/// changed by `tweak`.
fn bundle(dir: &Path, tweak: impl FnOnce(&mut Value)) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "out"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
    }
    let bb = berth_testkit::image::busybox_path().expect("busybox-static");
    std::fs::copy(&bb, rootfs.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/tmp:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nu:x:1000:\n").expect("group");
    let rt = Rt::new();
    let out = rt.run(&["spec", "--bundle", dir.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("config.json");
    let mut spec: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("config.json")).expect("json");
    spec["process"]["terminal"] = json!(false);
    spec["root"]["readonly"] = json!(false);
    tweak(&mut spec);
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write config");
    dir.to_path_buf()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

fn bind(src: &Path, dest: &str) -> Value {
    json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rw"]})
}

priv_test! {
    fn runtime_commands_and_the_state_machine() {
        let work = tempfile::tempdir().expect("tempdir");
        let out_dir = work.path().join("out");
        std::fs::create_dir_all(&out_dir).expect("mkdir");
        let b = bundle(&work.path().join("b"), |s| {
            s["process"]["args"] = json!(["sh", "-c", "echo started > /out/marker; exec sleep 1000"]);
            s["mounts"].as_array_mut().expect("mounts").push(bind(&out_dir, "/out"));
            s["annotations"] = json!({"org.example.test": "yes"});
            s["ociVersion"] = json!("1.3.0");
        });
        let rt = Rt::new();
        let bundle_arg = b.to_str().expect("utf-8");
        let pid_file = work.path().join("pid");

        // create: options after the id, as runc's parser allows; the process waits
        rt.ok(&["create", "c1", "--bundle", bundle_arg, "--pid-file", pid_file.to_str().expect("utf-8")]);
        let st = rt.state("c1");
        assert_eq!(st["status"], "created", "{st}");
        assert_eq!(st["id"], "c1");
        assert_eq!(st["ociVersion"], "1.3.0", "a newer 1.x minor is accepted");
        assert_eq!(st["bundle"], bundle_arg);
        assert_eq!(st["annotations"]["org.example.test"], "yes");
        let pid = st["pid"].as_i64().expect("pid");
        assert!(pid > 0);
        assert_eq!(std::fs::read_to_string(&pid_file).expect("pid file").trim(), pid.to_string());
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!out_dir.join("marker").exists(), "the process waits until start");
        let (code, err) = rt.fails(&["create", "--bundle", bundle_arg, "c1"]);
        assert_eq!(code, 1);
        assert!(err.contains("container with id exists: c1"), "{err}");

        // list while created
        let table = rt.ok(&["list"]);
        assert!(table.starts_with("ID") && table.contains("STATUS") && table.contains("BUNDLE"), "{table}");
        assert!(table.lines().any(|l| l.starts_with("c1 ") && l.contains("created")), "{table}");
        assert_eq!(rt.ok(&["list", "-q"]).trim(), "c1");
        let listed: Value = serde_json::from_str(&rt.ok(&["list", "--format", "json"])).expect("json");
        assert_eq!(listed[0]["id"], "c1");
        assert_eq!(listed[0]["status"], "created");

        // start → running
        rt.ok(&["start", "c1"]);
        wait_for("the marker", || out_dir.join("marker").exists());
        assert_eq!(rt.status("c1"), "running");
        let (_, err) = rt.fails(&["start", "c1"]);
        assert!(err.contains("cannot start an already running container"), "{err}");

        // ps: the container's processes only
        let ps = rt.ok(&["ps", "c1"]);
        assert!(ps.lines().next().is_some_and(|h| h.contains("PID")), "{ps}");
        assert!(ps.contains("sleep 1000") && ps.lines().count() == 2, "{ps}");
        let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", "c1"])).expect("json");
        assert_eq!(pids, vec![pid]);

        // exec: env, cwd, user, exit code; detached with a pid file
        let out = rt.run(&["exec", "-e", "FOO=bar", "--cwd", "/tmp", "-u", "1000:1000", "c1", "sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g); exit 7"]);
        assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bar /tmp 1000:1000");
        let proc_file = work.path().join("process.json");
        std::fs::write(&proc_file, json!({"args": ["sh", "-c", "echo from-process-file > /out/exec"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string()).expect("write");
        let exec_pid = work.path().join("exec.pid");
        rt.ok(&["exec", "--detach", "--pid-file", exec_pid.to_str().expect("utf-8"), "--process", proc_file.to_str().expect("utf-8"), "c1"]);
        wait_for("the detached exec", || std::fs::read_to_string(out_dir.join("exec")).is_ok_and(|s| s.trim() == "from-process-file"));
        assert!(std::fs::read_to_string(&exec_pid).expect("exec pid").trim().parse::<i32>().is_ok());

        // pause / resume: the freezer
        rt.ok(&["pause", "c1"]);
        assert_eq!(rt.status("c1"), "paused");
        let (_, err) = rt.fails(&["exec", "c1", "true"]);
        assert!(err.contains("paused"), "{err}");
        rt.ok(&["resume", "c1"]);
        assert_eq!(rt.status("c1"), "running");

        // update: limits reach the cgroup (seen from inside, through the cgroup namespace)
        rt.ok(&["update", "--pids-limit", "42", "--memory", "64m", "c1"]);
        let pids_max = rt.ok(&["exec", "c1", "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"]);
        assert_eq!(pids_max.trim(), "42");
        let mem = rt.ok(&["exec", "c1", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"]);
        assert_eq!(mem.trim(), (64u64 << 20).to_string());
        let res = work.path().join("res.json");
        std::fs::write(&res, r#"{"pids": {"limit": 43}}"#).expect("write");
        rt.ok(&["update", "-r", res.to_str().expect("utf-8"), "c1"]);
        let pids_max = rt.ok(&["exec", "c1", "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"]);
        assert_eq!(pids_max.trim(), "43");

        // events --stats: one JSON object
        let ev: Value = serde_json::from_str(rt.ok(&["events", "--stats", "c1"]).trim()).expect("json");
        assert_eq!(ev["type"], "stats");
        assert_eq!(ev["id"], "c1");
        assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().is_some_and(|u| u > 0), "{ev}");
        // the init, and the detached exec's process (reparented to an init that never reaps)
        assert!(ev["data"]["pids"]["current"].as_u64().is_some_and(|n| n >= 1), "{ev}");
        assert_eq!(ev["data"]["pids"]["limit"], 43, "{ev}");

        // kill by name; delete refuses a running container, then the process exits → stopped
        let (_, err) = rt.fails(&["delete", "c1"]);
        assert!(err.contains("cannot delete container c1 that is not stopped: running"), "{err}");
        rt.ok(&["kill", "c1", "KILL"]); // (a pid-1 sleep ignores TERM)
        wait_for("stopped", || rt.status("c1") == "stopped");
        assert_eq!(rt.state("c1")["pid"], 0);
        let (_, err) = rt.fails(&["kill", "c1", "9"]);
        assert!(err.contains("container not running"), "{err}");
        rt.ok(&["delete", "c1"]);
        let (code, err) = rt.fails(&["state", "c1"]);
        assert_eq!(code, 1);
        assert!(err.contains("container does not exist"), "{err}");
        assert!(rt.ok(&["list", "-q"]).trim().is_empty());

        // delete --force of a running container; --force of a missing one is fine
        rt.ok(&["run", "--detach", "--bundle", bundle_arg, "c2"]);
        assert_eq!(rt.status("c2"), "running");
        rt.ok(&["kill", "--all", "c2", "SIGSTOP"]);
        rt.ok(&["kill", "c2", "CONT"]);
        rt.ok(&["delete", "--force", "c2"]);
        assert!(rt.ok(&["list", "-q"]).trim().is_empty());
        rt.ok(&["delete", "--force", "c2"]);
        // a created container is deleted without --force (its waiting process is killed)
        rt.ok(&["create", "--bundle", bundle_arg, "c3"]);
        let pid3 = rt.state("c3")["pid"].as_i64().expect("pid");
        rt.ok(&["delete", "c3"]);
        wait_for("the process of c3 to go", || !Path::new(&format!("/proc/{pid3}/stat")).exists()
            || std::fs::read_to_string(format!("/proc/{pid3}/stat")).is_ok_and(|s| s.contains(") Z ")));

        // missing containers: errors on stderr, status 1, like runc
        for cmd in [vec!["state", "nope"], vec!["start", "nope"], vec!["kill", "nope"], vec!["delete", "nope"], vec!["exec", "nope", "true"], vec!["ps", "nope"], vec!["pause", "nope"]] {
            let (code, err) = rt.fails(&cmd);
            assert_eq!(code, 1, "{cmd:?}");
            assert!(err.contains("container does not exist"), "{cmd:?}: {err}");
        }
        // --log/--log-format json: the error goes to the log as JSON, the message to stderr
        let log = work.path().join("log.json");
        let out = rt.run(&["--log", log.to_str().expect("utf-8"), "--log-format", "json", "state", "nope"]);
        assert!(!out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "container does not exist");
        let entry: Value = serde_json::from_str(std::fs::read_to_string(&log).expect("log").trim()).expect("json log");
        assert_eq!((entry["level"].as_str(), entry["msg"].as_str()), (Some("error"), Some("container does not exist")));

        // rootfsPropagation rshared: the root is a shared mount inside
        let shared = bundle(&work.path().join("shared"), |s| {
            s["linux"]["rootfsPropagation"] = json!("rshared");
            s["process"]["args"] = json!(["sh", "-c", "grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo"]);
        });
        let out = rt.run(&["run", "--bundle", shared.to_str().expect("utf-8"), "shared"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains(" shared:"), "{}", String::from_utf8_lossy(&out.stdout));

        // run in the foreground: the exit code, and nothing left behind
        let fg = bundle(&work.path().join("fg"), |s| s["process"]["args"] = json!(["sh", "-c", "echo hello; exit 3"]));
        let out = rt.run(&["run", "--bundle", fg.to_str().expect("utf-8"), "fg"]);
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
        assert!(rt.ok(&["list", "-q"]).trim().is_empty());

        // a foreground run forwards signals to the container process
        let trap = bundle(&work.path().join("trap"), |s| {
            s["process"]["args"] = json!(["sh", "-c", "trap 'exit 7' TERM; echo ready > /out/trap; sleep 1000 & wait"]);
            s["mounts"].as_array_mut().expect("mounts").push(bind(&out_dir, "/out"));
        });
        let mut fg_run = rt.command(&["run", "--bundle", trap.to_str().expect("utf-8"), "trap"]);
        fg_run.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = fg_run.spawn().expect("run starts");
        wait_for("the trap to be set", || out_dir.join("trap").exists());
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal berth");
        let status = child.wait().expect("run exits");
        assert_eq!(status.code(), Some(7), "SIGTERM reached the container");
        assert!(rt.ok(&["list", "-q"]).trim().is_empty());

        // --preserve-fds: fd 3 of the caller reaches the container process
        let fds = bundle(&work.path().join("fds"), |s| s["process"]["args"] = json!(["sh", "-c", "echo through-fd-3 >&3"]));
        let fd_file = work.path().join("fd3");
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!(
                "exec 3>{} && exec {} runtime --root {} run --preserve-fds 1 --bundle {} fds",
                fd_file.display(),
                Berth::bin().display(),
                rt.root.path().display(),
                fds.display()
            ))
            .stdin(Stdio::null());
        let out = output_via_files(sh);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read_to_string(&fd_file).expect("fd3 file").trim(), "through-fd-3");

        // berth's own global flags before `runtime` are refused (the runtime must not start
        // from berth's multi-threaded CLI path)
        let out = output_via_files({
            let mut c = Command::new(Berth::bin());
            c.args(["--root", "/nonexistent", "runtime", "list"]).stdin(Stdio::null());
            c
        });
        assert_eq!(out.status.code(), Some(125));
        assert!(String::from_utf8_lossy(&out.stderr).contains("after the word `runtime`"));

        // spec refuses to overwrite; features is runc's JSON
        let (_, err) = rt.fails(&["spec", "--bundle", bundle_arg]);
        assert!(err.contains("exists"), "{err}");
        let f: Value = serde_json::from_str(&rt.ok(&["features"])).expect("json");
        assert_eq!(f["ociVersionMin"], "1.0.0");
        assert!(f["hooks"].as_array().is_some_and(|h| h.len() == 6), "{f}");
        assert!(f["linux"]["seccomp"]["actions"].as_array().is_some_and(|a| a.contains(&json!("SCMP_ACT_NOTIFY"))));
        assert!(f["linux"]["namespaces"].as_array().is_some_and(|a| a.contains(&json!("pid"))));
    }
}

priv_test! {
    fn runtime_config_fields_are_observed_inside() {
        let work = tempfile::tempdir().expect("tempdir");
        let out_dir = work.path().join("out");
        let ro_dir = work.path().join("ro");
        std::fs::create_dir_all(&out_dir).expect("mkdir");
        std::fs::create_dir_all(&ro_dir).expect("mkdir");
        std::fs::write(ro_dir.join("f"), "host file").expect("write");
        // the process runs as uid 1000
        std::fs::set_permissions(&out_dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
        let rt = Rt::new();

        // a first container whose UTS namespace the second one joins by path
        let first = bundle(&work.path().join("first"), |s| {
            s["hostname"] = json!("joined-host");
            s["process"]["args"] = json!(["sleep", "1000"]);
        });
        rt.ok(&["run", "-d", "--bundle", first.to_str().expect("utf-8"), "first"]);
        let first_pid = rt.state("first")["pid"].as_i64().expect("pid");

        let script = r#"
            exec > /out/report 2>&1
            echo "hostname=$(hostname)"
            echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
            echo "cwd=$(pwd)"
            echo "env=$MYVAR"
            grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status | tr -d '\t' | sed 's/:/=/'
            echo "nofile=$(ulimit -n)"
            echo "oom=$(cat /proc/self/oom_score_adj)"
            echo "sysctl=$(cat /proc/sys/net/ipv4/ip_forward)"
            echo "masked_file=$(wc -c < /etc/secret)"
            echo "masked_dir=$(ls /secretdir | wc -l)"
            touch /proc/sys/x 2>/dev/null; echo "procsys_ro=$?"
            touch /rootfile 2>/dev/null; echo "root_ro=$?"
            echo "ro_bind=$(cat /ro/f)"; touch /ro/new 2>/dev/null; echo "ro_bind_write=$?"
            grep ' /data ' /proc/self/mountinfo | grep -q 'size=1024k' && echo "tmpfs_opts=yes"
            grep ' /data ' /proc/self/mountinfo | grep -q ' shared:' && echo "data_shared=yes"
            echo "dev=$(ls -l /dev/mynull | cut -c1) $(echo x > /dev/mynull && echo written)"
            echo "uname=$(uname -m)"
            mkdir /tmp/blocked 2>/dev/null; echo "mkdir=$?"
            echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
            echo "pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
            head -c1 /dev/kmsg >/dev/null 2>&1; echo "kmsg=$?"
        "#;
        let fpid = first_pid;
        let rootfs = work.path().join("b/rootfs");
        std::fs::create_dir_all(rootfs.join("secretdir")).expect("mkdir");
        std::fs::create_dir_all(rootfs.join("etc")).expect("mkdir");
        std::fs::write(rootfs.join("secretdir/file"), "hidden").expect("write");
        std::fs::write(rootfs.join("etc/secret"), "hidden").expect("write");
        let b = bundle(&work.path().join("b"), |s| {
            s["process"]["args"] = json!(["sh", "-c", script]);
            // (a hostname would be set in the joined namespace, as runc does)
            s.as_object_mut().expect("object").remove("hostname");
            s["process"]["env"] = json!(["PATH=/bin", "MYVAR=hello"]);
            s["process"]["cwd"] = json!("/tmp");
            s["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
            s["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]
            });
            s["process"]["noNewPrivileges"] = json!(true);
            s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
            s["process"]["oomScoreAdj"] = json!(123);
            s["root"]["readonly"] = json!(true);
            let mounts = s["mounts"].as_array_mut().expect("mounts");
            mounts.push(bind(&out_dir, "/out"));
            mounts.push(json!({"destination": "/ro", "type": "bind", "source": ro_dir, "options": ["rbind", "ro"]}));
            mounts.push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1024k", "shared"]}));
            s["linux"]["rootfsPropagation"] = json!("rslave");
            s["linux"]["maskedPaths"] = json!(["/etc/secret", "/secretdir", "/proc/kcore"]);
            s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            s["linux"]["devices"] = json!([{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0}]);
            s["linux"]["resources"] = json!({
                "devices": [{"allow": false, "access": "rwm"}],
                "memory": {"limit": 48 << 20},
                "pids": {"limit": 77}
            });
            s["linux"]["personality"] = json!({"domain": "LINUX32"});
            s["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
            });
            let ns = s["linux"]["namespaces"].as_array_mut().expect("namespaces");
            ns.retain(|n| n["type"] != "uts");
            ns.push(json!({"type": "uts", "path": format!("/proc/{fpid}/ns/uts")}));
        });
        let out = rt.run(&["run", "--bundle", b.to_str().expect("utf-8"), "fields"]);
        let report = std::fs::read_to_string(out_dir.join("report")).unwrap_or_default();
        assert!(out.status.success(), "{}\n{report}", String::from_utf8_lossy(&out.stderr));
        let has = |line: &str| assert!(report.lines().any(|l| l.trim() == line), "expected {line:?} in:\n{report}");
        has("hostname=joined-host");
        has("uid=1000 gid=1000 groups=1000 5");
        has("cwd=/tmp");
        has("env=hello");
        has("CapBnd=0000000000000021");
        has("CapEff=0000000000000000");
        has("NoNewPrivs=1");
        has("nofile=256");
        has("oom=123");
        has("sysctl=1");
        has("masked_file=0");
        has("masked_dir=0");
        has("procsys_ro=1");
        has("root_ro=1");
        has("ro_bind=host file");
        has("ro_bind_write=1");
        has("tmpfs_opts=yes");
        has("data_shared=yes");
        has("dev=c written");
        has("uname=i686");
        has("mkdir=1");
        has(&format!("mem={}", 48u64 << 20));
        has("pids=77");
        has("kmsg=1");
        rt.ok(&["delete", "-f", "first"]);
    }
}

priv_test! {
    fn runtime_hooks_run_in_order_with_the_state_on_stdin() {
        let work = tempfile::tempdir().expect("tempdir");
        let log = work.path().join("hooks.log");
        std::fs::write(&log, "").expect("log");
        let log_s = log.to_str().expect("utf-8").to_string();
        // runtime-namespace hooks use the host's sh; startContainer runs in the container
        let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("printf '%s ' {name} >> {log_s}; cat >> {log_s}; echo >> {log_s}")]});
        let b = bundle(&work.path().join("b"), |s| {
            s["process"]["args"] = json!(["sh", "-c", "echo process >> /hooklog/hooks.log; sleep 1000"]);
            s["mounts"].as_array_mut().expect("mounts").push(bind(work.path(), "/hooklog"));
            s["hooks"] = json!({
                "prestart": [host_hook("prestart")],
                "createRuntime": [host_hook("createRuntime")],
                "createContainer": [host_hook("createContainer")],
                "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "printf 'startContainer ' >> /hooklog/hooks.log; cat >> /hooklog/hooks.log; echo >> /hooklog/hooks.log"]}],
                "poststart": [host_hook("poststart")],
                "poststop": [host_hook("poststop")]
            });
            s["annotations"] = json!({"hook.test": "1"});
        });
        let rt = Rt::new();
        let bundle_arg = b.to_str().expect("utf-8");
        rt.ok(&["create", "--bundle", bundle_arg, "h1"]);
        let pid = rt.state("h1")["pid"].as_i64().expect("pid");
        rt.ok(&["start", "h1"]);
        wait_for("the process line", || std::fs::read_to_string(&log).is_ok_and(|s| s.contains("process")));
        rt.ok(&["kill", "h1", "KILL"]);
        wait_for("stopped", || rt.status("h1") == "stopped");
        rt.ok(&["delete", "h1"]);
        let text = std::fs::read_to_string(&log).expect("log");
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap_or("")).collect();
        // the process's own line lands after startContainer; poststart may race it
        let hooks_only: Vec<&str> = names.iter().copied().filter(|n| *n != "process").collect();
        assert_eq!(hooks_only, ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"], "{text}");
        let pos = |n: &str| names.iter().position(|x| *x == n).expect("present");
        assert!(pos("startContainer") < pos("process"), "{text}");
        for (name, status, with_pid) in [
            ("prestart", "creating", true), ("createRuntime", "creating", true), ("createContainer", "creating", true),
            ("startContainer", "created", true), ("poststart", "running", true), ("poststop", "stopped", false),
        ] {
            let line = lines.iter().find(|l| l.starts_with(&format!("{name} "))).expect("hook line");
            let state: Value = serde_json::from_str(&line[name.len() + 1..]).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            assert_eq!(state["id"], "h1", "{name}");
            assert_eq!(state["status"], status, "{name}");
            assert_eq!(state["bundle"], bundle_arg, "{name}");
            assert_eq!(state["annotations"]["hook.test"], "1", "{name}");
            assert!(state["ociVersion"].is_string(), "{name}");
            if with_pid {
                assert_eq!(state["pid"].as_i64(), Some(pid), "{name}: the runtime's view of the pid");
            }
        }

        // a failing createRuntime hook fails create and leaves nothing behind
        let bad = bundle(&work.path().join("bad"), |s| {
            s["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 4"]}]});
        });
        let (_, err) = rt.fails(&["create", "--bundle", bad.to_str().expect("utf-8"), "bad"]);
        assert!(err.contains("createRuntime hook") && err.contains("nope"), "{err}");
        assert!(rt.ok(&["list", "-q"]).trim().is_empty());
    }
}

priv_test! {
    fn runtime_seccomp_notify_hands_the_listener_to_the_agent() {
        use std::os::unix::net::UnixListener;
        let work = tempfile::tempdir().expect("tempdir");
        let sock = work.path().join("agent.sock");
        let listener = UnixListener::bind(&sock).expect("bind");
        let out_dir = work.path().join("out");
        std::fs::create_dir_all(&out_dir).expect("mkdir");
        let b = bundle(&work.path().join("b"), |s| {
            s["process"]["args"] = json!(["sh", "-c", "mkdir /tmp/x 2> /out/err; echo $? > /out/rc"]);
            s["mounts"].as_array_mut().expect("mounts").push(bind(&out_dir, "/out"));
            s["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock,
                "listenerMetadata": "meta-1",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            });
        });
        let agent = std::thread::spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
            let mut buf = vec![0u8; 8192];
            let n = rustix::net::recvmsg(&conn, &mut [std::io::IoSliceMut::new(&mut buf)], &mut control, rustix::net::RecvFlags::empty()).expect("recvmsg").bytes;
            let mut fds = Vec::new();
            for msg in control.drain() {
                if let rustix::net::RecvAncillaryMessage::ScmRights(r) = msg {
                    fds.extend(r);
                }
            }
            let state: Value = serde_json::from_slice(&buf[..n]).expect("state json");
            // closing the listener makes the notified syscalls fail with ENOSYS
            drop(fds);
            state
        });
        let rt = Rt::new();
        let out = rt.run(&["run", "--bundle", b.to_str().expect("utf-8"), "notify"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let state = agent.join().expect("agent");
        assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
        assert_eq!(state["metadata"], "meta-1");
        assert_eq!(state["state"]["id"], "notify");
        assert!(state["pid"].as_i64().is_some_and(|p| p > 1), "{state}");
        assert_eq!(std::fs::read_to_string(out_dir.join("rc")).expect("rc").trim(), "1");
        let err = std::fs::read_to_string(out_dir.join("err")).expect("err");
        assert!(err.contains("Function not implemented"), "{err}");
    }
}

priv_test! {
    fn runtime_refuses_what_it_does_not_honour_by_name() {
        let work = tempfile::tempdir().expect("tempdir");
        let rt = Rt::new();
        let cases: Vec<(&str, Tweak, &str)> = vec![
            ("v2", Box::new(|s: &mut Value| s["ociVersion"] = json!("2.0.0")), "ociVersion"),
            ("apparmor", Box::new(|s: &mut Value| s["process"]["apparmorProfile"] = json!("p")), "AppArmor"),
            ("selinux", Box::new(|s: &mut Value| s["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")), "SELinux"),
            ("userns-unmapped", Box::new(|s: &mut Value| {
                s["linux"]["namespaces"].as_array_mut().expect("ns").push(json!({"type": "user"}));
            }), "uidMappings"),
            ("timens", Box::new(|s: &mut Value| {
                s["linux"]["namespaces"].as_array_mut().expect("ns").push(json!({"type": "time"}));
            }), "time"),
            ("rdt", Box::new(|s: &mut Value| s["linux"]["intelRdt"] = json!({"closID": "x"})), "linux.intelRdt"),
            ("sched", Box::new(|s: &mut Value| s["process"]["scheduler"] = json!({"policy": "SCHED_OTHER"})), "process.scheduler"),
            ("tty", Box::new(|s: &mut Value| s["process"]["terminal"] = json!(true)), "console socket"),
        ];
        for (name, tweak, needle) in cases {
            let b = bundle(&work.path().join(name), |s| tweak(s));
            let (code, err) = rt.fails(&["create", "--bundle", b.to_str().expect("utf-8"), name]);
            assert_eq!(code, 1, "{name}");
            assert!(err.contains(needle), "{name}: {err}");
        }
        assert!(rt.ok(&["list", "-q"]).trim().is_empty(), "nothing half-made");
    }
}

priv_test! {
    fn runtime_console_socket_gets_the_terminal() {
        use std::io::Read;
        let work = tempfile::tempdir().expect("tempdir");
        let sock = work.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let b = bundle(&work.path().join("b"), |s| {
            s["process"]["terminal"] = json!(true);
            s["process"]["args"] = json!(["sh", "-c", "tty; stty size"]);
            s["process"]["consoleSize"] = json!({"height": 33, "width": 101});
        });
        let receiver = std::thread::spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
            let mut buf = [0u8; 256];
            rustix::net::recvmsg(&conn, &mut [std::io::IoSliceMut::new(&mut buf)], &mut control, rustix::net::RecvFlags::empty()).expect("recvmsg");
            let mut master = None;
            for msg in control.drain() {
                if let rustix::net::RecvAncillaryMessage::ScmRights(mut r) = msg {
                    master = r.next();
                }
            }
            let mut f = std::fs::File::from(master.expect("a terminal fd"));
            let mut out = Vec::new();
            let mut chunk = [0u8; 1024];
            // read until the slave side closes (EIO)
            while let Ok(n) = f.read(&mut chunk) {
                if n == 0 { break; }
                out.extend_from_slice(&chunk[..n]);
            }
            String::from_utf8_lossy(&out).into_owned()
        });
        let rt = Rt::new();
        let bundle_arg = b.to_str().expect("utf-8");

        // a foreground run without a console socket proxies the terminal itself (script(1)
        // gives it one): input reaches the container, the size is passed on, the code returns
        let fg = bundle(&work.path().join("fg"), |s| {
            s["process"]["terminal"] = json!(true);
            s["process"]["args"] = json!(["sh", "-c", "stty size; read x; echo got $x; exit 4"]);
        });
        let cmd = format!(
            "stty rows 21 cols 91; {} runtime --root {} run --bundle {} fgtty; echo rc=$?",
            Berth::bin().display(),
            rt.root.path().display(),
            fg.display()
        );
        let mut script = Command::new("script");
        script.args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = script.spawn().expect("script runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(b"typed\n").expect("write");
            // keep stdin open until the container answered
            std::thread::sleep(std::time::Duration::from_millis(1000));
        }
        let out = child.wait_with_output().expect("script exits");
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(text.contains("21 91"), "{text:?}");
        assert!(text.contains("got typed"), "{text:?}");
        assert!(text.contains("rc=4"), "{text:?}");

        // exec --tty in the foreground proxies the exec's terminal the same way
        let sleeper = bundle(&work.path().join("sleeper"), |s| s["process"]["args"] = json!(["sleep", "1000"]));
        rt.ok(&["run", "-d", "--bundle", sleeper.to_str().expect("utf-8"), "sleeper"]);
        let cmd = format!(
            "{} runtime --root {} exec -t sleeper sh -c 'tty; read x; echo exec-got $x; exit 6'; echo rc=$?",
            Berth::bin().display(),
            rt.root.path().display()
        );
        let mut script = Command::new("script");
        script.args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = script.spawn().expect("script runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(b"line\n").expect("write");
            std::thread::sleep(std::time::Duration::from_millis(1000));
        }
        let out = child.wait_with_output().expect("script exits");
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(text.contains("/dev/pts/"), "{text:?}");
        assert!(text.contains("exec-got line") && text.contains("rc=6"), "{text:?}");
        rt.ok(&["delete", "-f", "sleeper"]);

        rt.ok(&["create", "--bundle", bundle_arg, "--console-socket", sock.to_str().expect("utf-8"), "tty1"]);
        rt.ok(&["start", "tty1"]);
        let text = receiver.join().expect("receiver");
        assert!(text.contains("/dev/"), "tty names a terminal: {text:?}");
        assert!(text.contains("33 101"), "console size applied: {text:?}");
        wait_for("stopped", || rt.status("tty1") == "stopped");
        rt.ok(&["delete", "tty1"]);
    }
}

priv_test! {
    fn podman_runs_busybox_through_berth_runc() {
        let work = tempfile::tempdir().expect("tempdir");
        // berth-runc: a link to the binary, found by its name
        let link = work.path().join("berth-runc");
        std::os::unix::fs::symlink(Berth::bin(), &link).expect("symlink");
        let version = Command::new(&link).arg("--version").output().expect("berth-runc runs");
        assert!(String::from_utf8_lossy(&version.stdout).contains("berth-runc"));

        // podman on private storage; ulimits this VM can grant without CAP_SYS_RESOURCE
        let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
        let hard = |name: &str| -> String {
            let line = limits.lines().find(|l| l.starts_with(name)).expect("limit line");
            line[name.len()..].split_whitespace().nth(1).expect("hard limit").to_string()
        };
        let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max").expect("pid_max").trim().parse().expect("number");
        let nofile = match hard("Max open files").as_str() { "unlimited" => "1048576".to_string(), n => n.to_string() };
        let nproc = match hard("Max processes").as_str() { "unlimited" => pid_max, n => n.parse::<u64>().expect("number").min(pid_max) };
        let conf = work.path().join("containers.conf");
        std::fs::write(&conf, format!(
            "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
        )).expect("containers.conf");
        let storage = work.path().join("storage");
        let runroot = work.path().join("runroot");
        let podman = |args: &[&str]| -> Output {
            Command::new("podman")
                .arg("--root").arg(&storage)
                .arg("--runroot").arg(&runroot)
                .arg("--runtime").arg(&link)
                .arg("--storage-driver").arg("vfs")
                .args(args)
                .env("CONTAINERS_CONF", &conf)
                .stdin(Stdio::null())
                .output()
                .expect("podman runs")
        };
        let ok = |args: &[&str]| -> String {
            let out = podman(args);
            assert!(out.status.success(), "podman {args:?} failed ({}):\nstdout: {}\nstderr: {}", out.status,
                String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // the busybox test image, from the testkit's OCI layout
        // (podman names the image after the path, which must be lower-case)
        let lower = tempfile::Builder::new()
            .prefix(&format!("berth-runc-podman-{}", std::process::id()))
            .rand_bytes(0)
            .tempdir_in("/tmp")
            .expect("tempdir");
        let layout = crate::support::fixture_layout(lower.path());
        ok(&["pull", &format!("oci:{}:latest", layout.display())]);
        let images = ok(&["images", "--format", "{{.ID}}"]);
        let image = images.lines().next().expect("an image").trim().to_string();

        // run --rm: output and exit code
        let out = podman(&["run", "--rm", "--network", "none", &image, "sh", "-c", "echo hello from berth-runc; exit 5"]);
        assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello from berth-runc");

        // a detached container: exec, stop, rm
        let id = ok(&["run", "-d", "--network", "none", "--name", "bb", &image, "sleep", "1000"]).trim().to_string();
        assert!(!id.is_empty());
        let st = ok(&["inspect", "-f", "{{.State.Status}} {{.OCIRuntime}}", "bb"]);
        assert!(st.trim().starts_with("running ") && st.contains("berth-runc"), "{st}");
        let out = ok(&["exec", "bb", "sh", "-c", "echo exec $(id -u); cat /proc/1/cmdline | tr '\\0' ' '"]);
        assert!(out.contains("exec 0") && out.contains("sleep 1000"), "{out}");
        let out = podman(&["exec", "bb", "sh", "-c", "exit 9"]);
        assert_eq!(out.status.code(), Some(9));
        ok(&["stop", "-t", "2", "bb"]);
        let st = ok(&["inspect", "-f", "{{.State.Status}}", "bb"]);
        assert_eq!(st.trim(), "exited");
        ok(&["rm", "bb"]);
        assert!(ok(&["ps", "-a", "-q"]).trim().is_empty());
        let _ = podman(&["rmi", "-a", "-f"]);
    }
}

priv_test! {
    fn runtime_user_namespace_with_id_mappings() {
        let work = tempfile::tempdir().expect("tempdir");
        let out_dir = work.path().join("out");
        std::fs::create_dir_all(&out_dir).expect("mkdir");
        std::fs::set_permissions(&out_dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
        let b = bundle(&work.path().join("b"), |s| {
            s["process"]["args"] = json!(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map > /out/maps; id -u > /out/id; touch /out/made; head -c 3 /dev/zero | wc -c > /out/devzero"]);
            s["mounts"].as_array_mut().expect("mounts").push(bind(&out_dir, "/out"));
            s["linux"]["namespaces"].as_array_mut().expect("ns").push(json!({"type": "user"}));
            s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        });
        let rt = Rt::new();
        let out = rt.run(&["run", "--bundle", b.to_str().expect("utf-8"), "userns"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let maps = std::fs::read_to_string(out_dir.join("maps")).expect("maps");
        let rows: Vec<Vec<&str>> = maps.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows, vec![vec!["0", "200000", "65536"], vec!["0", "200000", "65536"]], "{maps}");
        assert_eq!(std::fs::read_to_string(out_dir.join("id")).expect("id").trim(), "0");
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(out_dir.join("made")).expect("made");
        assert_eq!((md.uid(), md.gid()), (200000, 200000), "container root is host uid 200000");
        // device nodes cannot be made in a user namespace: the host's are bound in (readable;
        // whether writable depends on the host node's mode)
        assert_eq!(std::fs::read_to_string(out_dir.join("devzero")).expect("devzero").trim(), "3");
    }
}
