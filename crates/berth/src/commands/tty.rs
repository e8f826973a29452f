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

/// The local side of an attached stream with `-t`: the terminal in raw mode while stdin is
/// forwarded, and the remote terminal kept at the local size, now and on every SIGWINCH, as
/// the docker CLI does. Dropping it restores the terminal and stops following the size.
pub struct Session {
    raw: Option<RawMode>,
    resizer: Option<tokio::task::JoinHandle<()>>,
}

impl Session {
    /// `resize` is the API path that takes `?h=ROWS&w=COLS` (a container's or an exec's).
    /// Nothing is done without `tty`; raw mode needs `stdin` as well.
    pub fn enter(client: &berth_api::ApiClient, resize: String, tty: bool, stdin: bool) -> Session {
        if !tty {
            return Session {
                raw: None,
                resizer: None,
            };
        }
        let raw = if stdin { RawMode::enable() } else { None };
        let client = client.clone();
        let resizer = tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut winch = signal(SignalKind::window_change()).ok();
            loop {
                if let Some((rows, cols)) = size() {
                    let _ = client
                        .call(
                            hyper::Method::POST,
                            &format!("{resize}?h={rows}&w={cols}"),
                            None,
                        )
                        .await;
                }
                let Some(w) = winch.as_mut() else { return };
                if w.recv().await.is_none() {
                    return;
                }
            }
        });
        Session {
            raw,
            resizer: Some(resizer),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(t) = self.resizer.take() {
            t.abort();
        }
        self.raw.take();
    }
}
