//! The runtime against the real kernel: a busybox root, namespaces, mounts, pivot_root,
//! Docker's capabilities and seccomp profile, observed from inside the container.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_runtime::{create, defaults, CreateOptions, ProcessIo};
use berth_testkit::priv_test;

// Every test here is `serial`: the shim test runs `shim::run`, which reaps any child of this
// process (`wait(-1)`, as a shim does), and would take the other tests' containers from them.

fn busybox_root(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(&root).expect("mkdir");
    let tar = berth_testkit::image::busybox_base_layer().expect("busybox layer");
    let tar_path = dir.join("base.tar");
    std::fs::write(&tar_path, tar).expect("write tar");
    let st = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar_path)
        .arg("-C")
        .arg(&root)
        .status()
        .expect("tar runs");
    assert!(st.success());
    root
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(spec: &oci_spec::runtime::Spec, bundle: &Path) -> Result<Run, berth_runtime::RuntimeError> {
    run_in(spec, bundle, None)
}

fn run_in(
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
    netns: Option<OwnedFd>,
) -> Result<Run, berth_runtime::RuntimeError> {
    let (out_r, out_w) = rustix::pipe::pipe().expect("pipe");
    let (err_r, err_w) = rustix::pipe::pipe().expect("pipe");
    let created = create(
        CreateOptions {
            spec,
            bundle,
            overlay: None,
            io: ProcessIo::Fds {
                stdin: None,
                stdout: out_w,
                stderr: err_w,
            },
            wait_for_start: false,
            preserve_fds: 0,
            netns,
        },
        |_| Ok(()),
    )?;
    let read = |fd: OwnedFd| {
        let mut s = String::new();
        std::fs::File::from(fd)
            .read_to_string(&mut s)
            .expect("read");
        s
    };
    let stdout = read(out_r);
    let stderr = read(err_r);
    let pid = rustix::process::Pid::from_raw(created.pid).expect("pid");
    let (_, status) = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
        .expect("wait")
        .expect("status");
    let code = status
        .exit_status()
        .unwrap_or_else(|| 128 + status.terminating_signal().unwrap_or(0));
    Ok(Run {
        code,
        stdout,
        stderr,
    })
}

fn spec_with(args: &[&str]) -> oci_spec::runtime::Spec {
    let mut spec = defaults::base_spec();
    let caps: Vec<String> = berth_runtime::caps::DOCKER_DEFAULT
        .iter()
        .map(|s| s.to_string())
        .collect();
    let p = spec.process_mut().as_mut().expect("process");
    p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
    let l = spec.linux_mut().as_mut().expect("linux");
    l.set_seccomp(Some(berth_runtime::seccomp::docker_default(
        &caps,
        berth_runtime::seccomp::Arch::host().expect("x86_64 or aarch64 host"),
    )));
    spec
}

priv_test! {
    #[serial_test::serial]
    fn runs_busybox_isolated_with_docker_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        busybox_root(dir.path());
        let spec = spec_with(&["/bin/sh", "-c", "echo hello; hostname; echo pid=$$; grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status; ls /dev; cat /proc/1/cmdline | tr '\\0' ' '; echo; (echo x > /proc/sys/kernel/hostname) 2>&1; mount -t tmpfs none /mnt 2>&1; echo done"]);
        let r = run(&spec, dir.path()).expect("container runs");
        assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
        let out = r.stdout;
        assert!(out.starts_with("hello\nberth\npid=1\n"), "hostname and pid namespace: {out}");
        assert!(out.contains("CapEff:\t00000000a80425fb"), "Docker's default capabilities: {out}");
        assert!(out.contains("CapBnd:\t00000000a80425fb"), "bounding set too: {out}");
        assert!(out.contains("Seccomp:\t2"), "seccomp filter mode: {out}");
        for dev in ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd"] {
            assert!(out.lines().any(|l| l == dev), "/dev/{dev} exists: {out}");
        }
        assert!(out.contains("Read-only file system") || out.contains("Permission denied"), "/proc/sys is read-only: {out}");
        assert!(out.contains("mount: permission denied") || out.contains("Operation not permitted"), "mount refused: {out}");
        assert!(out.ends_with("done\n"));
        // nothing of the container's mounts leaked into the host
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!mounts.contains(&dir.path().display().to_string()), "no mount left in the host namespace");
    }
}

priv_test! {
    #[serial_test::serial]
    fn exec_failures_have_docker_exit_codes() {
        let dir = tempfile::tempdir().expect("tempdir");
        busybox_root(dir.path());
        let err = run(&spec_with(&["nosuchcommand"]), dir.path()).err().expect("fails");
        match err {
            berth_runtime::RuntimeError::Init { code, message } => {
                assert_eq!(code, 127);
                assert!(message.contains("executable file not found in $PATH"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
        std::fs::write(dir.path().join("rootfs/notexec"), "data").expect("write");
        let err = run(&spec_with(&["/notexec"]), dir.path()).err().expect("fails");
        assert!(matches!(err, berth_runtime::RuntimeError::Init { code: 126, .. }), "{err}");
        let mut spec = spec_with(&["true"]);
        spec.process_mut().as_mut().expect("process").set_cwd(PathBuf::from("/nonexistent"));
        let err = run(&spec, dir.path()).err().expect("fails");
        assert!(err.to_string().contains("chdir to cwd"), "{err}");
    }
}

priv_test! {
    #[serial_test::serial]
    fn no_runtime_fd_leaks_into_the_container() {
        let dir = tempfile::tempdir().expect("tempdir");
        busybox_root(dir.path());
        // an fd the parent holds open must not be visible inside
        let _held = std::fs::File::open("/etc/hostname").expect("open");
        let r = run(&spec_with(&["/bin/sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]), dir.path()).expect("runs");
        assert_eq!(r.stdout.trim(), "0 1 2 3", "only stdio (and ls's own dir fd): {}", r.stdout);
    }
}

priv_test! {
    #[serial_test::serial]
    fn a_premade_network_namespace_stands_in_for_a_new_one() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        busybox_root(dir.path());
        // a network namespace held by a process of its own, as the zygote's spare is
        let mut holder = std::process::Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .spawn()
            .expect("unshare runs");
        let ns_path = format!("/proc/{}/ns/net", holder.id());
        let mut ns = None;
        for _ in 0..100 {
            let ours = std::fs::metadata("/proc/self/ns/net").expect("own netns").ino();
            match std::fs::File::open(&ns_path) {
                Ok(f) if f.metadata().expect("stat").ino() != ours => {
                    ns = Some(f);
                    break;
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        let ns = ns.expect("the holder's network namespace");
        let inode = ns.metadata().expect("stat").ino();
        let _ = holder.kill();
        let _ = holder.wait();
        let spec = spec_with(&["/bin/sh", "-c", "readlink /proc/self/ns/net; ip -o link 2>/dev/null | wc -l; ls /sys/class/net"]);
        let r = run_in(&spec, dir.path(), Some(ns.into())).expect("container runs");
        assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
        assert!(r.stdout.starts_with(&format!("net:[{inode}]\n")), "joined the given namespace: {}", r.stdout);
        // sysfs was mounted inside it: only its loopback, none of the host's devices
        assert!(r.stdout.trim_end().ends_with("lo"), "{}", r.stdout);
        // without one, the container gets a namespace of its own as before
        let r = run(&spec, dir.path()).expect("container runs");
        assert!(!r.stdout.starts_with(&format!("net:[{inode}]")), "{}", r.stdout);
    }
}

priv_test! {
    #[serial_test::serial]
    fn device_nodes_get_their_modes_and_owners_exactly() {
        use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType};
        let dir = tempfile::tempdir().expect("tempdir");
        let root = busybox_root(dir.path());
        // the image ships a node of its own where a default one goes: it gives way
        std::fs::create_dir_all(root.join("dev")).expect("mkdir");
        std::fs::write(root.join("dev/null"), "not a device").expect("write");
        let mut spec = spec_with(&["/bin/sh", "-c", "ls -ln /dev/null /dev/zero /dev/tty /dev/extra/mine | sed 's/ \\+/ /g' | cut -d' ' -f1,3,4,5,6,10"]);
        let extra = LinuxDeviceBuilder::default()
            .path("/dev/extra/mine")
            .typ(LinuxDeviceType::C)
            .major(1i64)
            .minor(3i64)
            .file_mode(0o640u32)
            .uid(1000u32)
            .gid(1001u32)
            .build()
            .expect("device");
        let l = spec.linux_mut().as_mut().expect("linux");
        l.set_devices(Some(vec![extra]));
        // a umask in force where the runtime runs does not reach the nodes
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        let r = run(&spec, dir.path());
        rustix::process::umask(old);
        let r = r.expect("container runs");
        assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(
            lines,
            [
                "crw-r----- 1000 1001 1, 3 /dev/extra/mine",
                "crw-rw-rw- 0 0 1, 3 /dev/null",
                "crw-rw-rw- 0 0 5, 0 /dev/tty",
                "crw-rw-rw- 0 0 1, 5 /dev/zero",
            ],
            "{}",
            r.stdout
        );
    }
}

priv_test! {
    #[serial_test::serial]
    fn a_start_said_ahead_runs_the_container_with_no_connection_to_the_shim() {
        use std::io::{BufRead, Read, Write};
        use std::os::unix::net::UnixStream;
        use berth_runtime::shim::{self, Hello, ShimCgroup, ShimConfig};
        struct NoCgroup;
        impl ShimCgroup for NoCgroup {
            fn join(&mut self, _: i32) -> Result<(), String> {
                Ok(())
            }
            fn oom_killed(&self) -> bool {
                false
            }
            fn destroy(&mut self) {}
            fn set_resources(&mut self, _: Option<oci_spec::runtime::LinuxResources>) {}
            fn adopt(&mut self) {}
        }
        let dir = tempfile::tempdir().expect("tempdir");
        busybox_root(dir.path());
        let spec = spec_with(&["/bin/sh", "-c", "echo said-ahead"]);
        std::fs::write(dir.path().join("config.json"), serde_json::to_vec(&spec).expect("json")).expect("write spec");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("mkdir");
        let config = ShimConfig {
            id: format!("ahead{}", std::process::id()),
            dir: state.clone(),
            bundle: dir.path().to_path_buf(),
            overlay: None,
            tty: false,
            open_stdin: false,
            log: Default::default(),
            cgroup_root: "/sys/fs/cgroup".into(),
            cgroup_parent: "berth-test".into(),
            exec: None,
            runtime: None,
            runtime_root: None,
        };
        let hello = |h: &Hello| format!("{}\n", serde_json::to_string(h).expect("hello"));
        let (mut attach, attach_shim) = UnixStream::pair().expect("pair");
        attach.write_all(hello(&Hello::Attach { stdin: false }).as_bytes()).expect("attach hello");
        let (mut start, start_shim) = UnixStream::pair().expect("pair");
        start.write_all(hello(&Hello::Start).as_bytes()).expect("start hello");
        let (ready_r, ready_w) = rustix::pipe::pipe().expect("pipe");
        // as the shim is: the container's init (its create helper's child) comes back to it
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).expect("subreaper");
        let shim = std::thread::spawn(move || {
            shim::run(&config, &mut NoCgroup, ready_w, vec![attach_shim.into(), start_shim.into()])
        });
        let mut report = String::new();
        std::io::BufReader::new(std::fs::File::from(ready_r)).read_line(&mut report).expect("report");
        assert!(report.contains("\"pid\""), "ready: {report}");
        // the start is answered, and the container's output streamed from its first byte,
        // with nobody connecting to the shim's socket
        // bounded: a shim that ignored its clients would leave these reads waiting forever
        for s in [&start, &attach] {
            s.set_read_timeout(Some(std::time::Duration::from_secs(20))).expect("timeout");
        }
        let mut answer = String::new();
        std::io::BufReader::new(&start).read_line(&mut answer).expect("answer");
        assert!(answer.contains("\"ok\""), "start: {answer}");
        let mut streamed = Vec::new();
        attach.read_to_end(&mut streamed).expect("attach stream");
        let exit = shim.join().expect("shim thread").expect("shim run");
        assert_eq!(exit.exit_code, 0);
        assert_eq!(streamed, shim::frame(1, b"said-ahead\n"), "{}", String::from_utf8_lossy(&streamed));
    }
}
