//! Watching containers end to end: `stats` (CLI and API), `events` (filters, since, until),
//! `attach` and detaching with `--detach-keys` on a real terminal (`script` gives it one).

use std::io::{BufRead, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_testkit::priv_test;

use crate::containers::fixture;
use crate::support::{code, Berth};

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn inspect(b: &Berth, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", name])).expect("inspect");
    v[0].clone()
}

fn running_within(b: &Berth, name: &str, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        let out = b.run(&["inspect", name]);
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect");
            if v[0]["State"]["Running"] == true {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn wait_running(b: &Berth, name: &str) {
    assert!(
        running_within(b, name, Duration::from_secs(20)),
        "{name} did not start"
    );
}

fn api_json(b: &Berth, path: &str) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        berth_api::ApiClient::new(b.socket())
            .json::<serde_json::Value>(hyper::Method::GET, path, None)
            .await
            .expect("API answers")
    })
}

priv_test! {
    fn stats_report_cgroup_usage_like_docker() {
        let f = fixture();
        let b = &f.b;
        b.ok(&["run", "-d", "--name", "busy", "-m", "64m", &f.img, "sh", "-c", "while true; do :; done"]);
        wait_running(b, "busy");
        // the table: docker's columns, the memory limit -m set
        let table = b.ok(&["stats", "--no-stream", "busy"]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[0].starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS"), "{table}");
        assert!(lines[1].contains(" busy ") && lines[1].contains(" / 64MiB "), "{table}");
        // json rows; a busy loop shows CPU use over --no-stream's one-second sample
        let row: serde_json::Value = serde_json::from_str(b.ok(&["stats", "--no-stream", "--format", "json", "busy"]).trim()).expect("json row");
        assert_eq!(row["Name"], "busy");
        assert!(row["MemUsage"].as_str().expect("MemUsage").ends_with(" / 64MiB"), "{row}");
        let cpu: f64 = row["CPUPerc"].as_str().expect("CPUPerc").trim_end_matches('%').parse().expect("a percentage");
        assert!(cpu > 5.0, "a busy loop uses CPU: {row}");
        assert!(row["PIDs"].as_str().expect("PIDs").parse::<u64>().expect("count") >= 1, "{row}");
        assert_eq!(row["NetIO"], "0B / 0B", "--network none has no interfaces");
        assert_eq!(b.ok(&["stats", "--no-stream", "--format", "{{.Name}}: {{.MemPerc}}", "busy"]).trim_end().split(':').next(), Some("busy"));
        // no names: every running container
        assert!(b.ok(&["stats", "--no-stream"]).contains(" busy "));
        // the API: the fields docker-py and the docker CLI read
        let s = api_json(b, "/containers/busy/stats?stream=false");
        assert_eq!(s["name"], "/busy");
        assert_eq!(s["id"].as_str().map(str::len), Some(64));
        assert!(s["read"].as_str().expect("read").starts_with("20"), "{s}");
        assert!(s["preread"].as_str().expect("preread").starts_with("20"), "a previous sample: {s}");
        assert!(s["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().expect("total_usage") > 0, "{s}");
        assert!(s["cpu_stats"]["cpu_usage"]["usage_in_usermode"].is_u64(), "{s}");
        assert!(s["cpu_stats"]["cpu_usage"]["usage_in_kernelmode"].is_u64(), "{s}");
        assert!(s["cpu_stats"]["system_cpu_usage"].as_u64().expect("system_cpu_usage") > s["precpu_stats"]["system_cpu_usage"].as_u64().expect("precpu"), "{s}");
        assert!(s["cpu_stats"]["online_cpus"].as_u64().expect("online_cpus") >= 1);
        assert!(s["cpu_stats"]["throttling_data"]["periods"].is_u64(), "{s}");
        assert_eq!(s["memory_stats"]["limit"], 64 << 20);
        assert!(s["memory_stats"]["usage"].as_u64().expect("usage") > 0);
        assert!(s["memory_stats"]["stats"].as_object().is_some_and(|m| !m.is_empty()), "{s}");
        assert!(s["pids_stats"]["current"].as_u64().expect("pids") >= 1);
        assert!(s["blkio_stats"].get("io_service_bytes_recursive").is_some(), "{s}");
        assert!(s.get("networks").is_none(), "no networks with --network none: {s}");
        let one = api_json(b, "/containers/busy/stats?stream=false&one-shot=true");
        assert!(one["precpu_stats"].get("system_cpu_usage").is_none(), "one-shot has no previous sample: {one}");
        // streaming, piped: a block per second
        let mut child = b.command(&["stats", "--format", "{{.Name}} {{.PIDs}}", "busy"]).stdout(Stdio::piped()).spawn().expect("stats runs");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let started = Instant::now();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let mut line = String::new();
            if out.read_line(&mut line).expect("reads") == 0 {
                break;
            }
            if !line.trim().is_empty() {
                seen.push(line.trim().to_string());
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen.len(), 2, "two samples streamed: {seen:?}");
        assert!(seen.iter().all(|l| l.starts_with("busy ")), "{seen:?}");
        assert!(started.elapsed() >= Duration::from_millis(900), "one block a second");
        // a stopped container: Docker's empty sample
        b.ok(&["rm", "-f", "busy"]);
        b.ok(&["create", "--name", "idle", &f.img, "true"]);
        let s = api_json(b, "/containers/idle/stats?stream=false");
        assert_eq!(s["read"], "0001-01-01T00:00:00Z");
        assert!(b.ok(&["stats", "--no-stream", "-a"]).contains(" idle "));
        // a created container holds its cgroup: removed, so nothing is left behind the test
        b.ok(&["rm", "idle"]);
        // nothing running: the empty table, still once a second
        let mut child = b.command(&["stats"]).stdout(Stdio::piped()).spawn().expect("stats runs");
        std::thread::sleep(Duration::from_millis(2500));
        let _ = child.kill();
        let out = child.wait_with_output().expect("output");
        let screens = String::from_utf8_lossy(&out.stdout).matches("CONTAINER ID").count();
        assert!((2..=4).contains(&screens), "{screens} screens in 2.5 s");
        let (c, _, err) = code(b, &["stats", "--no-stream", "nosuch"]);
        assert_eq!(c, 1);
        assert!(err.contains("No such container"), "{err}");
    }
}

priv_test! {
    fn events_report_the_lifecycle_with_filters_since_and_until() {
        let f = fixture();
        let b = &f.b;
        let since = format!("{:.3}", unix_now() - 0.5);
        let (c, _, _) = code(b, &["run", "--rm", "--name", "ev", "--label", "tier=front", &f.img, "sh", "-c", "exit 3"]);
        assert_eq!(c, 3);
        let until = format!("{:.3}", unix_now());
        let all = b.ok(&["events", "--since", &since, "--until", &until]);
        let actions: Vec<&str> = all.lines().filter(|l| l.contains("name=ev")).map(|l| l.split(' ').nth(2).unwrap_or("")).collect();
        assert_eq!(actions, ["create", "attach", "start", "die", "destroy"], "{all}");
        let die = all.lines().find(|l| l.contains(" container die ")).expect("a die event");
        assert!(die.contains("exitCode=3") && die.contains("tier=front") && die.contains(&format!("image={}", f.img)), "{die}");
        // Docker's line: RFC 3339 with nanoseconds, type, action, ID, attributes
        let time = die.split(' ').next().expect("time");
        assert!(time.len() == 30 && time.ends_with('Z') && time.as_bytes()[19] == b'.', "{die}");
        assert_eq!(die.split(' ').nth(3).map(str::len), Some(64), "{die}");
        // filters
        let only_die = b.ok(&["events", "--since", &since, "--until", &until, "--filter", "event=die"]);
        assert_eq!(only_die.lines().count(), 1, "{only_die}");
        let labelled = b.ok(&["events", "--since", &since, "--until", &until, "-f", "label=tier=front", "-f", "event=start"]);
        assert_eq!(labelled.lines().count(), 1, "{labelled}");
        assert!(b.ok(&["events", "--since", &since, "--until", &until, "-f", "container=other"]).is_empty());
        let pulls = b.ok(&["events", "--since", "0", "--until", &until, "-f", "type=image"]);
        assert!(pulls.lines().any(|l| l.contains(" image pull ")), "the fixture's pull: {pulls}");
        // json: Docker's fields
        let json = b.ok(&["events", "--since", &since, "--until", &until, "-f", "event=die", "--format", "json"]);
        let e: serde_json::Value = serde_json::from_str(json.trim()).expect("json event");
        assert_eq!((e["Type"].as_str(), e["Action"].as_str(), e["status"].as_str(), e["scope"].as_str()), (Some("container"), Some("die"), Some("die"), Some("local")));
        assert_eq!(e["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(e["Actor"]["ID"], e["id"]);
        assert_eq!(e["from"], f.img.as_str());
        assert!(e["timeNano"].as_i64().expect("timeNano") / 1_000_000_000 == e["time"].as_i64().expect("time"));
        // a live stream ends at --until and shows what happened meanwhile
        let end = format!("{:.3}", unix_now() + 3.0);
        let started = Instant::now();
        let child = b.command(&["events", "--until", &end, "-f", "type=container"]).stdout(Stdio::piped()).spawn().expect("events runs");
        std::thread::sleep(Duration::from_millis(500));
        b.ok(&["create", "--name", "live", &f.img, "true"]);
        let out = child.wait_with_output().expect("events ends");
        assert!(out.status.success());
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(2000) && elapsed < Duration::from_secs(10), "{elapsed:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.lines().any(|l| l.contains(" container create ") && l.contains("name=live")), "{text}");
        assert!(!text.contains("name=ev"), "no replay without --since: {text}");
        // a created container holds its cgroup: removed, so nothing is left behind the test
        b.ok(&["rm", "live"]);
        // the rest of the lifecycle, and image events
        let since = format!("{:.3}", unix_now() - 0.1);
        let id = b.ok(&["run", "-d", "--name", "cycle", &f.img, "sleep", "60"]).trim().to_string();
        b.ok(&["pause", "cycle"]);
        b.ok(&["unpause", "cycle"]);
        b.ok(&["rename", "cycle", "cycled"]);
        b.ok(&["restart", "-t", "0", "cycled"]);
        b.ok(&["stop", "-t", "0", "cycled"]);
        b.ok(&["rm", "cycled"]);
        b.ok(&["tag", &f.img, "again:v1"]);
        b.ok(&["rmi", "-f", "again:v1"]);
        let until = format!("{:.3}", unix_now());
        let got = b.ok(&["events", "--since", &since, "--until", &until, "-f", &format!("container={id}"), "--format", "{{.Action}}"]);
        // (stop sends SIGTERM, then SIGKILL at the timeout: each is a kill event)
        let got: Vec<&str> = got.lines().filter(|a| *a != "kill").collect();
        assert_eq!(got, ["create", "start", "pause", "unpause", "rename", "die", "stop", "start", "restart", "die", "stop", "destroy"]);
        let renamed = b.ok(&["events", "--since", &since, "--until", &until, "-f", "event=rename"]);
        assert!(renamed.contains("oldName=/cycle") && renamed.contains("name=cycled"), "{renamed}");
        let killed = b.ok(&["events", "--since", &since, "--until", &until, "-f", "event=kill", "--format", "{{.Actor.Attributes.signal}}"]);
        assert!(killed.starts_with("15\n") && killed.lines().all(|s| s == "15" || s == "9"), "{killed}");
        let images = b.ok(&["events", "--since", &since, "--until", &until, "-f", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}"]);
        assert!(images.starts_with("tag again:v1\nuntag sha256:"), "{images}");
        // the OOM killer: oom, then die with 137
        let since = format!("{:.3}", unix_now() - 0.1);
        let (c, _, _) = code(b, &["run", "--rm", "--name", "hog", "--memory", "8m", "--memory-swap", "8m", &f.img, "sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived"]);
        assert_eq!(c, 137);
        let until = format!("{:.3}", unix_now());
        let hog = b.ok(&["events", "--since", &since, "--until", &until, "-f", "container=hog", "-f", "event=oom", "-f", "event=die", "--format", "json"]);
        let hog: Vec<serde_json::Value> = hog.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        assert_eq!(hog.len(), 2, "{hog:?}");
        assert_eq!((&hog[0]["Action"], &hog[1]["Action"]), (&"oom".into(), &"die".into()));
        assert_eq!(hog[1]["Actor"]["Attributes"]["exitCode"], "137");
        let (c, _, err) = code(b, &["events", "--since", "yesterday"]);
        assert_ne!(c, 0);
        assert!(err.contains("invalid timestamp"), "{err}");
        let (c, _, err) = code(b, &["events", "--until", "1", "-f", "colour=red"]);
        assert_eq!(c, 1);
        assert!(err.contains("invalid filter 'colour'"), "{err}");
    }
}

priv_test! {
    fn attach_follows_output_and_returns_the_exit_code() {
        let f = fixture();
        let b = &f.b;
        b.ok(&["run", "-d", "--name", "at", &f.img, "sh", "-c", "sleep 2; echo from-the-container; echo to-stderr >&2; exit 5"]);
        wait_running(b, "at");
        let out = b.run(&["attach", "--no-stdin", "at"]);
        assert_eq!(out.status.code(), Some(5), "the container's exit code");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from-the-container\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");
        let (c, _, err) = code(b, &["attach", "at"]);
        assert_eq!(c, 1);
        assert!(err.contains("You cannot attach to a stopped container, start it first"), "{err}");
        let (c, _, err) = code(b, &["attach", "nosuch"]);
        assert_eq!(c, 1);
        assert!(err.contains("No such container"), "{err}");
        let (c, _, err) = code(b, &["run", "--detach-keys", "ctrl-p,ctrl-1", &f.img, "true"]);
        assert_eq!(c, 125);
        assert!(err.contains("Invalid detach keys (ctrl-p,ctrl-1) provided"), "{err}");
        assert!(b.ok(&["ps", "-a", "-q"]).lines().count() == 1, "nothing created for a bad value");
    }
}

/// Runs `berth ARGS` on a terminal made by `script`, our pipe as its keyboard.
fn on_terminal(b: &Berth, args: &[&str]) -> std::process::Child {
    let mut line = format!(
        "{} --root {}",
        Berth::bin().display(),
        b.root.path().display()
    );
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    shell_on_terminal(b, &line)
}

/// Runs the shell command `line` on a terminal made by `script`, our pipe as its keyboard.
fn shell_on_terminal(b: &Berth, line: &str) -> std::process::Child {
    std::process::Command::new("script")
        .args(["-qfec", line, "/dev/null"])
        .env("BERTH_CONFIG", b.config_dir.path())
        .env_remove("BERTH_HOST")
        .env_remove("BERTH_ROOT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs")
}

fn finish(mut child: std::process::Child, within: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            return (
                status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            );
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "still attached after {within:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

priv_test! {
    fn detach_keys_leave_the_container_running() {
        let f = fixture();
        let b = &f.b;
        let mut child = on_terminal(b, &["run", "-it", "--name", "dk", "--detach-keys", "ctrl-x,y", &f.img, "sh"]);
        if !running_within(b, "dk", Duration::from_secs(20)) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("dk did not start: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(700));
        let mut keyboard = child.stdin.take().expect("stdin");
        keyboard.write_all(b"echo marker-$((6*7))\n").expect("types");
        std::thread::sleep(Duration::from_millis(500));
        keyboard.write_all(b"\x18y").expect("types the detach keys");
        let (c, screen) = finish(child, Duration::from_secs(10));
        assert_eq!(c, Some(0), "detaching exits 0: {screen}");
        drop(keyboard);
        let state = inspect(b, "dk");
        assert_eq!(state["State"]["Running"], true, "the container runs on");
        assert!(b.ok(&["logs", "dk"]).contains("marker-42"), "input before the keys reached the shell");
        // attach again with the default keys (ctrl-p ctrl-q), run a command, detach again
        let mut child = on_terminal(b, &["attach", "dk"]);
        std::thread::sleep(Duration::from_millis(1000));
        let mut keyboard = child.stdin.take().expect("stdin");
        keyboard.write_all(b"echo again-$((5*5))\n").expect("types");
        std::thread::sleep(Duration::from_millis(500));
        keyboard.write_all(b"\x10\x11").expect("types ctrl-p ctrl-q");
        let (c, screen) = finish(child, Duration::from_secs(10));
        assert_eq!(c, Some(0), "{screen}");
        assert!(screen.contains("again-25"), "attach showed the shell's output: {screen}");
        assert_eq!(inspect(b, "dk")["State"]["Running"], true);
        // and a session that ends with the shell: its exit code
        let mut child = on_terminal(b, &["attach", "dk"]);
        std::thread::sleep(Duration::from_millis(1000));
        let mut keyboard = child.stdin.take().expect("stdin");
        keyboard.write_all(b"exit 4\n").expect("types");
        let (c, _) = finish(child, Duration::from_secs(10));
        assert_eq!(c, Some(4));
        drop(keyboard);
        b.ok(&["rm", "-f", "dk"]);
        // start -ai: input reaches the shell, the detach keys work there too, the exit code
        b.ok(&["create", "-it", "--name", "st", &f.img, "sh"]);
        let mut child = on_terminal(b, &["start", "-ai", "--detach-keys", "ctrl-@", "st"]);
        wait_running(b, "st");
        std::thread::sleep(Duration::from_millis(700));
        let mut keyboard = child.stdin.take().expect("stdin");
        keyboard.write_all(b"echo started-$((3*3))\n").expect("types");
        std::thread::sleep(Duration::from_millis(500));
        keyboard.write_all(b"\x00").expect("types ctrl-@");
        let (c, screen) = finish(child, Duration::from_secs(10));
        assert_eq!(c, Some(0), "{screen}");
        assert!(screen.contains("started-9"), "{screen}");
        assert_eq!(inspect(b, "st")["State"]["Running"], true);
        let mut child = on_terminal(b, &["attach", "st"]);
        std::thread::sleep(Duration::from_millis(1000));
        let mut keyboard = child.stdin.take().expect("stdin");
        keyboard.write_all(b"exit 7\n").expect("types");
        let (c, _) = finish(child, Duration::from_secs(10));
        assert_eq!(c, Some(7));
        drop(keyboard);
        b.ok(&["rm", "st"]);
    }
}

priv_test! {
    fn container_and_system_subcommands_match_the_top_level_ones() {
        // docker's `container attach|stats|pause|unpause|rename|top` and `system events`
        let f = fixture();
        let b = &f.b;
        let since = format!("{:.3}", unix_now() - 0.5);
        b.ok(&["container", "run", "-d", "--name", "sub", &f.img, "sh", "-c", "sleep 2; echo done-here; exit 4"]);
        wait_running(b, "sub");
        assert!(b.ok(&["container", "top", "sub"]).contains("sleep 2"), "top lists the process");
        b.ok(&["container", "pause", "sub"]);
        assert_eq!(inspect(b, "sub")["State"]["Status"], "paused");
        b.ok(&["container", "unpause", "sub"]);
        assert_eq!(inspect(b, "sub")["State"]["Status"], "running");
        b.ok(&["container", "rename", "sub", "sub2"]);
        assert!(b.ok(&["container", "stats", "--no-stream", "--format", "{{.Name}}", "sub2"]).contains("sub2"));
        let out = b.run(&["container", "attach", "--no-stdin", "sub2"]);
        assert_eq!(out.status.code(), Some(4), "the container's exit code");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "done-here\n");
        let until = format!("{:.3}", unix_now());
        let events = b.ok(&["system", "events", "--since", &since, "--until", &until, "--filter", "event=pause", "--filter", "event=unpause", "--filter", "event=rename"]);
        let actions: Vec<&str> = events.lines().map(|l| l.split(' ').nth(2).unwrap_or("")).collect();
        assert_eq!(actions, ["pause", "unpause", "rename"], "{events}");
    }
}

priv_test! {
    fn the_container_terminal_takes_the_local_size() {
        // run -it, exec -it and start -ai size the container's terminal like the local one
        let f = fixture();
        let b = &f.b;
        b.ok(&["run", "-d", "--name", "sz", &f.img, "sleep", "100"]);
        wait_running(b, "sz");
        let bin = format!("{} --root {}", Berth::bin().display(), b.root.path().display());
        for (what, cmd) in [
            ("run -it", format!("{bin} run -it --rm {} sh -c 'sleep 0.5; stty size'", f.img)),
            ("exec -it", format!("{bin} exec -it sz sh -c 'sleep 0.5; stty size'")),
        ] {
            let child = shell_on_terminal(b, &format!("stty rows 33 cols 101; {cmd}"));
            let (c, screen) = finish(child, Duration::from_secs(20));
            assert_eq!(c, Some(0), "{what}: {screen}");
            assert!(screen.contains("33 101"), "{what}: the container's terminal is 33x101: {screen:?}");
        }
    }
}
