//! runc's command-line grammar: `--flag value`, `--flag=value`, `-flag` (Go's single dash),
//! short letters, flags before or after the positional arguments, `--` ends the flags.

use std::collections::HashMap;

/// One flag a command accepts.
pub struct Flag {
    /// Long name (without dashes).
    pub long: &'static str,
    /// Short letter.
    pub short: Option<char>,
    /// Whether it takes a value.
    pub value: bool,
}

/// A flag table entry taking a value.
pub const fn v(long: &'static str, short: Option<char>) -> Flag {
    Flag {
        long,
        short,
        value: true,
    }
}

/// A boolean flag.
pub const fn b(long: &'static str, short: Option<char>) -> Flag {
    Flag {
        long,
        short,
        value: false,
    }
}

/// Parsed flags and positional arguments.
#[derive(Debug, Default)]
pub struct Parsed {
    flags: HashMap<&'static str, Vec<String>>,
    /// Positional arguments in order.
    pub args: Vec<String>,
}

impl Parsed {
    /// The last value of a flag.
    pub fn get(&self, long: &str) -> Option<&str> {
        self.flags.get(long)?.last().map(String::as_str)
    }
    /// Every value of a repeated flag.
    pub fn all(&self, long: &str) -> &[String] {
        self.flags.get(long).map(Vec::as_slice).unwrap_or(&[])
    }
    /// Whether a boolean flag is set (`--flag`, `--flag=true`).
    pub fn has(&self, long: &str) -> bool {
        self.get(long).is_some_and(|v| v != "false")
    }
}

/// Parses `args` against `table`. With `stop_after` = Some(n), everything after the n-th
/// positional argument is positional too (exec's command and its own flags).
pub fn parse(args: &[String], table: &[Flag], stop_after: Option<usize>) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if stop_after.is_some_and(|n| out.args.len() >= n) {
            out.args.push(a.clone());
            continue;
        }
        if a == "--" {
            out.args.extend(args[i..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a == "-" {
            out.args.push(a.clone());
            continue;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let flag = table
            .iter()
            .find(|f| f.long == name || (name.len() == 1 && f.short == name.chars().next()))
            .ok_or_else(|| format!("flag provided but not defined: -{name}"))?;
        let value = if flag.value {
            match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| format!("flag needs an argument: -{name}"))?;
                    i += 1;
                    v.clone()
                }
            }
        } else {
            inline.unwrap_or_else(|| "true".into())
        };
        out.flags.entry(flag.long).or_default().push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_before_and_after_the_id() {
        let t = [
            v("bundle", Some('b')),
            v("pid-file", None),
            b("no-pivot", None),
        ];
        let p = parse(
            &s(&["ctr", "--bundle", "/b", "-pid-file=/p", "--no-pivot"]),
            &t,
            None,
        )
        .expect("parses");
        assert_eq!(p.args, ["ctr"]);
        assert_eq!(p.get("bundle"), Some("/b"));
        assert_eq!(p.get("pid-file"), Some("/p"));
        assert!(p.has("no-pivot"));
        let p = parse(&s(&["-b", "/x", "ctr"]), &t, None).expect("parses");
        assert_eq!(
            (p.get("bundle"), p.args.as_slice()),
            (Some("/x"), &s(&["ctr"])[..])
        );
        assert!(parse(&s(&["--nope", "ctr"]), &t, None).is_err());
        assert!(parse(&s(&["ctr", "--bundle"]), &t, None).is_err());
    }

    #[test]
    fn exec_command_keeps_its_own_flags() {
        let t = [b("tty", Some('t')), v("env", Some('e'))];
        let p = parse(
            &s(&["-e", "A=1", "-e", "B=2", "ctr", "ls", "-t", "/"]),
            &t,
            Some(2),
        )
        .expect("parses");
        assert_eq!(p.all("env"), ["A=1", "B=2"]);
        assert!(!p.has("tty"));
        assert_eq!(p.args, ["ctr", "ls", "-t", "/"]);
    }
}
