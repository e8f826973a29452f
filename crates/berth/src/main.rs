//! The `berth` binary: the CLI (a client of the Docker Engine API) and `berth daemon`.

mod commands;
mod context;
mod output;
mod runc;
mod template;

use std::process::ExitCode;

use clap::{Args, FromArgMatches, Parser, Subcommand};

use crate::context::GlobalArgs;

/// Environment variables berth reads.
pub struct EnvVars;

impl EnvVars {
    /// State directory (like `--root`).
    pub const BERTH_ROOT: &'static str = "BERTH_ROOT";
    /// Daemon socket (like `-H`).
    pub const BERTH_HOST: &'static str = "BERTH_HOST";
    /// Directory holding berth's `config.json` (credentials).
    pub const BERTH_CONFIG: &'static str = "BERTH_CONFIG";
    /// Docker's config directory, read for credentials too.
    pub const DOCKER_CONFIG: &'static str = "DOCKER_CONFIG";
    /// Log filter (`info`, `berth_image=debug`...).
    pub const BERTH_LOG: &'static str = "BERTH_LOG";
}

/// berth: Docker without Docker. Pull, store and (soon) run OCI images.
#[derive(Parser)]
#[command(name = "berth", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[cfg_attr(test, derive(Debug))]
enum Command {
    /// Run the daemon that serves the Docker Engine API
    Daemon(commands::daemon::Args),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(commands::containers::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(commands::containers::CreateArgs),
    /// Start one or more stopped containers
    Start(commands::containers::StartArgs),
    /// Stop one or more running containers
    Stop(commands::containers::StopArgs),
    /// Restart one or more containers
    Restart(commands::containers::StopArgs),
    /// Kill one or more running containers
    Kill(commands::containers::KillArgs),
    /// Remove one or more containers
    Rm(commands::containers::RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(commands::containers::ContainersArg),
    /// Fetch the logs of a container
    Logs(commands::containers::LogsArgs),
    /// List containers
    Ps(commands::containers::PsArgs),
    /// Return low-level information on containers or images
    Inspect(commands::inspect::InspectArgs),
    /// Pause all processes within one or more containers
    Pause(commands::containers::ContainersArg),
    /// Unpause all processes within one or more containers
    Unpause(commands::containers::ContainersArg),
    /// Rename a container
    Rename(commands::control::RenameArgs),
    /// Display the running processes of a container
    Top(commands::control::TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(commands::containers::PortArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(commands::attach::AttachArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(commands::stats::StatsArgs),
    /// Get real time events from the server
    Events(commands::events::EventsArgs),
    /// Execute a command in a running container
    Exec(commands::exec::ExecArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(commands::containers::ContainerCommand),
    /// Download an image from a registry
    Pull(commands::pull::Args),
    /// List images
    #[command(alias = "image-ls")]
    Images(commands::images::ListArgs),
    /// Manage images
    #[command(subcommand)]
    Image(commands::images::ImageCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(commands::network::NetworkCommand),
    /// Remove one or more images
    Rmi(commands::images::RmArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(commands::images::TagArgs),
    /// Manage berth
    #[command(subcommand)]
    System(commands::system::SystemCommand),
    /// Show the berth version information
    Version(commands::system::VersionArgs),
    /// Display system-wide information
    Info(commands::system::InfoArgs),
    /// Log in to a registry
    Login(commands::login::LoginArgs),
    /// berth's OCI runtime with runc's command line (see `berth runtime --help`; also as `berth-runc`)
    #[command(disable_help_flag = true)]
    Runtime {
        /// runc's arguments
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Log out from a registry
    Logout(commands::login::LogoutArgs),
}

fn main() -> ExitCode {
    // the shim runs before anything else: no argument parser, no async runtime, one thread
    let mut args = std::env::args_os();
    // runc's command line: as `berth-runc` (a link) or `berth runtime ...`, synchronous
    let argv0 = args.next();
    let as_runc = argv0
        .as_ref()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "berth-runc");
    if as_runc || std::env::args_os().nth(1).is_some_and(|a| a == "runtime") {
        let skip = usize::from(!as_runc);
        let argv: Vec<String> = std::env::args_os()
            .skip(1 + skip)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return ExitCode::from(runc::main(argv));
    }
    let first = args.next();
    if first.as_ref().is_some_and(|a| a == "zygote") && args.next().is_none() {
        // the daemon's shim fork server (berth_runtime::shim::zygote), stdin is its socket
        return ExitCode::from(berth_runtime::shim::zygote::main().clamp(0, 255) as u8);
    }
    if first.is_some_and(|a| a == "shim") {
        let Some(config) = args.next() else {
            output::error("usage: berth shim CONFIG.json (started by the daemon)");
            return ExitCode::from(125);
        };
        let code = berth_runtime::shim::main(std::path::Path::new(&config));
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let parsed = match parse_fast(std::env::args_os().collect()) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse(),
    };
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if matches!(cli.command, Command::Runtime { .. }) {
        // reached only with berth's global flags before `runtime`: the runtime must run in a
        // single-threaded process, so it is never started from here
        output::error(
            "berth runtime takes runc's global flags after the word `runtime` \
             (berth runtime --root DIR ...), not berth's before it",
        );
        return ExitCode::from(125);
    }
    output::init_logging(&cli.global, matches!(cli.command, Command::Daemon(_)));
    let daemon = matches!(cli.command, Command::Daemon(_));
    // a client command runs on this thread alone: no worker thread to start, and no hand-off
    // between threads on every reply (blocking reads of stdin still get the blocking pool)
    let built = if daemon {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .worker_threads(4)
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&format!("starting the async runtime: {e}"));
            return ExitCode::from(125);
        }
    };
    let code = rt.block_on(async move {
        let g = cli.global;
        let result = match cli.command {
            Command::Daemon(a) => commands::daemon::run(a, &g).await,
            Command::Run(a) => commands::run::run(a, &g).await,
            Command::Create(a) => commands::containers::create(a, &g).await,
            Command::Start(a) => commands::containers::start(a, &g).await,
            Command::Stop(a) => commands::containers::stop(a, &g).await,
            Command::Restart(a) => commands::containers::restart(a, &g).await,
            Command::Kill(a) => commands::containers::kill(a, &g).await,
            Command::Rm(a) => commands::containers::rm(a, &g).await,
            Command::Wait(a) => commands::containers::wait(a, &g).await,
            Command::Logs(a) => commands::containers::logs(a, &g).await,
            Command::Ps(a) => commands::containers::ps(a, &g).await,
            Command::Inspect(a) => commands::inspect::inspect(a, &g).await,
            Command::Container(c) => commands::containers::dispatch(c, &g).await,
            Command::Pause(a) => commands::control::pause(a, &g).await,
            Command::Unpause(a) => commands::control::unpause(a, &g).await,
            Command::Rename(a) => commands::control::rename(a, &g).await,
            Command::Top(a) => commands::control::top(a, &g).await,
            Command::Port(a) => commands::containers::port(a, &g).await,
            Command::Attach(a) => commands::attach::run(a, &g).await,
            Command::Stats(a) => commands::stats::run(a, &g).await,
            Command::Events(a) => commands::events::run(a, &g).await,
            Command::Exec(a) => commands::exec::exec(a, &g).await,
            Command::Pull(a) => commands::pull::run(a, &g).await,
            Command::Images(a) => commands::images::list(a, &g).await,
            Command::Image(c) => commands::images::dispatch(c, &g).await,
            Command::Network(c) => commands::network::dispatch(c, &g).await,
            Command::Rmi(a) => commands::images::rm(a, &g).await,
            Command::Tag(a) => commands::images::tag(a, &g).await,
            Command::System(c) => commands::system::dispatch(c, &g).await,
            Command::Version(a) => commands::system::version(a, &g).await,
            Command::Info(a) => commands::system::info(a, &g).await,
            Command::Login(a) => commands::login::login(a, &g).await,
            Command::Logout(a) => commands::login::logout(a, &g).await,
            // intercepted before clap, refused above with berth's global flags
            Command::Runtime { .. } => Ok(125),
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                output::report(&e);
                1
            }
        }
    });
    if !daemon && commands::attach::STDIN_FORWARDED.load(std::sync::atomic::Ordering::SeqCst) {
        // a read of our stdin (attach) cannot be cancelled: let pending output finish, but
        // do not wait for a key press
        rt.shutdown_timeout(std::time::Duration::from_millis(200));
    }
    ExitCode::from(code)
}

/// The command line of the container commands that start and stop containers, parsed by a
/// parser that holds only the one subcommand: clap's derived parser builds every argument
/// of every subcommand first, about 1 ms here, a tenth of a whole `run --rm`. `None` when
/// the command is another one, or on anything but a plain success (an error, `--help`,
/// `--version`): the full parser then gives the exact message.
fn parse_fast(args: Vec<std::ffi::OsString>) -> Option<Cli> {
    // berth's global flags come before the subcommand (they are not clap-global)
    let mut i = 1;
    loop {
        let a = args.get(i)?.to_str()?;
        match a {
            "--root" | "-H" | "--host" | "-l" | "--log-level" => i += 2,
            "--no-autostart" | "-D" | "--debug" => i += 1,
            _ if ["--root=", "--host=", "--log-level="]
                .iter()
                .any(|p| a.starts_with(p)) =>
            {
                i += 1
            }
            _ if a.starts_with('-') => return None,
            _ => break,
        }
    }
    macro_rules! one {
        ($name:literal, $variant:ident, $ty:ty, $help:literal) => {{
            let sub = <$ty>::augment_args(clap::Command::new($name)).disable_help_flag(!$help);
            let m = GlobalArgs::augment_args(clap::Command::new("berth"))
                .subcommand(sub)
                .try_get_matches_from(&args)
                .ok()?;
            let global = GlobalArgs::from_arg_matches(&m).ok()?;
            let (_, sm) = m.subcommand()?;
            let command = Command::$variant(<$ty>::from_arg_matches(sm).ok()?);
            Some(Cli { global, command })
        }};
    }
    use commands::containers as c;
    match args.get(i)?.to_str()? {
        "run" => one!("run", Run, c::RunArgs, false),
        "create" => one!("create", Create, c::CreateArgs, false),
        "start" => one!("start", Start, c::StartArgs, true),
        "stop" => one!("stop", Stop, c::StopArgs, true),
        "kill" => one!("kill", Kill, c::KillArgs, true),
        "rm" => one!("rm", Rm, c::RmArgs, true),
        "wait" => one!("wait", Wait, c::ContainersArg, true),
        "exec" => one!("exec", Exec, commands::exec::ExecArgs, true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(line: &str) -> (Option<String>, String) {
        let args: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
        let fast = parse_fast(args.clone()).map(|c| format!("{:?} {:?}", c.global, c.command));
        let full = Cli::try_parse_from(&args)
            .map(|c| format!("{:?} {:?}", c.global, c.command))
            .unwrap_or_else(|e| format!("error: {e}"));
        (fast, full)
    }

    #[test]
    fn the_fast_parser_agrees_with_the_full_one() {
        for line in [
            "berth run --rm img true",
            "berth --root /tmp/r -D run -d --name x -e A=1 -p 8080:80 -h host --network none img sh -c true",
            "berth --root=/tmp/r --no-autostart run -it --rm -v /a:/b:ro --cpus 1.5 img",
            "berth -H unix:///x.sock create --name c --entrypoint sh img -c 'echo hi'",
            "berth start -a -i c1",
            "berth stop -t 0 c1 c2",
            "berth -l debug kill -s HUP c1",
            "berth rm -f -v c1",
            "berth wait c1",
            "berth exec -it -u 1000 -w /tmp c1 sh",
            "berth run img --rm -d",
            "berth run --no-such-flag img",
        ] {
            let (fast, full) = both(line);
            assert_eq!(fast.as_deref(), Some(full.as_str()), "{line}");
        }
        // not taken: errors, help, version and the other commands go to the full parser
        for line in [
            "berth run",
            "berth run --help",
            "berth stop --help",
            "berth --version",
            "berth ps -a",
            "berth --bogus run img",
            "berth run --memory",
        ] {
            let (fast, _) = both(line);
            assert_eq!(fast, None, "{line}");
        }
    }
}
