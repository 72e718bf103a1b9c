//! Job spec files: YAML or JSON text read into a [`JobSpec`].

use std::path::{Path, PathBuf};

use crate::v1::JobSpec;

/// Largest spec file read, in bytes. Specs are a few kilobytes; anything near this
/// is a wrong file.
const MAX_SPEC_FILE_BYTES: u64 = 1024 * 1024;

/// Syntax of a spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    Yaml,
    Json,
}

impl SpecFormat {
    /// Picks JSON for a `.json` file and YAML for anything else.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|extension| extension.to_str()) {
            Some(extension) if extension.eq_ignore_ascii_case("json") => SpecFormat::Json,
            _ => SpecFormat::Yaml,
        }
    }
}

/// A spec file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    #[error("cannot read spec file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("spec file {path} has {size} bytes, more than the maximum of {MAX_SPEC_FILE_BYTES}")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("spec file {path} is empty")]
    Empty { path: PathBuf },
    #[error("invalid spec file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Reads a YAML or JSON spec file and resolves relative dataset paths against the
/// file's folder, so that `uri: data/train.csv` next to the file works from any
/// working directory.
///
/// # Errors
///
/// [`SpecFileError`] when the file cannot be read, is empty or too large, or does
/// not parse; the message names the field path, line and column.
pub fn parse_spec_file(path: &Path) -> Result<JobSpec, SpecFileError> {
    let read_error = |source| SpecFileError::Read { path: path.to_owned(), source };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_SPEC_FILE_BYTES {
        return Err(SpecFileError::TooLarge { path: path.to_owned(), size });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;

    let mut spec = parse_spec(&text, SpecFormat::from_path(path))
        .map_err(|message| spec_text_error(path, message))?;

    let base = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = std::path::absolute(base).map_err(read_error)?;
    if let Some(dataset) = spec.dataset.as_mut() {
        dataset.uri = resolve_uri(&dataset.uri, &base);
    }
    if let Some(test_uri) = spec.evaluation.as_mut().and_then(|evaluation| evaluation.test_uri.as_mut()) {
        *test_uri = resolve_uri(test_uri, &base);
    }
    Ok(spec)
}

fn spec_text_error(path: &Path, message: Option<String>) -> SpecFileError {
    match message {
        None => SpecFileError::Empty { path: path.to_owned() },
        Some(message) => SpecFileError::Invalid { path: path.to_owned(), message },
    }
}

/// Parses spec text. Unknown fields are errors.
///
/// # Errors
///
/// `None` for text with no document at all, otherwise a message naming the field
/// path and, where the parser reports them, the line and column.
pub fn parse_spec(text: &str, format: SpecFormat) -> Result<JobSpec, Option<String>> {
    if text.trim().is_empty() || text.lines().all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
        return Err(None);
    }
    match format {
        // serde_yaml's messages already start with the field path.
        SpecFormat::Yaml => serde_yaml::from_str(text).map_err(|error| {
            let location = error.location().map(|at| (at.line(), at.column()));
            Some(describe(String::new(), strip_location(&error.to_string()), location))
        }),
        SpecFormat::Json => {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                let inner = error.inner();
                let location = Some((inner.line(), inner.column()));
                Some(describe(error.path().to_string(), strip_location(&inner.to_string()), location))
            })
        }
    }
}

fn describe(path: String, message: String, location: Option<(usize, usize)>) -> String {
    let mut text = if path == "." || path.is_empty() { message } else { format!("{path}: {message}") };
    if let Some((line, column)) = location {
        text.push_str(&format!(" (line {line}, column {column})"));
    }
    text
}

/// Drops the parsers' own "at line L column C" from a message, wherever it appears,
/// because [`describe`] appends the location in one format for both syntaxes.
fn strip_location(message: &str) -> String {
    let Some(start) = message.find(" at line ") else { return message.to_owned() };
    let rest = &message[start + " at line ".len()..];
    let line_digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after_column) = rest[line_digits..].strip_prefix(" column ") else { return message.to_owned() };
    let column_digits = after_column.bytes().take_while(u8::is_ascii_digit).count();
    if line_digits == 0 || column_digits == 0 {
        return message.to_owned();
    }
    format!("{}{}", &message[..start], &after_column[column_digits..])
}

/// Turns a plain path into a `file://` URI, relative paths taken from `base`.
/// URIs with a scheme are returned unchanged.
fn resolve_uri(uri: &str, base: &Path) -> String {
    if uri.is_empty() || uri.contains("://") {
        return uri.to_owned();
    }
    let path = Path::new(uri);
    let absolute = if path.is_absolute() { path.to_owned() } else { base.join(path) };
    format!("file://{}", normalize_dots(&absolute).display())
}

/// Removes `.` and `..` components without touching the file system.
fn normalize_dots(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::job_spec::Method;

    const YAML: &str = "\
name: adult
dataset:
  uri: data/train.csv.gz
  label_column: income
method:
  masked:
    mask_rate: 0.25
training:
  epochs: 3
";

    #[test]
    fn yaml_spec_parses() {
        let spec = parse_spec(YAML, SpecFormat::Yaml).unwrap();
        assert_eq!(spec.name, "adult");
        assert_eq!(spec.dataset.as_ref().unwrap().label_column.as_deref(), Some("income"));
        let Some(Method::Masked(masked)) = &spec.method else { panic!("method {:?}", spec.method) };
        assert_eq!(masked.mask_rate, Some(0.25));
        assert_eq!(spec.training.as_ref().unwrap().epochs, Some(3));
        assert_eq!(spec.training.as_ref().unwrap().learning_rate, None);
    }

    #[test]
    fn unknown_field_named_with_path() {
        let text = "name: a\ntraining:\n  epochz: 3\n";
        let message = parse_spec(text, SpecFormat::Yaml).unwrap_err().unwrap();
        assert!(message.starts_with("training: unknown field `epochz`"), "{message}");
        assert!(message.ends_with("(line 3, column 3)"), "{message}");
    }

    #[test]
    fn wrong_type_named_with_path() {
        let text = "name: a\ntraining:\n  epochs: ten\n";
        let message = parse_spec(text, SpecFormat::Yaml).unwrap_err().unwrap();
        assert!(message.starts_with("training.epochs: invalid type: string \"ten\""), "{message}");
        assert!(message.ends_with("(line 3, column 11)"), "{message}");
    }

    #[test]
    fn json_unknown_field_rejected() {
        let text = r#"{"name": "a", "dataset": {"url": "x"}}"#;
        let message = parse_spec(text, SpecFormat::Json).unwrap_err().unwrap();
        assert!(message.starts_with("dataset.url: unknown field `url`"), "{message}");
        assert!(message.contains("(line 1, column"), "{message}");
    }

    #[test]
    fn malformed_yaml_reports_line() {
        let text = "name: a\ndataset: [uri: x\n";
        let message = parse_spec(text, SpecFormat::Yaml).unwrap_err().unwrap();
        assert!(message.contains("line"), "{message}");
    }

    #[test]
    fn location_removed_mid_message() {
        assert_eq!(
            strip_location("found unexpected end of stream at line 4 column 1, while scanning a quoted scalar"),
            "found unexpected end of stream, while scanning a quoted scalar"
        );
        assert_eq!(strip_location("invalid type: string at line 3 column 11"), "invalid type: string");
        assert_eq!(strip_location("no location here"), "no location here");
    }

    #[test]
    fn empty_text_is_none() {
        assert_eq!(parse_spec("  \n# only a comment\n", SpecFormat::Yaml).unwrap_err(), None);
    }

    #[test]
    fn relative_uri_resolved_against_base() {
        let base = Path::new("/repo/examples");
        assert_eq!(resolve_uri("data/adult/train.csv.gz", base), "file:///repo/examples/data/adult/train.csv.gz");
        assert_eq!(resolve_uri("../x.csv", base), "file:///repo/x.csv");
        assert_eq!(resolve_uri("/abs/x.csv", base), "file:///abs/x.csv");
        assert_eq!(resolve_uri("s3://bucket/x.csv", base), "s3://bucket/x.csv");
    }
}
