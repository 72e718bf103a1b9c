//! Job spec rules: reading spec files, filling in defaults and validating.
//!
//! The coordinator is the authority: it runs [`normalize`] on every submission and
//! stores the result, so a stored spec is complete and valid. `sslctl` only parses
//! files ([`parse_spec_file`]) and leaves range checks to the server.

mod defaults;
mod file;
pub(crate) mod method_serde;
mod validate;

pub use defaults::{DEFAULT_LABEL_FRACTIONS, fill_defaults};
pub use file::{SpecFileError, SpecFormat, parse_spec, parse_spec_file};
pub use validate::{FieldViolation, InvalidSpec, validate};

use crate::v1::JobSpec;

/// Fills in defaults, then validates. Returns the complete spec that will run.
///
/// # Errors
///
/// [`InvalidSpec`] listing every field that is missing or out of range.
pub fn normalize(spec: JobSpec) -> Result<JobSpec, InvalidSpec> {
    let spec = fill_defaults(spec);
    validate(&spec)?;
    Ok(spec)
}
