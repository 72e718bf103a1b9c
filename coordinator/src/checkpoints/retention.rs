//! Checkpoint retention: which of a job's committed checkpoints it keeps.

use ssl_proto::spec::fill_defaults;
use ssl_proto::v1::JobSpec;

use crate::Error;
use crate::store::CheckpointRecord;

/// Metric whose best checkpoint a job keeps besides its newest ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BestMetric {
    /// The checkpoint with the lowest finite training loss.
    Loss,
    /// No extra checkpoint.
    None,
}

/// A job's `checkpoint.keep_last` and `checkpoint.keep_best_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Number of checkpoints with the highest steps that are kept, at least 1.
    pub keep_last: usize,
    pub keep_best_by: BestMetric,
}

impl RetentionPolicy {
    /// Reads the policy of a job from its stored spec, filling unset fields with
    /// the spec defaults (keep 3, best by loss).
    ///
    /// # Errors
    ///
    /// [`Error::CorruptRow`] when the spec does not decode or contains a value that
    /// submission would have rejected.
    pub fn from_spec_json(job_id: &str, spec_json: &str) -> Result<Self, Error> {
        let corrupt = |reason: String| Error::CorruptRow(format!("job `{job_id}` has an invalid checkpoint policy: {reason}"));
        let spec: JobSpec = serde_json::from_str(spec_json).map_err(|error| corrupt(error.to_string()))?;
        let checkpoint = fill_defaults(spec).checkpoint.unwrap_or_default();

        let keep_last = checkpoint.keep_last.unwrap_or_default();
        let keep_last = usize::try_from(keep_last)
            .ok()
            .filter(|keep_last| *keep_last >= 1)
            .ok_or_else(|| corrupt(format!("checkpoint.keep_last is {keep_last}, expected at least 1")))?;
        let keep_best_by = match checkpoint.keep_best_by.as_deref() {
            Some("loss") => BestMetric::Loss,
            Some("none") => BestMetric::None,
            other => return Err(corrupt(format!("checkpoint.keep_best_by is {other:?}, expected `loss` or `none`"))),
        };
        Ok(RetentionPolicy { keep_last, keep_best_by })
    }
}

/// Returns the checkpoints that `policy` drops, in the order given.
///
/// A job keeps the `keep_last` checkpoints with the highest steps and, with
/// [`BestMetric::Loss`], the one with the lowest loss. Among equal lowest losses
/// the highest step wins. A NaN or infinite loss is never the best.
pub fn expired_checkpoints(checkpoints: &[CheckpointRecord], policy: RetentionPolicy) -> Vec<&CheckpointRecord> {
    let mut steps_newest_first: Vec<i64> = checkpoints.iter().map(|checkpoint| checkpoint.step).collect();
    steps_newest_first.sort_unstable_by(|a, b| b.cmp(a));
    let mut kept: Vec<i64> = steps_newest_first.into_iter().take(policy.keep_last).collect();

    if policy.keep_best_by == BestMetric::Loss {
        let best = checkpoints
            .iter()
            .filter(|checkpoint| checkpoint.loss.is_finite())
            .min_by(|a, b| a.loss.total_cmp(&b.loss).then(b.step.cmp(&a.step)));
        if let Some(best) = best {
            kept.push(best.step);
        }
    }

    checkpoints.iter().filter(|checkpoint| !kept.contains(&checkpoint.step)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(step: i64, loss: f64) -> CheckpointRecord {
        CheckpointRecord {
            job_id: "job".to_owned(),
            step,
            epoch: 1,
            uri: format!("file:///ckpt/{step:010}/"),
            loss,
            committed_at_us: 0,
        }
    }

    fn expired_steps(checkpoints: &[CheckpointRecord], keep_last: usize, keep_best_by: BestMetric) -> Vec<i64> {
        let policy = RetentionPolicy { keep_last, keep_best_by };
        expired_checkpoints(checkpoints, policy).into_iter().map(|checkpoint| checkpoint.step).collect()
    }

    #[test]
    fn keeps_last_k_by_step() {
        // Out of order, as a retried report may arrive.
        let checkpoints = [checkpoint(300, 0.3), checkpoint(100, 0.5), checkpoint(400, 0.2), checkpoint(200, 0.4)];
        assert_eq!(expired_steps(&checkpoints, 2, BestMetric::None), [100, 200]);
        assert_eq!(expired_steps(&checkpoints, 4, BestMetric::None), Vec::<i64>::new());
        assert_eq!(expired_steps(&checkpoints, 10, BestMetric::None), Vec::<i64>::new());
    }

    #[test]
    fn keeps_best_loss_outside_last_k() {
        let checkpoints = [checkpoint(100, 0.9), checkpoint(200, 0.1), checkpoint(300, 0.5), checkpoint(400, 0.6)];
        assert_eq!(expired_steps(&checkpoints, 1, BestMetric::Loss), [100, 300]);
        assert_eq!(expired_steps(&checkpoints, 1, BestMetric::None), [100, 200, 300]);
    }

    #[test]
    fn best_inside_last_k_keeps_no_extra() {
        let checkpoints = [checkpoint(100, 0.9), checkpoint(200, 0.8), checkpoint(300, 0.1)];
        assert_eq!(expired_steps(&checkpoints, 2, BestMetric::Loss), [100]);
    }

    #[test]
    fn equal_best_losses_keep_highest_step() {
        let checkpoints = [checkpoint(100, 0.2), checkpoint(200, 0.2), checkpoint(300, 0.7), checkpoint(400, 0.8)];
        assert_eq!(expired_steps(&checkpoints, 1, BestMetric::Loss), [100, 300]);
    }

    #[test]
    fn non_finite_loss_never_best() {
        let checkpoints = [checkpoint(100, f64::NAN), checkpoint(200, f64::NEG_INFINITY), checkpoint(300, 0.4), checkpoint(400, 0.5)];
        assert_eq!(expired_steps(&checkpoints, 1, BestMetric::Loss), [100, 200]);

        let all_nan = [checkpoint(100, f64::NAN), checkpoint(200, f64::NAN)];
        assert_eq!(expired_steps(&all_nan, 1, BestMetric::Loss), [100]);
    }

    #[test]
    fn empty_list_expires_nothing() {
        assert!(expired_steps(&[], 3, BestMetric::Loss).is_empty());
    }

    #[test]
    fn policy_read_from_spec() {
        let policy = RetentionPolicy::from_spec_json("j", r#"{"name":"a","checkpoint":{"keep_last":5,"keep_best_by":"none"}}"#).unwrap();
        assert_eq!(policy, RetentionPolicy { keep_last: 5, keep_best_by: BestMetric::None });
    }

    #[test]
    fn policy_defaults_fill_unset_fields() {
        let policy = RetentionPolicy::from_spec_json("j", r#"{"name":"a"}"#).unwrap();
        assert_eq!(policy, RetentionPolicy { keep_last: 3, keep_best_by: BestMetric::Loss });
    }

    #[test]
    fn invalid_policy_is_corrupt_row() {
        for spec in [
            r#"{"name":"a","checkpoint":{"keep_last":0}}"#,
            r#"{"name":"a","checkpoint":{"keep_best_by":"accuracy"}}"#,
            "not json",
        ] {
            let error = RetentionPolicy::from_spec_json("j", spec).unwrap_err();
            assert!(matches!(error, Error::CorruptRow(_)), "{spec}: {error:?}");
            assert!(error.to_string().contains("job `j` has an invalid checkpoint policy"), "{error}");
        }
    }
}
