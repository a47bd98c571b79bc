//! The on-disk log: a magic header, then records framed as `len u32 LE | crc32 u32 LE | body`.
//! A crash can leave a torn last record (or garbage after it); reading stops at the first frame
//! that is short or fails its checksum, and the file is cut back to the last good record.
//! Compaction replaces the whole file atomically: temp file, fsync, rename, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

pub const MAGIC: &[u8; 8] = b"SMQLOG1\n";
const HEADER: usize = 8;
/// A length past this is garbage, not a record: nothing we write comes close.
const MAX_RECORD: usize = 1 << 30;

/// Appends one framed record to `out`.
pub fn frame(body: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// Fills in the header of a frame built in place: `frame` is 8 bytes to fill, then the body.
pub fn seal_frame(frame: &mut [u8]) {
    let (head, body) = frame.split_at_mut(8);
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
}

/// The record bodies of a whole log file's contents, and the length of its good prefix.
/// Err when the file is not one of ours (its header is not the magic).
pub fn parse(data: &[u8]) -> Result<(Vec<&[u8]>, usize), &'static str> {
    if data.len() < HEADER {
        // A crash while writing the header of a fresh log: nothing was in it yet.
        return if MAGIC.starts_with(data) {
            Ok((Vec::new(), 0))
        } else {
            Err("not an smq persistence log")
        };
    }
    if &data[..HEADER] != MAGIC {
        return Err("not an smq persistence log");
    }
    let mut records = Vec::new();
    let mut at = HEADER;
    while let Some(head) = data.get(at..at + 8) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD {
            break;
        }
        let Some(body) = data.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        records.push(body);
        at += 8 + len;
    }
    Ok((records, at))
}

/// Reads the log at `path` (an absent file is an empty log).
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut data = Vec::new();
            f.read_to_end(&mut data)?;
            Ok(data)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Replaces `dir/name` with a log holding `records` (already framed), crash-safely: a crash
/// at any point leaves either the old file or the new one. Returns the new file, open for
/// appending, and its length.
pub fn replace(dir: &Path, name: &str, records: &[u8]) -> io::Result<(File, u64)> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(MAGIC)?;
    f.write_all(records)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()?;
    let len = (HEADER + records.len()) as u64;
    Ok((f, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(bodies: &[&[u8]]) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        for b in bodies {
            frame(b, &mut data);
        }
        data
    }

    #[test]
    fn records_read_back_in_order() {
        let data = log_of(&[b"one", b"", b"three"]);
        let (records, good) = parse(&data).unwrap();
        assert_eq!(records, [&b"one"[..], b"", b"three"]);
        assert_eq!(good, data.len());
    }

    #[test]
    fn a_torn_tail_is_cut_at_every_length() {
        let whole = log_of(&[b"first", b"second record"]);
        let first_end = HEADER + 8 + 5;
        for cut in first_end..whole.len() {
            let (records, good) = parse(&whole[..cut]).unwrap();
            assert_eq!(records, [&b"first"[..]], "cut at {cut}");
            assert_eq!(good, first_end);
        }
        for cut in 0..HEADER {
            assert_eq!(parse(&whole[..cut]).unwrap(), (vec![], 0));
        }
    }

    #[test]
    fn a_bad_checksum_ends_the_log_there() {
        let mut data = log_of(&[b"good", b"flipped", b"after"]);
        let flipped = HEADER + 8 + 4 + 8;
        data[flipped] ^= 0x01;
        let (records, good) = parse(&data).unwrap();
        assert_eq!(records, [&b"good"[..]]);
        assert_eq!(good, HEADER + 8 + 4);
        // A length too large to be real is garbage too.
        let mut data = log_of(&[b"good"]);
        data.extend_from_slice(&u32::MAX.to_le_bytes());
        data.extend_from_slice(&[0; 12]);
        assert_eq!(parse(&data).unwrap().0, [&b"good"[..]]);
    }

    #[test]
    fn a_foreign_file_is_refused() {
        assert!(parse(b"SQLite format 3\0").is_err());
        assert!(parse(b"xy").is_err());
    }

    #[test]
    fn replace_is_atomic_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut recs = Vec::new();
        frame(b"old", &mut recs);
        replace(dir.path(), "log", &recs).unwrap();
        // A compaction that crashed before its rename leaves a temp file and the old log.
        fs::write(dir.path().join("log.tmp"), b"half a snapsh").unwrap();
        let data = read(&dir.path().join("log")).unwrap();
        assert_eq!(parse(&data).unwrap().0, [&b"old"[..]]);
        let mut recs = Vec::new();
        frame(b"new", &mut recs);
        let (mut f, len) = replace(dir.path(), "log", &recs).unwrap();
        f.write_all(&{
            let mut more = Vec::new();
            frame(b"appended", &mut more);
            more
        })
        .unwrap();
        assert_eq!(len, (HEADER + recs.len()) as u64);
        let data = read(&dir.path().join("log")).unwrap();
        assert_eq!(parse(&data).unwrap().0, [&b"new"[..], b"appended"]);
        assert!(!dir.path().join("log.tmp").exists());
    }
}
