//! The checkpoint root: the storage URI under which workers write every job's
//! checkpoints.

use std::fmt;

use crate::Error;

/// Shown in errors as the accepted forms of a checkpoint root.
const EXPECTED_FORMS: &str = "expected file:///ABSOLUTE/PATH or s3://BUCKET[/PREFIX]";

/// A validated checkpoint root, `file:///absolute/path` or `s3://bucket[/prefix]`,
/// kept without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRoot {
    /// `file://` or `s3://bucket`.
    base: String,
    /// Path below `base` without a trailing `/`: empty or starting with `/`.
    path: String,
}

impl CheckpointRoot {
    /// Parses and validates a checkpoint root URI. Trailing slashes are dropped.
    ///
    /// A `file://` root needs an absolute path. An `s3://` root needs a bucket name
    /// of 3 to 63 lower-case letters, digits, `.` and `-`. Neither may contain empty,
    /// `.` or `..` path segments, because `object_store` rejects such paths.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the value and the accepted forms.
    pub fn parse(uri: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidArgument(format!("invalid checkpoint root {uri:?}: {reason}; {EXPECTED_FORMS}"));
        if uri.chars().any(char::is_control) {
            return Err(invalid("contains a control character"));
        }

        let (base, path) = if let Some(path) = uri.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(invalid("the path after file:// must be absolute"));
            }
            ("file://".to_owned(), path)
        } else if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, path) = match rest.find('/') {
                Some(slash) => rest.split_at(slash),
                None => (rest, ""),
            };
            if !is_bucket_name(bucket) {
                return Err(invalid("the bucket name must have 3 to 63 lower-case letters, digits, '.' or '-'"));
            }
            (format!("s3://{bucket}"), path)
        } else {
            return Err(invalid("unsupported scheme"));
        };

        let path = path.trim_end_matches('/');
        let has_bad_segment = path.split('/').skip(1).any(|segment| segment.is_empty() || segment == "." || segment == "..");
        if has_bad_segment {
            return Err(invalid("the path has an empty, `.` or `..` segment"));
        }
        Ok(CheckpointRoot { base, path: path.to_owned() })
    }

    /// Returns the folder of `job_id`'s checkpoints, ending in `/`:
    /// `{root}/jobs/{job_id}/checkpoints/`.
    pub fn job_folder(&self, job_id: &str) -> String {
        format!("{self}/jobs/{job_id}/checkpoints/")
    }
}

impl fmt::Display for CheckpointRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.base, self.path)
    }
}

fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'.' || byte == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(root: &str) -> String {
        CheckpointRoot::parse(root).unwrap().job_folder("job-1")
    }

    #[test]
    fn valid_roots_give_job_folders() {
        assert_eq!(folder("file:///var/lib/ssl/checkpoints"), "file:///var/lib/ssl/checkpoints/jobs/job-1/checkpoints/");
        assert_eq!(folder("file:///var/lib/ssl/checkpoints/"), "file:///var/lib/ssl/checkpoints/jobs/job-1/checkpoints/");
        assert_eq!(folder("file:///"), "file:///jobs/job-1/checkpoints/");
        assert_eq!(folder("s3://ssl-checkpoints"), "s3://ssl-checkpoints/jobs/job-1/checkpoints/");
        assert_eq!(folder("s3://ssl-checkpoints/"), "s3://ssl-checkpoints/jobs/job-1/checkpoints/");
        assert_eq!(folder("s3://ssl-checkpoints/team/a//"), "s3://ssl-checkpoints/team/a/jobs/job-1/checkpoints/");
    }

    #[test]
    fn display_drops_trailing_slash() {
        assert_eq!(CheckpointRoot::parse("s3://bucket.one/prefix/").unwrap().to_string(), "s3://bucket.one/prefix");
        assert_eq!(CheckpointRoot::parse("file:///data/").unwrap().to_string(), "file:///data");
    }

    #[test]
    fn invalid_roots_rejected() {
        let cases = [
            ("/var/lib/ssl", "unsupported scheme"),
            ("gs://bucket/prefix", "unsupported scheme"),
            ("file://relative/path", "must be absolute"),
            ("file:relative", "unsupported scheme"),
            ("s3://", "bucket name"),
            ("s3:///prefix", "bucket name"),
            ("s3://Upper/prefix", "bucket name"),
            ("s3://ab", "bucket name"),
            ("s3://bucket/a//b", "empty, `.` or `..` segment"),
            ("file:///data/../etc", "empty, `.` or `..` segment"),
            ("file:///data/./x", "empty, `.` or `..` segment"),
            ("file:///data\n", "control character"),
        ];
        for (uri, reason) in cases {
            let error = CheckpointRoot::parse(uri).unwrap_err().to_string();
            assert!(error.contains(reason), "{uri}: {error}");
            assert!(error.contains(EXPECTED_FORMS), "{uri}: {error}");
        }
    }
}
