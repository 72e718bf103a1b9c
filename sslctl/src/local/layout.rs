//! The file layout of a local stack's directory.
//!
//! ```text
//! DIR/
//!   coordinator/        the coordinator's --data-dir: coordinator.db, checkpoints/
//!   logs/               coordinator.log, worker-1.log, ...
//!   api-token           bearer token of the API (mode 0600)
//!   join-token          join token of the workers (mode 0600)
//!   coordinator.address the coordinator's bound address, written by the coordinator
//!   stack.json          endpoint and process ids while the stack runs
//! ```

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The data directory of a local stack.
#[derive(Debug, Clone)]
pub struct StackDir {
    root: PathBuf,
}

impl StackDir {
    /// Creates the directory and its `logs/` folder when missing. The path is made
    /// absolute so that the children can be given it whatever their working folder.
    ///
    /// # Errors
    ///
    /// [`Error::WriteFile`] when a folder cannot be created.
    pub fn create(root: &Path) -> Result<Self, Error> {
        let root = std::path::absolute(root).map_err(|error| Error::WriteFile { path: root.to_owned(), error })?;
        let dir = StackDir { root };
        for folder in [dir.root.clone(), dir.logs(), dir.coordinator_data()] {
            std::fs::create_dir_all(&folder).map_err(|error| Error::WriteFile { path: folder.clone(), error })?;
        }
        Ok(dir)
    }

    /// Opens an existing directory without creating anything.
    pub fn open(root: &Path) -> Self {
        StackDir { root: std::path::absolute(root).unwrap_or_else(|_| root.to_owned()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn log(&self, process: &str) -> PathBuf {
        self.logs().join(format!("{process}.log"))
    }

    pub fn coordinator_data(&self) -> PathBuf {
        self.root.join("coordinator")
    }

    /// Folder the coordinator's default checkpoint root points at.
    pub fn checkpoints(&self) -> PathBuf {
        self.coordinator_data().join("checkpoints")
    }

    pub fn api_token_file(&self) -> PathBuf {
        self.root.join("api-token")
    }

    pub fn join_token_file(&self) -> PathBuf {
        self.root.join("join-token")
    }

    pub fn address_file(&self) -> PathBuf {
        self.root.join("coordinator.address")
    }

    pub fn state_file(&self) -> PathBuf {
        self.root.join("stack.json")
    }

    /// Returns the token in `path`, creating the file with a new random token, readable
    /// only by this user, when it does not exist yet.
    ///
    /// # Errors
    ///
    /// [`Error::WriteFile`] when the file cannot be read or created.
    pub fn token(&self, path: &Path) -> Result<String, Error> {
        let write_error = |error| Error::WriteFile { path: path.to_owned(), error };
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(write_error(error)),
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(write_error)?;
        writeln!(file, "{token}").map_err(write_error)?;
        Ok(token)
    }
}

/// Returns the default directory of `sslctl dev up`: `SSLCTL_DEV_DIR`, else
/// `$XDG_DATA_HOME/sslctl/dev`, else `~/.local/share/sslctl/dev`.
pub fn default_dev_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SSLCTL_DEV_DIR").filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|home| !home.is_empty()).map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(data_home.join("sslctl").join("dev"))
}
