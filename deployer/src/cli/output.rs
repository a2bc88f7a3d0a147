//! How results reach the user: results on stdout (text or JSON), progress on stderr (a spinner
//! on a terminal, plain lines otherwise). Every write to stdout returns its error, so a reader
//! that goes away (`| head`) ends the command quietly instead of with a panic.

use std::io::{IsTerminal, Write as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Progress of a long command (builds and deploys take minutes).
pub struct Progress {
    spinner: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Self {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress { spinner }
    }

    /// Reports a step; on a terminal it replaces the spinner's message and stays in the history.
    pub fn step(&self, message: &str) {
        match &self.spinner {
            Some(bar) => bar.println(format!("  {message}")),
            None => eprintln!("{message}"),
        }
    }

    /// Runs `f` with the spinner hidden, for subprocesses that print their own progress (cargo).
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.spinner {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_stdout(text.as_bytes())
}

/// Writes to stdout and flushes; a closed stdout is an error that [`is_broken_pipe`] recognises.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// Prints a line on stdout, returning the write's error: `outln!("{x}")?`.
#[macro_export]
#[doc(hidden)]
macro_rules! __cli_outln {
    () => { $crate::cli::output::write_stdout(b"\n") };
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}
pub use crate::__cli_outln as outln;

/// Whether the error is stdout's reader having gone away (`| head`): not a failure to report.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Colour on stdout: only on a terminal, and never when `NO_COLOR` is set (no-color.org).
pub fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Pretty-prints a JSON text keeping its keys in the order the text has them (a function's own
/// order); `None` when it is not JSON.
pub fn pretty_json(text: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(text).ok()?;
    let text = std::str::from_utf8(text).ok()?;
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().unwrap_or_default());
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_json_keeps_the_key_order_of_the_text() {
        let text = br#"{"zeta":1,"alpha":{"b":[1, 2],"a":"x,\"y"},"e":{},"f":[ ]}"#;
        assert_eq!(
            pretty_json(text).expect("JSON"),
            "{\n  \"zeta\": 1,\n  \"alpha\": {\n    \"b\": [\n      1,\n      2\n    ],\n    \"a\": \"x,\\\"y\"\n  },\n  \"e\": {},\n  \"f\": []\n}"
        );
        assert_eq!(pretty_json(b"{oops"), None);
        assert_eq!(pretty_json(b"42").as_deref(), Some("42"));
    }
}
