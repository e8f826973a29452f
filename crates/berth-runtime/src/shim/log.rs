//! Docker's json-file log format, written by the shim, rotated by size.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Rotation settings (`--log-opt max-size=10m --log-opt max-file=3`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogConfig {
    /// Rotate when the file would exceed this many bytes (0: never).
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    pub max_files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: 10 * 1024 * 1024,
            max_files: 3,
        }
    }
}

/// Appends json-file lines and rotates.
pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    config: LogConfig,
    /// Unterminated output per stream, completed by a later read.
    partial: [Vec<u8>; 2],
}

/// RFC 3339 UTC time with nanoseconds, as Docker writes it.
pub fn timestamp_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_time(d.as_secs() as i64, d.subsec_nanos())
}

/// Formats Unix seconds + nanos as `2026-11-23T07:00:00.123456789Z`.
pub fn format_time(unix: i64, nanos: u32) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Unix seconds of an RFC 3339 UTC time (`2026-11-23T07:00:00.123Z`).
pub fn parse_time(s: &str) -> Option<f64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d, hh, mm, ss) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + (153 * mp + 2) / 5 + d - 1;
    let days = era * 146_097 + doe - 719_468;
    let frac = s
        .get(19..)
        .and_then(|f| f.strip_prefix('.'))
        .map(|f| f.trim_end_matches('Z'))
        .and_then(|f| format!("0.{f}").parse::<f64>().ok())
        .unwrap_or(0.0);
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + frac)
}

fn escape_json(out: &mut Vec<u8>, data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

impl JsonLog {
    /// Opens (appending) the log at `path`.
    pub fn open(path: &Path, config: LogConfig) -> io::Result<JsonLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
            size,
            config,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// The rotated file `n` (1 is the newest rotated).
    pub fn rotated(path: &Path, n: u32) -> PathBuf {
        PathBuf::from(format!("{}.{n}", path.display()))
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.config.max_files.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(Self::rotated(&self.path, keep - 1));
        for n in (1..keep - 1).rev() {
            let _ = std::fs::rename(
                Self::rotated(&self.path, n),
                Self::rotated(&self.path, n + 1),
            );
        }
        std::fs::rename(&self.path, Self::rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }

    fn write_line(&mut self, stream: &str, line: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(line.len() + 80);
        out.extend_from_slice(b"{\"log\":\"");
        escape_json(&mut out, line);
        out.extend_from_slice(b"\",\"stream\":\"");
        out.extend_from_slice(stream.as_bytes());
        out.extend_from_slice(b"\",\"time\":\"");
        out.extend_from_slice(timestamp_now().as_bytes());
        out.extend_from_slice(b"\"}\n");
        if self.config.max_size > 0
            && self.size + out.len() as u64 > self.config.max_size
            && self.size > 0
        {
            self.rotate()?;
        }
        self.file.write_all(&out)?;
        self.size += out.len() as u64;
        Ok(())
    }

    /// Logs output of `stream` (0 stdout, 1 stderr); whole lines are written, a trailing
    /// partial line waits for more (or for [`JsonLog::flush`]).
    pub fn write(&mut self, stream: usize, data: &[u8]) -> io::Result<()> {
        let name = if stream == 0 { "stdout" } else { "stderr" };
        let mut buf = std::mem::take(&mut self.partial[stream]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos + 1;
            self.write_line(name, &buf[start..end])?;
            start = end;
        }
        // very long lines are split, as Docker does at 16 KiB
        while buf.len() - start >= 16 * 1024 {
            let end = start + 16 * 1024;
            self.write_line(name, &buf[start..end])?;
            start = end;
        }
        self.partial[stream] = buf[start..].to_vec();
        Ok(())
    }

    /// Writes any partial lines (at exit).
    pub fn flush(&mut self) -> io::Result<()> {
        for stream in 0..2 {
            let rest = std::mem::take(&mut self.partial[stream]);
            if !rest.is_empty() {
                self.write_line(if stream == 0 { "stdout" } else { "stderr" }, &rest)?;
            }
        }
        Ok(())
    }
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct LogEntry {
    /// The text, newline included.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 time.
    pub time: String,
}

/// Reads every entry of a container's logs, oldest rotated file first.
pub fn read_all(path: &Path, max_files: u32) -> io::Result<Vec<LogEntry>> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = (1..max_files.max(1))
        .rev()
        .map(|n| JsonLog::rotated(path, n))
        .collect();
    files.push(path.to_path_buf());
    for f in files {
        let data = match std::fs::read(&f) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(e) = serde_json::from_slice::<LogEntry>(line) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Reads a container's logs and then follows them through open file descriptors, so that what
/// was written stays readable after the container's directory is removed (a `run --rm` whose
/// client reads the stream after the removal), and across rotations.
pub struct LogFollower {
    path: PathBuf,
    file: Option<(std::fs::File, u64)>,
    partial: Vec<u8>,
}

impl LogFollower {
    /// Opens the current log file (if any) first, then returns every entry so far (rotated
    /// files by path, oldest first, then the current one through the open descriptor).
    pub fn open(path: &Path, max_files: u32) -> io::Result<(LogFollower, Vec<LogEntry>)> {
        let mut follower = LogFollower {
            path: path.to_path_buf(),
            file: None,
            partial: Vec::new(),
        };
        follower.reopen();
        let mut out = Vec::new();
        for n in (1..max_files.max(1)).rev() {
            match std::fs::read(JsonLog::rotated(path, n)) {
                Ok(data) => parse_lines(&data, &mut out),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        out.extend(follower.read_new()?);
        Ok((follower, out))
    }

    fn reopen(&mut self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match std::fs::File::open(&self.path) {
            Ok(f) => {
                let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                self.file = Some((f, ino));
                self.partial.clear();
                true
            }
            Err(_) => false,
        }
    }

    /// The complete lines written since the last call. After a rotation, the rest of the old
    /// file comes first, then the new file from its start.
    pub fn read_new(&mut self) -> io::Result<Vec<LogEntry>> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        if self.file.is_none() && !self.reopen() {
            return Ok(out);
        }
        loop {
            let Some((file, ino)) = self.file.as_mut() else {
                return Ok(out);
            };
            let mut data = Vec::new();
            file.read_to_end(&mut data)?;
            self.partial.extend_from_slice(&data);
            if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
                let complete: Vec<u8> = self.partial.drain(..=end).collect();
                parse_lines(&complete, &mut out);
            }
            // rotated: the path names a new file; go on there
            let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
            match current {
                Some(i) if i != *ino => {
                    if !self.reopen() {
                        return Ok(out);
                    }
                }
                _ => return Ok(out),
            }
        }
    }
}

fn parse_lines(data: &[u8], out: &mut Vec<LogEntry>) {
    for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(e) = serde_json::from_slice::<LogEntry>(line) {
            out.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_reads_on_after_rotation_and_removal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let config = LogConfig {
            max_size: 200,
            max_files: 3,
        };
        let mut log = JsonLog::open(&path, config).expect("open");
        log.write(0, b"one\n").expect("write");
        log.flush().expect("flush");
        let (mut f, first) = LogFollower::open(&path, 3).expect("follow");
        assert_eq!(
            first.iter().map(|e| e.log.as_str()).collect::<Vec<_>>(),
            ["one\n"]
        );
        for i in 0..2 {
            log.write(
                0,
                format!("line {i} with some padding to rotate\n").as_bytes(),
            )
            .expect("write");
        }
        log.flush().expect("flush");
        let got: Vec<String> = f
            .read_new()
            .expect("read")
            .into_iter()
            .map(|e| e.log)
            .collect();
        assert_eq!(got.len(), 2, "every line once, across a rotation: {got:?}");
        assert_eq!(got[1], "line 1 with some padding to rotate\n");
        assert!(
            JsonLog::rotated(&path, 1).exists(),
            "the test rotated the log"
        );
        log.write(1, b"last\n").expect("write");
        log.flush().expect("flush");
        drop(log);
        // the container's directory goes away: what was written is still read
        std::fs::remove_dir_all(dir.path()).expect("rm");
        let got = f.read_new().expect("read");
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].log.as_str(), got[0].stream.as_str()),
            ("last\n", "stderr")
        );
        assert!(f.read_new().expect("read").is_empty());
    }

    #[test]
    fn writes_docker_json_lines_and_rotates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let mut log = JsonLog::open(
            &path,
            LogConfig {
                max_size: 300,
                max_files: 3,
            },
        )
        .expect("open");
        log.write(0, b"hello \"world\"\nsecond").expect("write");
        log.write(0, b" line\n").expect("write");
        log.write(1, b"oops\t\n").expect("write");
        let entries = read_all(&path, 3).expect("read");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].log, "hello \"world\"\n");
        assert_eq!(entries[1].log, "second line\n");
        assert_eq!(
            (entries[2].stream.as_str(), entries[2].log.as_str()),
            ("stderr", "oops\t\n")
        );
        assert!(
            entries[0].time.ends_with('Z') && entries[0].time.len() == 30,
            "{}",
            entries[0].time
        );
        for i in 0..50 {
            log.write(0, format!("line {i}\n").as_bytes())
                .expect("write");
        }
        let total: u64 = (0..3u32)
            .map(|n| {
                if n == 0 {
                    path.clone()
                } else {
                    JsonLog::rotated(&path, n)
                }
            })
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        assert!(total <= 3 * 300, "bounded by max-size x max-file: {total}");
        assert!(
            !JsonLog::rotated(&path, 3).exists(),
            "never more than max-file files"
        );
        let entries = read_all(&path, 3).expect("read");
        assert_eq!(entries.last().map(|e| e.log.as_str()), Some("line 49\n"));
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0, 5), "1970-01-01T00:00:00.000000005Z");
        assert_eq!(
            format_time(1_700_000_000, 0),
            "2023-11-14T22:13:20.000000000Z"
        );
    }
}
