//! `--detach-keys` / `detachKeys`: Docker's key-sequence syntax and a matcher that finds the
//! sequence in a byte stream.

/// The default sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Docker's control-key names, indexed by the byte they produce (`ctrl-@` = 0 ... `ctrl-_` = 31).
const CONTROL_NAMES: [&str; 32] = [
    "ctrl-@", "ctrl-a", "ctrl-b", "ctrl-c", "ctrl-d", "ctrl-e", "ctrl-f", "ctrl-g", "ctrl-h",
    "ctrl-i", "ctrl-j", "ctrl-k", "ctrl-l", "ctrl-m", "ctrl-n", "ctrl-o", "ctrl-p", "ctrl-q",
    "ctrl-r", "ctrl-s", "ctrl-t", "ctrl-u", "ctrl-v", "ctrl-w", "ctrl-x", "ctrl-y", "ctrl-z",
    "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_",
];

/// A detach sequence that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid detach keys ({keys}) provided: unknown key {key:?}; use a comma-separated list of single characters and ctrl-<key> combinations (ctrl-a … ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_), e.g. ctrl-p,ctrl-q")]
pub struct DetachKeysError {
    /// The whole value given.
    pub keys: String,
    /// The part that is not a key.
    pub key: String,
}

/// Parses Docker's syntax: comma-separated keys, each a single character or `ctrl-X`
/// (case-insensitive); an empty value means the default.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, DetachKeysError> {
    if keys.is_empty() {
        return parse_detach_keys(DEFAULT_DETACH_KEYS);
    }
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let lower = key.to_ascii_lowercase();
        match CONTROL_NAMES.iter().position(|name| *name == lower) {
            Some(code) => out.push(code as u8),
            None => {
                return Err(DetachKeysError {
                    keys: keys.to_owned(),
                    key: key.to_owned(),
                })
            }
        }
    }
    Ok(out)
}

/// Finds a detach sequence in a stream fed in pieces, holding back bytes that may begin it
/// (as Docker's escape proxy does): what it returns is what to pass on.
#[derive(Debug, Clone)]
pub struct DetachMatcher {
    keys: Vec<u8>,
    held: usize,
}

/// What a piece of input amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Pass these bytes on (held-back bytes that turned out not to be the sequence included).
    Pass(Vec<u8>),
    /// The sequence was typed: pass these bytes (typed before it) on, then detach.
    Detach(Vec<u8>),
}

impl DetachMatcher {
    /// A matcher for `keys` (as parsed by [`parse_detach_keys`]).
    pub fn new(keys: Vec<u8>) -> DetachMatcher {
        DetachMatcher { keys, held: 0 }
    }

    /// Feeds bytes; see [`Scan`].
    pub fn feed(&mut self, data: &[u8]) -> Scan {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    self.held = 0;
                    return Scan::Detach(out);
                }
                continue;
            }
            // a broken prefix: release what was held, then look at this byte afresh
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    self.held = 0;
                    return Scan::Detach(out);
                }
            } else {
                out.push(b);
            }
        }
        Scan::Pass(out)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn parses_dockers_syntax() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("CTRL-A,b").unwrap(), vec![1, b'b']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-[").unwrap(), vec![0, 27]);
        assert_eq!(
            parse_detach_keys("ctrl-\\,ctrl-],ctrl-^,ctrl-_").unwrap(),
            vec![28, 29, 30, 31]
        );
        assert_eq!(parse_detach_keys("a,Z,,").unwrap_err().key, "");
        let e = parse_detach_keys("ctrl-p,ctrl-1").unwrap_err();
        assert_eq!(e.key, "ctrl-1");
        assert!(
            e.to_string()
                .starts_with("Invalid detach keys (ctrl-p,ctrl-1) provided"),
            "{e}"
        );
        assert!(parse_detach_keys("ab").is_err());
        assert!(parse_detach_keys("ctrl-").is_err());
    }

    #[test]
    fn matcher_holds_back_and_releases_prefixes() {
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"ls\n"), Scan::Pass(b"ls\n".to_vec()));
        assert_eq!(m.feed(&[b'a', 16]), Scan::Pass(b"a".to_vec()));
        // the held ctrl-p is released when the sequence breaks
        assert_eq!(m.feed(b"x"), Scan::Pass(vec![16, b'x']));
        // split across reads
        assert_eq!(m.feed(&[b'y', 16]), Scan::Pass(b"y".to_vec()));
        assert_eq!(m.feed(&[17, b'z']), Scan::Detach(Vec::new()));
        // ctrl-p ctrl-p ctrl-q: the first is passed on, the rest detaches
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(&[b'k', 16, 16, 17]), Scan::Detach(vec![b'k', 16]));
        let mut m = DetachMatcher::new(vec![b'q']);
        assert_eq!(m.feed(b"abq"), Scan::Detach(b"ab".to_vec()));
    }
}
