//! `berth runtime` / `berth-runc`: berth's OCI runtime behind runc's command line, so podman
//! (`--runtime`), containerd's runc shim (`BinaryName`) and the OCI conformance suites can
//! drive it. Synchronous and single-threaded (no async runtime): `create` clones the
//! container process, which must be forked from a single-threaded parent.

mod lifecycle;
mod ops;
mod parse;
mod state;

use std::io::Write;
use std::path::PathBuf;

/// Default state directory (runc's is /run/runc).
pub const DEFAULT_ROOT: &str = "/run/berth-runc";

/// Global options.
pub struct Ctx {
    /// State directory.
    pub root: PathBuf,
    /// `--log FILE`.
    pub log: Option<PathBuf>,
    /// `--log-format json`.
    pub json: bool,
    /// `--debug`.
    pub debug: bool,
    /// `--systemd-cgroup`.
    pub systemd_cgroup: bool,
}

const USAGE: &str = "\
berth runtime: berth's OCI runtime with runc's command line
(also invoked as `berth-runc`, a link to the berth binary)

USAGE:
   berth runtime [global options] command [command options] [arguments...]

COMMANDS:
   create    create a container (the process waits for `start`)
   start     executes the user defined process in a created container
   run       create and run a container
   state     output the state of a container (OCI state JSON)
   kill      send a signal to the container's init process (--all: to every process)
   delete    delete any resources held by the container (--force: kill it first)
   list      lists containers started by berth runtime with the given root
   ps        ps displays the processes running inside a container
   exec      execute new process inside the container
   pause     suspend all processes inside the container
   resume    resumes all processes that have been previously paused
   update    update container resource constraints
   events    display container stats (--stats) or stream them
   spec      create a new specification file (config.json)
   features  show the enabled features (runc's JSON)

GLOBAL OPTIONS:
   --root DIR            state directory (default: /run/berth-runc)
   --log FILE            write errors and debug output to FILE
   --log-format text|json
   --debug               debug output in the log
   --systemd-cgroup      read linux.cgroupsPath as slice:prefix:name (laid out on cgroupfs;
                         berth does not talk to systemd)
   --help, -h            show help
   --version, -v         print the version
";

/// Runs the runc-compatible command line (`args` without the program name and without the
/// `runtime` word); returns the exit status.
pub fn main(args: Vec<String>) -> u8 {
    let mut ctx = Ctx {
        root: PathBuf::from(DEFAULT_ROOT),
        log: None,
        json: false,
        debug: false,
        systemd_cgroup: false,
    };
    let table = [
        parse::v("root", None),
        parse::v("log", None),
        parse::v("log-format", None),
        parse::b("debug", None),
        parse::b("systemd-cgroup", None),
        parse::v("rootless", None),
        parse::v("criu", None),
        parse::b("help", Some('h')),
        parse::b("version", Some('v')),
    ];
    // global flags stop at the command
    let split = split_globals(&args, &table);
    let (globals, rest) = args.split_at(split);
    let g = match parse::parse(globals, &table, None) {
        Ok(g) => g,
        Err(e) => return fail(&ctx, &e, 1),
    };
    if let Some(r) = g.get("root") {
        ctx.root = PathBuf::from(r);
    }
    ctx.log = g.get("log").map(PathBuf::from);
    ctx.json = g.get("log-format") == Some("json");
    if let Some(f) = g
        .get("log-format")
        .filter(|f| !matches!(*f, "text" | "json"))
    {
        return fail(&ctx, &format!("invalid log-format: {f}"), 1);
    }
    ctx.debug = g.has("debug");
    ctx.systemd_cgroup = g.has("systemd-cgroup");
    if g.has("version") {
        let _ = writeln!(
            std::io::stdout(),
            "berth-runc version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            ops::OCI_VERSION_MAX
        );
        return 0;
    }
    let Some((cmd, cmd_args)) = rest.split_first() else {
        let _ = std::io::stdout().write_all(USAGE.as_bytes());
        return if g.has("help") { 0 } else { 1 };
    };
    if g.has("help") || cmd == "help" {
        let _ = std::io::stdout().write_all(USAGE.as_bytes());
        return 0;
    }
    let result = match cmd.as_str() {
        "create" => lifecycle::create(&ctx, cmd_args),
        "start" => lifecycle::start(&ctx, cmd_args),
        "run" => lifecycle::run(&ctx, cmd_args),
        "state" => lifecycle::state(&ctx, cmd_args),
        "kill" => lifecycle::kill(&ctx, cmd_args),
        "delete" => lifecycle::delete(&ctx, cmd_args),
        "list" => lifecycle::list(&ctx, cmd_args),
        "ps" => ops::ps(&ctx, cmd_args),
        "exec" => ops::exec(&ctx, cmd_args),
        "pause" => ops::pause(&ctx, cmd_args, true),
        "resume" => ops::pause(&ctx, cmd_args, false),
        "update" => ops::update(&ctx, cmd_args),
        "events" => ops::events(&ctx, cmd_args),
        "spec" => ops::spec(&ctx, cmd_args),
        "features" => ops::features(&ctx, cmd_args),
        "checkpoint" | "restore" => Err(anyhow::anyhow!(
            "{cmd}: checkpoint/restore (CRIU) is not supported by berth runtime"
        )),
        other => Err(anyhow::anyhow!(
            "No help topic for '{other}' (see berth runtime --help)"
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            fail(&ctx, &msg, 1)
        }
    }
}

/// Index of the first argument that is not a global flag (or a global flag's value).
fn split_globals(args: &[String], table: &[parse::Flag]) -> usize {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if !a.starts_with('-') {
            return i;
        }
        let name = a.trim_start_matches('-');
        let takes_value = !name.contains('=')
            && table.iter().any(|f| {
                f.value && (f.long == name || f.short.map(String::from).as_deref() == Some(name))
            });
        i += if takes_value { 2 } else { 1 };
    }
    args.len()
}

fn now() -> String {
    berth_runtime::shim::log::timestamp_now()
}

/// Reports an error as runc does: to the log when one is given (and the bare message on
/// stderr), else a logrus line on stderr.
fn fail(ctx: &Ctx, msg: &str, code: u8) -> u8 {
    log(ctx, "error", msg);
    if ctx.log.is_some() {
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
    code
}

/// Writes one log entry (`--log`, `--log-format`), or to stderr when there is no log file.
pub fn log(ctx: &Ctx, level: &str, msg: &str) {
    if level == "debug" && !ctx.debug {
        return;
    }
    let line = if ctx.json {
        serde_json::json!({"level": level, "msg": msg, "time": now()}).to_string()
    } else {
        format!("time=\"{}\" level={level} msg={:?}", now(), msg)
    };
    match &ctx.log {
        Some(path) => {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{line}");
            }
        }
        None => {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}
