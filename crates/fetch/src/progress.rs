//! How a download shows its progress.
//!
//! On a terminal, an indicatif bar with size, rate and ETA. Elsewhere (CI logs, pipes) a bar's carriage returns
//! turn into noise, so the download prints a few plain lines instead: one when it starts, one every
//! [`LINE_INTERVAL`], one when it ends. The library prints none of them itself: lines go to the caller's
//! [`LineSink`] (the binary writes them to stderr; an image build prefixes them like its own steps), else they
//! are `tracing` events. The bar is indicatif's, drawn on stderr when the caller asks for it.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain-lines mode prints a progress line.
pub const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// Receives a download's progress lines (`fetch: LABEL: …`).
#[derive(Clone)]
pub struct LineSink(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for LineSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineSink")
    }
}

/// Which progress display a download uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always the bar.
    Bar,
    /// Always plain lines.
    Lines,
    /// Nothing at all.
    Off,
}

impl ProgressMode {
    fn resolve(self) -> Self {
        match self {
            Self::Auto if std::io::stderr().is_terminal() => Self::Bar,
            Self::Auto => Self::Lines,
            other => other,
        }
    }
}

/// One download's progress display.
pub(crate) struct Reporter {
    mode: ProgressMode,
    label: String,
    lines: Option<LineSink>,
    bar: Option<ProgressBar>,
    total: Option<u64>,
    pos: u64,
    began_at: u64,
    started: Instant,
    last_line: Instant,
}

impl Reporter {
    pub(crate) fn new(mode: ProgressMode, label: &str, lines: Option<LineSink>) -> Self {
        let now = Instant::now();
        Self {
            mode: mode.resolve(),
            label: label.to_owned(),
            lines,
            bar: None,
            total: None,
            pos: 0,
            began_at: 0,
            started: now,
            last_line: now,
        }
    }

    /// A transfer starts (or restarts) at `offset` of `total` bytes.
    pub(crate) fn begin(&mut self, total: Option<u64>, offset: u64) {
        self.total = total;
        self.pos = offset;
        self.began_at = offset;
        self.started = Instant::now();
        self.last_line = self.started;
        match self.mode {
            ProgressMode::Bar => {
                let bar = self.bar.get_or_insert_with(|| new_bar(&self.label));
                match total {
                    Some(len) => bar.set_length(len),
                    None => bar.unset_length(),
                }
                bar.set_position(offset);
                bar.reset_eta();
            }
            ProgressMode::Lines => {
                let size = total.map_or_else(|| "unknown size".to_owned(), |t| HumanBytes(t).to_string());
                if offset > 0 {
                    self.line(&format!("fetch: {}: resuming at {} of {size}", self.label, HumanBytes(offset)));
                } else {
                    self.line(&format!("fetch: {}: downloading {size}", self.label));
                }
            }
            ProgressMode::Auto | ProgressMode::Off => {}
        }
    }

    pub(crate) fn advance(&mut self, n: u64) {
        self.pos = self.pos.saturating_add(n);
        match self.mode {
            ProgressMode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(self.pos);
                }
            }
            ProgressMode::Lines if self.last_line.elapsed() >= LINE_INTERVAL => {
                self.last_line = Instant::now();
                self.line(&format!("fetch: {}: {}", self.label, self.summary()));
            }
            _ => {}
        }
    }

    /// A line about the transfer (`fetch: LABEL: MSG`), shown as the mode shows lines; nothing when off.
    pub(crate) fn note(&mut self, msg: &str) {
        let msg = format!("fetch: {}: {msg}", self.label);
        match (&self.mode, &self.bar) {
            (ProgressMode::Bar, Some(bar)) => bar.println(msg),
            (ProgressMode::Lines | ProgressMode::Bar, _) => self.line(&msg),
            _ => {}
        }
    }

    /// A transfer attempt failed and will be retried.
    pub(crate) fn retrying(&mut self, why: &str, delay: Duration) {
        let msg = format!("fetch: {}: {why}; retrying in {}", self.label, HumanDuration(delay));
        match (&self.mode, &self.bar) {
            (ProgressMode::Bar, Some(bar)) => bar.println(msg),
            (ProgressMode::Lines | ProgressMode::Bar, _) => self.line(&msg),
            _ => {}
        }
    }

    pub(crate) fn done(&mut self) {
        let took = self.started.elapsed();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if matches!(self.mode, ProgressMode::Lines | ProgressMode::Bar) {
            let msg = format!("fetch: {}: done, {} in {}", self.label, HumanBytes(self.pos), HumanDuration(took));
            self.line(&msg);
        }
    }

    /// One progress line: to the caller's sink, else a `tracing` event.
    fn line(&self, msg: &str) {
        match &self.lines {
            Some(sink) => (sink.0)(msg),
            None => tracing::info!("{msg}"),
        }
    }

    pub(crate) fn abandon(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }

    fn summary(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let moved = self.pos.saturating_sub(self.began_at);
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate = (moved as f64 / secs) as u64;
        match self.total {
            Some(total) if total > 0 => {
                let pct = self.pos.saturating_mul(100) / total;
                let eta = total
                    .saturating_sub(self.pos)
                    .checked_div(rate)
                    .map(|secs| format!(", ETA {}", HumanDuration(Duration::from_secs(secs))))
                    .unwrap_or_default();
                format!("{pct}% ({} of {}, {}/s{eta})", HumanBytes(self.pos), HumanBytes(total), HumanBytes(rate))
            }
            _ => format!("{} ({}/s)", HumanBytes(self.pos), HumanBytes(rate)),
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.abandon();
    }
}

fn new_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(label.to_owned());
    bar
}
