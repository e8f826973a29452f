//! `pause`, `unpause`, `rename` and `top`: the container commands that act on a running
//! container without starting or stopping it.

use anyhow::Result;
use hyper::Method;

use super::containers::{each, encode, ContainersArg};
use crate::context::GlobalArgs;
use crate::output;

/// Runs `pause`.
pub async fn pause(args: ContainersArg, g: &GlobalArgs) -> Result<u8> {
    each(g, &args.containers, |c| {
        (Method::POST, format!("/containers/{}/pause", encode(&c)))
    })
    .await
}

/// Runs `unpause`.
pub async fn unpause(args: ContainersArg, g: &GlobalArgs) -> Result<u8> {
    each(g, &args.containers, |c| {
        (Method::POST, format!("/containers/{}/unpause", encode(&c)))
    })
    .await
}

/// Arguments of `rename`.
#[derive(clap::Args, Debug)]
pub struct RenameArgs {
    /// Container
    container: String,
    /// New name
    new_name: String,
}

/// Runs `rename`.
pub async fn rename(args: RenameArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    client
        .call(
            Method::POST,
            &format!(
                "/containers/{}/rename?name={}",
                encode(&args.container),
                encode(&args.new_name)
            ),
            None,
        )
        .await?;
    Ok(0)
}

/// Arguments of `top`.
#[derive(clap::Args, Debug)]
pub struct TopArgs {
    /// Container
    container: String,
}

/// Runs `top`.
pub async fn top(args: TopArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let v: serde_json::Value = client
        .json(
            Method::GET,
            &format!("/containers/{}/top", encode(&args.container)),
            None,
        )
        .await?;
    let mut rows = vec![v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t.as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()];
    for p in v["Processes"].as_array().into_iter().flatten() {
        rows.push(
            p.as_array()
                .into_iter()
                .flatten()
                .map(|t| t.as_str().unwrap_or("").to_string())
                .collect(),
        );
    }
    output::table(&rows);
    Ok(0)
}
