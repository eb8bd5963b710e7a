//! Where a command's output goes: text for people, JSON with `--json`.
//!
//! Written with `writeln!` on locked handles rather than `println!`, which panics when the
//! reader has gone away; here that is an error the caller handles (`weft ... | head -1`).

use std::fmt;
use std::io::{self, Write};

use serde::Serialize;

/// Standard output, in the format the user asked for.
pub(crate) struct Output {
    json: bool,
    stdout: io::StdoutLock<'static>,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self {
            json,
            stdout: io::stdout().lock(),
        }
    }

    /// `true` with `--json`.
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// One JSON document on one line, flushed (a stream's reader sees each line at once).
    pub(crate) fn json<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.stdout, value).map_err(io::Error::other)?;
        self.stdout.write_all(b"\n")?;
        self.stdout.flush()
    }

    /// One line of text, flushed.
    pub(crate) fn line(&mut self, line: fmt::Arguments<'_>) -> io::Result<()> {
        self.stdout.write_fmt(line)?;
        self.stdout.write_all(b"\n")?;
        self.stdout.flush()
    }

    /// Bytes as they are (a service's answer), then a newline if they lack one.
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stdout.write_all(bytes)?;
        if !bytes.ends_with(b"\n") {
            self.stdout.write_all(b"\n")?;
        }
        self.stdout.flush()
    }
}

/// A note for the person at the terminal, on stderr so it never mixes with the output.
pub(crate) fn note(line: fmt::Arguments<'_>) {
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_fmt(line);
    let _ = stderr.write_all(b"\n");
}

/// The one line a failed command prints: newlines inside the message are folded, so scripts
/// and humans both get exactly one line.
pub(crate) fn error_line(message: &str) {
    let folded = message.replace(['\r', '\n'], " ");
    note(format_args!("weft: {folded}"));
}

/// `1h 2m 3s`, `2m 3s`, `3s` or `12ms`.
pub(crate) fn duration_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m, s) {
        (0, 0, 0) => format!("{ms}ms"),
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}

/// A round-trip time in microseconds as milliseconds with one decimal.
pub(crate) fn rtt(us: Option<u64>) -> String {
    match us {
        Some(us) => format!("{}.{} ms", us / 1000, us % 1000 / 100),
        None => "rtt unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration_ms(12), "12ms");
        assert_eq!(duration_ms(3_400), "3s");
        assert_eq!(duration_ms(123_000), "2m 3s");
        assert_eq!(duration_ms(3_723_000), "1h 2m 3s");
        assert_eq!(rtt(Some(12_345)), "12.3 ms");
        assert_eq!(rtt(None), "rtt unknown");
    }
}
