//! Training progress on stderr: a progress bar on a terminal, periodic log
//! lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::trainers::StepReport;

/// Minimum time between two plain progress lines.
const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// Reports steps as they finish.
pub struct Progress {
    bar: Option<ProgressBar>,
    total_steps: u64,
    batch_size: usize,
    started: Instant,
    last_line: Instant,
    /// Exponential moving average of the loss, for a steadier display.
    smoothed_loss: Option<f64>,
}

impl Progress {
    /// Starts reporting a run of `total_steps` steps of `batch_size` rows. Draws a
    /// bar when stderr is a terminal.
    pub fn new(total_steps: u64, batch_size: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total_steps);
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar
        });
        let now = Instant::now();
        Progress { bar, total_steps, batch_size, started: now, last_line: now, smoothed_loss: None }
    }

    /// Records one finished step.
    pub fn on_step(&mut self, report: &StepReport) {
        let smoothed = match self.smoothed_loss {
            Some(previous) => 0.95 * previous + 0.05 * report.loss,
            None => report.loss,
        };
        self.smoothed_loss = Some(smoothed);
        let done = report.step + 1;
        let samples_per_second = done as f64 * self.batch_size as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let message = format!("epoch {} step {done} loss {smoothed:.4} {samples_per_second:.0} samples/s", report.epoch + 1);

        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(message);
            }
            None => {
                if self.last_line.elapsed() >= LINE_INTERVAL || done == self.total_steps || done == 1 {
                    self.last_line = Instant::now();
                    tracing::info!(step = done, total_steps = self.total_steps, "{message}");
                }
            }
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
