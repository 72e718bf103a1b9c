//! Learning-rate schedules, as pure functions of the step number so that resuming
//! from a checkpoint needs only the step.

use serde::{Deserialize, Serialize};

use crate::error::{Result, WorkerError};

/// Shape of the schedule (spec `training.schedule.name`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Linear warm-up to the peak, then cosine decay to zero at the last step.
    WarmupCosine,
    /// The peak rate at every step.
    Constant,
}

/// A learning-rate schedule over a fixed number of optimizer steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningRateSchedule {
    pub kind: ScheduleKind,
    /// Peak learning rate (spec `training.learning_rate`).
    pub peak: f64,
    /// Steps of linear warm-up: `round(warmup_fraction * total_steps)`.
    pub warmup_steps: u64,
    /// Steps of the whole run.
    pub total_steps: u64,
}

impl LearningRateSchedule {
    /// Builds a schedule from the spec's names and values.
    ///
    /// # Errors
    ///
    /// [`WorkerError::InvalidConfig`] for an unknown schedule name.
    pub fn new(name: &str, peak: f64, warmup_fraction: f64, total_steps: u64) -> Result<Self> {
        let kind = match name {
            "warmup_cosine" => ScheduleKind::WarmupCosine,
            "constant" => ScheduleKind::Constant,
            other => {
                return Err(WorkerError::InvalidConfig(format!(
                    "unknown schedule `{other}`; expected `warmup_cosine` or `constant`"
                )));
            }
        };
        let warmup_steps = (warmup_fraction * total_steps as f64).round() as u64;
        Ok(LearningRateSchedule { kind, peak, warmup_steps, total_steps: total_steps.max(1) })
    }

    /// Learning rate of the optimizer step with 0-based index `step`.
    ///
    /// Warm-up rises linearly from `peak / warmup_steps` at step 0 to `peak` at
    /// step `warmup_steps - 1`. The cosine part then falls from `peak` towards zero,
    /// reaching `peak * (1 - cos(pi / decay_steps)) / 2` at the last step.
    pub fn learning_rate(&self, step: u64) -> f64 {
        match self.kind {
            ScheduleKind::Constant => self.peak,
            ScheduleKind::WarmupCosine => {
                if step < self.warmup_steps {
                    return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
                }
                let decay_steps = (self.total_steps - self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / decay_steps).min(1.0);
                0.5 * self.peak * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let schedule = LearningRateSchedule::new("warmup_cosine", 1e-3, 0.1, 100).unwrap();
        assert_eq!(schedule.warmup_steps, 10);
        assert!((schedule.learning_rate(0) - 1e-4).abs() < 1e-12);
        assert!((schedule.learning_rate(9) - 1e-3).abs() < 1e-12);
        assert!((schedule.learning_rate(10) - 1e-3).abs() < 1e-12);
        assert!((schedule.learning_rate(55) - 5e-4).abs() < 1e-12);
        assert!(schedule.learning_rate(99) < 1e-6);
        assert!(schedule.learning_rate(99) > 0.0);
    }

    #[test]
    fn constant_and_unknown() {
        let schedule = LearningRateSchedule::new("constant", 0.01, 0.5, 10).unwrap();
        assert_eq!(schedule.learning_rate(0), 0.01);
        assert_eq!(schedule.learning_rate(9), 0.01);
        assert!(LearningRateSchedule::new("linear", 0.01, 0.0, 10).is_err());
    }
}
