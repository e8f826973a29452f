//! berth-init: a minimal init, PID 1 of containers run with `--init` (mounted at
//! `/sbin/docker-init`, Docker's path) and later of berth's micro-VMs. Like tini/docker-init it
//! starts one command in a process group of its own, forwards the signals it receives to it,
//! reaps every zombie re-parented to it, and exits with the command's code (128+signal when a
//! signal ended it).
//!
//! Usage: `berth-init [-g] [-s] [--] COMMAND [ARG...]`
//!   -g  forward signals to the command's whole process group
//!   -s  accepted for tini compatibility (berth-init always registers as subreaper)
//!
//! No dependencies: the daemon's build compiles this file with a bare `rustc` into a static
//! binary (`-C target-feature=+crt-static`), since the images it runs in may have no libc.

mod sys;

use std::ffi::OsString;
use std::io::Write;
use std::process::Command;

/// Signals raised by a fault of the init itself, or job-control stops aimed at it: never
/// blocked, never forwarded (tini's list).
const SYNCHRONOUS: [i32; 9] = [
    4,  // SIGILL
    5,  // SIGTRAP
    6,  // SIGABRT
    7,  // SIGBUS
    8,  // SIGFPE
    11, // SIGSEGV
    31, // SIGSYS
    21, // SIGTTIN
    22, // SIGTTOU
];
const SIGCHLD: i32 = 17;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    /// Forward to the process group instead of the child alone.
    group: bool,
    /// The command and its arguments.
    command: Vec<OsString>,
}

/// Parses `[-g] [-s] [--] COMMAND [ARG...]`.
fn parse_args(args: &[OsString]) -> Result<Options, String> {
    let mut group = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].to_str() {
            Some("--") => {
                i += 1;
                break;
            }
            Some("-g") => group = true,
            Some("-s") => {}
            Some(s) if s.starts_with('-') && s.len() > 1 => {
                return Err(format!(
                    "unknown option {s}; usage: berth-init [-g] [-s] [--] COMMAND [ARG...]"
                ))
            }
            _ => break,
        }
        i += 1;
    }
    let command = args[i..].to_vec();
    if command.is_empty() {
        return Err("no command given; usage: berth-init [-g] [-s] [--] COMMAND [ARG...]".into());
    }
    Ok(Options { group, command })
}

/// Docker's exit code for a raw wait status: the exit status, or 128+signal.
fn exit_code(status: i32) -> i32 {
    let signal = status & 0x7f;
    if signal == 0 {
        (status >> 8) & 0xff
    } else {
        128 + signal
    }
}

/// Whether a received signal goes on to the command.
fn forwards(sig: i32) -> bool {
    sig != SIGCHLD && !SYNCHRONOUS.contains(&sig)
}

/// The code for a command that could not be started: 127 not found, 126 not executable.
fn spawn_failure_code(e: &std::io::Error) -> i32 {
    match e.kind() {
        std::io::ErrorKind::NotFound => 127,
        std::io::ErrorKind::PermissionDenied => 126,
        _ => 126,
    }
}

fn fail(message: &str, code: i32) -> ! {
    let _ = writeln!(std::io::stderr(), "berth-init: {message}");
    std::process::exit(code)
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let options = parse_args(&args).unwrap_or_else(|e| fail(&e, 1));
    if sys::pid() != 1 {
        // not PID 1 (a test, or a nested run): orphans still come to us
        if let Err(e) = sys::set_child_subreaper() {
            fail(&format!("becoming subreaper: {e}"), 1);
        }
    }
    let signals = sys::SigSet::all_but(&SYNCHRONOUS);
    if let Err(e) = signals.block() {
        fail(&format!("blocking signals: {e}"), 1);
    }
    let mut cmd = Command::new(&options.command[0]);
    cmd.args(&options.command[1..]);
    let child = match sys::spawn_isolated(&mut cmd) {
        Ok(c) => c,
        Err(e) => fail(
            &format!("exec {} failed: {e}", options.command[0].to_string_lossy()),
            spawn_failure_code(&e),
        ),
    };
    let pid = child.id() as i32;
    // the Child handle is not used to wait: every zombie is reaped below by pid -1
    std::mem::forget(child);
    let target = if options.group { -pid } else { pid };
    loop {
        if let Some(sig) = signals.wait(1000) {
            if forwards(sig) {
                // ESRCH: it is gone already; its exit is reaped below
                let _ = sys::send(target, sig);
            }
        }
        let mut done = None;
        while let Some((reaped, status)) = sys::reap_any() {
            if reaped == pid {
                done = Some(exit_code(status));
            }
        }
        if let Some(code) = done {
            std::process::exit(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse_args(&os(&["--", "sh", "-c", "x"])),
            Ok(Options {
                group: false,
                command: os(&["sh", "-c", "x"])
            })
        );
        assert_eq!(
            parse_args(&os(&["-g", "-s", "ls", "-l"])),
            Ok(Options {
                group: true,
                command: os(&["ls", "-l"])
            })
        );
        // options after the command belong to it
        assert_eq!(parse_args(&os(&["ls", "-g"])).map(|o| o.group), Ok(false));
        assert!(parse_args(&os(&["--"])).is_err());
        assert!(parse_args(&os(&[])).is_err());
        assert!(parse_args(&os(&["-x", "ls"]))
            .expect_err("unknown option")
            .contains("-x"));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(255 << 8), 255);
        assert_eq!(exit_code(15), 143); // killed by SIGTERM
        assert_eq!(exit_code(9 | 0x80), 137); // SIGKILL with a core flag
        assert_eq!(
            spawn_failure_code(&std::io::Error::from(std::io::ErrorKind::NotFound)),
            127
        );
        assert_eq!(
            spawn_failure_code(&std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
            126
        );
    }

    #[test]
    fn forwarded_signals() {
        assert!(forwards(15));
        assert!(forwards(2));
        assert!(forwards(1));
        assert!(forwards(10));
        assert!(!forwards(SIGCHLD));
        assert!(!forwards(11));
        assert!(!forwards(21));
    }
}
