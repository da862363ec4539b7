//! What the process learns about the machine it runs on. A leaf module, so that both the
//! model (which slices its work by cores) and the edges can use it without a cycle.

/// The cores this process may use, looked up once: `available_parallelism` reads the
/// cgroup's files on every call (tens of system calls), and a CSV history steps its fleet
/// thousands of times a second.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// How many files the process may have open, after raising its soft limit to the hard one:
/// the exporter holds a connection per file, and the usual soft limit (1,024) is below
/// what it serves at once.
pub fn open_files_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(raise_open_files_limit)
}

#[cfg(unix)]
fn raise_open_files_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        // An unlimited hard limit is not a soft one the kernel takes.
        let wanted = limit.rlim_max.min(65_536);
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

#[cfg(not(unix))]
fn raise_open_files_limit() -> usize {
    1024
}

/// Keeps the allocator to one arena a core. Scrapes are encoded on many threads at once
/// under load, and glibc's default of eight arenas a core would each keep freed memory, so
/// that the resident size after a load stayed well above the size before it. Called before
/// the threads start.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, cores().max(1) as libc::c_int);
    }
}
