//! `berth pull`.

use std::collections::HashMap;

use anyhow::{bail, Result};
use berth_api::JsonMessage;
use hyper::Method;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::commands::login::registry_auth_header;
use crate::context::GlobalArgs;
use crate::output;

/// Download an image from a registry.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image to pull: NAME[:TAG|@DIGEST]
    image: String,
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Pulls one reference, rendering progress; returns the daemon's error message, if any.
async fn pull_one(
    client: &berth_api::ApiClient,
    reference: &berth_image::Reference,
    args: &Args,
) -> Result<Option<String>> {
    let (from, tag) = match (&reference.digest, &reference.tag) {
        (Some(d), _) => (reference.repository(), d.to_string()),
        (None, Some(t)) => (reference.repository(), t.clone()),
        (None, None) => (reference.repository(), "latest".to_string()),
    };
    let mut path = format!(
        "/images/create?fromImage={}&tag={}",
        encode(&from),
        encode(&tag)
    );
    if let Some(p) = &args.platform {
        path.push_str(&format!("&platform={}", encode(p)));
    }
    let mut headers = Vec::new();
    if let Some(h) = registry_auth_header(&reference.domain) {
        headers.push(("x-registry-auth", h));
    }
    let tty = output::stdout_is_tty() && !args.quiet;
    let multi = MultiProgress::new();
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut last_status: HashMap<String, String> = HashMap::new();
    let mut error = None;
    let style =
        ProgressStyle::with_template("{prefix}: {msg:<16} [{bar:40}] {bytes}/{total_bytes}")
            .expect("static template")
            .progress_chars("=> ");
    client
        .stream_lines(Method::POST, &path, &headers, |m: JsonMessage| {
            if let Some(e) = m.error_detail.map(|d| d.message).or(m.error) {
                error = Some(e);
                return;
            }
            let status = m.status.unwrap_or_default();
            match m.id {
                Some(id) if tty && !status.starts_with("Pulling from") => {
                    let bar = bars.entry(id.clone()).or_insert_with(|| {
                        let b = multi.add(ProgressBar::new(0));
                        b.set_style(style.clone());
                        b.set_prefix(id.clone());
                        b
                    });
                    if let Some(d) = m.progress_detail {
                        if let (Some(c), Some(t)) = (d.current, d.total) {
                            bar.set_length(t);
                            bar.set_position(c);
                        }
                    }
                    bar.set_message(status.clone());
                    if status == "Pull complete" || status == "Already exists" {
                        bar.finish();
                    }
                }
                Some(id) => {
                    if !args.quiet
                        && last_status.get(&id) != Some(&status)
                        && status != "Downloading"
                    {
                        output::out(&format!("{id}: {status}"));
                        last_status.insert(id, status);
                    }
                }
                None => {
                    if !args.quiet {
                        // finished bars stay on screen as Docker's lines do; print below them
                        if !bars.is_empty() {
                            for b in bars.values() {
                                b.finish();
                            }
                            // the cursor sits at the end of the last bar
                            output::out("");
                            bars.clear();
                        }
                        output::out(&status);
                    }
                }
            }
        })
        .await?;
    Ok(error)
}

/// Runs `pull`.
pub async fn run(args: Args, g: &GlobalArgs) -> Result<u8> {
    let reference = berth_image::Reference::parse_normalized(&args.image)?;
    let last = args.image.rsplit('/').next().unwrap_or("");
    if args.all_tags && (reference.digest.is_some() || last.contains(':')) {
        bail!("tag can't be used with --all-tags/-a");
    }
    let client = g.client().await?;
    let refs = if args.all_tags {
        let tags = list_tags(&client, &reference).await?;
        tags.into_iter().map(|t| reference.with_tag(&t)).collect()
    } else {
        vec![reference]
    };
    for r in &refs {
        if let Some(e) = pull_one(&client, r, &args).await? {
            output::err(&format!("Error response from daemon: {e}"));
            return Ok(1);
        }
        output::out(&r.to_string());
    }
    Ok(0)
}

async fn list_tags(
    client: &berth_api::ApiClient,
    reference: &berth_image::Reference,
) -> Result<Vec<String>> {
    let path = format!(
        "/berth/images/tags?repository={}",
        encode(&reference.repository())
    );
    let mut headers = Vec::new();
    if let Some(h) = registry_auth_header(&reference.domain) {
        headers.push(("x-registry-auth", h));
    }
    let resp = client.request(Method::GET, &path, None, &headers).await?;
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    let tags: Vec<String> = serde_json::from_slice(&bytes)?;
    if tags.is_empty() {
        bail!("repository {} has no tags", reference.familiar_repository());
    }
    Ok(tags)
}
