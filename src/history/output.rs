//! How a history reaches the disk.
//!
//! A history is hundreds of MB (1,000 servers over a day) to tens of GB (10,000 over a
//! week). Written through the page cache, it costs the kernel a page allocation per 4 KB
//! (a fifth of `generate`'s CPU, on the cores that compute the rows), evicts whatever the
//! machine had cached, and leaves all of it for the `fsync` before the rename to wait for.
//! So the rows are written with direct I/O where the file system allows it: in large
//! aligned blocks, from a thread of their own, while the next block fills. Elsewhere they
//! are written as usual, with the page cache flushed as the file grows.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

/// Bytes written between two background flushes of the page cache.
pub const WRITEBACK_EVERY: u64 = 32 << 20;

/// The bytes of one direct write.
pub const DIRECT_BLOCK: usize = 4 << 20;

/// What direct I/O needs buffers, lengths and offsets to be multiples of: a page covers
/// every logical block size in use.
const ALIGN: usize = 4096;

/// The file a history is written into, whichever way it goes.
pub enum Output<'s> {
    Direct(DirectWriter<'s>),
    Buffered(Writeback<'s>),
}

impl<'s> Output<'s> {
    /// Writes to `file`, whose path is `path`: directly through a second descriptor opened
    /// with `O_DIRECT` when the file system accepts it, else through `file` and the page
    /// cache. The threads they need live in `scope`.
    pub fn new(scope: &'s Scope<'s, '_>, file: &'s File, path: &Path) -> Output<'s> {
        match open_direct(path) {
            Some(direct) => Output::Direct(DirectWriter::new(scope, direct)),
            None => Output::Buffered(Writeback::new(scope, file)),
        }
    }

    /// Writes what is left and waits for it; the file then holds every byte written.
    pub fn finish(self) -> io::Result<()> {
        match self {
            Output::Direct(direct) => direct.finish(),
            Output::Buffered(_) => Ok(()),
        }
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Direct(w) => w.write(buf),
            Output::Buffered(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

/// A block-sized buffer whose region starts on an [`ALIGN`] boundary: the vector is a
/// little longer than the block, and the region starts where the alignment falls.
struct AlignedBlock {
    bytes: Vec<u8>,
    start: usize,
}

impl AlignedBlock {
    fn new() -> AlignedBlock {
        let bytes = vec![0u8; DIRECT_BLOCK + ALIGN];
        let start = bytes.as_ptr().align_offset(ALIGN);
        AlignedBlock { bytes, start }
    }

    fn region(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + DIRECT_BLOCK]
    }
}

/// Writes through a descriptor opened with `O_DIRECT`: bytes are gathered into an aligned
/// block, and each full block goes to a thread that writes it while the next one fills.
/// The last block is padded to the alignment, and the file cut back to its length.
pub struct DirectWriter<'s> {
    file: Arc<File>,
    block: AlignedBlock,
    filled: usize,
    written: u64,
    full: SyncSender<(AlignedBlock, usize)>,
    empty: Receiver<AlignedBlock>,
    /// Why the writing thread stopped, for the write that finds it gone (a full disk, say:
    /// the cause, not that the thread is gone).
    failure: Arc<Mutex<Option<io::Error>>>,
    writer: ScopedJoinHandle<'s, ()>,
}

/// Blocks in rotation: one filling, one being written, one waiting to be.
const BLOCKS: usize = 3;

impl<'s> DirectWriter<'s> {
    fn new(scope: &'s Scope<'s, '_>, file: File) -> DirectWriter<'s> {
        let file = Arc::new(file);
        let out = Arc::clone(&file);
        let (full, blocks) = std::sync::mpsc::sync_channel::<(AlignedBlock, usize)>(1);
        let (give_back, empty) = std::sync::mpsc::channel();
        for _ in 1..BLOCKS {
            let _ = give_back.send(AlignedBlock::new());
        }
        let failure = Arc::new(Mutex::new(None));
        let failed = Arc::clone(&failure);
        let writer = scope.spawn(move || {
            for (mut block, len) in blocks {
                if let Err(e) = (&*out).write_all(&block.region()[..len]) {
                    // Kept before `give_back` is dropped, so that whoever finds the thread
                    // gone finds why.
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    return;
                }
                // The writer may have stopped taking blocks back: then this one is dropped.
                let _ = give_back.send(block);
            }
        });
        DirectWriter {
            file,
            block: AlignedBlock::new(),
            filled: 0,
            written: 0,
            full,
            empty,
            failure,
            writer,
        }
    }

    /// The error the writing thread stopped on.
    fn failure(&self) -> io::Error {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| io::Error::other("the history's writer stopped"))
    }

    /// Hands the current block (its first `len` bytes, a multiple of the alignment) to the
    /// writing thread, and takes an empty one back.
    fn hand_over(&mut self, len: usize) -> io::Result<()> {
        let next = match self.empty.recv() {
            Ok(block) => block,
            Err(_) => return Err(self.failure()),
        };
        let block = std::mem::replace(&mut self.block, next);
        if self.full.send((block, len)).is_err() {
            return Err(self.failure());
        }
        self.filled = 0;
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        let tail = self.filled;
        let padded = tail.div_ceil(ALIGN) * ALIGN;
        self.block.region()[tail..padded].fill(0);
        let handed = if padded > 0 {
            self.hand_over(padded)
        } else {
            Ok(())
        };
        drop(self.full);
        if self.writer.join().is_err() {
            return Err(io::Error::other("the history's writer panicked"));
        }
        // The thread's own error comes first: it is the cause of a failed hand-over.
        if let Some(e) = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(e);
        }
        handed?;
        // The padding goes: the file ends at its last byte.
        self.file.set_len(self.written + tail as u64)
    }
}

impl Write for DirectWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(DIRECT_BLOCK - self.filled);
        let filled = self.filled;
        self.block.region()[filled..filled + n].copy_from_slice(&buf[..n]);
        self.filled += n;
        if self.filled == DIRECT_BLOCK {
            self.hand_over(DIRECT_BLOCK)?;
            self.written += DIRECT_BLOCK as u64;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file writer whose data goes to the disk while the rest is still being written: every
/// [`WRITEBACK_EVERY`] bytes a thread of its own flushes what is written so far, so the
/// `fsync` before the rename does not wait for all of it at the end, with the cores idle.
pub struct Writeback<'s> {
    file: &'s File,
    unflushed: u64,
    flush: SyncSender<()>,
    /// Flushes asked for so far.
    requested: u64,
}

impl<'s> Writeback<'s> {
    pub fn new(scope: &'s Scope<'s, '_>, file: &'s File) -> Writeback<'s> {
        // One request waits at most: a flush asked for while one runs is merged into it.
        let (flush, requests) = std::sync::mpsc::sync_channel::<()>(1);
        scope.spawn(move || {
            for () in requests {
                // A failure shows again, and is reported, at the final sync.
                let _ = file.sync_data();
            }
        });
        Writeback {
            file,
            unflushed: 0,
            flush,
            requested: 0,
        }
    }
}

impl Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unflushed += n as u64;
        if self.unflushed >= WRITEBACK_EVERY {
            self.unflushed = 0;
            self.requested += 1;
            let _ = self.flush.try_send(());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `chunks` copies of an odd-sized chunk through `output`, and checks the file.
    fn round_trip(direct: bool, chunks: usize) {
        let temp = tempfile::NamedTempFile::new().unwrap();
        let chunk: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        std::thread::scope(|scope| {
            let mut out = if direct {
                let file = open_direct(temp.path()).expect("direct I/O on this file system");
                Output::Direct(DirectWriter::new(scope, file))
            } else {
                Output::Buffered(Writeback::new(scope, temp.as_file()))
            };
            for _ in 0..chunks {
                out.write_all(&chunk).unwrap();
            }
            if let Output::Buffered(w) = &out {
                assert_eq!(w.requested, (chunks * chunk.len()) as u64 / WRITEBACK_EVERY);
            }
            out.finish().unwrap();
        });
        let written = std::fs::read(temp.path()).unwrap();
        assert_eq!(written.len(), chunks * chunk.len(), "direct: {direct}");
        assert!(written.chunks(chunk.len()).all(|c| c == chunk));
    }

    #[test]
    fn buffered_writes_everything_and_flushes_as_it_goes() {
        round_trip(false, (2 * WRITEBACK_EVERY as usize) / 1_000_003 + 3);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_full_disk_says_so_whichever_way_the_bytes_go() {
        // /dev/full takes no byte: every write fails as on a full disk. Whether the write
        // that finds the writing thread gone or `finish` sees it, the error is the disk's.
        for chunks in [1, 9] {
            let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
            let full = full.expect("/dev/full opens for writing");
            let e = std::thread::scope(|scope| {
                let mut out = DirectWriter::new(scope, full);
                let chunk = vec![7u8; 1_000_003];
                let written = (0..chunks).try_for_each(|_| out.write_all(&chunk));
                written.and_then(|()| out.finish()).unwrap_err()
            });
            assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{chunks} chunks: {e}");
            let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
            let full = full.unwrap();
            let e = std::thread::scope(|scope| {
                let mut out = Writeback::new(scope, &full);
                out.write_all(&[7u8; 100_000]).unwrap_err()
            });
            assert_eq!(e.kind(), io::ErrorKind::StorageFull, "buffered: {e}");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn direct_writes_everything_and_only_that() {
        // Several blocks and a padded tail; less than a block; nothing at all.
        for chunks in [9, 1, 0] {
            round_trip(true, chunks);
        }
    }
}
