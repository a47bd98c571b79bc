//! `sub --stats`: per-topic counts, rates, last value and min/mean/max of numeric payloads.
//! A live table is redrawn on stderr only when stderr is a terminal; the summary at the end is
//! the command's data, so it goes to stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

pub const REDRAW_EVERY: Duration = Duration::from_secs(1);
const LAST_WIDTH: usize = 24;

pub struct Stats {
    topics: BTreeMap<String, TopicStats>,
    start: Instant,
    live: bool,
    drawn_lines: usize,
}

struct TopicStats {
    count: u64,
    last: String,
    numeric: u64,
    min: f64,
    max: f64,
    sum: f64,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            topics: BTreeMap::new(),
            start: Instant::now(),
            live: io::stderr().is_terminal(),
            drawn_lines: 0,
        }
    }

    pub fn live(&self) -> bool {
        self.live
    }

    pub fn record(&mut self, topic: &[u8], payload: &[u8]) {
        let entry = self
            .topics
            .entry(String::from_utf8_lossy(topic).into_owned())
            .or_insert(TopicStats {
                count: 0,
                last: String::new(),
                numeric: 0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                sum: 0.0,
            });
        entry.count += 1;
        let text = String::from_utf8_lossy(payload);
        entry.last = shorten(text.trim());
        if let Some(v) = text.trim().parse::<f64>().ok().filter(|v| v.is_finite()) {
            entry.numeric += 1;
            entry.min = entry.min.min(v);
            entry.max = entry.max.max(v);
            entry.sum += v;
        }
    }

    /// Redraws the live table in place.
    pub fn redraw(&mut self) {
        let table = self.table();
        let mut err = io::stderr().lock();
        let mut frame = String::new();
        if self.drawn_lines > 0 {
            // Up to the first line of the previous table, then clear to the end of the screen.
            let _ = write!(frame, "\x1b[{}A\x1b[J", self.drawn_lines);
        }
        frame.push_str(&table);
        self.drawn_lines = table.lines().count();
        let _ = err.write_all(frame.as_bytes());
        let _ = err.flush();
    }

    /// The final table, without the live one's cursor tricks.
    pub fn summary(&self) -> String {
        self.table()
    }

    fn table(&self) -> String {
        let elapsed = self.start.elapsed().as_secs_f64().max(1e-9);
        let width = self
            .topics
            .keys()
            .map(|t| t.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>9}  {:<LAST_WIDTH$}  {:>12}  {:>12}  {:>12}",
            "TOPIC", "COUNT", "RATE/s", "LAST", "MIN", "MEAN", "MAX"
        );
        for (topic, s) in &self.topics {
            let num = |v: f64| {
                if s.numeric > 0 {
                    format!("{v}")
                } else {
                    "-".to_owned()
                }
            };
            let _ = writeln!(
                out,
                "{topic:<width$}  {:>8}  {:>9.2}  {:<LAST_WIDTH$}  {:>12}  {:>12}  {:>12}",
                s.count,
                s.count as f64 / elapsed,
                s.last,
                num(s.min),
                num(if s.numeric > 0 {
                    s.sum / s.numeric as f64
                } else {
                    0.0
                }),
                num(s.max),
            );
        }
        out
    }
}

fn shorten(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= LAST_WIDTH {
        return line.to_owned();
    }
    let mut s: String = line.chars().take(LAST_WIDTH - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_and_text_payloads() {
        let mut s = Stats::new();
        for v in ["1", "3", " 2.5 "] {
            s.record(b"temp", v.as_bytes());
        }
        s.record(b"door", b"open");
        let table = s.summary();
        let temp = table.lines().find(|l| l.starts_with("temp")).unwrap();
        let cols: Vec<&str> = temp.split_whitespace().collect();
        assert_eq!(cols[1], "3");
        assert_eq!(&cols[3..], ["2.5", "1", "2.1666666666666665", "3"]);
        let door = table.lines().find(|l| l.starts_with("door")).unwrap();
        assert!(
            door.contains("open") && door.trim_end().ends_with('-'),
            "{door}"
        );
    }

    #[test]
    fn long_values_are_cut() {
        assert_eq!(shorten(&"x".repeat(40)).chars().count(), LAST_WIDTH);
        assert_eq!(shorten("a\nb"), "a");
    }
}
