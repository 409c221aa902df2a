//! Files and folders the product writes: never readable by other users, since they hold names
//! and addresses (owner-only, or, for the release files brokers and operators read, owner and
//! the service's group), and replaced atomically and durably, so that a reader never sees half a
//! file.

use std::fs;
use std::io::{self, BufWriter};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Who may read what the product writes, besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// The owner alone: files `0600`, folders `0700`.
    Owner,
    /// The owner and the group (the service's group under systemd): files `0640`, folders
    /// `0750`. Set explicitly, whatever the process's umask.
    OwnerAndGroup,
}

impl Readers {
    pub fn file_mode(self) -> u32 {
        match self {
            Readers::Owner => 0o600,
            Readers::OwnerAndGroup => 0o640,
        }
    }

    pub fn folder_mode(self) -> u32 {
        match self {
            Readers::Owner => 0o700,
            Readers::OwnerAndGroup => 0o750,
        }
    }
}

/// Creates `path` and its missing parents, readable by `readers`, and fsyncs the folders that
/// gained an entry. The modes are set whatever the umask; an existing `path` is given the mode
/// too (a folder an earlier build made owner-only), its existing parents are left as they are.
pub fn create_shared_dir(path: &Path, readers: Readers) -> io::Result<()> {
    let mode = fs::Permissions::from_mode(readers.folder_mode());
    if path.is_dir() {
        if fs::metadata(path)?.permissions().mode() & 0o7777 != readers.folder_mode() {
            fs::set_permissions(path, mode)?;
        }
        return Ok(());
    }
    let missing: Vec<&Path> = path.ancestors().take_while(|dir| !dir.exists()).collect();
    create_private_dir(path)?;
    for created in missing {
        fs::set_permissions(created, mode.clone())?;
        sync_dir(created)?;
    }
    Ok(())
}

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
    write_temporary_for(path, Readers::Owner, write)
}

/// [`write_temporary`], the file readable by `readers`, whatever the umask.
pub fn write_temporary_for(
    path: &Path,
    readers: Readers,
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
    if readers != Readers::Owner {
        // The mode given at creation passes through the umask (0077 under the unit); this
        // does not.
        handle.set_permissions(fs::Permissions::from_mode(readers.file_mode()))?;
    }
    let mut writer = BufWriter::with_capacity(1 << 20, handle);
    write(&mut writer)?;
    let handle = writer.into_inner().map_err(|error| error.into_error())?;
    handle.sync_all()?;
    Ok(temporary)
}

/// Whether the file at `path` exists, can be read, and holds exactly the bytes of `written`,
/// with the same permissions.
pub fn same_contents(written: &Path, path: &Path) -> io::Result<bool> {
    use std::io::Read;
    // A file that cannot be read (one copied back by another user, say) is replaced, as it
    // was before files were compared.
    let Ok(mut existing) = fs::File::open(path) else {
        return Ok(false);
    };
    let mut fresh = fs::File::open(written)?;
    let (Ok(old), Ok(new)) = (existing.metadata(), fresh.metadata()) else {
        return Ok(false);
    };
    if old.len() != new.len() || old.permissions() != new.permissions() {
        return Ok(false);
    }
    let (mut a, mut b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let read = fresh.read(&mut a)?;
        if read == 0 {
            return Ok(true);
        }
        if existing.read_exact(&mut b[..read]).is_err() || a[..read] != b[..read] {
            return Ok(false);
        }
    }
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
