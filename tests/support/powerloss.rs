//! Power loss, simulated: a process runs with `powerloss_shim.c` preloaded, which records what
//! each successful fsync made durable under a folder; [`Disk::lose_power`] then puts that folder
//! back as a disk would find it after losing power: each file as it was at its last fsync (or
//! as it was before the run), each folder holding the names it had at its last fsync (or before
//! the run). Every write that was not synced is lost, the strictest reading of POSIX.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A file or folder, as `<device>-<inode>`.
type Node = String;

/// The preloadable library, built once per test binary with the system's C compiler.
pub fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/powerloss_shim.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("powerloss_shim-{}.so", std::process::id()));
        let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&source)
            .arg("-ldl")
            .output()
            .expect("run the C compiler (cc) to build the power-loss shim");
        assert!(
            output.status.success(),
            "building {}: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        out
    })
}

/// A folder whose durable state is tracked across the runs of processes in it.
pub struct Disk {
    root: PathBuf,
    record: tempfile::TempDir,
    before: Image,
}

impl Disk {
    /// Starts tracking `root`: what it holds now counts as durable (as if synced).
    pub fn new(root: &Path) -> Disk {
        let root = root.canonicalize().expect("canonical root");
        let before = Image::scan(&root);
        Disk {
            root,
            record: tempfile::tempdir().expect("record folder"),
            before,
        }
    }

    /// Makes `command` record its fsyncs under the root.
    pub fn watch(&self, command: &mut Command) {
        command
            .env("LD_PRELOAD", shim())
            .env("POWERLOSS_ROOT", &self.root)
            .env("POWERLOSS_RECORD", self.record.path());
        // `journal`: names are durable with any fsync, as on ext4 or XFS; by default only once
        // their folder is fsynced.
        if let Some(model) = std::env::var_os("BORDER_RELEASE_POWER_DIRS") {
            command.env("POWERLOSS_DIRS", model);
        }
    }

    /// Counts what is now in the root as durable, from here on: for work done between runs by
    /// the test itself (which does not fsync), or after a clean shutdown that fsynced.
    pub fn settle(&mut self) {
        for entry in fs::read_dir(self.record.path()).expect("read records") {
            fs::remove_file(entry.expect("record").path()).expect("remove record");
        }
        self.before = Image::scan(&self.root);
    }

    /// Power fails: the root is put back as the disk would hold it, and that is durable from
    /// here on. Returns how many files lost bytes or vanished.
    pub fn lose_power(&mut self) -> usize {
        let mut image = self.before.clone();
        for entry in fs::read_dir(self.record.path()).expect("read records") {
            let entry = entry.expect("record");
            let name = entry.file_name().into_string().expect("record name");
            if name.starts_with('.') {
                continue; // a record still being written when the process was killed
            }
            let bytes = fs::read(entry.path()).expect("read record");
            let (kind, node) = name.split_at(1);
            match kind {
                "f" => {
                    image.files.insert(node.to_owned(), bytes);
                }
                "d" => {
                    let listing = String::from_utf8(bytes).expect("folder record is text");
                    image.dirs.insert(node.to_owned(), parse_listing(&listing));
                }
                other => panic!("unknown record kind {other}"),
            }
        }
        let now = Image::scan(&self.root);
        let kept: HashMap<PathBuf, Node> = image.paths(&image.root).into_iter().collect();
        let changed = now
            .paths(&now.root)
            .into_iter()
            .filter(|(path, node)| {
                kept.get(path)
                    .is_none_or(|kept| image.files.get(kept) != now.files.get(node))
            })
            .count();
        image.write(&self.root);
        self.settle();
        changed
    }
}

fn parse_listing(text: &str) -> Vec<Entry> {
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let kind = parts.next().expect("kind");
            let node = parts.next().expect("node").to_owned();
            let name = parts.next().expect("name").to_owned();
            Entry {
                folder: kind == "d",
                node,
                name,
            }
        })
        .collect()
}

#[derive(Clone, Debug)]
struct Entry {
    folder: bool,
    node: Node,
    name: String,
}

/// A folder tree by node: each folder's entries and each file's bytes.
#[derive(Clone, Default)]
struct Image {
    root: Node,
    dirs: HashMap<Node, Vec<Entry>>,
    files: HashMap<Node, Vec<u8>>,
}

fn node_of(metadata: &fs::Metadata) -> Node {
    format!("{}-{}", metadata.dev(), metadata.ino())
}

impl Image {
    fn scan(root: &Path) -> Image {
        let mut image = Image {
            root: node_of(&fs::metadata(root).expect("root")),
            ..Image::default()
        };
        image.scan_dir(root);
        image
    }

    fn scan_dir(&mut self, dir: &Path) {
        let node = node_of(&fs::metadata(dir).expect("folder"));
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).expect("read folder") {
            let entry = entry.expect("entry");
            let metadata = fs::symlink_metadata(entry.path()).expect("entry metadata");
            let name = entry.file_name().into_string().expect("UTF-8 name");
            if metadata.is_dir() {
                self.scan_dir(&entry.path());
            } else if metadata.is_file() {
                let bytes = fs::read(entry.path()).expect("read file");
                self.files.insert(node_of(&metadata), bytes);
            } else {
                continue; // sockets and the like do not survive power loss
            }
            entries.push(Entry {
                folder: metadata.is_dir(),
                node: node_of(&metadata),
                name,
            });
        }
        self.dirs.insert(node, entries);
    }

    /// Every file under `dir` by its path relative to the root, with its node.
    fn paths(&self, dir: &Node) -> Vec<(PathBuf, Node)> {
        let mut out = Vec::new();
        for entry in self.dirs.get(dir).into_iter().flatten() {
            if entry.folder {
                out.extend(
                    self.paths(&entry.node)
                        .into_iter()
                        .map(|(path, node)| (Path::new(&entry.name).join(path), node)),
                );
            } else {
                out.push((PathBuf::from(&entry.name), entry.node.clone()));
            }
        }
        out
    }

    /// Replaces what is under `root` with this image. A file whose name survived but whose
    /// bytes were never synced is empty; a folder never synced holds nothing.
    fn write(&self, root: &Path) {
        for entry in fs::read_dir(root).expect("read root") {
            let path = entry.expect("entry").path();
            if fs::symlink_metadata(&path).expect("metadata").is_dir() {
                fs::remove_dir_all(&path).expect("clear folder");
            } else {
                fs::remove_file(&path).expect("clear file");
            }
        }
        self.write_dir(&self.root, root);
    }

    fn write_dir(&self, node: &Node, path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        for entry in self.dirs.get(node).into_iter().flatten() {
            let target = path.join(&entry.name);
            if entry.folder {
                fs::create_dir(&target).expect("make folder");
                fs::set_permissions(&target, fs::Permissions::from_mode(0o700))
                    .expect("folder mode");
                self.write_dir(&entry.node, &target);
            } else {
                let bytes = self.files.get(&entry.node).map_or(&[][..], Vec::as_slice);
                fs::write(&target, bytes).expect("write file");
                fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("file mode");
            }
        }
    }
}
