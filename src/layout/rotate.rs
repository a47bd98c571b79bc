//! `record --rotate`: which file a row goes to (SENSORS.md §5: `daily|hourly|rows:N|size:N`).
//!
//! Time rotation names files by the UTC period of the message's receive time
//! (`phone-2026-11-22T03.csv`), so a restarted recording appends to the period's file. Row and
//! size rotation number the files (`phone-0001.csv`) and a restarted recording starts the next
//! unused number: counting what an existing file holds would mean parsing it.

use std::cell::Cell;
use std::io::{self, Write};
use std::path::Path;
use std::rc::Rc;
use std::str::FromStr;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotate {
    Hourly,
    Daily,
    Rows(u64),
    Size(u64),
}

impl FromStr for Rotate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rotate, String> {
        let bad = || {
            format!(
                "'{s}': use daily, hourly, rows:N or size:N (N bytes, or with a K, M or G suffix)"
            )
        };
        match s {
            "hourly" => return Ok(Rotate::Hourly),
            "daily" => return Ok(Rotate::Daily),
            _ => {}
        }
        let (kind, n) = s.split_once(':').ok_or_else(bad)?;
        let n = match kind {
            "rows" => Rotate::Rows(n.parse().map_err(|_| bad())?),
            "size" => Rotate::Size(parse_size(n).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        match n {
            Rotate::Rows(0) | Rotate::Size(0) => Err(bad()),
            n => Ok(n),
        }
    }
}

/// `10M` = 10 MiB: file sizes are what `ls -lh` shows.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 1 << 10),
        (i, 'M' | 'm') => (&text[..i], 1 << 20),
        (i, 'G' | 'g') => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// The files one output goes to: the `-o` or `--raw` path, rotated or not.
pub struct Files {
    base: String,
    rotate: Option<Rotate>,
    /// The current file's period (time rotation) or number (row and size rotation).
    current: Option<String>,
    rows: u64,
    bytes: Rc<Cell<u64>>,
    opened: Vec<String>,
}

impl Files {
    pub fn new(base: &str, rotate: Option<Rotate>) -> Files {
        Files {
            base: base.to_owned(),
            rotate,
            current: None,
            rows: 0,
            bytes: Rc::new(Cell::new(0)),
            opened: Vec::new(),
        }
    }

    /// The path the next message's `rows` go to, if it is not the file written so far: the
    /// caller opens it (with a header) and wraps it in [`Files::counted`].
    pub fn next(&mut self, recv_time: DateTime<Utc>, rows: u64) -> Option<String> {
        let period = |format| Some(recv_time.format(format).to_string());
        let part = match (self.rotate, &self.current) {
            (None, None) => Some(String::new()),
            (None, Some(_)) => None,
            (Some(Rotate::Hourly), _) => period("%Y-%m-%dT%H"),
            (Some(Rotate::Daily), _) => period("%Y-%m-%d"),
            (Some(Rotate::Rows(n)), Some(_)) if self.rows == 0 || self.rows + rows <= n => None,
            (Some(Rotate::Size(n)), Some(_)) if self.bytes.get() < n => None,
            (Some(Rotate::Rows(_) | Rotate::Size(_)), _) => Some(self.next_number()),
        };
        match part.filter(|p| self.current.as_ref() != Some(p)) {
            None => {
                self.rows += rows;
                None
            }
            Some(part) => {
                let path = self.path_for(&part);
                self.current = Some(part);
                self.rows = rows;
                self.bytes.set(0);
                self.opened.push(path.clone());
                Some(path)
            }
        }
    }

    fn next_number(&self) -> String {
        let mut n = match &self.current {
            Some(c) => c.parse::<u32>().unwrap_or(0) + 1,
            None => 1,
        };
        // Never append to a numbered file of an earlier recording.
        while self.current.is_none() && Path::new(&self.path_for(&format!("{n:04}"))).exists() {
            n += 1;
        }
        format!("{n:04}")
    }

    /// `phone.csv` + `0002` → `phone-0002.csv`; the part goes before the last extension.
    fn path_for(&self, part: &str) -> String {
        if part.is_empty() {
            return self.base.clone();
        }
        let path = Path::new(&self.base);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let (stem, ext) = match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
            _ => (name, String::new()),
        };
        let file = format!("{stem}-{part}{ext}");
        match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => dir.join(file).display().to_string(),
            None => file,
        }
    }

    /// Wraps the current file so its size is known to `size:N` rotation.
    pub fn counted<W: Write>(&self, out: W) -> Counted<W> {
        Counted {
            out,
            bytes: Rc::clone(&self.bytes),
        }
    }

    /// Every file written, for the summary.
    pub fn describe(&self) -> String {
        match self.opened.as_slice() {
            [] => self.base.clone(),
            [one] => one.clone(),
            [first, .., last] => format!("{first} … {last} ({} files)", self.opened.len()),
        }
    }
}

pub struct Counted<W> {
    out: W,
    bytes: Rc<Cell<u64>>,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn parses_every_policy_and_refuses_zero() {
        assert_eq!("hourly".parse(), Ok(Rotate::Hourly));
        assert_eq!("daily".parse(), Ok(Rotate::Daily));
        assert_eq!("rows:1000".parse(), Ok(Rotate::Rows(1000)));
        assert_eq!("size:512".parse(), Ok(Rotate::Size(512)));
        assert_eq!("size:10M".parse(), Ok(Rotate::Size(10 << 20)));
        assert_eq!("size:2g".parse(), Ok(Rotate::Size(2 << 30)));
        for bad in [
            "", "weekly", "rows:", "rows:0", "size:0K", "size:M", "rows:-1", "size:1T",
        ] {
            let err = bad.parse::<Rotate>().unwrap_err();
            assert!(
                err.contains("daily, hourly, rows:N or size:N"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn names_put_the_part_before_the_extension() {
        let f = Files::new("out/phone.csv", None);
        assert_eq!(f.path_for(""), "out/phone.csv");
        assert_eq!(f.path_for("0002"), "out/phone-0002.csv");
        assert_eq!(Files::new("log", None).path_for("0001"), "log-0001");
        assert_eq!(Files::new(".hidden", None).path_for("7"), ".hidden-7");
        assert_eq!(Files::new("a.b.jsonl", None).path_for("x"), "a.b-x.jsonl");
    }

    #[test]
    fn without_rotation_one_file() {
        let mut f = Files::new("x.csv", None);
        let t = at("2026-11-22T03:00:00Z");
        assert_eq!(f.next(t, 0).as_deref(), Some("x.csv"));
        assert_eq!(f.next(t, 5), None);
        assert_eq!(f.next(at("2027-01-01T00:00:00Z"), 5), None);
        assert_eq!(f.describe(), "x.csv");
    }

    #[test]
    fn rows_rotation_never_splits_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("r.csv").display().to_string();
        let mut f = Files::new(&base, Some(Rotate::Rows(3)));
        let t = at("2026-11-22T03:00:00Z");
        let name = |n: &str| dir.path().join(format!("r-{n}.csv")).display().to_string();
        assert_eq!(f.next(t, 0), Some(name("0001")));
        assert_eq!(f.next(t, 2), None);
        assert_eq!(f.next(t, 1), None);
        assert_eq!(f.next(t, 1), Some(name("0002")));
        // A message bigger than the limit gets a file of its own, whole.
        assert_eq!(f.next(t, 5), Some(name("0003")));
        assert_eq!(f.next(t, 1), Some(name("0004")));
        assert!(f.describe().ends_with("(4 files)"), "{}", f.describe());
    }

    #[test]
    fn numbering_skips_files_of_an_earlier_recording() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r-0001.csv"), "").unwrap();
        std::fs::write(dir.path().join("r-0002.csv"), "").unwrap();
        let base = dir.path().join("r.csv").display().to_string();
        let mut f = Files::new(&base, Some(Rotate::Size(10)));
        let next = f.next(at("2026-11-22T03:00:00Z"), 0).unwrap();
        assert!(next.ends_with("r-0003.csv"), "{next}");
    }

    #[test]
    fn size_rotation_counts_the_bytes_written() {
        let mut f = Files::new("s.csv", Some(Rotate::Size(10)));
        let t = at("2026-11-22T03:00:00Z");
        let first = f.next(t, 0).unwrap();
        let mut out = f.counted(Vec::new());
        out.write_all(b"header\n").unwrap();
        assert_eq!(f.next(t, 1), None);
        out.write_all(b"row\n").unwrap();
        let second = f.next(t, 1).unwrap();
        assert_ne!(first, second);
        assert_eq!(f.next(t, 1), None, "a new file starts empty");
    }

    #[test]
    fn time_rotation_follows_the_utc_period() {
        let mut f = Files::new("h.csv", Some(Rotate::Hourly));
        assert_eq!(
            f.next(at("2026-11-22T03:59:59Z"), 0).as_deref(),
            Some("h-2026-11-22T03.csv")
        );
        assert_eq!(f.next(at("2026-11-22T03:00:01Z"), 1), None);
        assert_eq!(
            f.next(at("2026-11-22T04:00:00Z"), 1).as_deref(),
            Some("h-2026-11-22T04.csv")
        );
        let mut d = Files::new("d.jsonl", Some(Rotate::Daily));
        assert_eq!(
            d.next(at("2026-11-22T23:59:59+00:00"), 0).as_deref(),
            Some("d-2026-11-22.jsonl")
        );
        assert_eq!(
            d.next(at("2026-11-23T00:00:00Z"), 1).as_deref(),
            Some("d-2026-11-23.jsonl")
        );
    }
}
