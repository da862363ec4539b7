//! The temporary files of a run: each made beside its target, renamed into place once
//! whole, removed when the run fails or is interrupted, and, when a killed run left one,
//! removed by the next run to the same target.
//!
//! A temporary lives beside its target, in the same file system, so that the rename is
//! atomic and a history of tens of GB is never copied; it is hidden and named after its
//! target, `.NAME.XXXXXX.tmp`. A run holds an exclusive lock (`flock`) on each of its
//! temporaries while it writes, and the kernel drops the lock however the run ends, even
//! by SIGKILL: so a temporary of that pattern that can be locked belongs to no live run,
//! and is a leftover. A run removes those of its own targets before it starts, never a
//! file of another name, nor one a concurrent run is writing.

use std::ffi::OsStr;
use std::fs::{File, TryLockError};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use signal_hook::consts::{SIGINT, SIGTERM};
use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// The random letters and digits in a temporary's name (`.NAME.XXXXXX.tmp`).
const RANDOM_CHARS: usize = 6;
const SUFFIX: &str = ".tmp";

/// Whether `file_name` is a temporary that a run writing `target` (a file name) makes.
pub fn is_temp_of(file_name: &OsStr, target: &OsStr) -> bool {
    let (Some(name), Some(target)) = (file_name.to_str(), target.to_str()) else {
        return false;
    };
    let Some(rest) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_prefix(target))
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(SUFFIX))
    else {
        return false;
    };
    rest.len() == RANDOM_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The folder `out` goes in: its parent, or the working folder.
pub fn folder_of(out: &Path) -> &Path {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes the temporaries of `out` in its folder that no running process holds: what a
/// killed run left. Returns the names removed.
pub fn remove_leftovers(out: &Path) -> Vec<PathBuf> {
    let (dir, Some(target)) = (folder_of(out), out.file_name()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| is_temp_of(&entry.file_name(), target))
        .map(|entry| entry.path())
        .filter(|path| remove_if_abandoned(path))
        .collect()
}

/// Removes the temporary at `path` if it is a plain file no process holds a lock on.
fn remove_if_abandoned(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.file_type().is_file() {
        return false;
    }
    let Ok(file) = open_no_follow(path) else {
        return false;
    };
    match file.try_lock() {
        // Locked, and still the file at that name: nobody writes it.
        Ok(()) if same_file(&file, path) => std::fs::remove_file(path).is_ok(),
        Ok(()) | Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// Whether `path` names the file `file` has open.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// A new temporary beside `out`, locked (see the module's documentation); `out`'s folder
/// is created if missing.
pub fn temp_beside(out: &Path) -> Result<NamedTempFile> {
    let dir = folder_of(out);
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Runtime(format!("cannot create the folder {}: {e}", dir.display())))?;
    let cannot = |e: std::io::Error| Error::Runtime(format!("cannot write {}: {e}", out.display()));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&prefix)
        .rand_bytes(RANDOM_CHARS)
        .suffix(SUFFIX);
    // A temporary file is private (0600); the history is an ordinary file, readable as the
    // umask allows, as by a container reading it as another user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Between its creation and its lock, another run's clean-up may take a new temporary
    // for a leftover and remove it: then it is made again.
    for _ in 0..8 {
        let temp = builder.tempfile_in(dir).map_err(cannot)?;
        if temp.as_file().try_lock().is_ok() && same_file(temp.as_file(), temp.path()) {
            return Ok(temp);
        }
    }
    Err(cannot(std::io::Error::other(
        "its temporary file was removed as it was made, again and again",
    )))
}

/// What a run has on the disk: the temporaries being written, until they are renamed into
/// place together.
enum Stage {
    Writing(Vec<PathBuf>),
    Committed,
}

/// A run that writes its targets through temporaries: on SIGINT or SIGTERM, whatever the
/// run is computing, a thread of its own removes them, says so in one line and exits with
/// 128 plus the signal's number (130, 143), as a shell reports a process the signal ended.
/// Waiting for the computation to look at a flag could take minutes (a warm start, a
/// long stretch of grid points between two rows), and a run that is told to stop should.
pub struct Run {
    stage: Arc<Mutex<Stage>>,
}

impl Run {
    /// Starts listening for SIGINT and SIGTERM; `out` is what the interrupted run names.
    pub fn start(out: &Path) -> Result<Run> {
        let stage = Arc::new(Mutex::new(Stage::Writing(Vec::new())));
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
            .map_err(|e| Error::Runtime(format!("cannot listen for SIGINT and SIGTERM: {e}")))?;
        let held = Arc::clone(&stage);
        let out = out.display().to_string();
        std::thread::spawn(move || {
            for signal in signals.forever() {
                let stage = held.lock().unwrap_or_else(|p| p.into_inner());
                let Stage::Writing(temps) = &*stage else {
                    // Everything is in place: the run ends as it would have.
                    continue;
                };
                for temp in temps {
                    let _ = std::fs::remove_file(temp);
                }
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                // Over the progress bar, if one is drawn.
                let clear = if std::io::stderr().is_terminal() {
                    "\r\x1b[2K"
                } else {
                    ""
                };
                eprintln!("{clear}fleetsim: interrupted by {name}: {out} was not written");
                // The lock is held to the end: no rename can start meanwhile.
                std::process::exit(128 + signal);
            }
        });
        Ok(Run { stage })
    }

    /// A new temporary beside `out`, removed if the run is interrupted; a killed run's
    /// leftovers beside `out` are removed first.
    pub fn temp_beside(&self, out: &Path) -> Result<NamedTempFile> {
        for left in remove_leftovers(out) {
            eprintln!(
                "fleetsim: removed {}, left by a run that was killed",
                left.display()
            );
        }
        let temp = temp_beside(out)?;
        if let Stage::Writing(temps) = &mut *self.lock() {
            temps.push(temp.path().to_path_buf());
        }
        Ok(temp)
    }

    /// Renames each temporary to its target, in order, with no signal acted on meanwhile.
    pub fn commit(&self, files: Vec<(NamedTempFile, &Path)>) -> Result<()> {
        let mut stage = self.lock();
        for (temp, out) in files {
            if let Err(e) = temp.persist(out) {
                // The others are removed as they are dropped.
                return Err(Error::Runtime(format!(
                    "cannot write {}: {}",
                    out.display(),
                    e.error
                )));
            }
        }
        *stage = Stage::Committed;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stage> {
        self.stage.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_targets_own_temporaries_match() {
        let target = OsStr::new("h.csv");
        for name in [".h.csv.Ab3dE9.tmp", ".h.csv.000000.tmp"] {
            assert!(is_temp_of(OsStr::new(name), target), "{name}");
        }
        for name in [
            "h.csv",
            ".h.csv.tmp",
            ".h.csv.Ab3dE.tmp",
            ".h.csv.Ab3dE9x.tmp",
            ".h.csv.Ab-dE9.tmp",
            "h.csv.Ab3dE9.tmp",
            ".h.csv.Ab3dE9.tmpx",
            ".h.csv.events.csv.Ab3dE9.tmp",
            ".x.h.csv.Ab3dE9.tmp",
            ".h.csvAb3dE9.tmp",
        ] {
            assert!(!is_temp_of(OsStr::new(name), target), "{name}");
        }
        // The answer key's temporaries are its own target's.
        assert!(is_temp_of(
            OsStr::new(".h.events.csv.Ab3dE9.tmp"),
            OsStr::new("h.events.csv")
        ));
    }

    #[test]
    fn a_leftover_goes_and_a_live_temporary_and_other_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("h.csv");
        let leftover = dir.path().join(".h.csv.Zz9Yy8.tmp");
        std::fs::write(&leftover, "half a history").unwrap();
        let others = [".h.csv.Zz9Yy8.tmp.keep", ".other.csv.Zz9Yy8.tmp", "h.csv"];
        for name in others {
            std::fs::write(dir.path().join(name), "mine").unwrap();
        }
        // A directory and a symbolic link of the pattern are not files a run made.
        std::fs::create_dir(dir.path().join(".h.csv.Dir000.tmp")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            dir.path().join("h.csv"),
            dir.path().join(".h.csv.Link00.tmp"),
        )
        .unwrap();
        let live = temp_beside(&out).unwrap();

        assert_eq!(remove_leftovers(&out), std::slice::from_ref(&leftover));
        assert!(!leftover.exists());
        assert!(live.path().exists(), "a live run's temporary was removed");
        for name in others {
            assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), b"mine");
        }
        assert!(dir.path().join(".h.csv.Dir000.tmp").is_dir());
        #[cfg(unix)]
        assert!(dir.path().join(".h.csv.Link00.tmp").is_symlink());

        // Once its run has gone (the lock goes with its file), it is a leftover too.
        let path = live.path().to_path_buf();
        let (file, kept) = live.keep().unwrap();
        drop(file);
        assert_eq!(remove_leftovers(&out), [kept]);
        assert!(!path.exists());
    }
}
