//! `network create|ls|inspect|rm|connect|disconnect|prune`: user-defined networks.

use std::io::BufRead as _;

use anyhow::{bail, Result};
use hyper::Method;
use serde_json::Value;

use super::containers::encode;
use crate::context::GlobalArgs;
use crate::output;

/// `berth network ...`
#[derive(clap::Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network (a bridge with its own subnet and DNS server)
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Remove all networks no running container uses
    Prune(PruneArgs),
}

/// Arguments of `network create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the network (bridge, the only one)
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format (e.g. 10.99.0.0/24; default: a free /20 of
    /// 10.214.0.0-10.221.255.255); once more for the IPv6 subnet with --ipv6 (e.g. fd00:1::/64;
    /// default: a unique local /64)
    #[arg(long)]
    subnet: Vec<String>,
    /// IPv4 gateway of the subnet (default: its first address)
    #[arg(long)]
    gateway: Option<String>,
    /// Allocate container addresses from a sub-range (not supported: refused)
    #[arg(long = "ip-range")]
    ip_range: Option<String>,
    /// Restrict external access to the network: no route out, no traffic in
    #[arg(long)]
    internal: bool,
    /// Enable manual container attachment (every berth network is attachable)
    #[arg(long)]
    attachable: bool,
    /// Enable IPv6: containers also get an address of the IPv6 subnet (at their IPv4
    /// address's offset), AAAA answers and an IPv6 default route
    #[arg(long)]
    ipv6: bool,
    /// Set metadata on a network (KEY=VALUE)
    #[arg(long = "label")]
    label: Vec<String>,
    /// Set driver specific options (com.docker.network.bridge.name=NAME names the bridge)
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// Network name
    name: String,
}

/// Arguments of `network ls`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Provide filter values (e.g. "driver=bridge", "name=web", "label=a=b", "type=custom",
    /// "dangling=true")
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go template ({{.ID}} {{.Name}} {{.Driver}} {{.Scope}}), or
    /// json
    #[arg(long)]
    format: Option<String>,
}

/// Arguments of `network inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    format: Option<String>,
    /// Networks (names or ids)
    #[arg(required = true)]
    networks: Vec<String>,
}

/// Arguments of `network rm`.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Do not error if a network does not exist
    #[arg(short, long)]
    force: bool,
    /// Networks (names or ids)
    #[arg(required = true)]
    networks: Vec<String>,
}

/// Arguments of `network connect`.
#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped aliases for the container
    #[arg(long = "alias")]
    alias: Vec<String>,
    /// IPv4 address (e.g. 10.214.0.10)
    #[arg(long)]
    ip: Option<String>,
    /// Network
    network: String,
    /// Container
    container: String,
}

/// Arguments of `network disconnect`.
#[derive(clap::Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    /// Network
    network: String,
    /// Container
    container: String,
}

/// Arguments of `network prune`.
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=24h", "label=a=b", "label!=keep")
    #[arg(long)]
    filter: Vec<String>,
}

/// Runs `network ...`.
pub async fn dispatch(c: NetworkCommand, g: &GlobalArgs) -> Result<u8> {
    match c {
        NetworkCommand::Create(a) => create(a, g).await,
        NetworkCommand::Ls(a) => list(a, g).await,
        NetworkCommand::Inspect(a) => inspect(a, g).await,
        NetworkCommand::Rm(a) => rm(a, g).await,
        NetworkCommand::Connect(a) => connect(a, g).await,
        NetworkCommand::Disconnect(a) => disconnect(a, g).await,
        NetworkCommand::Prune(a) => prune(a, g).await,
    }
}

fn key_values(items: &[String], what: &str) -> Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    for item in items {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        if k.is_empty() {
            bail!("invalid {what} {item:?}: expected KEY=VALUE");
        }
        out.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(out)
}

/// Docker's `filters` JSON from `-f key=value` flags.
fn filters_json(items: &[String]) -> Result<String> {
    let mut map: serde_json::Map<String, Value> = serde_json::Map::new();
    for f in items {
        let Some((k, v)) = f.split_once('=') else {
            bail!("bad format of filter {f:?}: expected name=value");
        };
        let entry = map
            .entry(k.to_string())
            .or_insert_with(|| Value::Array(vec![]));
        if let Some(list) = entry.as_array_mut() {
            list.push(Value::String(v.to_string()));
        }
    }
    Ok(Value::Object(map).to_string())
}

async fn create(a: CreateArgs, g: &GlobalArgs) -> Result<u8> {
    // one IPAM entry per subnet; the gateway and range go with the IPv4 one
    let mut configs: Vec<Value> = Vec::new();
    let mut v4 = serde_json::Map::new();
    for s in &a.subnet {
        if s.contains(':') {
            configs.push(serde_json::json!({ "Subnet": s }));
        } else if v4.contains_key("Subnet") {
            bail!("one IPv4 --subnet per network");
        } else {
            v4.insert("Subnet".into(), Value::String(s.clone()));
        }
    }
    if let Some(gw) = &a.gateway {
        v4.insert("Gateway".into(), Value::String(gw.clone()));
    }
    if let Some(r) = &a.ip_range {
        v4.insert("IPRange".into(), Value::String(r.clone()));
    }
    if !v4.is_empty() {
        configs.insert(0, Value::Object(v4));
    }
    let body = serde_json::json!({
        "Name": a.name,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "EnableIPv6": a.ipv6,
        "IPAM": {
            "Driver": "default",
            "Config": configs,
        },
        "Labels": key_values(&a.label, "label")?,
        "Options": key_values(&a.opt, "option")?,
    });
    let client = g.client().await?;
    let v: Value = client
        .json(
            Method::POST,
            "/networks/create",
            Some(body.to_string().into_bytes()),
        )
        .await?;
    output::out(v["Id"].as_str().unwrap_or_default());
    Ok(0)
}

async fn list(a: ListArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let query = if a.filter.is_empty() {
        String::new()
    } else {
        format!("?filters={}", encode(&filters_json(&a.filter)?))
    };
    let mut nets: Vec<Value> = client
        .json(Method::GET, &format!("/networks{query}"), None)
        .await?;
    nets.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let id = |v: &Value| {
        let id = v["Id"].as_str().unwrap_or_default().to_string();
        if a.no_trunc {
            id
        } else {
            id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for v in &nets {
            output::out(&id(v));
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") => {
            for v in &nets {
                output::out(&summary(v, &id(v)).to_string());
            }
        }
        Some(tpl) if tpl != "table" => {
            for v in &nets {
                output::out(&output::render_template(tpl, &summary(v, &id(v)))?);
            }
        }
        _ => {
            let mut rows = vec![vec![
                "NETWORK ID".to_string(),
                "NAME".into(),
                "DRIVER".into(),
                "SCOPE".into(),
            ]];
            for v in &nets {
                rows.push(vec![
                    id(v),
                    v["Name"].as_str().unwrap_or_default().into(),
                    v["Driver"].as_str().unwrap_or_default().into(),
                    v["Scope"].as_str().unwrap_or_default().into(),
                ]);
            }
            output::table(&rows);
        }
    }
    Ok(0)
}

/// The fields `network ls --format` offers, as the docker CLI names them.
fn summary(v: &Value, id: &str) -> Value {
    let labels = v["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    serde_json::json!({
        "ID": id,
        "Name": v["Name"],
        "Driver": v["Driver"],
        "Scope": v["Scope"],
        "IPv6": v["EnableIPv6"],
        "Internal": v["Internal"],
        "Labels": labels,
        "CreatedAt": v["Created"],
    })
}

async fn inspect(a: InspectArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let (found, code) = output::fetch_each(&client, &a.networks, "network", |name| {
        format!("/networks/{}", encode(name))
    })
    .await?;
    output::print_inspected(found, a.format.as_deref())?;
    Ok(code)
}

async fn rm(a: RmArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let mut code = 0;
    for name in &a.networks {
        match client
            .call(Method::DELETE, &format!("/networks/{}", encode(name)), None)
            .await
        {
            Ok(_) => output::out(name),
            Err(berth_api::ApiClientError::Api { status: 404, .. }) if a.force => {}
            Err(berth_api::ApiClientError::Api { message, .. }) => {
                output::err(&format!("Error response from daemon: {message}"));
                code = 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(code)
}

async fn connect(a: ConnectArgs, g: &GlobalArgs) -> Result<u8> {
    let mut endpoint = serde_json::json!({ "Aliases": a.alias });
    if let Some(ip) = &a.ip {
        endpoint["IPAMConfig"] = serde_json::json!({ "IPv4Address": ip });
    }
    let body = serde_json::json!({ "Container": a.container, "EndpointConfig": endpoint });
    let client = g.client().await?;
    client
        .call(
            Method::POST,
            &format!("/networks/{}/connect", encode(&a.network)),
            Some(body.to_string().into_bytes()),
        )
        .await?;
    Ok(0)
}

async fn disconnect(a: DisconnectArgs, g: &GlobalArgs) -> Result<u8> {
    let body = serde_json::json!({ "Container": a.container, "Force": a.force });
    let client = g.client().await?;
    client
        .call(
            Method::POST,
            &format!("/networks/{}/disconnect", encode(&a.network)),
            Some(body.to_string().into_bytes()),
        )
        .await?;
    Ok(0)
}

async fn prune(a: PruneArgs, g: &GlobalArgs) -> Result<u8> {
    if !a.force {
        output::out_raw("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let query = if a.filter.is_empty() {
        String::new()
    } else {
        format!("?filters={}", encode(&filters_json(&a.filter)?))
    };
    let client = g.client().await?;
    let v: Value = client
        .json(Method::POST, &format!("/networks/prune{query}"), None)
        .await?;
    let deleted: Vec<&str> = v["NetworksDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .collect();
    if !deleted.is_empty() {
        output::out("Deleted Networks:");
        for n in deleted {
            output::out(n);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_labels() {
        assert_eq!(
            filters_json(&["name=a".into(), "name=b".into(), "type=custom".into()]).expect("ok"),
            r#"{"name":["a","b"],"type":["custom"]}"#
        );
        assert!(filters_json(&["name".into()]).is_err());
        let kv = key_values(&["a=b".into(), "c".into()], "label").expect("ok");
        assert_eq!(kv["a"], "b");
        assert_eq!(kv["c"], "");
        assert!(key_values(&["=x".into()], "label").is_err());
    }
}
