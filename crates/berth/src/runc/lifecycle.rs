//! The container lifecycle: create → created (the process waits on the exec fifo), start →
//! running, exit → stopped, delete; run = create + start (+ wait and delete in the
//! foreground); state, kill, list.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use oci_spec::runtime::Spec;

use super::parse::{self, b, v, Flag};
use super::state::{self, State};
use super::Ctx;

const CREATE_FLAGS: &[Flag] = &[
    v("bundle", Some('b')),
    v("console-socket", None),
    v("pid-file", None),
    b("no-pivot", None),
    b("no-new-keyring", None),
    v("preserve-fds", None),
    b("detach", Some('d')),
    b("keep", None),
];

fn one_id(args: &[String], table: &[Flag], cmd: &str) -> anyhow::Result<(String, parse::Parsed)> {
    let p = parse::parse(args, table, None).map_err(anyhow::Error::msg)?;
    match p.args.first() {
        Some(id) => Ok((id.clone(), p)),
        None => bail!("\"{cmd}\" requires a container id"),
    }
}

/// Reads and checks `config.json` of `bundle`.
pub fn load_spec(bundle: &Path) -> anyhow::Result<Spec> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut spec: Spec =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    check_spec(&spec)?;
    // an ambient capability must be inheritable too; runc skips the others (its own default
    // spec lists ambient capabilities without an inheritable set)
    if let Some(p) = spec.process_mut() {
        if let Some(mut caps) = p.capabilities().clone() {
            if let Some(ambient) = caps.ambient().clone() {
                let inheritable = caps.inheritable().clone().unwrap_or_default();
                caps.set_ambient(Some(ambient.intersection(&inheritable).copied().collect()));
                p.set_capabilities(Some(caps));
            }
        }
    }
    Ok(spec)
}

/// Refuses, by name, what berth runtime does not honour.
fn check_spec(spec: &Spec) -> anyhow::Result<()> {
    let version = spec.version();
    if !version.starts_with("1.") {
        bail!("config.json: ociVersion {version:?} is not a 1.x runtime-spec version");
    }
    let refuse = |field: &str| -> anyhow::Result<()> {
        bail!("config.json: {field} is not supported by berth runtime; remove it")
    };
    if let Some(p) = spec.process() {
        if p.scheduler().is_some() {
            refuse("process.scheduler")?;
        }
        if p.io_priority().is_some() {
            refuse("process.ioPriority")?;
        }
        if p.exec_cpu_affinity().is_some() {
            refuse("process.execCPUAffinity")?;
        }
        if p.apparmor_profile()
            .as_deref()
            .is_some_and(|s| !s.is_empty())
            && !apparmor_enabled()
        {
            bail!("config.json: process.apparmorProfile is set but AppArmor is not enabled on this host; remove it");
        }
        if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty()) && !selinux_enabled() {
            bail!("config.json: process.selinuxLabel is set but SELinux is not enabled on this host; remove it");
        }
    }
    if let Some(l) = spec.linux() {
        if l.intel_rdt().is_some() {
            refuse("linux.intelRdt")?;
        }
        if l.memory_policy().is_some() {
            refuse("linux.memoryPolicy")?;
        }
        if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            refuse("linux.netDevices")?;
        }
        if l.time_offsets().as_ref().is_some_and(|d| !d.is_empty()) {
            refuse("linux.timeOffsets")?;
        }
        if l.mount_label().as_deref().is_some_and(|s| !s.is_empty()) && !selinux_enabled() {
            bail!("config.json: linux.mountLabel is set but SELinux is not enabled on this host; remove it");
        }
    }
    Ok(())
}

/// Whether AppArmor is enabled on this host.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// Whether SELinux is enabled on this host.
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn bundle_of(p: &parse::Parsed) -> anyhow::Result<PathBuf> {
    let b = match p.get("bundle") {
        Some(b) => PathBuf::from(b),
        None => std::env::current_dir().context("current directory")?,
    };
    std::fs::canonicalize(&b).with_context(|| format!("bundle {}", b.display()))
}

/// Writes a pid file atomically (runc: temp + rename).
pub fn write_pid_file(path: &str, pid: i32) -> anyhow::Result<()> {
    let path = Path::new(path);
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing pid file {}", path.display()))
}

/// Connects to `--console-socket`, makes a pseudo-terminal, sends its master there and returns
/// the slave for the container.
fn console(socket: &str, spec: &Spec) -> anyhow::Result<berth_runtime::ProcessIo> {
    let sock = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connecting to console socket {socket}"))?;
    let (master, slave, path) = open_pty()?;
    if let Some(size) = spec.process().as_ref().and_then(|p| p.console_size()) {
        let ws = rustix::termios::Winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, ws).context("setting the console size")?;
    }
    berth_runtime::exec::send_fd(&sock, &master, path.to_string_lossy().as_bytes())
        .context("sending the console to the console socket")?;
    Ok(berth_runtime::ProcessIo::Terminal { slave, path })
}

/// A new pseudo-terminal: (master, slave, slave path).
pub fn open_pty() -> anyhow::Result<(OwnedFd, OwnedFd, PathBuf)> {
    use rustix::pty::OpenptFlags;
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .context("opening /dev/ptmx")?;
    rustix::pty::grantpt(&master).context("grantpt")?;
    rustix::pty::unlockpt(&master).context("unlockpt")?;
    let name = rustix::pty::ptsname(&master, Vec::new()).context("ptsname")?;
    let path = PathBuf::from(name.to_string_lossy().into_owned());
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .with_context(|| format!("opening {}", path.display()))?;
    Ok((master, slave, path))
}

/// What `create_container` made.
struct Made {
    state: State,
    created: berth_runtime::Created,
    /// The container's cgroup.
    cgroup: Option<berth_runtime::cgroup::Cgroup>,
    /// A foreground `run` with a terminal: the pseudo-terminal's master, proxied to our stdio.
    master: Option<OwnedFd>,
    /// A foreground `run`: the signals it forwards, blocked from the moment the container
    /// process exists (a signal between its start and the forwarding loop would otherwise
    /// kill this process instead of reaching the container).
    signals: Option<OwnedFd>,
}

/// Creates the container: state dir, (fifo,) cgroup, process. With `fifo`, the process waits
/// on the exec fifo for `start`; without, it runs at once.
fn create_container(
    ctx: &Ctx,
    id: &str,
    p: &parse::Parsed,
    fifo: bool,
    foreground: bool,
) -> anyhow::Result<Made> {
    state::validate_id(id)?;
    let bundle = bundle_of(p)?;
    let spec = load_spec(&bundle)?;
    let linux = spec.linux().clone().unwrap_or_default();
    let (cgroup_parent, cgroup_name) =
        state::split_cgroups_path(linux.cgroups_path().as_deref(), id, ctx.systemd_cgroup)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("config.json: process is missing"))?;
    let terminal = process.terminal().unwrap_or(false);
    let mut master = None;
    let io = match (terminal, p.get("console-socket")) {
        (true, Some(sock)) => console(sock, &spec)?,
        // a foreground run proxies the terminal itself, as runc does
        (true, None) if foreground => {
            let (m, slave, path) = open_pty()?;
            if let Ok(size) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
                let _ = rustix::termios::tcsetwinsize(&slave, size);
            }
            master = Some(m);
            berth_runtime::ProcessIo::Terminal { slave, path }
        }
        (true, None) => bail!(
            "cannot allocate tty if berth runtime will detach without setting console socket \
             (pass --console-socket, or set process.terminal to false)"
        ),
        (false, Some(_)) => {
            bail!("cannot use console socket if berth runtime will not detach or allocate tty")
        }
        (false, None) => berth_runtime::ProcessIo::Inherit,
    };
    let preserve_fds: u32 = match p.get("preserve-fds") {
        Some(n) => n.parse().with_context(|| format!("--preserve-fds {n}"))?,
        None => 0,
    };
    std::fs::create_dir_all(&ctx.root)
        .with_context(|| format!("creating state directory {}", ctx.root.display()))?;
    let dir = state::dir(&ctx.root, id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id exists: {id}")
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| {
            if r.path().is_absolute() {
                r.path().clone()
            } else {
                bundle.join(r.path())
            }
        })
        .unwrap_or_default();
    let hooks = spec.hooks().clone().unwrap_or_default();
    let mut st = State {
        version: state::STATE_VERSION,
        id: id.to_string(),
        pid: 0,
        start_time: 0,
        bundle: bundle.clone(),
        rootfs,
        created: berth_runtime::shim::log::timestamp_now(),
        oci_version: spec.version().clone(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup_parent,
        cgroup_name,
        poststart: hooks.poststart().clone().unwrap_or_default(),
        poststop: hooks.poststop().clone().unwrap_or_default(),
    };
    // the cgroup made for the process, kept for a foreground run's clean-up
    let mut made_cgroup: Option<berth_runtime::cgroup::Cgroup> = None;
    let mut signals: Option<OwnedFd> = None;
    let result = (|| -> anyhow::Result<berth_runtime::Created> {
        let start_fd = if fifo {
            let path = st.fifo(&ctx.root);
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &path,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o600),
                0,
            )
            .with_context(|| format!("creating exec fifo {}", path.display()))?;
            // read-write: opening does not block and the reader never sees EOF
            Some(
                rustix::fs::open(
                    &path,
                    rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .with_context(|| format!("opening exec fifo {}", path.display()))?,
            )
        } else {
            None
        };
        let child_hooks = berth_runtime::ChildHooks {
            state: st.hook_state("creating"),
            create_container: hooks.create_container().clone().unwrap_or_default(),
            start_container: hooks.start_container().clone().unwrap_or_default(),
        };
        let runtime_hooks: Vec<(&'static str, Vec<oci_spec::runtime::Hook>)> = vec![
            ("prestart", hooks.prestart().clone().unwrap_or_default()),
            (
                "createRuntime",
                hooks.create_runtime().clone().unwrap_or_default(),
            ),
        ];
        let resources = Some(with_default_devices(&linux));
        let st_ref = &st;
        let made_cgroup = &mut made_cgroup;
        let signals = &mut signals;
        let join = |pid: i32| -> Result<(), String> {
            // after the clone (the container process keeps an open mask), before it runs
            if foreground {
                *signals = Some(
                    berth_runtime::signalfd(&FORWARDED)
                        .map_err(|e| format!("blocking the signals to forward: {e}"))?,
                );
            }
            let m = berth_runtime::cgroup::CgroupManager::detect(
                berth_runtime::cgroup::DEFAULT_ROOT,
                Path::new("/proc"),
            )
            .and_then(|m| m.with_parent(&st_ref.cgroup_parent))
            .and_then(|m| m.create(&st_ref.cgroup_name))
            .map_err(|e| chain(&e))?;
            if let Some(r) = &resources {
                m.apply(r).map_err(|e| chain(&e))?;
            }
            let p = rustix::process::Pid::from_raw(pid).ok_or("invalid pid")?;
            m.add_pid(p).map_err(|e| chain(&e))?;
            *made_cgroup = Some(m);
            let mut hs = st_ref.hook_state("creating");
            hs.pid = pid;
            let json = hs.to_json();
            for (kind, list) in &runtime_hooks {
                berth_runtime::hooks::run(kind, list, &json).map_err(|e| chain(&e))?;
            }
            Ok(())
        };
        let opts = berth_runtime::CreateOptions {
            spec: &spec,
            bundle: &bundle,
            overlay: None,
            io,
            wait_for_start: false,
            preserve_fds,
            netns: None,
        };
        berth_runtime::create_oci(opts, start_fd, child_hooks, join)
            .map_err(|e| anyhow::anyhow!(chain(&e)))
    })();
    let created = match result {
        Ok(c) => c,
        Err(e) => {
            if let Ok(cg) = st.cgroup() {
                let _ = cg.destroy();
            }
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    st.pid = created.pid;
    st.start_time = state::proc_start_time(created.pid)
        .map(|(t, _)| t)
        .unwrap_or(0);
    if let Err(e) = st.save(&ctx.root) {
        kill_pid(created.pid);
        if let Ok(cg) = st.cgroup() {
            let _ = cg.destroy();
        }
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    if let Some(pf) = p.get("pid-file") {
        write_pid_file(pf, created.pid)?;
    }
    Ok(Made {
        state: st,
        created,
        cgroup: made_cgroup,
        master,
        signals,
    })
}

/// The device cgroup as runc builds it: the spec's rules, then the default devices (and
/// mknod of any node), then every device the spec creates.
fn with_default_devices(linux: &oci_spec::runtime::Linux) -> oci_spec::runtime::LinuxResources {
    let mut r = linux.resources().clone().unwrap_or_default();
    let mut rules = r.devices().clone().unwrap_or_default();
    rules.extend(
        berth_runtime::defaults::docker_device_rules()
            .into_iter()
            .skip(1),
    );
    for d in linux.devices().clone().unwrap_or_default() {
        let mut rule = oci_spec::runtime::LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(d.typ()));
        rule.set_major(Some(d.major()));
        rule.set_minor(Some(d.minor()));
        rule.set_access(Some("rwm".into()));
        rules.push(rule);
    }
    r.set_devices(Some(rules));
    r
}

use berth_runtime::error_chain as chain;

fn kill_pid(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// `create [flags] ID`.
pub fn create(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let (id, p) = one_id(args, CREATE_FLAGS, "create")?;
    create_container(ctx, &id, &p, true, false)?;
    Ok(0)
}

/// Runs poststart hooks; a failure is a warning (runtime-spec).
fn poststart(ctx: &Ctx, st: &State) {
    if st.poststart.is_empty() {
        return;
    }
    let json = st.hook_state("running").to_json();
    if let Err(e) = berth_runtime::hooks::run("poststart", &st.poststart, &json) {
        super::log(ctx, "warning", &chain(&e));
    }
}

/// `start ID`.
pub fn start(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let (id, _) = one_id(args, &[], "start")?;
    let st = State::load(&ctx.root, &id)?;
    match st.status(&ctx.root) {
        "created" => {}
        "stopped" => bail!("cannot start a container that has stopped"),
        "running" | "paused" => bail!("cannot start an already running container"),
        other => bail!("cannot start a container in the {other} state"),
    }
    let fifo = st.fifo(&ctx.root);
    let f = rustix::fs::open(
        &fifo,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .with_context(|| {
        format!(
            "opening exec fifo {} (is the container process gone?)",
            fifo.display()
        )
    })?;
    rustix::io::write(&f, &[1]).context("writing to the exec fifo")?;
    // as runc's start, return once the process has left the runtime: its end of the fifo is
    // close-on-exec, and a fifo's writer sees POLLERR once no reader is left (after
    // startContainer hooks and execve, or its death)
    let mut fds = [rustix::event::PollFd::new(
        &f,
        rustix::event::PollFlags::empty(),
    )];
    while let Err(rustix::io::Errno::INTR) = rustix::event::poll(&mut fds, None) {}
    drop(f);
    std::fs::remove_file(&fifo).with_context(|| format!("removing {}", fifo.display()))?;
    poststart(ctx, &st);
    Ok(0)
}

/// `run [flags] ID`: create and start; in the foreground, wait and delete.
pub fn run(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let (id, p) = one_id(args, CREATE_FLAGS, "run")?;
    let detach = p.has("detach");
    let Made {
        state: st,
        created,
        cgroup,
        master,
        signals,
    } = create_container(ctx, &id, &p, false, !detach)?;
    poststart(ctx, &st);
    if detach {
        return Ok(0);
    }
    let code = foreground(created.pid, master.as_ref(), signals);
    if !p.has("keep") {
        destroy(ctx, &st, cgroup)?;
    }
    Ok(code)
}

/// The signals a foreground `run` or `exec` forwards to the container process (SIGWINCH
/// resizes its terminal; SIGCHLD wakes the loop).
const FORWARDED: [i32; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCHLD,
];

/// The foreground of `run`: forwards signals to the container process (SIGWINCH resizes its
/// terminal), and with a terminal copies our stdin to it and its output to our stdout (our
/// own terminal raw meanwhile); returns the container's exit code.
pub fn foreground(pid: i32, master: Option<&OwnedFd>, signals: Option<OwnedFd>) -> u8 {
    use rustix::event::{PollFd, PollFlags};
    let sigfd = match signals {
        Some(fd) => fd,
        None => match berth_runtime::signalfd(&FORWARDED) {
            Ok(fd) => fd,
            Err(_) => return wait_exit(pid),
        },
    };
    let target = rustix::process::Pid::from_raw(pid);
    let stdin = rustix::stdio::stdin();
    let saved = master.and_then(|_| rustix::termios::tcgetattr(stdin).ok());
    if let Some(t) = &saved {
        let mut raw = t.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
    }
    let exited = || -> Option<u8> {
        let status = rustix::process::waitpid(target, rustix::process::WaitOptions::NOHANG)
            .ok()??
            .1;
        if let Some(c) = status.exit_status() {
            return Some(c as u8);
        }
        status.terminating_signal().map(|s| (128 + s) as u8)
    };
    let mut terminal_open = master.is_some();
    let mut stdin_open = master.is_some();
    let mut code = exited();
    let mut buf = [0u8; 8192];
    while code.is_none() || terminal_open {
        let mut fds = vec![PollFd::new(&sigfd, PollFlags::IN)];
        if let (Some(m), true) = (master, terminal_open) {
            fds.push(PollFd::new(m, PollFlags::IN));
            if stdin_open {
                fds.push(PollFd::new(&stdin, PollFlags::IN));
            }
        }
        // once the process exited, only the terminal's last output is awaited
        let wait = code.map(|_| rustix::time::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        match rustix::event::poll(&mut fds, wait.as_ref()) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        let ev: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        let ready = |i: usize| {
            ev.get(i)
                .is_some_and(|e| e.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR))
        };
        if ready(0) {
            if let Ok(sig) = berth_runtime::read_signal(&sigfd) {
                match sig {
                    libc::SIGCHLD => {}
                    libc::SIGWINCH => {
                        if let (Some(m), Ok(size)) = (master, rustix::termios::tcgetwinsize(stdin))
                        {
                            let _ = rustix::termios::tcsetwinsize(m, size);
                        }
                    }
                    other => {
                        if let (Some(p), Some(s)) =
                            (target, rustix::process::Signal::from_named_raw(other))
                        {
                            let _ = rustix::process::kill_process(p, s);
                        }
                    }
                }
            }
            if code.is_none() {
                code = exited();
            }
        }
        if let (Some(m), true) = (master, ready(1)) {
            match rustix::io::read(m, &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = std::io::stdout().write_all(&buf[..n]);
                    let _ = std::io::stdout().flush();
                }
                // EIO: the last holder of the terminal's other side is gone
                _ => terminal_open = false,
            }
        }
        if ready(2) {
            match rustix::io::read(stdin, &mut buf) {
                Ok(n) if n > 0 => {
                    if let Some(m) = master {
                        let _ = rustix::io::write(m, &buf[..n]);
                    }
                }
                _ => stdin_open = false,
            }
        }
    }
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, t);
    }
    code.unwrap_or_else(|| wait_exit(pid))
}

/// Waits for our child `pid`; its exit code (128+signal when killed).
pub fn wait_exit(pid: i32) -> u8 {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return 255;
    };
    loop {
        match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(c) = status.exit_status() {
                    return c as u8;
                }
                if let Some(s) = status.terminating_signal() {
                    return (128 + s) as u8;
                }
            }
            Err(rustix::io::Errno::INTR) => continue,
            _ => return 255,
        }
    }
}

/// Removes everything of a stopped container: cgroup, poststop hooks, state.
fn destroy(
    ctx: &Ctx,
    st: &State,
    cgroup: Option<berth_runtime::cgroup::Cgroup>,
) -> anyhow::Result<()> {
    if let Some(cg) = cgroup.map_or_else(|| st.cgroup().ok(), Some) {
        cg.destroy().map_err(|e| anyhow::anyhow!(chain(&e)))?;
    }
    if !st.poststop.is_empty() {
        let json = st.hook_state("stopped").to_json();
        if let Err(e) = berth_runtime::hooks::run("poststop", &st.poststop, &json) {
            super::log(ctx, "warning", &chain(&e));
        }
    }
    let dir = state::dir(&ctx.root, &st.id);
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
}

/// `state ID`.
pub fn state(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let (id, _) = one_id(args, &[], "state")?;
    let st = State::load(&ctx.root, &id)?;
    let out = serde_json::to_string_pretty(&st.oci(&ctx.root)).expect("json");
    let _ = writeln!(std::io::stdout(), "{out}");
    Ok(0)
}

/// Parses a signal name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal: {s}");
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => bail!("unknown signal {s:?}"),
    };
    Ok(n)
}

/// Sends `sig` to the container's process through a pidfd (checked against pid reuse).
fn signal_init(st: &State, sig: i32) -> anyhow::Result<()> {
    let pid = rustix::process::Pid::from_raw(st.pid)
        .ok_or_else(|| anyhow::anyhow!("container not running"))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|_| anyhow::anyhow!("container not running"))?;
    // the pidfd now pins the process: is it still ours?
    if !st.alive() {
        bail!("container not running");
    }
    let signal = rustix::process::Signal::from_named_raw(sig)
        .ok_or_else(|| anyhow::anyhow!("invalid signal {sig}"))?;
    rustix::process::pidfd_send_signal(&pidfd, signal).context("sending the signal")?;
    Ok(())
}

/// `kill [--all] ID [SIGNAL]`.
pub fn kill(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let (id, p) = one_id(args, &[b("all", Some('a'))], "kill")?;
    let sig = parse_signal(p.args.get(1).map(String::as_str).unwrap_or("SIGTERM"))?;
    let st = State::load(&ctx.root, &id)?;
    if p.has("all") {
        let cg = st.cgroup()?;
        let signal = rustix::process::Signal::from_named_raw(sig)
            .ok_or_else(|| anyhow::anyhow!("invalid signal {sig}"))?;
        cg.kill_all(signal)
            .map_err(|e| anyhow::anyhow!(chain(&e)))?;
        return Ok(0);
    }
    if st.status(&ctx.root) == "stopped" {
        bail!("container not running");
    }
    signal_init(&st, sig)?;
    Ok(0)
}

/// Waits up to `timeout` for the container process to be gone.
fn wait_gone(st: &State, timeout: std::time::Duration) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(st.pid) else {
        return true;
    };
    let Ok(pidfd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else {
        return true;
    };
    if !st.alive() {
        return true;
    }
    let mut fds = [rustix::event::PollFd::new(
        &pidfd,
        rustix::event::PollFlags::IN,
    )];
    let t = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    rustix::event::poll(&mut fds, Some(&t)).unwrap_or(0) > 0
}

/// `delete [--force] ID`.
pub fn delete(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let (id, p) = one_id(args, &[b("force", Some('f'))], "delete")?;
    let force = p.has("force");
    let st = match State::load(&ctx.root, &id) {
        Ok(s) => s,
        Err(e) if force && e.to_string() == "container does not exist" => return Ok(0),
        Err(e) => return Err(e),
    };
    match st.status(&ctx.root) {
        "stopped" => {}
        "created" => {
            signal_init(&st, libc::SIGKILL).ok();
            wait_gone(&st, std::time::Duration::from_secs(5));
        }
        status => {
            if !force {
                bail!("cannot delete container {id} that is not stopped: {status}");
            }
            if let Ok(cg) = st.cgroup() {
                let _ = cg.thaw();
                let _ = cg.kill_all(rustix::process::Signal::KILL);
            }
            signal_init(&st, libc::SIGKILL).ok();
            if !wait_gone(&st, std::time::Duration::from_secs(10)) {
                bail!("container {id} did not stop after SIGKILL");
            }
        }
    }
    destroy(ctx, &st, None)?;
    Ok(0)
}

/// `list [-q] [--format table|json]`.
pub fn list(ctx: &Ctx, args: &[String]) -> anyhow::Result<u8> {
    let p = parse::parse(args, &[b("quiet", Some('q')), v("format", Some('f'))], None)
        .map_err(anyhow::Error::msg)?;
    let all = state::list(&ctx.root)?;
    let mut out = String::new();
    if p.has("quiet") {
        for s in &all {
            out.push_str(&s.id);
            out.push('\n');
        }
    } else {
        match p.get("format").unwrap_or("table") {
            "json" => {
                let v: Vec<serde_json::Value> = all.iter().map(|s| s.oci(&ctx.root)).collect();
                out = serde_json::to_string(&v).expect("json");
                out.push('\n');
            }
            "table" => {
                let mut rows =
                    vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
                for s in &all {
                    let status = s.status(&ctx.root);
                    let pid = if status == "stopped" { 0 } else { s.pid };
                    rows.push([
                        s.id.clone(),
                        pid.to_string(),
                        status.to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        "root".into(),
                    ]);
                }
                out = table(&rows);
            }
            f => bail!("invalid format option: {f}"),
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(0)
}

/// Columns as Go's tabwriter (min width 12, padding 3) lays them out.
fn table(rows: &[[String; 6]]) -> String {
    let mut widths = [12usize; 6];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len() + 3);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}
