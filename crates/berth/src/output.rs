//! Everything the CLI prints goes through here (clippy's print lints are allowed only here).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

use berth_api::ApiClientError;

use crate::context::GlobalArgs;

/// Installs the tracing subscriber (stderr).
pub fn init_logging(g: &GlobalArgs, daemon: bool) {
    let default = if g.debug {
        tracing::Level::DEBUG
    } else if daemon {
        tracing::Level::INFO
    } else {
        tracing::Level::WARN
    };
    let filter = g
        .log_level
        .clone()
        .or_else(|| std::env::var(crate::EnvVars::BERTH_LOG).ok());
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match filter {
        Some(f) => fmt
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .try_init(),
        // a plain level needs no directive parser: a client command starts faster
        None => fmt.with_max_level(default).try_init(),
    };
}

/// A line to stdout.
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
}

/// A line to stderr.
pub fn err(s: &str) {
    eprintln!("{s}");
}

/// An error line to stderr.
pub fn error(s: &str) {
    eprintln!("Error: {s}");
}

/// Prints a failed command's error chain as Docker does.
pub fn report(e: &anyhow::Error) {
    if let Some(ApiClientError::Api { message, .. }) = e.downcast_ref::<ApiClientError>() {
        eprintln!("Error response from daemon: {message}");
        return;
    }
    let mut s = e.to_string();
    for c in e.chain().skip(1) {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
    }
    eprintln!("Error: {s}");
}

/// Whether stdout is a terminal.
pub fn stdout_is_tty() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
}

/// Text to stdout as is (no newline added), flushed: for screens redrawn in place.
pub fn out_raw(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// Docker's human sizes (`4.26MB`, 3 significant digits, SI units).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{v:.4}");
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{:.*}", digits, s.parse::<f64>().unwrap_or(v));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// Docker's "2 weeks ago".
pub fn human_since(unix: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if unix <= 0 {
        return "N/A".into();
    }
    let s = (now - unix).max(0) as f64;
    let h = s / 3600.0;
    let text = if s < 1.0 {
        "Less than a second".to_string()
    } else if s < 2.0 {
        "1 second".to_string()
    } else if s < 60.0 {
        format!("{} seconds", s as i64)
    } else if s / 60.0 < 2.0 {
        "About a minute".to_string()
    } else if s / 60.0 < 60.0 {
        format!("{} minutes", (s / 60.0) as i64)
    } else if h.round() == 1.0 {
        "About an hour".to_string()
    } else if h < 48.0 {
        format!("{} hours", h.round() as i64)
    } else if h < 24.0 * 7.0 * 2.0 {
        format!("{} days", (h / 24.0) as i64)
    } else if h < 24.0 * 30.0 * 2.0 {
        format!("{} weeks", (h / 24.0 / 7.0) as i64)
    } else if h < 24.0 * 365.0 * 2.0 {
        format!("{} months", (h / 24.0 / 30.0) as i64)
    } else {
        format!("{} years", (h / 24.0 / 365.0) as i64)
    };
    format!("{text} ago")
}

/// Prints rows as left-aligned columns separated by 3 spaces, like Docker's tabwriter.
pub fn table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out(line.trim_end());
    }
}

/// Pretty JSON with Docker's 4-space indent.
pub fn json_pretty(v: &serde_json::Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("JSON values serialize");
    String::from_utf8(buf).expect("JSON is UTF-8")
}

/// `inspect`'s output: each object through the template, or all as one pretty JSON array.
pub fn print_inspected(found: Vec<serde_json::Value>, format: Option<&str>) -> anyhow::Result<()> {
    match format {
        Some(tpl) => {
            for v in &found {
                out(&render_template(tpl, v)?);
            }
        }
        None => out(&json_pretty(&serde_json::Value::Array(found))),
    }
    Ok(())
}

/// Fetches each of `names` from `path_of(name)`; a 404 prints `Error: No such KIND: NAME`
/// and makes the exit code 1, as the docker CLI's inspect commands do.
pub async fn fetch_each(
    client: &berth_api::ApiClient,
    names: &[String],
    kind: &str,
    path_of: impl Fn(&str) -> String,
) -> anyhow::Result<(Vec<serde_json::Value>, u8)> {
    let mut found = Vec::new();
    let mut code = 0;
    for name in names {
        match client
            .json::<serde_json::Value>(hyper::Method::GET, &path_of(name), None)
            .await
        {
            Ok(v) => found.push(v),
            Err(berth_api::ApiClientError::Api { status: 404, .. }) => {
                err(&format!("Error: No such {kind}: {name}"));
                code = 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((found, code))
}

/// Renders a docker-style `--format` template over a JSON value (see [`crate::template`]).
pub fn render_template(tpl: &str, v: &serde_json::Value) -> anyhow::Result<String> {
    crate::template::render(tpl, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_234), "4.26MB");
        assert_eq!(human_size(150_000_000), "150MB");
        assert_eq!(human_size(12_345), "12.3kB");
    }

    #[test]
    fn templates() {
        let v = serde_json::json!({"Id": "sha256:x", "Config": {"Cmd": ["sh", "-c"]}, "N": 3});
        assert_eq!(render_template("{{.Id}}", &v).expect("ok"), "sha256:x");
        assert_eq!(
            render_template("{{.Config.Cmd}}", &v).expect("ok"),
            "[sh -c]"
        );
        assert_eq!(
            render_template("{{json .Config.Cmd}}", &v).expect("ok"),
            r#"["sh","-c"]"#
        );
        assert_eq!(render_template("n={{.N}}\\t!", &v).expect("ok"), "n=3\t!");
        assert_eq!(
            render_template("{{.Missing}}", &v).expect("ok"),
            "<no value>"
        );
        assert!(render_template("{{range .}}", &v).is_err());
    }
}
