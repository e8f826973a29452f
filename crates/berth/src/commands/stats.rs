//! `stats`: a live table of containers' CPU, memory, network, block I/O and process counts,
//! computed from `GET /containers/{id}/stats` as the docker CLI computes it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use berth_api::containers::ContainerSummary;
use berth_api::stats::StatsResponse;
use berth_api::{ApiClient, ApiClientError};
use hyper::Method;

use crate::context::GlobalArgs;
use crate::output;

/// Arguments of `stats`.
#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Format output: 'table', 'table TEMPLATE', 'json' or a Go template such as
    /// '{{.Name}} {{.CPUPerc}}' (fields: Container, ID, Name, CPUPerc, MemUsage, MemPerc,
    /// NetIO, BlockIO, PIDs)
    #[arg(long)]
    format: Option<String>,
    /// Containers (default: every running container, or every container with -a)
    containers: Vec<String>,
}

/// Go's `%.<prec>g` for the non-negative magnitudes sizes have.
fn go_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i64;
    let decimals = (prec as i64 - 1 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// go-units' `CustomSize`: `format` digits, scaled by `base` through `units`.
fn custom_size(size: f64, prec: usize, base: f64, units: &[&str]) -> String {
    let mut v = size;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    format!("{}{}", go_g(v, prec), units[i])
}

/// go-units' `BytesSize` (`12.5MiB`): memory columns.
pub fn bytes_size(n: u64) -> String {
    custom_size(
        n as f64,
        4,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
    )
}

/// go-units' `HumanSizeWithPrecision(n, 3)` (`1.05kB`): network and block I/O columns.
pub fn decimal_size(n: u64) -> String {
    custom_size(
        n as f64,
        3,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB"],
    )
}

/// One row's fields, named as docker's stats formatter names them.
fn row(container: &str, s: &StatsResponse, no_trunc: bool) -> serde_json::Value {
    let id = if no_trunc || s.id.len() <= 12 {
        s.id.clone()
    } else {
        s.id[..12].to_owned()
    };
    let (rx, tx) = s.network_io();
    let (read, write) = s.block_io();
    serde_json::json!({
        "Container": container,
        "ID": id,
        "Name": s.name.trim_start_matches('/'),
        "CPUPerc": format!("{:.2}%", s.cpu_percent()),
        "MemUsage": format!("{} / {}", bytes_size(s.memory_usage()), bytes_size(s.memory_stats.limit.unwrap_or(0))),
        "MemPerc": format!("{:.2}%", s.memory_percent()),
        "NetIO": format!("{} / {}", decimal_size(rx), decimal_size(tx)),
        "BlockIO": format!("{} / {}", decimal_size(read), decimal_size(write)),
        "PIDs": s.pids_stats.current.unwrap_or(0).to_string(),
    })
}

const HEADERS: [(&str, &str); 9] = [
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// Left-aligned columns as Docker's tabwriter sets them (min width 10, padding 3).
fn columns(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                // Docker's tabwriter: padding 3, cells at least 10 wide
                line.push_str(&format!("{c:<w$}", w = (widths[i] + 3).max(10)));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Renders every row in the chosen format.
fn render(format: Option<&str>, rows: &[serde_json::Value]) -> Result<String> {
    let mut out = String::new();
    match format {
        Some("json") => {
            for r in rows {
                out.push_str(&r.to_string());
                out.push('\n');
            }
        }
        Some(tpl) if tpl != "table" => {
            let (header, tpl) = match tpl.strip_prefix("table") {
                Some(t) => (true, t.trim_start()),
                None => (false, tpl),
            };
            if header {
                let names: serde_json::Map<String, serde_json::Value> = HEADERS
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                    .collect();
                let mut table = vec![split_cells(&output::render_template(
                    tpl,
                    &serde_json::Value::Object(names),
                )?)];
                for r in rows {
                    table.push(split_cells(&output::render_template(tpl, r)?));
                }
                return Ok(columns(&table));
            }
            for r in rows {
                out.push_str(&output::render_template(tpl, r)?);
                out.push('\n');
            }
        }
        _ => {
            let keys = [
                "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
            ];
            let mut table = vec![keys
                .iter()
                .map(|k| {
                    HEADERS
                        .iter()
                        .find(|(n, _)| n == k)
                        .map_or("", |(_, h)| *h)
                        .to_owned()
                })
                .collect::<Vec<_>>()];
            for r in rows {
                table.push(
                    keys.iter()
                        .map(|k| r[*k].as_str().unwrap_or("").to_owned())
                        .collect(),
                );
            }
            out = columns(&table);
        }
    }
    Ok(out)
}

fn split_cells(line: &str) -> Vec<String> {
    line.split('\t').map(str::to_owned).collect()
}

async fn targets(client: &ApiClient, all: bool) -> Result<Vec<String>> {
    let list: Vec<ContainerSummary> = client
        .json(
            Method::GET,
            &format!("/containers/json?all={}", all as u8),
            None,
        )
        .await?;
    Ok(list.into_iter().map(|c| c.id).collect())
}

/// Runs `stats`.
pub async fn run(args: StatsArgs, g: &GlobalArgs) -> Result<u8> {
    let client = g.client().await?;
    let named = !args.containers.is_empty();
    let mut names = if named {
        args.containers.clone()
    } else {
        targets(&client, args.all).await?
    };
    let fmt = args.format.as_deref();
    if args.no_stream {
        let fetches = names.iter().map(|n| {
            let client = client.clone();
            let n = n.clone();
            async move {
                let s: Result<StatsResponse, ApiClientError> = client
                    .json(
                        Method::GET,
                        &format!(
                            "/containers/{}/stats?stream=false",
                            crate::commands::containers::encode(&n)
                        ),
                        None,
                    )
                    .await;
                (n, s)
            }
        });
        let mut rows = Vec::new();
        let mut code = 0;
        for (n, s) in futures_util::future::join_all(fetches).await {
            match s {
                Ok(s) => rows.push(row(&n, &s, args.no_trunc)),
                Err(ApiClientError::Api { message, .. }) => {
                    output::err(&format!("Error response from daemon: {message}"));
                    code = 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if code == 0 {
            output::out_raw(&render(fmt, &rows)?);
        }
        return Ok(code);
    }
    // streaming: one reader per container keeps its latest sample; the screen is redrawn
    // every second (cleared on a terminal, appended when piped)
    let latest: Arc<Mutex<BTreeMap<String, StatsResponse>>> = Arc::default();
    let mut readers: BTreeMap<String, tokio::task::JoinHandle<()>> = BTreeMap::new();
    let tty = output::stdout_is_tty();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut first = true;
    loop {
        for n in &names {
            if readers.contains_key(n) {
                continue;
            }
            let client = client.clone();
            let latest = latest.clone();
            let errors = errors.clone();
            let key = n.clone();
            readers.insert(
                n.clone(),
                tokio::spawn(async move {
                    let path = format!(
                        "/containers/{}/stats?stream=true",
                        crate::commands::containers::encode(&key)
                    );
                    let r = client
                        .stream_lines(Method::GET, &path, &[], |s: StatsResponse| {
                            latest
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(key.clone(), s);
                        })
                        .await;
                    if let Err(ApiClientError::Api { message, .. }) = r {
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(message);
                    }
                    latest
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                }),
            );
        }
        // the first screen as soon as the first samples are in, then one a second
        let pause = if first && !readers.is_empty() {
            300
        } else {
            1000
        };
        first = false;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if let Some(message) = errors.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            output::err(&format!("Error response from daemon: {message}"));
            return Ok(1);
        }
        let rows: Vec<serde_json::Value> = {
            let latest = latest.lock().unwrap_or_else(|p| p.into_inner());
            names
                .iter()
                .filter_map(|n| latest.get(n).map(|s| row(n, s, args.no_trunc)))
                .collect()
        };
        let text = render(fmt, &rows)?;
        if tty {
            output::out_raw(&format!("\x1b[2J\x1b[H{text}"));
        } else {
            output::out_raw(&format!("{text}\n"));
        }
        if !named {
            // containers come and go
            names = targets(&client, args.all).await?;
            readers.retain(|n, h| {
                let keep = names.contains(n) && !h.is_finished();
                if !keep {
                    h.abort();
                }
                keep
            });
        } else if readers.values().all(|h| h.is_finished()) {
            return Ok(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units_prints_them() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(64 << 20), "64MiB");
        assert_eq!(bytes_size(1_572_864), "1.5MiB");
        assert_eq!(bytes_size(1_234_567), "1.177MiB");
        assert_eq!(bytes_size(1023), "1023B");
        assert_eq!(bytes_size(8 << 30), "8GiB");
        assert_eq!(decimal_size(0), "0B");
        assert_eq!(decimal_size(1_050), "1.05kB");
        assert_eq!(decimal_size(12_345_678), "12.3MB");
        assert_eq!(decimal_size(999), "999B");
    }

    #[test]
    fn table_json_and_templates() {
        let mut s = StatsResponse {
            name: "/web".into(),
            id: "0123456789abcdef0123".into(),
            ..StatsResponse::default()
        };
        s.memory_stats.usage = Some(1 << 20);
        s.memory_stats.limit = Some(64 << 20);
        s.pids_stats.current = Some(2);
        let rows = vec![row("web", &s, false)];
        let table = render(None, &rows).expect("renders");
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS"), "{table}");
        assert!(lines[1].starts_with("0123456789ab   web       0.00%     1MiB / 64MiB        1.56%     0B / 0B   0B / 0B     2"), "{table}");
        let json = render(Some("json"), &rows).expect("renders");
        let v: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
        assert_eq!(v["MemPerc"], "1.56%");
        assert_eq!(v["Container"], "web");
        assert_eq!(
            render(Some("{{.Name}}: {{.MemUsage}}"), &rows).expect("renders"),
            "web: 1MiB / 64MiB\n"
        );
        let t = render(Some("table {{.Name}}\t{{.PIDs}}"), &rows).expect("renders");
        assert_eq!(t, "NAME      PIDS\nweb       2\n");
    }
}
