//! `inspect`: containers, images and networks by name or id, as the docker CLI's generic
//! `inspect` finds them.

use anyhow::Result;
use berth_api::ApiClientError;
use hyper::Method;

use super::containers::encode;
use crate::context::GlobalArgs;
use crate::output;

/// Arguments of `inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Only inspect objects of the given type (container, image, network)
    #[arg(long = "type")]
    pub(crate) kind: Option<String>,
    /// Names or IDs
    #[arg(required = true)]
    names: Vec<String>,
}

/// Runs `inspect` / `container inspect`: containers first, then images, then networks.
pub async fn inspect(args: InspectArgs, g: &GlobalArgs) -> Result<u8> {
    if let Some(kind) = args.kind.as_deref() {
        if !matches!(kind, "container" | "image" | "network") {
            anyhow::bail!("{kind:?} is not a valid value for --type (container, image or network)");
        }
    }
    let client = g.client().await?;
    let mut found = Vec::new();
    let mut code = 0;
    for n in &args.names {
        let mut v = None;
        if matches!(args.kind.as_deref(), None | Some("container")) {
            match client
                .json::<serde_json::Value>(
                    Method::GET,
                    &format!("/containers/{}/json", encode(n)),
                    None,
                )
                .await
            {
                Ok(x) => v = Some(x),
                Err(ApiClientError::Api { status: 404, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if v.is_none() && matches!(args.kind.as_deref(), None | Some("image")) {
            match client
                .json::<serde_json::Value>(
                    Method::GET,
                    &format!("/images/{}/json", encode(n)),
                    None,
                )
                .await
            {
                Ok(x) => v = Some(x),
                Err(ApiClientError::Api { status: 404, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if v.is_none() && matches!(args.kind.as_deref(), None | Some("network")) {
            match client
                .json::<serde_json::Value>(Method::GET, &format!("/networks/{}", encode(n)), None)
                .await
            {
                Ok(x) => v = Some(x),
                Err(ApiClientError::Api { status: 404, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match v {
            Some(x) => found.push(x),
            None => {
                output::err(&format!("Error: No such object: {n}"));
                code = 1;
            }
        }
    }
    output::print_inspected(found, args.format.as_deref())?;
    Ok(code)
}
