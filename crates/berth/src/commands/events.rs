//! `events`: Docker's event stream (`GET /events`), printed as the docker CLI prints it.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use berth_api::events::Event;
use berth_api::ApiClientError;
use hyper::Method;

use crate::context::GlobalArgs;
use crate::output;

/// Arguments of `events`.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Show all events created since timestamp (Unix time, RFC 3339 date, or a duration
    /// before now such as 10m)
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp (same forms as --since)
    #[arg(long)]
    until: Option<String>,
    /// Filter output based on conditions provided (type=, event=, container=, image=,
    /// label=; repeat for more)
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output: 'json' or a Go template such as '{{.Type}} {{.Action}} {{.Actor.ID}}'
    #[arg(long)]
    format: Option<String>,
}

/// Go's `time.ParseDuration` for what people type: `90s`, `10m`, `1h30m`, `1.5h`, `250ms`.
fn parse_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// The docker CLI's `GetTimestamp`: a Unix time passes as is; an RFC 3339 time or a duration
/// (before `now`) becomes `SECONDS.NANOS`.
pub fn timestamp(value: &str, now: f64) -> Result<String> {
    let v = value.trim();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if numeric(v) && v.matches('.').count() <= 1 {
        return Ok(v.to_owned());
    }
    let unix = if let Some(d) = parse_duration(v) {
        now - d
    } else if v.contains('-') {
        // a date, a date and time, with or without zone (UTC assumed)
        let mut full = v.to_owned();
        if full.len() == 10 {
            full.push_str("T00:00:00");
        }
        berth_runtime::shim::log::parse_time(&full)
            .filter(|_| full.get(10..11) == Some("T"))
            .with_context(|| format!("invalid timestamp {value:?}: use Unix seconds, an RFC 3339 date such as 2026-11-23T10:00:00Z, or a duration such as 10m"))?
    } else {
        bail!("invalid timestamp {value:?}: use Unix seconds, an RFC 3339 date such as 2026-11-23T10:00:00Z, or a duration such as 10m")
    };
    let secs = unix.floor();
    let nanos = ((unix - secs) * 1e9).round() as u64;
    Ok(format!("{}.{:09}", secs as i64, nanos.min(999_999_999)))
}

/// Runs `events`.
pub async fn run(args: EventsArgs, g: &GlobalArgs) -> Result<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut query = Vec::new();
    for (name, v) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = v {
            query.push(format!(
                "{name}={}",
                crate::commands::containers::encode(&timestamp(v, now)?)
            ));
        }
    }
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
        filters.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    if !filters.is_empty() {
        query.push(format!(
            "filters={}",
            crate::commands::containers::encode(&serde_json::to_string(&filters)?)
        ));
    }
    let path = if query.is_empty() {
        "/events".to_owned()
    } else {
        format!("/events?{}", query.join("&"))
    };
    let client = g.client().await?;
    let mut failure = None;
    let format = args.format.clone();
    let result = client
        .stream_lines(Method::GET, &path, &[], |e: Event| {
            if failure.is_some() {
                return;
            }
            match format.as_deref() {
                None | Some("") => output::out(&e.line()),
                Some("json") | Some("{{json .}}") => {
                    output::out(&serde_json::to_string(&e).unwrap_or_default())
                }
                Some(tpl) => {
                    let v = serde_json::to_value(&e).unwrap_or_default();
                    match output::render_template(tpl, &v) {
                        Ok(s) => output::out(&s),
                        Err(err) => failure = Some(err),
                    }
                }
            }
        })
        .await;
    if let Some(e) = failure {
        return Err(e);
    }
    match result {
        Ok(()) => Ok(0),
        Err(ApiClientError::Api { message, .. }) => {
            output::err(&format!("Error response from daemon: {message}"));
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_the_docker_cli() {
        let now = 1_795_428_000.0;
        assert_eq!(
            timestamp("1795427000", now).ok().as_deref(),
            Some("1795427000")
        );
        assert_eq!(
            timestamp("1795427000.5", now).ok().as_deref(),
            Some("1795427000.5")
        );
        assert_eq!(
            timestamp("10m", now).ok().as_deref(),
            Some("1795427400.000000000")
        );
        assert_eq!(
            timestamp("1h30m", now).ok().as_deref(),
            Some("1795422600.000000000")
        );
        assert_eq!(
            timestamp("2026-11-23T10:00:00Z", now).ok().as_deref(),
            Some("1795428000.000000000")
        );
        assert_eq!(
            timestamp("2026-11-23", now).ok().as_deref(),
            Some("1795392000.000000000")
        );
        assert!(timestamp("yesterday", now).is_err());
        assert!(timestamp("10x", now).is_err());
    }
}
