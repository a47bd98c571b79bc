//! The on-disk log: a magic header, then records framed as `len u32 LE | crc32 u32 LE | body`,
//! the checksum over the length and the body (so a zero-filled region, which a filesystem can
//! leave after power loss, is no frame: its checksum would be that of a zero length).
//! A crash can leave a torn last record (or garbage after it); reading stops at the first frame
//! that is short or fails its checksum, and the file is cut back to the last good record. A
//! bad frame before a checkpoint that vouches for it (every write starts with one saying how far
//! the file was on disk, and a compacted file ends with one) is not a torn write but damage:
//! reading refuses it. Compaction replaces the whole file atomically: temp file, fsync, rename,
//! fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

pub const MAGIC: &[u8; 8] = b"SMQLOG2\n";
/// Version 1 (smq before the checksum covered the length): still read, rewritten as 2.
const MAGIC_V1: &[u8; 8] = b"SMQLOG1\n";
const HEADER: usize = 8;
/// A length past this is garbage, not a record: nothing we write comes close.
const MAX_RECORD: usize = 1 << 30;

fn checksum(len: &[u8], body: &[u8], v1: bool) -> u32 {
    let mut h = crc32fast::Hasher::new();
    if !v1 {
        h.update(len);
    }
    h.update(body);
    h.finalize()
}

/// Appends one framed record to `out`.
pub fn frame(body: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(body);
    seal_frame(&mut out[start..]);
}

/// Fills in the header of a frame built in place: `frame` is 8 bytes to fill, then the body.
pub fn seal_frame(frame: &mut [u8]) {
    let (head, body) = frame.split_at_mut(8);
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes();
    head[..4].copy_from_slice(&len);
    head[4..].copy_from_slice(&checksum(&len, body, false).to_le_bytes());
}

/// Why a log cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    Foreign,
    /// A bad frame at this byte offset, with intact frames after it.
    Damaged(usize),
}

/// The frame at `at`, if there is an intact one: its body.
fn frame_at(data: &[u8], at: usize, v1: bool) -> Option<&[u8]> {
    let head = data.get(at..at + 8)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    // Every record has a tag byte: an empty frame is zero fill.
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let body = data.get(at + 8..at + 8 + len)?;
    (checksum(&head[..4], body, v1) == crc).then_some(body)
}

/// The record bodies of a whole log file's contents, and the length of its good prefix.
pub fn parse(data: &[u8]) -> Result<(Vec<&[u8]>, usize), Unreadable> {
    if data.len() < HEADER {
        // A crash while writing the header of a fresh log: nothing was in it yet.
        return if MAGIC.starts_with(data) || MAGIC_V1.starts_with(data) {
            Ok((Vec::new(), 0))
        } else {
            Err(Unreadable::Foreign)
        };
    }
    let v1 = match &data[..HEADER] {
        h if h == MAGIC => false,
        h if h == MAGIC_V1 => true,
        _ => return Err(Unreadable::Foreign),
    };
    let mut records = Vec::new();
    let mut at = HEADER;
    while let Some(body) = frame_at(data, at, v1) {
        if checkpoint_of(body).is_none() {
            records.push(body);
        }
        at += 8 + body.len();
    }
    // Past a bad frame, an intact checkpoint saying the file was on disk beyond it means
    // acknowledged records were damaged, which must not be dropped without a word. Intact
    // frames without one can be a torn write: the pages of a write not yet fsync'd reach
    // the disk in any order. (Version 1 had no checkpoints: any intact frame counts.)
    let vouched = |later: usize| {
        // Only a 9-byte frame can be a checkpoint: the scan stays linear in the tail's size.
        let may_be_checkpoint = data.get(later..later + 4) == Some(&[9, 0, 0, 0][..]);
        (v1 || may_be_checkpoint)
            && frame_at(data, later, v1).is_some_and(|body| {
                v1 || checkpoint_of(body).is_some_and(|on_disk| on_disk > at as u64)
            })
    };
    if (at + 1..data.len()).any(vouched) {
        return Err(Unreadable::Damaged(at));
    }
    Ok((records, at))
}

/// The tag of a checkpoint, a frame of the log itself rather than a record: written ahead of
/// each write, it says how long the file was once the previous one was fsync'd.
const CHECKPOINT: u8 = 0;

/// Appends a checkpoint frame: the file is on disk up to `len`.
pub fn checkpoint(len: u64, out: &mut Vec<u8>) {
    let mut body = [0; 9];
    body[0] = CHECKPOINT;
    body[1..].copy_from_slice(&len.to_le_bytes());
    frame(&body, out);
}

fn checkpoint_of(body: &[u8]) -> Option<u64> {
    match body {
        [CHECKPOINT, len @ ..] => Some(u64::from_le_bytes(len.try_into().ok()?)),
        _ => None,
    }
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
///
/// The records end with a checkpoint covering all of them: the file is fsync'd whole before
/// it takes the log's name, so none of it can be a torn write, and a bad frame in it is
/// damage to refuse rather than a tail to cut off.
pub fn replace(dir: &Path, name: &str, records: &[u8]) -> io::Result<(File, u64)> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)?;
    let mut trailer = Vec::new();
    checkpoint((HEADER + records.len()) as u64, &mut trailer);
    f.write_all(MAGIC)?;
    f.write_all(records)?;
    f.write_all(&trailer)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()?;
    let len = (HEADER + records.len() + trailer.len()) as u64;
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
        let data = log_of(&[b"one", b"2", b"three"]);
        let (records, good) = parse(&data).unwrap();
        assert_eq!(records, [&b"one"[..], b"2", b"three"]);
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
    fn a_zero_filled_tail_is_a_torn_write() {
        // Power loss can leave the file longer than what was written, the rest zeros: the
        // checksum of an empty frame would be 0, so it must not pass for one.
        let mut data = log_of(&[b"good"]);
        data.extend_from_slice(&[0; 4096]);
        assert_eq!(parse(&data).unwrap(), (vec![&b"good"[..]], HEADER + 8 + 4));
        let mut empty = MAGIC.to_vec();
        empty.extend_from_slice(&[0; 64]);
        assert_eq!(parse(&empty).unwrap(), (vec![], HEADER));
    }

    #[test]
    fn a_version_1_log_still_reads() {
        // Version 1 checksummed the body alone.
        let mut data = MAGIC_V1.to_vec();
        for body in [&b"one"[..], b"two"] {
            data.extend_from_slice(&(body.len() as u32).to_le_bytes());
            data.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
            data.extend_from_slice(body);
        }
        let good = data.len();
        data.extend_from_slice(&[0; 100]);
        assert_eq!(parse(&data).unwrap(), (vec![&b"one"[..], b"two"], good));
        // Without checkpoints, any intact frame after a bad one is damage.
        data[HEADER + 8] ^= 0x01;
        assert_eq!(parse(&data), Err(Unreadable::Damaged(HEADER)));
    }

    #[test]
    fn a_bad_frame_before_a_later_checkpoint_is_damage_not_a_torn_tail() {
        let mut data = log_of(&[b"good", b"flipped"]);
        let bad = HEADER + 8 + 4;
        let synced = data.len() as u64;
        checkpoint(synced, &mut data);
        frame(b"after", &mut data);
        data[bad + 8] ^= 0x01;
        assert_eq!(parse(&data), Err(Unreadable::Damaged(bad)));
        // Intact frames but no checkpoint past the bad one: the pages of an unsynced write
        // that reached the disk out of order. A torn write, cut off.
        let mut data = log_of(&[b"good"]);
        checkpoint(bad as u64, &mut data);
        let bad = data.len();
        frame(b"flipped", &mut data);
        frame(b"after", &mut data);
        data[bad + 8] ^= 0x01;
        assert_eq!(parse(&data).unwrap(), (vec![&b"good"[..]], bad));
        // The same bad frame last in the file is a torn write too.
        data.truncate(bad + 8 + 7);
        assert_eq!(parse(&data).unwrap(), (vec![&b"good"[..]], bad));
        // A length too large to be real is garbage too.
        let mut data = log_of(&[b"good"]);
        data.extend_from_slice(&u32::MAX.to_le_bytes());
        data.extend_from_slice(&[0; 12]);
        assert_eq!(parse(&data).unwrap().0, [&b"good"[..]]);
    }

    #[test]
    fn a_bad_frame_anywhere_in_a_compacted_file_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut recs = Vec::new();
        for body in [&b"first"[..], b"second", b"third"] {
            frame(body, &mut recs);
        }
        let (_, len) = replace(dir.path(), "log", &recs).unwrap();
        let whole = read(&dir.path().join("log")).unwrap();
        assert_eq!(whole.len() as u64, len);
        assert_eq!(
            parse(&whole).unwrap().0,
            [&b"first"[..], b"second", b"third"]
        );
        // Every bit of every record, the last one included: nothing was torn, so nothing may
        // be cut off without a word.
        for bit in HEADER * 8..(HEADER + recs.len()) * 8 {
            let mut flipped = whole.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(parse(&flipped), Err(Unreadable::Damaged(at)) if at <= bit / 8),
                "bit {bit}: {:?}",
                parse(&flipped)
            );
        }
        // The trailing checkpoint itself, damaged: it vouches for nothing else, and every
        // record before it is intact.
        let mut flipped = whole.clone();
        *flipped.last_mut().unwrap() ^= 0x80;
        assert_eq!(parse(&flipped).unwrap().0.len(), 3);
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
        // The records, then the checkpoint that vouches for them.
        assert_eq!(len, (HEADER + recs.len() + 8 + 9) as u64);
        let data = read(&dir.path().join("log")).unwrap();
        assert_eq!(parse(&data).unwrap().0, [&b"new"[..], b"appended"]);
        assert!(!dir.path().join("log.tmp").exists());
    }
}
