//! `version`, `info`, `system df|info`.

use anyhow::Result;
use berth_api::system::{DiskUsage, Info, Version};
use hyper::Method;

use crate::context::GlobalArgs;
use crate::output;

/// `system` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage
    Df(DfArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Get real time events from the server
    Events(crate::commands::events::EventsArgs),
}

/// Arguments of `version`.
#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// Format output as json
    #[arg(short, long)]
    format: Option<String>,
}

/// Arguments of `info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Format output as json or a template
    #[arg(short, long)]
    format: Option<String>,
}

/// Arguments of `system df`.
#[derive(clap::Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
    /// Format output as json
    #[arg(long)]
    format: Option<String>,
}

/// Dispatches `system ...`.
pub async fn dispatch(c: SystemCommand, g: &GlobalArgs) -> Result<u8> {
    match c {
        SystemCommand::Df(a) => df(a, g).await,
        SystemCommand::Info(a) => info(a, g).await,
        SystemCommand::Events(a) => crate::commands::events::run(a, g).await,
    }
}

/// Runs `version`.
pub async fn version(args: VersionArgs, g: &GlobalArgs) -> Result<u8> {
    let client_v = env!("CARGO_PKG_VERSION");
    let server = match g.client().await {
        Ok(c) => Some(c.json::<Version>(Method::GET, "/version", None).await?),
        Err(e) => {
            output::err(&format!("{e:#}"));
            None
        }
    };
    if let Some(f) = args.format {
        let v = serde_json::json!({"Client": {"Version": client_v, "ApiVersion": berth_api::API_VERSION}, "Server": server});
        output::out(&if f == "json" {
            v.to_string()
        } else {
            output::render_template(&f, &v)?
        });
        return Ok(if server.is_some() { 0 } else { 1 });
    }
    output::out(&format!("Client:\n Version:           {client_v}\n API version:       {}\n OS/Arch:           linux/{}", berth_api::API_VERSION, berth_image::Platform::host().architecture));
    if let Some(s) = &server {
        output::out(&format!(
            "\nServer:\n Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  OS/Arch:          {}/{}\n  Kernel:           {}",
            s.version, s.api_version, s.min_api_version, s.os, s.arch, s.kernel_version
        ));
        Ok(0)
    } else {
        Ok(1)
    }
}

/// Runs `info`.
pub async fn info(args: InfoArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let i: serde_json::Value = client.json(Method::GET, "/info", None).await?;
    if let Some(f) = args.format {
        output::out(&if f == "json" {
            i.to_string()
        } else {
            output::render_template(&f, &i)?
        });
        return Ok(0);
    }
    let i: Info = serde_json::from_value(i)?;
    output::out(&format!(
        "Server:\n Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n Berth Root Dir: {}\n Insecure Registries:\n{}",
        i.containers, i.containers_running, i.containers_paused, i.containers_stopped, i.images, i.server_version, i.driver,
        i.cgroup_driver, i.cgroup_version, i.kernel_version, i.operating_system, i.os_type, i.architecture, i.ncpu,
        output::human_size(i.mem_total.max(0) as u64), i.name, i.docker_root_dir,
        i.registry_config.insecure_registry_cidrs.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n")
    ));
    Ok(0)
}

/// Runs `system df`.
pub async fn df(args: DfArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let d: DiskUsage = client.json(Method::GET, "/system/df", None).await?;
    let total: u64 = d.layers_size.max(0) as u64;
    // nothing uses images yet (containers arrive with the run issue), so all of it is reclaimable
    let active = 0;
    let reclaim_pct = if total > 0 { 100 } else { 0 };
    let rows = [
        (
            "Images",
            d.images.len(),
            active,
            total,
            format!("{} ({reclaim_pct}%)", output::human_size(total)),
        ),
        ("Containers", 0, 0, 0, "0B".to_string()),
        ("Local Volumes", 0, 0, 0, "0B".to_string()),
        ("Build Cache", 0, 0, 0, "0B".to_string()),
    ];
    if args.format.as_deref() == Some("json") {
        for (t, n, a, s, r) in &rows {
            output::out(&serde_json::json!({"Type": t, "TotalCount": n.to_string(), "Active": a.to_string(), "Size": output::human_size(*s), "Reclaimable": r}).to_string());
        }
        return Ok(0);
    }
    let mut table = vec![["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
    for (t, n, a, s, r) in rows {
        table.push(vec![
            t.to_string(),
            n.to_string(),
            a.to_string(),
            output::human_size(s),
            r,
        ]);
    }
    output::table(&table);
    if args.verbose {
        output::out("\nImages space usage:\n");
        let mut t = vec![[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        for img in &d.images {
            let (repo, tag) = img
                .repo_tags
                .first()
                .and_then(|t| t.rsplit_once(':'))
                .map(|(r, t)| (r.to_string(), t.to_string()))
                .unwrap_or(("<none>".into(), "<none>".into()));
            t.push(vec![
                repo,
                tag,
                img.id
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect(),
                output::human_since(img.created),
                output::human_size(img.size.max(0) as u64),
                output::human_size(img.shared_size.max(0) as u64),
                output::human_size((img.size - img.shared_size).max(0) as u64),
                "0".into(),
            ]);
        }
        output::table(&t);
    }
    Ok(0)
}
