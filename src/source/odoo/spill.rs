//! Spill files for streamed in-progress transactions (pgoutput protocol v2).
//!
//! The server streams a large transaction in chunks before it commits. Until its Stream Commit
//! arrives it may still abort, so its messages cannot be delivered yet; keeping them in memory
//! would make memory grow with the transaction. They are appended, raw, to a temporary file and
//! read back one message at a time when the transaction commits.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use bytes::Bytes;

/// The spilled messages of one streamed top-level transaction.
pub struct SpillFile {
    writer: BufWriter<File>,
    /// Subtransactions rolled back (Stream Abort with a subxid): their messages are skipped on replay.
    pub aborted_subxids: HashSet<u32>,
    pub origin: Option<String>,
    pub messages: u64,
}

impl SpillFile {
    pub fn create(dir: &std::path::Path) -> io::Result<SpillFile> {
        // An unnamed temporary file: the OS removes it however the process ends.
        let file = tempfile::tempfile_in(dir)?;
        Ok(SpillFile {
            writer: BufWriter::with_capacity(1 << 20, file),
            aborted_subxids: HashSet::new(),
            origin: None,
            messages: 0,
        })
    }

    pub fn append(&mut self, message: &[u8]) -> io::Result<()> {
        let len = u32::try_from(message.len()).map_err(|_| io::Error::other("message over 4 GiB"))?;
        self.writer.write_all(&len.to_le_bytes())?;
        self.writer.write_all(message)?;
        self.messages += 1;
        Ok(())
    }

    /// Finishes writing and returns a reader positioned at the first message.
    pub fn into_reader(self) -> io::Result<SpillReader> {
        let mut file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(SpillReader {
            reader: BufReader::with_capacity(1 << 20, file),
            remaining: self.messages,
            aborted_subxids: self.aborted_subxids,
        })
    }
}

/// Reads a committed streamed transaction back, message by message.
pub struct SpillReader {
    reader: BufReader<File>,
    remaining: u64,
    pub aborted_subxids: HashSet<u32>,
}

impl SpillReader {
    pub fn next_message(&mut self) -> io::Result<Option<Bytes>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.reader.read_exact(&mut len)?;
        let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
        self.reader.read_exact(&mut buf)?;
        self.remaining -= 1;
        Ok(Some(Bytes::from(buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_messages_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = SpillFile::create(dir.path()).unwrap();
        for i in 0..1000u32 {
            spill.append(&i.to_be_bytes()).unwrap();
        }
        spill.append(b"").unwrap();
        let mut reader = spill.into_reader().unwrap();
        for i in 0..1000u32 {
            assert_eq!(reader.next_message().unwrap().unwrap().as_ref(), i.to_be_bytes());
        }
        assert_eq!(reader.next_message().unwrap().unwrap().len(), 0);
        assert!(reader.next_message().unwrap().is_none());
    }
}
