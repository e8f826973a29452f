//! The init binary driven as a process (not PID 1 here: it registers as subreaper, so orphans
//! still come to it). No root needed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn init() -> Command {
    Command::new(env!("CARGO_BIN_EXE_berth-init"))
}

#[test]
fn passes_the_exit_code_through() {
    let s = init()
        .args(["--", "sh", "-c", "exit 7"])
        .status()
        .expect("run");
    assert_eq!(s.code(), Some(7));
    let s = init().args(["true"]).status().expect("run");
    assert_eq!(s.code(), Some(0));
}

#[test]
fn a_missing_command_is_127() {
    let out = init()
        .args(["--", "/nonexistent/cmd"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cmd"));
}

#[test]
fn forwards_term_and_reports_128_plus_signal() {
    let mut child = init().args(["--", "sleep", "30"]).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let t = Instant::now();
    let s = child.wait().expect("wait");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(s.code(), Some(143), "sleep killed by the forwarded TERM");
}

fn zombie_children_of(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[1] == pid.to_string() && f[0] == "Z" {
            out.push(stat);
        }
    }
    out
}

#[test]
fn reaps_orphans() {
    // the inner shell exits at once, orphaning `sleep 0.1`, which comes to the init and exits
    let mut child = init()
        .args(["--", "sh", "-c", "sh -c 'sleep 0.1 &'; sleep 2"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1200));
    let zombies = zombie_children_of(child.id());
    let _ = child.wait();
    assert!(zombies.is_empty(), "unreaped: {zombies:?}");
}
