//! Files and folders the product writes: owner-only, since they hold names and addresses, and
//! replaced atomically and durably, so that a reader never sees half a file.

use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

/// Creates `path` and its missing parents, owner-only, and fsyncs the folders that gained an
/// entry, so that the new folders survive power loss. An existing folder is left as it is.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = path.ancestors().take_while(|dir| !dir.exists()).collect();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    for created in missing {
        if let Some(parent) = created
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Replaces `path` with what `write` streams through a buffer: written to a temporary file
/// beside it, fsynced, renamed over it, and the folder fsynced. The file is owner-only.
pub fn replace_durably_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    let temporary = write_temporary(path, write)?;
    rename_durably(&temporary, path)
}

/// Writes and fsyncs the temporary file that will replace `path`, owner-only, and returns its
/// name; [`rename_durably`] puts it in place.
pub fn write_temporary(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<()>,
) -> io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    let temporary = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let handle = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    let mut writer = BufWriter::with_capacity(1 << 20, handle);
    write(&mut writer)?;
    let handle = writer.into_inner().map_err(|error| error.into_error())?;
    handle.sync_all()?;
    Ok(temporary)
}

/// Renames a written temporary file over `path` and fsyncs the folder.
pub fn rename_durably(temporary: &Path, path: &Path) -> io::Result<()> {
    fs::rename(temporary, path)?;
    let folder = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync_dir(folder)
}

/// fsyncs a folder, so that the names in it (created, renamed, removed) survive power loss.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    fs::File::open(path)?.sync_all()
}
