//! The objects a dataset URI names: one object, or the table files in a folder.

use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};

use crate::location::{InvalidUri, locate};

/// One object of a dataset and its size when it was listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub uri: String,
    pub size_bytes: u64,
}

/// A dataset URI whose objects cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(transparent)]
    InvalidUri(#[from] InvalidUri),
    #[error("`{uri}` not found: no object, and no folder with objects below it")]
    NotFound { uri: String },
    #[error("the folder `{uri}` contains no {extensions} files")]
    NoTables { uri: String, extensions: &'static str },
    #[error("access to `{uri}` denied: {message}")]
    Denied { uri: String, message: String },
    #[error("cannot list `{uri}`: {message}")]
    Unavailable { uri: String, message: String },
}

impl DatasetError {
    /// Returns whether trying again later may succeed, as after a network failure.
    pub fn is_transient(&self) -> bool {
        matches!(self, DatasetError::Unavailable { .. })
    }
}

/// Lists the objects of the dataset at `uri`, in the order their rows count in.
///
/// A URI that names an object is the whole dataset. Otherwise, or when it ends
/// in `/`, it is a folder, and the dataset is every object below it whose name
/// ends in an extension of `format`, sorted by URI. The extensions of `csv` are
/// `.csv` and `.csv.gz`, those of `parquet` are `.parquet` and `.pq`, and without
/// a format all four count.
///
/// # Errors
///
/// [`DatasetError`] naming `uri`; only [`DatasetError::Unavailable`] is transient.
pub async fn list_dataset(uri: &str, format: Option<&str>) -> Result<Vec<ListedObject>, DatasetError> {
    let (store, path) = locate(uri)?;
    if !uri.ends_with('/') {
        match store.head(&path).await {
            Ok(meta) => return Ok(vec![ListedObject { uri: uri.to_owned(), size_bytes: meta.size }]),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(store_error(uri, error)),
        }
    }

    let listed: Vec<ObjectMeta> = store.list(Some(&path)).try_collect().await.map_err(|error| store_error(uri, error))?;
    let extensions = table_extensions(format);
    // A local folder exists even when empty; an S3 prefix exists only through its objects.
    if listed.is_empty() && !is_local_folder(uri) {
        return Err(DatasetError::NotFound { uri: uri.to_owned() });
    }
    let base = uri.trim_end_matches('/');
    let prefix = path.as_ref();
    let mut objects: Vec<ListedObject> = listed
        .into_iter()
        .filter(|meta| has_extension(meta.location.as_ref(), extensions))
        .map(|meta| {
            let below = meta.location.as_ref().strip_prefix(prefix).unwrap_or(meta.location.as_ref());
            let below = below.trim_start_matches('/');
            ListedObject { uri: format!("{base}/{below}"), size_bytes: meta.size }
        })
        .collect();
    if objects.is_empty() {
        return Err(DatasetError::NoTables { uri: uri.to_owned(), extensions: describe(extensions) });
    }
    objects.sort_by(|left, right| left.uri.cmp(&right.uri));
    Ok(objects)
}

fn is_local_folder(uri: &str) -> bool {
    let path = match uri.split_once("://") {
        Some(("file", path)) => path,
        Some(_) => return false,
        None => uri,
    };
    std::path::Path::new(path).is_dir()
}

fn table_extensions(format: Option<&str>) -> &'static [&'static str] {
    match format {
        Some("csv") => &[".csv", ".csv.gz"],
        Some("parquet") => &[".parquet", ".pq"],
        _ => &[".csv", ".csv.gz", ".parquet", ".pq"],
    }
}

fn has_extension(name: &str, extensions: &[&str]) -> bool {
    let lower = name.to_ascii_lowercase();
    extensions.iter().any(|extension| lower.ends_with(extension))
}

fn describe(extensions: &[&str]) -> &'static str {
    match extensions.len() {
        2 if extensions[0] == ".csv" => "`.csv` or `.csv.gz`",
        2 => "`.parquet` or `.pq`",
        _ => "`.csv`, `.csv.gz`, `.parquet` or `.pq`",
    }
}

fn store_error(uri: &str, error: object_store::Error) -> DatasetError {
    match error {
        object_store::Error::NotFound { .. } => DatasetError::NotFound { uri: uri.to_owned() },
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            DatasetError::Denied { uri: uri.to_owned(), message: error.to_string() }
        }
        other => DatasetError::Unavailable { uri: uri.to_owned(), message: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &std::path::Path) -> String {
        format!("file://{}", path.display())
    }

    #[tokio::test]
    async fn one_object_is_the_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("train.csv");
        std::fs::write(&file, b"a\n1\n").unwrap();
        let listed = list_dataset(&uri(&file), None).await.unwrap();
        assert_eq!(listed, vec![ListedObject { uri: uri(&file), size_bytes: 4 }]);
    }

    #[tokio::test]
    async fn folder_lists_matching_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("more")).unwrap();
        std::fs::write(dir.path().join("part-1.csv"), b"a\n2\n").unwrap();
        std::fs::write(dir.path().join("part-0.csv.gz"), b"zz").unwrap();
        std::fs::write(dir.path().join("more/part-2.CSV"), b"a\n3\n4\n").unwrap();
        std::fs::write(dir.path().join("_SUCCESS"), b"").unwrap();
        std::fs::write(dir.path().join("part-3.parquet"), b"x").unwrap();

        let folder = uri(dir.path());
        let expected = vec![
            ListedObject { uri: format!("{folder}/more/part-2.CSV"), size_bytes: 6 },
            ListedObject { uri: format!("{folder}/part-0.csv.gz"), size_bytes: 2 },
            ListedObject { uri: format!("{folder}/part-1.csv"), size_bytes: 4 },
        ];
        assert_eq!(list_dataset(&folder, Some("csv")).await.unwrap(), expected);
        assert_eq!(list_dataset(&format!("{folder}/"), Some("csv")).await.unwrap(), expected);
        assert_eq!(list_dataset(&folder, None).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn folder_without_tables_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let error = list_dataset(&uri(dir.path()), Some("parquet")).await.unwrap_err();
        assert!(matches!(error, DatasetError::NoTables { .. }), "{error}");
        assert!(error.to_string().ends_with("contains no `.parquet` or `.pq` files"), "{error}");
        assert!(!error.is_transient());
    }

    #[tokio::test]
    async fn empty_local_folder_has_no_tables() {
        let dir = tempfile::tempdir().unwrap();
        let error = list_dataset(&uri(dir.path()), Some("csv")).await.unwrap_err();
        assert!(matches!(error, DatasetError::NoTables { .. }), "{error}");
    }

    #[tokio::test]
    async fn missing_uri_not_found() {
        let error = list_dataset("file:///nonexistent/ssl-dataset/train.csv", None).await.unwrap_err();
        assert!(matches!(error, DatasetError::NotFound { .. }), "{error}");
        assert!(error.to_string().contains("/nonexistent/ssl-dataset/train.csv"), "{error}");
    }

    #[tokio::test]
    async fn other_scheme_invalid() {
        let error = list_dataset("ftp://host/train.csv", None).await.unwrap_err();
        assert!(matches!(error, DatasetError::InvalidUri(_)), "{error}");
    }
}
