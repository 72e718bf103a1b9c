//! Finding the `ssl-coordinator` and `ssl-worker` executables that a local stack runs.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// Returns the path of the executable `name`: beside the running `sslctl` first, as
/// `cargo build` places them, then on `PATH`.
///
/// # Errors
///
/// [`Error::Usage`] naming both places when the executable is in neither.
pub fn find(name: &str) -> Result<PathBuf, Error> {
    let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|folder| folder.join(name)));
    if let Some(path) = beside.as_ref().filter(|path| is_executable(path)) {
        return Ok(path.clone());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|folder| folder.join(name))
        .find(|path| is_executable(path));
    on_path.ok_or_else(|| {
        let folder = beside.as_ref().and_then(|path| path.parent()).map_or_else(|| "-".to_owned(), |path| path.display().to_string());
        Error::Usage(format!(
            "cannot find the `{name}` executable in {folder} or on PATH; build it with `cargo build --release` \
             and run target/release/sslctl"
        ))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}
