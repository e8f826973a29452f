//! `exec` end to end: the extra process is observed from inside the container to share its
//! namespaces, mounts, cgroup and security settings, with `-e`, `-w`, `-u`, `-i`, `-t`, `-d`
//! and Docker's exit codes.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use berth_testkit::priv_test;

use crate::containers::fixture;
use crate::support::code;

priv_test! {
    fn exec_runs_inside_the_running_container() {
        let f = fixture();
        let b = &f.b;
        // the container adds a user after it started: exec resolves users from the container's
        // live /etc/passwd, not the image's
        let script = "echo 'late:x:4242:4343::/home/late:/bin/sh' >> /etc/passwd; echo 'lates:x:4343:' >> /etc/group; echo marker > /tmp/m; exec sleep 1000";
        b.ok(&["run", "-d", "--name", "c", "--hostname", "box", "--cap-drop", "CHOWN", "-e", "CVAR=from-container", &f.img, "sh", "-c", script]);
        // wait for the script to have written its files
        let mut ready = false;
        for _ in 0..100 {
            if code(b, &["exec", "c", "cat", "/tmp/m"]).1 == "marker\n" {
                ready = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(ready, "exec sees the container's file system (/tmp/m)");

        // pid namespace: pid 1 is the container's process
        let s = b.ok(&["exec", "c", "cat", "/proc/1/cmdline"]);
        assert_eq!(s, "sleep\u{0}1000\u{0}", "/proc/1 is the container's init");
        let s = b.ok(&["exec", "c", "hostname"]);
        assert_eq!(s, "box\n");
        // every namespace, the mounts and the cgroup are the init's
        let s = b.ok(&["exec", "c", "sh", "-c",
            "for n in mnt pid net uts ipc cgroup; do [ \"$(readlink /proc/self/ns/$n)\" = \"$(readlink /proc/1/ns/$n)\" ] || echo differs: $n; done; \
             cmp /proc/self/mountinfo /proc/1/mountinfo && cmp /proc/self/cgroup /proc/1/cgroup && echo same"]);
        assert_eq!(s, "same\n", "namespaces, mounts and cgroup equal the container's");
        let host_mnt = std::fs::read_link("/proc/self/ns/mnt").expect("ns");
        let s = b.ok(&["exec", "c", "readlink", "/proc/self/ns/mnt"]);
        assert_ne!(s.trim(), host_mnt.to_string_lossy(), "not the host's mount namespace");
        // the host cgroup of the exec process is the container's
        let id = b.ok(&["inspect", "-f", "{{.Id}}", "c"]).trim().to_string();
        let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", "c"]).trim().to_string();
        let init_cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        assert!(init_cg.contains(&id[..12]), "{init_cg}");
        let mut child = b.command(&["exec", "c", "sh", "-c", "echo $$; exec sleep 30"]).stdout(Stdio::piped()).spawn().expect("spawn");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line).expect("read");
        let find = || -> Vec<String> {
            std::fs::read_dir("/proc").expect("proc").flatten()
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .filter(|n| n.parse::<u32>().is_ok())
                .filter(|n| std::fs::read(format!("/proc/{n}/cmdline")).is_ok_and(|c| c == b"sleep\x0030\x00"))
                .collect()
        };
        let mut procs = find();
        for _ in 0..100 {
            if !procs.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            procs = find();
        }
        assert_eq!(procs.len(), 1, "one exec'd sleep 30 on the host: {procs:?}");
        let exec_cg = std::fs::read_to_string(format!("/proc/{}/cgroup", procs[0])).expect("cgroup");
        assert_eq!(exec_cg, init_cg, "the exec process is in the container's cgroups");
        let _ = child.kill();
        let _ = child.wait();
        let _ = line;

        // security: the same capabilities, seccomp and no_new_privileges as the container
        let status = |who: &str| b.ok(&["exec", "c", "grep", "-E", "^(CapEff|CapBnd|CapPrm|Seccomp|NoNewPrivs):", &format!("/proc/{who}/status")]);
        let mine = status("self");
        assert_eq!(mine, status("1"));
        assert!(mine.contains("CapEff:\t00000000a80425fa"), "Docker's default minus CHOWN: {mine}");
        assert!(mine.contains("Seccomp:\t2"), "{mine}");
        // nothing of berth's leaks: only stdio (and ls's own directory fd)
        let s = b.ok(&["exec", "c", "ls", "/proc/self/fd"]);
        assert_eq!(s.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2", "3"], "{s}");

        // -e adds to the container's env, -w and -u apply; HOME follows the user
        let s = b.ok(&["exec", "-e", "FOO=bar", "-e", "CVAR=overridden", "-w", "/tmp", "-u", "late", "c", "sh", "-c", "id; pwd; echo $FOO $CVAR $HOME"]);
        assert_eq!(s, "uid=4242(late) gid=4343(lates)\n/tmp\nbar overridden /home/late\n");
        let s = b.ok(&["exec", "c", "sh", "-c", "id -u; pwd; echo $CVAR $HOME"]);
        assert_eq!(s, "0\n/\nfrom-container /root\n");
        let s = b.ok(&["exec", "-u", "1000:65534", "c", "id"]);
        assert_eq!(s.trim(), "uid=1000(user) gid=65534(nobody)");
        let (c, out, err) = code(b, &["exec", "-u", "nosuchuser", "c", "id"]);
        assert_eq!(c, 126, "{out}{err}");
        assert!(out.contains("unable to find user nosuchuser"), "{out}");

        // exit codes
        let (c, _, _) = code(b, &["exec", "c", "sh", "-c", "exit 7"]);
        assert_eq!(c, 7);
        let (c, out, err) = code(b, &["exec", "c", "nosuchcommand"]);
        assert_eq!(c, 127, "{out}{err}");
        assert!(out.contains("executable file not found in $PATH"), "{out}");
        let (c, out, err) = code(b, &["exec", "c", "/etc/passwd"]);
        assert_eq!(c, 126, "{out}{err}");
        let (c, out, err) = code(b, &["exec", "-w", "/nonexistent", "c", "pwd"]);
        assert_ne!(c, 0, "{out}{err}");
        assert!(out.contains("/nonexistent"), "{out}");
        let s = b.ok(&["exec", "c", "sh", "-c", "echo out; echo err >&2"]);
        assert_eq!(s, "out\n", "stderr stays on stderr");

        // -i: stdin piped through
        let mut child = b.command(&["exec", "-i", "c", "sh", "-c", "cat; echo end"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
        child.stdin.take().expect("stdin").write_all(b"hi\n").expect("write");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\nend\n");
        // -i with a stdin that stays open (a terminal nobody types on): the CLI returns when
        // the process ends, without waiting for input
        let mut child = b.command(&["exec", "-i", "c", "sh", "-c", "exit 6"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
        let keep_open = child.stdin.take();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break Some(st);
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(keep_open);
        assert_eq!(status.and_then(|s| s.code()), Some(6), "exec -i returned with the process's code while its stdin stayed open");
        // a paused container refuses execs, as Docker does
        b.ok(&["pause", "c"]);
        let (c, _, err) = code(b, &["exec", "c", "true"]);
        b.ok(&["unpause", "c"]);
        assert_eq!(c, 1, "{err}");
        assert!(err.contains("is paused, unpause the container before exec"), "{err}");
        // without -i the process gets no stdin
        let s = b.ok(&["exec", "c", "sh", "-c", "cat; echo done"]);
        assert_eq!(s, "done\n");
        // -t: a terminal
        let s = b.ok(&["exec", "-t", "c", "sh", "-c", "test -t 0 && test -t 1 && echo tty"]);
        assert_eq!(s.trim_end(), "tty");
        // the terminal is the container's own (its devpts), as with docker
        let s = b.ok(&["exec", "-t", "c", "sh", "-c", "t=$(tty) && test -c $t && echo $t"]);
        assert!(s.starts_with("/dev/pts/"), "{s}");
        let s = b.ok(&["exec", "c", "sh", "-c", "test -t 1 || echo notty"]);
        assert_eq!(s, "notty\n");

        // -d: in the background
        let s = b.ok(&["exec", "-d", "c", "sh", "-c", "sleep 0.3; echo done > /tmp/d"]);
        assert_eq!(s, "", "detached exec prints nothing");
        assert_ne!(code(b, &["exec", "c", "cat", "/tmp/d"]).0, 0, "still running in the background");
        let mut done = false;
        for _ in 0..100 {
            if code(b, &["exec", "c", "cat", "/tmp/d"]).1 == "done\n" {
                done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(done, "the detached exec ran");
        // exec output does not go to the container's log
        assert_eq!(b.ok(&["logs", "c"]), "", "exec output is not logged");

        // not running, paused, unknown
        b.ok(&["pause", "c"]);
        let (c, _, err) = code(b, &["exec", "c", "true"]);
        assert_eq!(c, 1);
        assert!(err.contains("is paused"), "{err}");
        b.ok(&["unpause", "c"]);
        b.ok(&["stop", "-t", "1", "c"]);
        let (c, _, err) = code(b, &["exec", "c", "true"]);
        assert_eq!(c, 1, "{err}");
        assert!(err.contains("Error response from daemon: container") && err.contains("is not running"), "{err}");
        let (c, _, err) = code(b, &["exec", "nosuchcontainer", "true"]);
        assert_eq!(c, 1);
        assert!(err.contains("No such container"), "{err}");
        // bad flags
        let (c, _, _) = code(b, &["exec", "c"]);
        assert_eq!(c, 125, "a missing command is a usage error");
        b.ok(&["rm", "c"]);
    }
}

priv_test! {
    fn exec_api_records_outlive_the_daemon_and_the_container() {
        let f = fixture();
        let b = &f.b;
        b.ok(&["run", "-d", "--name", "c", &f.img, "sleep", "1000"]);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            use berth_api::exec::{ExecInspect, IdResponse};
            use berth_api::{ApiClient, ApiClientError};
            use hyper::Method;
            use tokio::io::AsyncReadExt;
            let api = ApiClient::new(b.socket());
            let create = |body: serde_json::Value| {
                let api = api.clone();
                async move {
                    api.json::<IdResponse>(Method::POST, "/containers/c/exec", Some(body.to_string().into_bytes())).await
                }
            };
            let inspect = |id: String| {
                let api = api.clone();
                async move {
                    api.json::<ExecInspect>(Method::GET, &format!("/exec/{id}/json"), None).await.expect("exec inspect")
                }
            };
            let status = |r: Result<IdResponse, ApiClientError>| match r {
                Err(ApiClientError::Api { status, .. }) => status,
                other => panic!("expected an API error, got {other:?}"),
            };
            assert_eq!(status(create(serde_json::json!({"Cmd": []})).await), 400);
            assert_eq!(status(api.json::<IdResponse>(Method::POST, "/containers/nosuch/exec", Some(b"{\"Cmd\":[\"true\"]}".to_vec())).await), 404);
            assert!(matches!(api.json::<ExecInspect>(Method::GET, &format!("/exec/{}/json", "0".repeat(64)), None).await,
                Err(ApiClientError::Api { status: 404, .. })));

            // detached: Running, Pid, then ExitCode from the shim's record, across a daemon kill -9
            let id = create(serde_json::json!({"Cmd": ["sh", "-c", "sleep 1; exit 3"]})).await.expect("create").id;
            let i = inspect(id.clone()).await;
            assert!(!i.running && i.exit_code.is_none() && i.pid == 0, "{i:?}");
            assert_eq!(i.process_config.entrypoint, "sh");
            let st = api.call(Method::POST, &format!("/exec/{id}/start"), Some(b"{\"Detach\":true}".to_vec())).await.expect("start");
            assert_eq!(st.as_u16(), 200);
            let i = inspect(id.clone()).await;
            assert!(i.running && i.pid > 0 && i.exit_code.is_none(), "{i:?}");
            assert!(matches!(api.call(Method::POST, &format!("/exec/{id}/start"), Some(b"{\"Detach\":true}".to_vec())).await,
                Err(ApiClientError::Api { status: 409, .. })), "an exec starts once");
            b.kill_daemon(9);
            b.ok(&["ps"]); // a fresh daemon
            let mut i = inspect(id.clone()).await;
            for _ in 0..100 {
                if !i.running {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                i = inspect(id.clone()).await;
            }
            assert_eq!((i.running, i.exit_code), (false, Some(3)), "{i:?}");

            // a tty exec: the initial console size and a resize reach the terminal
            let id = create(serde_json::json!({"Cmd": ["sh", "-c", "stty size; sleep 1; stty size"], "Tty": true,
                "AttachStdout": true, "AttachStderr": true, "ConsoleSize": [33, 101]})).await.expect("create").id;
            let mut io = api.upgrade_with_body(&format!("/exec/{id}/start"), Some(b"{\"Tty\":true}".to_vec())).await.expect("start");
            tokio::time::sleep(Duration::from_millis(300)).await;
            api.call(Method::POST, &format!("/exec/{id}/resize?h=40&w=120"), None).await.expect("resize");
            let mut out = Vec::new();
            io.read_to_end(&mut out).await.expect("read");
            assert_eq!(String::from_utf8_lossy(&out), "33 101\r\n40 120\r\n");

            // an exec ends with its container (137) and cannot start in a stopped one
            let id = create(serde_json::json!({"Cmd": ["sleep", "1000"]})).await.expect("create").id;
            let late = create(serde_json::json!({"Cmd": ["true"]})).await.expect("create").id;
            api.call(Method::POST, &format!("/exec/{id}/start"), Some(b"{\"Detach\":true}".to_vec())).await.expect("start");
            let ids = b.ok(&["inspect", "-f", "{{json .ExecIDs}}", "c"]);
            assert!(ids.contains(&id) && ids.contains(&late), "running and created execs: {ids}");
            b.ok(&["stop", "-t", "0", "c"]);
            let mut i = inspect(id.clone()).await;
            for _ in 0..100 {
                if !i.running {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                i = inspect(id.clone()).await;
            }
            assert_eq!((i.running, i.exit_code), (false, Some(137)), "{i:?}");
            assert!(matches!(api.call(Method::POST, &format!("/exec/{late}/start"), Some(b"{\"Detach\":true}".to_vec())).await,
                Err(ApiClientError::Api { status: 409, .. })));
        });
        b.ok(&["rm", "c"]);
    }
}
