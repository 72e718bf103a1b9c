//! Storage as the SSL service's programs address it: `file://` and `s3://`
//! URIs resolved to `object_store` stores, and the objects a dataset URI names.
//!
//! S3 settings and credentials come from the `AWS_*` environment variables that
//! `object_store` reads, such as `AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_ALLOW_HTTP`.

mod dataset;
mod location;

pub use dataset::{DatasetError, ListedObject, list_dataset};
pub use location::{InvalidUri, locate};
