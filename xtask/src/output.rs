//! How results reach the user: results on stdout (text or JSON), progress on stderr (a spinner
//! on a terminal, plain lines otherwise).

use std::io::IsTerminal;
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

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
