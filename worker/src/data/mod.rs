//! Tabular data: reading CSV and Parquet through `object_store`, column typing,
//! the dataset profile and encoding rows for the encoder.

pub mod csv;
pub mod dataset;
pub mod encode;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod profile;
pub mod schema;
pub mod source;
pub mod table;

pub use dataset::{LoadedDataset, TableFormat, TableSource, load_dataset, read_table};
pub use encode::{EncodedRows, FeatureLayout, encode_sample, encode_table};
pub use profile::{ColumnProfile, DatasetProfile, NumericStats, ProfilePartial, Vocabulary};
pub use schema::{ColumnKind, TableSchema, TypedTable, TypedValues};
pub use table::{RawColumn, RawTable, RawValues};
