//! Progress display for `watch`: a progress bar on a terminal, plain lines otherwise.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use prost_types::Timestamp;
use ssl_proto::v1::JobProgress;

use crate::output::{format_progress, format_timestamp_seconds};

/// Shortest time between two plain progress lines.
const MIN_LINE_INTERVAL: Duration = Duration::from_secs(1);

/// Shown once every step is done, while the workers evaluate and report.
const TRAINING_DONE: &str = "training done; waiting for the evaluation and the result";

const BAR_TEMPLATE: &str = "[{bar:30}] {pos}/{len} steps  {msg}";

/// Shows progress events and interleaves other lines with them.
///
/// The bar is drawn on stderr and only when stderr is a terminal and the job's total
/// step count is known. Otherwise each event becomes a line on the output, at most one
/// per second. The latest skipped event is written before the next state line or at
/// the end, so the last progress before each state change is always shown.
pub struct ProgressReporter {
    stderr_is_terminal: bool,
    global_batch_size: Option<i32>,
    bar: Option<ProgressBar>,
    last_line_at: Option<Instant>,
    pending_line: Option<String>,
    /// Step of the last event shown; heartbeats repeat it while nothing moves.
    last_step: Option<i64>,
}

impl ProgressReporter {
    /// Creates a reporter; `global_batch_size` (rows per step) turns samples per second
    /// into an ETA, and `None` leaves the ETA out.
    pub fn new(global_batch_size: Option<i32>) -> Self {
        ProgressReporter {
            stderr_is_terminal: io::stderr().is_terminal(),
            global_batch_size,
            bar: None,
            last_line_at: None,
            pending_line: None,
            last_step: None,
        }
    }

    /// Shows one progress event that happened at `time`. An event at the same step as
    /// the previous one is skipped. The event of the last step is always shown, followed
    /// by a note that the job now evaluates and reports its result.
    pub fn report(&mut self, out: &mut impl Write, time: Option<&Timestamp>, progress: &JobProgress) -> io::Result<()> {
        if self.last_step == Some(progress.step) {
            return Ok(());
        }
        self.last_step = Some(progress.step);
        let finished = progress.total_steps > 0 && progress.step >= progress.total_steps;
        let eta = estimate_remaining(progress, self.global_batch_size);
        if self.stderr_is_terminal && progress.total_steps > 0 {
            self.update_bar(progress, eta);
            if finished && let Some(bar) = &self.bar {
                bar.set_message(TRAINING_DONE);
            }
            return Ok(());
        }

        let line = format_progress_line(time, progress, eta);
        if finished {
            self.pending_line = None;
            self.last_line_at = Some(Instant::now());
            self.write_above_bar(out, &line)?;
            return self.write_above_bar(out, TRAINING_DONE);
        }
        let now = Instant::now();
        let due = self.last_line_at.is_none_or(|last| now.duration_since(last) >= MIN_LINE_INTERVAL);
        if !due {
            self.pending_line = Some(line);
            return Ok(());
        }
        self.pending_line = None;
        self.last_line_at = Some(now);
        self.write_above_bar(out, &line)
    }

    /// Writes a line, after any progress line held back by the rate limit.
    pub fn write_line(&mut self, out: &mut impl Write, line: &str) -> io::Result<()> {
        self.flush_pending(out)?;
        self.write_above_bar(out, line)
    }

    /// Writes any held-back progress line and leaves the bar on screen as it last was.
    pub fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        self.flush_pending(out)?;
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
        Ok(())
    }

    fn flush_pending(&mut self, out: &mut impl Write) -> io::Result<()> {
        let Some(line) = self.pending_line.take() else { return Ok(()) };
        self.last_line_at = Some(Instant::now());
        self.write_above_bar(out, &line)
    }

    fn write_above_bar(&self, out: &mut impl Write, line: &str) -> io::Result<()> {
        match &self.bar {
            Some(bar) => bar.suspend(|| writeln!(out, "{line}")),
            None => writeln!(out, "{line}"),
        }
    }

    fn update_bar(&mut self, progress: &JobProgress, eta: Option<Duration>) {
        let bar = self.bar.get_or_insert_with(|| {
            let style = ProgressStyle::with_template(BAR_TEMPLATE)
                .expect("the progress bar template is valid")
                .progress_chars("=> ");
            ProgressBar::new(progress.total_steps as u64).with_style(style)
        });
        bar.set_length(progress.total_steps as u64);
        bar.set_position(progress.step.max(0) as u64);
        let mut message = format!(
            "epoch {}, loss {:.4}, {:.0} samples/s",
            progress.epoch, progress.loss, progress.samples_per_second
        );
        if let Some(eta) = eta {
            message.push_str(&format!(", ETA {}", format_duration(eta)));
        }
        bar.set_message(message);
    }
}

/// Formats `TIME  epoch E, step S/T (P%), loss L, N samples/s, ETA D`.
fn format_progress_line(time: Option<&Timestamp>, progress: &JobProgress, eta: Option<Duration>) -> String {
    let time = time.map_or_else(|| "-".to_owned(), format_timestamp_seconds);
    let mut line = format!("{time}  {}", format_progress(progress));
    if let Some(eta) = eta {
        line.push_str(&format!(", ETA {}", format_duration(eta)));
    }
    line
}

/// Estimates the time left from the remaining steps and the current throughput;
/// `None` when the total, the throughput or the batch size is unknown.
fn estimate_remaining(progress: &JobProgress, global_batch_size: Option<i32>) -> Option<Duration> {
    let batch_size = f64::from(global_batch_size.filter(|size| *size > 0)?);
    let throughput = progress.samples_per_second;
    if progress.total_steps <= 0 || throughput.is_nan() || throughput <= 0.0 {
        return None;
    }
    let remaining_steps = (progress.total_steps - progress.step).max(0) as f64;
    Duration::try_from_secs_f64(remaining_steps * batch_size / throughput).ok()
}

/// Formats a duration rounded to whole seconds as `1h02m03s`, `2m03s` or `3s`.
fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64().round() as u64;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h{minutes:02}m{seconds:02}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(step: i64, total_steps: i64, samples_per_second: f64) -> JobProgress {
        JobProgress { epoch: 1, step, total_steps, loss: 0.5, samples_per_second }
    }

    fn plain_reporter() -> ProgressReporter {
        ProgressReporter { stderr_is_terminal: false, ..ProgressReporter::new(Some(100)) }
    }

    #[test]
    fn eta_from_throughput_and_batch() {
        // 900 steps left at 100 rows per step and 1000 rows per second: 90 seconds.
        let eta = estimate_remaining(&progress(100, 1000, 1000.0), Some(100));
        assert_eq!(eta, Some(Duration::from_secs(90)));
    }

    #[test]
    fn eta_unknown_without_inputs() {
        assert_eq!(estimate_remaining(&progress(100, 0, 1000.0), Some(100)), None);
        assert_eq!(estimate_remaining(&progress(100, 1000, 0.0), Some(100)), None);
        assert_eq!(estimate_remaining(&progress(100, 1000, f64::NAN), Some(100)), None);
        assert_eq!(estimate_remaining(&progress(100, 1000, 1000.0), None), None);
    }

    #[test]
    fn durations_formatted_compactly() {
        assert_eq!(format_duration(Duration::from_secs(3)), "3s");
        assert_eq!(format_duration(Duration::from_secs(123)), "2m03s");
        assert_eq!(format_duration(Duration::from_secs(3723)), "1h02m03s");
        assert_eq!(format_duration(Duration::from_millis(59_600)), "1m00s");
    }

    #[test]
    fn plain_lines_rate_limited_and_flushed() {
        let mut reporter = plain_reporter();
        let mut out = Vec::new();
        let time = Timestamp { seconds: 1_796_342_400, nanos: 0 };
        for step in 1..=5 {
            reporter.report(&mut out, Some(&time), &progress(step, 1000, 1000.0)).unwrap();
        }
        reporter.write_line(&mut out, "state line").unwrap();
        reporter.finish(&mut out).unwrap();

        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0],
            "2026-12-04T00:00:00Z  epoch 1, step 1/1000 (0%), loss 0.5000, 1000 samples/s, ETA 1m40s"
        );
        assert!(lines[1].contains("step 5/1000"), "{text}");
        assert_eq!(lines[2], "state line");
    }

    #[test]
    fn repeated_step_skipped_and_last_step_noted() {
        let mut reporter = plain_reporter();
        let mut out = Vec::new();
        reporter.report(&mut out, None, &progress(999, 1000, 1000.0)).unwrap();
        // A heartbeat that repeats the step within the rate limit is dropped, not held back.
        reporter.report(&mut out, None, &progress(999, 1000, 1000.0)).unwrap();
        reporter.report(&mut out, None, &progress(1000, 1000, 1000.0)).unwrap();
        reporter.report(&mut out, None, &progress(1000, 1000, 1000.0)).unwrap();
        reporter.finish(&mut out).unwrap();

        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("step 999/1000"), "{text}");
        assert!(lines[1].contains("step 1000/1000 (100%)"), "{text}");
        assert_eq!(lines[2], TRAINING_DONE);
    }

    #[test]
    fn plain_line_without_total_has_no_eta() {
        let line = format_progress_line(None, &progress(7, 0, 10.0), None);
        assert_eq!(line, "-  epoch 1, step 7, loss 0.5000, 10 samples/s");
    }
}
