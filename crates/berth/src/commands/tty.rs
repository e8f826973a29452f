//! The local terminal: raw mode for `run -it`, and its size.

/// Restores the terminal when dropped.
pub struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode, if stdin is a terminal.
    pub fn enable() -> Option<RawMode> {
        let stdin = rustix::stdio::stdin();
        let saved = rustix::termios::tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            rustix::stdio::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// (rows, cols) of stdout's terminal.
pub fn size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(rustix::stdio::stdout()).ok()?;
    Some((ws.ws_row, ws.ws_col))
}
