//! Containers end to end: run/create/start/stop/kill/rm/logs/ps/inspect through the CLI, each
//! flag's effect observed from inside the container.

use std::time::Duration;

use berth_testkit::fake_registry::{Auth, FakeRegistry};
use berth_testkit::image::{busybox_image, Compression};
use berth_testkit::priv_test;

use crate::support::{self, code, Berth};

/// A berth with the busybox fixture pulled as `IMG`, served by an in-process registry.
pub struct Fixture {
    pub b: Berth,
    pub img: String,
    _reg: FakeRegistry,
    _rt: tokio::runtime::Runtime,
}

pub fn fixture() -> Fixture {
    fixture_with_daemon(&[])
}

/// A fixture whose daemon runs with extra flags (none: the autostarted daemon).
pub fn fixture_with_daemon(daemon_args: &[&str]) -> Fixture {
    fixture_with(Berth::new(), daemon_args)
}

/// A fixture on `b`, whose daemon runs with extra flags (none: the autostarted daemon).
pub fn fixture_with(b: Berth, daemon_args: &[&str]) -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let reg = rt.block_on(FakeRegistry::start(Auth::None));
    reg.add_image(
        "latest",
        &busybox_image(Compression::Gzip, "amd64").expect("fixture"),
    );
    let img = format!("{}/test/bb:latest", reg.host());
    if !daemon_args.is_empty() {
        b.start_daemon(daemon_args);
    }
    b.ok(&["pull", "-q", &img]);
    Fixture {
        b,
        img,
        _reg: reg,
        _rt: rt,
    }
}

fn cgroup_leftovers(id_prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for ctl in ["memory", "pids", "cpu", "freezer"] {
        if let Ok(rd) = std::fs::read_dir(format!("/sys/fs/cgroup/{ctl}/berth")) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && n.starts_with(id_prefix) {
                    out.push(format!("{ctl}/{n}"));
                }
            }
        }
    }
    out
}

priv_test! {
    fn run_reports_output_and_exit_codes_like_docker() {
        let f = fixture();
        let b = &f.b;
        assert_eq!(b.ok(&["run", "--rm", &f.img, "echo", "hello", "world"]), "hello world\n");
        let (c, _, _) = code(b, &["run", "--rm", &f.img, "sh", "-c", "exit 7"]);
        assert_eq!(c, 7, "the container's exit code");
        let (c, _, err) = code(b, &["run", "--rm", &f.img, "nosuchcommand"]);
        assert_eq!(c, 127, "{err}");
        assert!(err.contains("executable file not found in $PATH"), "{err}");
        let (c, _, err) = code(b, &["run", "--rm", &f.img, "/etc/passwd"]);
        assert_eq!(c, 126, "{err}");
        // (pid 1 ignores signals it has no handler for, as in Docker: signal a child)
        let (c, _, _) = code(b, &["run", "--rm", &f.img, "sh", "-c", "sh -c 'kill -TERM $$'; exit $?"]);
        assert_eq!(c, 143, "signals are reported as 128+N");
        let (c, _, err) = code(b, &["run", "--rm", "--memory", "bogus", &f.img, "true"]);
        assert_eq!(c, 125, "bad flag values are berth's failure: {err}");
        let (c, _, err) = code(b, &["run", "--rm", "nosuchimage-here:v1", "true"]);
        assert_eq!(c, 125, "{err}");
        // stdin
        let mut child = b.command(&["run", "-i", "--rm", &f.img, "cat"]);
        child.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = child.spawn().expect("spawn");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), b"piped input\n").expect("write");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "piped input\n");
        // --rm leaves nothing
        assert_eq!(b.ok(&["ps", "-a", "-q"]).trim(), "", "{}", b.ok(&["ps", "-a", "--no-trunc"]));
        let dirs: Vec<_> = std::fs::read_dir(b.root.path().join("containers")).expect("dir").collect();
        assert!(dirs.is_empty(), "no container directory left");
    }
}

priv_test! {
    fn flags_take_effect_inside_the_container() {
        let f = fixture();
        let b = &f.b;
        let status = b.ok(&["run", "--rm", &f.img, "grep", "-E", "^(Cap...|Seccomp|NoNewPrivs):", "/proc/self/status"]);
        for set in ["CapPrm", "CapEff", "CapBnd"] {
            assert!(status.contains(&format!("{set}:\t00000000a80425fb")), "Docker's default caps in {set}: {status}");
        }
        assert!(status.contains("CapInh:\t0000000000000000") && status.contains("CapAmb:\t0000000000000000"), "no inheritable or ambient caps: {status}");
        assert!(status.contains("Seccomp:\t2"), "{status}");
        assert!(status.contains("NoNewPrivs:\t0"), "{status}");
        // a non-root user keeps only the bounding set, as with Docker
        let status = b.ok(&["run", "--rm", "-u", "1000", &f.img, "grep", "-E", "^Cap...:", "/proc/self/status"]);
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert!(status.contains(&format!("{set}:\t0000000000000000")), "non-root has no {set}: {status}");
        }
        assert!(status.contains("CapBnd:\t00000000a80425fb"), "{status}");
        let s = b.ok(&["run", "--rm", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", "--security-opt", "no-new-privileges", &f.img, "grep", "-E", "^(CapEff|NoNewPrivs):", "/proc/self/status"]);
        assert!(s.contains("CapEff:\t00000000a80435fa"), "NET_ADMIN added, CHOWN dropped: {s}");
        assert!(s.contains("NoNewPrivs:\t1"), "{s}");
        let s = b.ok(&["run", "--rm", "--privileged", &f.img, "grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status"]);
        // privileged: every capability this host lets root have (this VM withholds CAP_SYS_RESOURCE)
        let host_caps = std::fs::read_to_string("/proc/self/status").expect("status").lines()
            .find(|l| l.starts_with("CapPrm:")).map(|l| l.trim_start_matches("CapPrm:").trim().to_string()).expect("CapPrm");
        assert!(s.contains("Seccomp:\t0") && s.contains(&format!("CapEff:\t{host_caps}")), "privileged: {s} (host {host_caps})");
        let s = b.ok(&["run", "--rm", "--security-opt", "seccomp=unconfined", &f.img, "grep", "Seccomp:", "/proc/self/status"]);
        assert!(s.contains("Seccomp:\t0"), "{s}");
        let s = b.ok(&["run", "--rm", "-u", "user", "-w", "/tmp", "-h", "box", "-e", "FOO=bar", &f.img, "sh", "-c", "id; pwd; hostname; echo $FOO $HOME; cat /etc/hostname"]);
        assert_eq!(s, "uid=1000(user) gid=1000(user)\n/tmp\nbox\nbar /home/user\nbox\n");
        let s = b.ok(&["run", "--rm", "-u", "4242:4343", &f.img, "id", "-u"]);
        assert_eq!(s.trim(), "4242");
        let (c, _, err) = code(b, &["run", "--rm", "--read-only", &f.img, "touch", "/x"]);
        assert_eq!(c, 1, "{err}");
        assert!(err.contains("Read-only file system"), "{err}");
        let s = b.ok(&["run", "--rm", "--read-only", "--tmpfs", "/scratch", &f.img, "sh", "-c", "touch /scratch/ok && echo ok"]);
        assert_eq!(s, "ok\n");
        // isolation: no host processes, read-only /proc/sys and /sys, no mounts, no host devices
        let s = b.ok(&["run", "--rm", &f.img, "sh", "-c", "ls /proc | grep -cE '^[0-9]+$'"]);
        assert!(s.trim().parse::<i32>().expect("count") <= 3, "only the container's processes: {s}");
        let (_, out, _) = code(b, &["run", "--rm", &f.img, "sh", "-c", "(echo 1 > /proc/sys/kernel/hostname) 2>&1; (echo x > /sys/kernel/uevent_helper) 2>&1; mount -t tmpfs t /mnt 2>&1; ls /dev"]);
        assert!(out.matches("Read-only file system").count() >= 2, "{out}");
        assert!(out.contains("permission denied") || out.contains("Operation not permitted"), "{out}");
        assert!(!out.contains("sda") && !out.contains("vda") && !out.contains("kmsg"), "no host devices: {out}");
        // the device cgroup: a node may be made, not opened (/dev/vcs, 7:0, opens on this host)
        let probe = "mknod /tmp/vcs c 7 0 && (exec 3</tmp/vcs) 2>&1 && echo opened";
        let (_, out, _) = code(b, &["run", "--rm", &f.img, "sh", "-c", probe]);
        assert!(out.contains("Operation not permitted") && !out.contains("opened"), "devices denied: {out}");
        let (_, out, _) = code(b, &["run", "--rm", "--privileged", &f.img, "sh", "-c", probe]);
        assert!(out.contains("opened"), "privileged may open devices: {out}");
                // limits from the cgroup files (the container sees its own cgroup as root)
        let s = b.ok(&["run", "--rm", "--memory", "64m", "--pids-limit", "20", "--cpus", "0.5", &f.img, "sh", "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us"]);
        assert_eq!(s, "67108864\n20\n50000\n", "limits as the kernel sees them");
        let s = b.ok(&["run", "--rm", "--ulimit", "nofile=256:512", &f.img, "sh", "-c", "ulimit -n; ulimit -Hn"]);
        assert_eq!(s, "256\n512\n");
        let (c, _, err) = code(b, &["run", "--rm", "--ulimit", "nofile=99999999:99999999", &f.img, "true"]);
        assert_ne!(c, 0, "an rlimit above the host's hard limit is refused: {err}");
        assert!(err.contains("rlimit") || err.contains("limit"), "{err}");
    }
}

priv_test! {
    fn lifecycle_commands() {
        let f = fixture();
        let b = &f.b;
        let id = b.ok(&["run", "-d", "--name", "sleeper", &f.img, "sh", "-c", "echo started; trap 'echo got TERM; exit 3' TERM; while true; do sleep 0.1; done"]).trim().to_string();
        assert_eq!(id.len(), 64);
        std::thread::sleep(Duration::from_millis(300));
        let ps = b.ok(&["ps"]);
        assert!(ps.contains("sleeper") && ps.contains("Up "), "{ps}");
        let (c, _, err) = code(b, &["run", "-d", "--name", "sleeper", &f.img, "true"]);
        assert_eq!(c, 125);
        assert!(err.contains("is already in use"), "{err}");
        let (c, _, err) = code(b, &["rm", "sleeper"]);
        assert_eq!(c, 1);
        assert!(err.contains("Stop the container before attempting removal"), "{err}");
        let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "sleeper"])).expect("inspect");
        assert_eq!(v[0]["State"]["Status"], "running");
        assert!(v[0]["State"]["Pid"].as_i64().unwrap_or(0) > 0);
        assert_eq!(v[0]["Name"], "/sleeper");
        assert_eq!(b.ok(&["stop", "-t", "5", "sleeper"]).trim(), "sleeper");
        assert_eq!(b.ok(&["wait", "sleeper"]).trim(), "3", "the trap ran and chose the exit code");
        let logs = b.ok(&["logs", "sleeper"]);
        assert_eq!(logs, "started\ngot TERM\n");
        let logs = b.ok(&["logs", "-t", "--tail", "1", "sleeper"]);
        assert!(logs.ends_with(" got TERM\n") && logs.starts_with("20"), "{logs}");
        assert!(b.ok(&["ps", "-a"]).contains("Exited (3)"));
        // start again; kill with a signal
        b.ok(&["start", "sleeper"]);
        std::thread::sleep(Duration::from_millis(200));
        b.ok(&["kill", "-s", "KILL", "sleeper"]);
        assert_eq!(b.ok(&["wait", "sleeper"]).trim(), "137");
        let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "-f", "{{json .State}}", "sleeper"])).expect("state");
        assert_eq!(v["ExitCode"], 137);
        assert_eq!(v["Running"], false);
        // pause / unpause / top / rename
        b.ok(&["start", "sleeper"]);
        std::thread::sleep(Duration::from_millis(200));
        b.ok(&["pause", "sleeper"]);
        assert!(b.ok(&["ps"]).contains("(Paused)"));
        let freezer = format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state");
        if std::path::Path::new(&freezer).exists() {
            assert_eq!(std::fs::read_to_string(&freezer).expect("freezer").trim(), "FROZEN", "the kernel froze it");
        }
        let (c, _, err) = code(b, &["pause", "sleeper"]);
        assert_eq!(c, 1, "{err}");
        b.ok(&["unpause", "sleeper"]);
        let top = b.ok(&["top", "sleeper"]);
        assert!(top.starts_with("UID") && top.contains("sh -c"), "{top}");
        b.ok(&["rename", "sleeper", "napper"]);
        assert!(b.ok(&["ps"]).contains("napper"));
        b.ok(&["rename", "napper", "sleeper"]);
        b.ok(&["kill", "sleeper"]);
        b.ok(&["wait", "sleeper"]);
                // rm -f of a running container
        b.ok(&["start", "sleeper"]);
        b.ok(&["rm", "-f", "sleeper"]);
        assert!(b.ok(&["ps", "-a", "-q"]).trim().is_empty());
        assert!(crate::containers::cgroup_leftovers(&id[..12]).is_empty(), "no cgroup left");
        // create + start -a
        b.ok(&["create", "--name", "later", &f.img, "echo", "from create"]);
        assert!(b.ok(&["ps", "-a"]).contains("Created"));
        assert_eq!(b.ok(&["start", "-a", "later"]), "from create\n");
        b.ok(&["rm", "later"]);
        // an image in use cannot be removed without -f
        b.ok(&["create", "--name", "holder", &f.img, "true"]);
        let (c, _, err) = code(b, &["rmi", &f.img]);
        assert_eq!(c, 1);
        assert!(err.contains("is using its referenced image"), "{err}");
        b.ok(&["rm", "holder"]);
    }
}

priv_test! {
    fn restart_policies_oom_and_log_rotation() {
        let f = fixture();
        let b = &f.b;
        b.ok(&["run", "-d", "--name", "flaky", "--restart", "on-failure:2", &f.img, "sh", "-c", "echo run; exit 1"]);
        let mut restarts = 0;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "flaky"])).expect("inspect");
            restarts = v[0]["RestartCount"].as_i64().unwrap_or(0);
            if restarts == 2 && v[0]["State"]["Status"] == "exited" {
                break;
            }
        }
        assert_eq!(restarts, 2, "on-failure:2 restarts twice");
        assert_eq!(b.ok(&["logs", "flaky"]), "run\nrun\nrun\n");
        b.ok(&["rm", "flaky"]);

        let (c, _, _) = code(b, &["run", "--name", "hog", "--memory", "8m", "--memory-swap", "8m", &f.img, "sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived"]);
        assert_eq!(c, 137, "killed by the OOM killer");
        let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "hog"])).expect("inspect");
        assert_eq!(v[0]["State"]["OOMKilled"], true);
        b.ok(&["rm", "hog"]);

        b.ok(&["run", "--name", "chatty", "--log-opt", "max-size=2k", "--log-opt", "max-file=2", &f.img, "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done"]);
        let dir = b.root.path().join("containers");
        let cdir = std::fs::read_dir(&dir).expect("dir").next().expect("one container").expect("entry").path();
        let total: u64 = std::fs::read_dir(&cdir).expect("dir").flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("container-json.log"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0)).sum();
        assert!(total <= 2 * 2048 + 512, "logs bounded by max-size x max-file: {total}");
        assert!(!cdir.join("container-json.log.2").exists());
        let logs = b.ok(&["logs", "chatty"]);
        assert!(logs.ends_with("line 299\n"), "the newest lines are kept");
        b.ok(&["rm", "chatty"]);
    }
}

priv_test! {
    fn containers_survive_a_daemon_kill_9() {
        let f = fixture();
        let b = &f.b;
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(b.ok(&["run", "-d", "--name", &format!("c{i}"), &f.img, "sh", "-c", "while true; do echo tick; sleep 0.2; done"]).trim().to_string());
        }
        std::thread::sleep(Duration::from_millis(500));
        b.kill_daemon(9);
        std::thread::sleep(Duration::from_millis(300));
        // the containers run on without the daemon
        let running = ids.iter().filter(|id| {
            std::fs::read_to_string(b.root.path().join("containers").join(id).join("state.json")).ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| v["pid"].as_i64())
                .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        }).count();
        assert_eq!(running, 20, "all containers still run while the daemon is down");
        // a new daemon re-attaches: all running, logs continuous, stop works
        let ps = b.ok(&["ps", "-q"]);
        assert_eq!(ps.lines().count(), 20, "{ps}");
        let before = b.ok(&["logs", "c0"]).lines().count();
        std::thread::sleep(Duration::from_millis(600));
        let after = b.ok(&["logs", "c0"]).lines().count();
        assert!(after > before, "logs kept flowing across the restart");
        for i in 0..20 {
            b.ok(&["rm", "-f", &format!("c{i}")]);
        }
        assert!(b.ok(&["ps", "-a", "-q"]).trim().is_empty());
    }
}

priv_test! {
    fn no_leaks_after_200_run_rm_cycles() {
        // a cgroup parent of its own: other tests' containers come and go under `berth`
        let parent = format!("berth-leaktest-{}", std::process::id());
        let f = fixture_with_daemon(&["--cgroup-parent", &parent]);
        let b = &f.b;
        let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo").lines().count();
        for _ in 0..200 {
            b.ok(&["run", "--rm", &f.img, "true"]);
        }
        let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo").lines().count();
        assert_eq!(mounts_before, mounts_after, "no mount left in the host namespace");
        assert!(b.ok(&["ps", "-a", "-q"]).trim().is_empty(), "no container rows left");
        assert_eq!(std::fs::read_dir(b.root.path().join("containers")).expect("dir").count(), 0, "no container dirs left");
        let shims = support::shims_of(b.root.path());
        assert!(shims.is_empty(), "no shim left: {shims:?}");
        assert!(std::path::Path::new(&format!("/sys/fs/cgroup/pids/{parent}")).is_dir(), "the containers ran under the test's cgroup parent");
        let leftovers: Vec<String> = ["memory", "pids"].iter().flat_map(|ctl| {
            std::fs::read_dir(format!("/sys/fs/cgroup/{ctl}/{parent}")).into_iter().flatten().flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| format!("{ctl}/{}", e.file_name().to_string_lossy()))
                .collect::<Vec<_>>()
        }).collect();
        assert!(leftovers.is_empty(), "no container cgroup left behind: {leftovers:?}");
        drop(f);
        // every hierarchy this host mounts (cpu and cpuacct are separate ones here, co-mounted
        // elsewhere; a fixed list left the parent behind in some)
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(hierarchy.path().join(&parent));
        }
    }
}

priv_test! {
    fn shims_run_from_the_sealed_copy_and_survive_a_broken_zygote() {
        let f = fixture();
        let b = &f.b;
        let id = b.ok(&["run", "-d", &f.img, "sleep", "1000"]).trim().to_string();
        let shims = support::shims_of(b.root.path());
        assert_eq!(shims.len(), 1, "one shim for one container: {shims:?}");
        // CVE-2019-5736 class: the shim's executable is the sealed in-memory copy, which not even
        // root can open for writing, never the berth binary on disk
        let exe = format!("/proc/{}/exe", shims[0]);
        let target = std::fs::read_link(&exe).expect("exe link");
        assert!(target.to_string_lossy().starts_with("/memfd:berth-shim"), "shim runs from {target:?}");
        let w = std::fs::OpenOptions::new().write(true).open(&exe);
        assert!(w.is_err(), "the shim's executable must not be writable");
        // the daemon's zygote: kill it; the next start executes a shim, and a new zygote follows
        let daemon = b.daemon_pid().expect("daemon pid");
        let zygotes = |daemon: i32| -> Vec<i32> {
            std::fs::read_dir("/proc").expect("proc").flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "berth-zygote"))
                .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
                    .and_then(|s| s.rsplit(')').next()?.split_whitespace().nth(1)?.parse::<i32>().ok()) == Some(daemon))
                .collect()
        };
        let z = zygotes(daemon);
        assert_eq!(z.len(), 1, "the daemon runs one zygote: {z:?}");
        assert_eq!(unsafe_free_kill(z[0]), 0);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(b.ok(&["run", "--rm", &f.img, "echo", "after"]).trim(), "after");
        assert_eq!(b.ok(&["run", "--rm", &f.img, "echo", "again"]).trim(), "again");
        let z2 = zygotes(daemon);
        assert_eq!(z2.len(), 1, "a new zygote replaces the dead one: {z2:?}");
        assert_ne!(z2[0], z[0]);
        b.ok(&["rm", "-f", &id]);
        assert!(support::shims_of(b.root.path()).is_empty());
    }
}

/// `kill -KILL PID` through the kill(1) command (the test crates have no unsafe code).
fn unsafe_free_kill(pid: i32) -> i32 {
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill")
        .code()
        .unwrap_or(-1)
}

/// Sends one HTTP/1.1 request on the daemon's socket and reads until the daemon closes:
/// (status line and headers, the bytes after them).
fn raw_request(socket: &std::path::Path, head: &str, body: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "{head}Host: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "reading the answer: {e}; so far: {}",
                String::from_utf8_lossy(&all)
            ),
        }
        // a plain answer (not upgraded) has a length or ends with a chunk trailer
        let text = String::from_utf8_lossy(&all);
        if !text.starts_with("HTTP/1.1 101")
            && (text.contains("\r\n\r\n{") && text.ends_with('}') || text.ends_with("0\r\n\r\n"))
        {
            break;
        }
    }
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end")
        + 4;
    (
        String::from_utf8_lossy(&all[..split]).into_owned(),
        all[split..].to_vec(),
    )
}

/// Docker's multiplexed stream: (stream type, payload) frames.
fn frames(mut b: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        out.push((b[0], String::from_utf8_lossy(&b[8..8 + len]).into_owned()));
        b = &b[8 + len..];
    }
    out
}

priv_test! {
    fn one_request_run_extension_creates_attaches_starts_and_reports_the_exit() {
        let f = fixture();
        let b = &f.b;
        let sock = b.socket();
        // berth-attach: a 101 with the container in a header, its output, then the end frame
        let body = format!(r#"{{"Image":"{}","Cmd":["sh","-c","echo out; echo err >&2; exit 7"],"HostConfig":{{"AutoRemove":true}}}}"#, f.img);
        let (head, stream) = raw_request(&sock, "POST /v1.50/containers/create?name=onereq&berth-attach=1&stdout=1&stderr=1&condition=removed HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n", &body);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let created = head.lines().find_map(|l| l.strip_prefix("x-berth-container: ")).unwrap_or_else(|| panic!("no x-berth-container header: {head}"));
        let created: serde_json::Value = serde_json::from_str(created).expect("header JSON");
        assert_eq!(created["Id"].as_str().map(str::len), Some(64), "{created}");
        let got = frames(&stream);
        assert!(got.contains(&(1, "out\n".into())) && got.contains(&(2, "err\n".into())), "{got:?}");
        let (kind, end) = got.last().expect("an end frame").clone();
        assert_eq!(kind, 3, "the last frame is the end of the run: {got:?}");
        let end: serde_json::Value = serde_json::from_str(&end).expect("end JSON");
        assert_eq!(end["StatusCode"], 7, "{end}");
        // condition=removed: gone once the end frame came
        assert_eq!(b.ok(&["ps", "-a", "-q"]).trim(), "");

        // a start that fails: the end frame says why; AutoRemove takes the container away
        let body = format!(r#"{{"Image":"{}","Cmd":["/no/such/cmd"],"HostConfig":{{"AutoRemove":true}}}}"#, f.img);
        let (head, stream) = raw_request(&sock, "POST /v1.50/containers/create?berth-attach=1&stdout=1&stderr=1&condition=removed HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n", &body);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let got = frames(&stream);
        assert_eq!(got.len(), 1, "{got:?}");
        let end: serde_json::Value = serde_json::from_str(&got[0].1).expect("end JSON");
        assert!(end["StartError"].as_str().is_some_and(|m| m.contains("no such file or directory")), "{end}");
        assert_eq!(b.ok(&["ps", "-a", "-q"]).trim(), "", "the failed AutoRemove container is gone");

        // bad input: nothing is made
        let (head, _) = raw_request(&sock, "POST /v1.50/containers/create?berth-attach=1&condition=bogus HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n", &body);
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
        assert_eq!(b.ok(&["ps", "-a", "-q"]).trim(), "");

        // berth-start: created and running when the 201 comes, with the header
        let body = format!(r#"{{"Image":"{}","Cmd":["sleep","100"]}}"#, f.img);
        let (head, rest) = raw_request(&sock, "POST /v1.50/containers/create?name=started&berth-start=1 HTTP/1.1\r\n", &body);
        assert!(head.starts_with("HTTP/1.1 201"), "{head}");
        assert!(head.contains("x-berth-container: "), "{head}");
        assert!(String::from_utf8_lossy(&rest).contains("\"Id\""), "Docker's body as well");
        assert_eq!(b.ok(&["inspect", "-f", "{{.State.Running}}", "started"]).trim(), "true");
        // without the extension: Docker's create, nothing started, no header
        let (head, _) = raw_request(&sock, "POST /v1.50/containers/create?name=plain HTTP/1.1\r\n", &body);
        assert!(head.starts_with("HTTP/1.1 201") && !head.contains("x-berth-container"), "{head}");
        assert_eq!(b.ok(&["inspect", "-f", "{{.State.Status}}", "plain"]).trim(), "created");
        b.ok(&["rm", "-f", "started", "plain"]);

        // the CLI's run goes through it: output, exit code, --rm, -d
        let (c, out, err) = code(b, &["run", "--rm", &f.img, "sh", "-c", "echo o; echo e >&2; exit 5"]);
        assert_eq!((c, out.as_str(), err.as_str()), (5, "o\n", "e\n"));
        let id = b.ok(&["run", "-d", "--rm", &f.img, "sleep", "100"]);
        assert_eq!(b.ok(&["inspect", "-f", "{{.State.Running}}", id.trim()]).trim(), "true");
        b.ok(&["rm", "-f", id.trim()]);
        assert_eq!(b.ok(&["ps", "-a", "-q"]).trim(), "");
    }
}

priv_test! {
    fn an_idle_shim_gives_back_what_starting_the_container_touched() {
        let f = fixture();
        let b = &f.b;
        let id = b.ok(&["run", "-d", &f.img, "sleep", "1000"]).trim().to_string();
        let shims = support::shims_of(b.root.path());
        assert_eq!(shims.len(), 1, "{shims:?}");
        // the shim trims its heap after answering the start; give it a moment
        std::thread::sleep(Duration::from_millis(300));
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", shims[0])).expect("smaps");
        // private memory of the heap and the stack, kB
        let (mut which, mut heap, mut stack) = ("", 0u64, 0u64);
        for line in smaps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.first() {
                Some(f) if f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-') => {
                    which = match fields.get(5) {
                        Some(&"[heap]") => "heap",
                        Some(&"[stack]") => "stack",
                        _ => "",
                    };
                }
                Some(&"Private_Dirty:") => {
                    let kb: u64 = fields[1].parse().expect("kB");
                    match which {
                        "heap" => heap += kb,
                        "stack" => stack += kb,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // the spec is parsed and the container created in a helper process that exits; the
        // shim's own heap holds only its poll loop's state (a debug build's shim: ~30 kB of
        // heap, ~60 kB of stack; 116 and 148 kB when it created the container itself)
        assert!(heap <= 64, "private heap of the idle shim: {heap} kB");
        assert!(heap + stack <= 160, "private heap + stack of the idle shim: {heap} + {stack} kB");
        // and it still works: output reaches the log, stop is seen
        b.ok(&["exec", &id, "sh", "-c", "echo from-exec > /proc/1/fd/1"]);
        let logs = b.ok(&["logs", &id]);
        assert!(logs.contains("from-exec"), "{logs}");
        b.ok(&["stop", "-t", "0", &id]);
        let state = b.ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", &id]);
        assert_eq!(state.trim(), "exited 137");
        b.ok(&["rm", "-f", &id]);
    }
}

priv_test! {
    fn rm_containers_have_a_volatile_root_and_survive_restart() {
        let f = fixture();
        let b = &f.b;
        let root_options = |name: &str| {
            let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", name]).trim().to_string();
            let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
            info.lines().find(|l| l.split_whitespace().nth(4) == Some("/")).unwrap_or_default().to_string()
        };
        // --rm: nothing the container writes outlives it, so its overlay skips all syncing
        b.ok(&["run", "-d", "--rm", "--name", "vol", &f.img, "sleep", "60"]);
        let line = root_options("vol");
        assert!(line.contains("overlay") && line.contains("volatile"), "{line}");
        // as in Docker, restart keeps an --rm container (and its overlay mounts again,
        // though a volatile mount left its mark in the work directory)
        b.ok(&["restart", "-t", "0", "vol"]);
        let state = b.ok(&["inspect", "-f", "{{.State.Status}}", "vol"]);
        assert_eq!(state.trim(), "running");
        assert!(root_options("vol").contains("volatile"));
        // and stop removes it
        b.ok(&["stop", "-t", "0", "vol"]);
        support::eventually("the --rm container is removed", || {
            let (code, _, _) = code(b, &["inspect", "vol"]);
            if code == 1 { Ok(()) } else { Err(format!("inspect exit {code}")) }
        });
        // without --rm, the root is synced as usual
        b.ok(&["run", "-d", "--name", "kept", &f.img, "sleep", "60"]);
        assert!(!root_options("kept").contains("volatile"), "{}", root_options("kept"));
        b.ok(&["rm", "-f", "kept"]);
    }
}
