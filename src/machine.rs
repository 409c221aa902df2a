//! What the machine offers the process: its cores, read once (on Linux each reading walks the
//! cgroup files, which costs more than parsing a short order).

use std::sync::OnceLock;

/// How many threads can run at once, at least 1.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}
