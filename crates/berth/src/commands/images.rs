//! `images`, `image ls|inspect|rm|prune|pull|tag`, `rmi`, `tag`.

use anyhow::{bail, Result};
use berth_api::images::{DeleteItem, ImageSummary, PruneReport};
use hyper::Method;
use serde_json::Value;

use crate::context::GlobalArgs;
use crate::output;

/// `image` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Download an image from a registry
    Pull(crate::commands::pull::Args),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
}

/// Arguments of `images`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only show images matching this reference (REPOSITORY[:TAG], with * wildcards)
    reference: Option<String>,
    /// Show all images (no intermediate images are hidden by berth; accepted for compatibility)
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output (dangling=true|false, reference=PATTERN, label=KEY[=VALUE])
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output: table, json, or a Go template like '{{.Repository}}:{{.Tag}}'
    #[arg(long)]
    format: Option<String>,
}

/// Arguments of `image inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Images
    #[arg(required = true)]
    images: Vec<String>,
    /// Format output using a Go template ({{.Field}}, {{json .Field}}, {{range}}, {{index}}, ...)
    #[arg(short, long)]
    format: Option<String>,
}

/// Arguments of `rmi`.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Images
    #[arg(required = true)]
    images: Vec<String>,
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents (accepted for compatibility; berth images have no parents)
    #[arg(long)]
    no_prune: bool,
}

/// Arguments of `tag`.
#[derive(clap::Args, Debug)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

/// Arguments of `image prune`.
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Dispatches `image ...`.
pub async fn dispatch(c: ImageCommand, g: &GlobalArgs) -> Result<u8> {
    match c {
        ImageCommand::Ls(a) => list(a, g).await,
        ImageCommand::Inspect(a) => inspect(a, g).await,
        ImageCommand::Rm(a) => rm(a, g).await,
        ImageCommand::Prune(a) => prune(a, g).await,
        ImageCommand::Pull(a) => crate::commands::pull::run(a, g).await,
        ImageCommand::Tag(a) => tag(a, g).await,
    }
}

struct Row {
    repository: String,
    tag: String,
    digest: String,
    id: String,
    created_since: String,
    created_at: i64,
    size: String,
}

fn rows(images: &[ImageSummary], no_trunc: bool) -> Vec<Row> {
    let mut out = Vec::new();
    for img in images {
        let id = if no_trunc {
            img.id.clone()
        } else {
            img.id
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect()
        };
        let digest_for = |repo: &str| {
            img.repo_digests
                .iter()
                .find(|d| d.split_once('@').is_some_and(|(r, _)| r == repo))
                .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()))
                .unwrap_or_else(|| "<none>".into())
        };
        let base = |repository: String, tag: String, digest: String| Row {
            repository,
            tag,
            digest,
            id: id.clone(),
            created_since: output::human_since(img.created),
            created_at: img.created,
            size: output::human_size(img.size.max(0) as u64),
        };
        if img.repo_tags.is_empty() {
            let (repo, digest) = img
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map(|(r, d)| (r.to_string(), d.to_string()))
                .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
            out.push(base(repo, "<none>".into(), digest));
        }
        for t in &img.repo_tags {
            let (repo, tag) = t
                .rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))
                .unwrap_or((t.as_str(), "<none>"));
            out.push(base(repo.to_string(), tag.to_string(), digest_for(repo)));
        }
    }
    out
}

fn row_json(r: &Row) -> Value {
    serde_json::json!({
        "Containers": "N/A",
        "CreatedAt": r.created_at.to_string(),
        "CreatedSince": r.created_since,
        "Digest": r.digest,
        "ID": r.id,
        "Repository": r.repository,
        "SharedSize": "N/A",
        "Size": r.size,
        "Tag": r.tag,
        "UniqueSize": "N/A",
        "VirtualSize": r.size,
    })
}

/// Runs `images`.
pub async fn list(args: ListArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let mut filters: serde_json::Map<String, Value> = serde_json::Map::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value): {f}"))?;
        filters
            .entry(k.to_string())
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .expect("object")
            .insert(v.to_string(), Value::Bool(true));
    }
    if let Some(r) = &args.reference {
        filters
            .entry("reference".to_string())
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .expect("object")
            .insert(r.clone(), Value::Bool(true));
    }
    let mut path = "/images/json".to_string();
    if !filters.is_empty() {
        path.push_str(&format!(
            "?filters={}",
            encode(&Value::Object(filters).to_string())
        ));
    }
    let images: Vec<ImageSummary> = client.json(Method::GET, &path, None).await?;
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for img in &images {
            let id = if args.no_trunc {
                img.id.clone()
            } else {
                img.id
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect()
            };
            if seen.insert(id.clone()) {
                output::out(&id);
            }
        }
        return Ok(0);
    }
    let rows = rows(&images, args.no_trunc);
    match args.format.as_deref() {
        Some("json") => {
            for r in &rows {
                output::out(&row_json(r).to_string());
            }
        }
        Some(tpl) if tpl != "table" => {
            let (header, tpl) = match tpl.strip_prefix("table ") {
                Some(t) => (true, t),
                None => (false, tpl),
            };
            if header {
                let names = serde_json::json!({"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
                    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
                    "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"});
                output::out(&output::render_template(tpl, &names)?);
            }
            for r in &rows {
                output::out(&output::render_template(tpl, &row_json(r))?);
            }
        }
        _ => {
            let mut table = vec![if args.digests {
                vec!["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
            } else {
                vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
            }
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()];
            for r in rows {
                let mut row = vec![r.repository, r.tag];
                if args.digests {
                    row.push(r.digest);
                }
                row.extend([r.id, r.created_since, r.size]);
                table.push(row);
            }
            output::table(&table);
        }
    }
    Ok(0)
}

/// Runs `image inspect`.
pub async fn inspect(args: InspectArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let (found, code) = output::fetch_each(&client, &args.images, "image", |name| {
        format!("/images/{}/json", encode(name))
    })
    .await?;
    output::print_inspected(found, args.format.as_deref())?;
    Ok(code)
}

fn print_deleted(items: &[DeleteItem]) {
    for i in items {
        if let Some(u) = &i.untagged {
            output::out(&format!("Untagged: {u}"));
        }
        if let Some(d) = &i.deleted {
            output::out(&format!("Deleted: {d}"));
        }
    }
}

/// Runs `rmi`.
pub async fn rm(args: RmArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let mut code = 0;
    for name in &args.images {
        let path = format!(
            "/images/{}?force={}&noprune={}",
            encode(name),
            args.force,
            args.no_prune
        );
        match client
            .json::<Vec<DeleteItem>>(Method::DELETE, &path, None)
            .await
        {
            Ok(items) => print_deleted(&items),
            Err(berth_api::ApiClientError::Api { message, .. }) => {
                output::err(&format!("Error response from daemon: {message}"));
                code = 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(code)
}

/// Runs `tag`.
pub async fn tag(args: TagArgs, g: &GlobalArgs) -> Result<u8> {
    let target = berth_image::Reference::parse_normalized(&args.target)?;
    if target.digest.is_some() {
        bail!(
            "refusing to create a tag with a digest reference: {}",
            args.target
        );
    }
    let client = g.client().await?;
    let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
    let path = format!(
        "/images/{}/tag?repo={}&tag={}",
        encode(&args.source),
        encode(&target.repository()),
        encode(&tag)
    );
    client.call(Method::POST, &path, None).await?;
    Ok(0)
}

/// Runs `image prune`.
pub async fn prune(args: PruneArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let filters = if args.all {
        format!("?filters={}", encode(r#"{"dangling":["false"]}"#))
    } else {
        String::new()
    };
    let report: PruneReport = client
        .json(Method::POST, &format!("/images/prune{filters}"), None)
        .await?;
    if !report.images_deleted.is_empty() {
        output::out("Deleted Images:");
        print_deleted(&report.images_deleted);
        output::out("");
    }
    output::out(&format!(
        "Total reclaimed space: {}",
        output::human_size(report.space_reclaimed)
    ));
    Ok(0)
}
