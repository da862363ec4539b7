//! What the process learns about the machine it runs on. A leaf module, so that both the
//! model (which slices its work by cores) and the edges can use it without a cycle.

/// The cores this process may use, looked up once: `available_parallelism` reads the
/// cgroup's files on every call (tens of system calls), and a CSV history steps its fleet
/// thousands of times a second.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
