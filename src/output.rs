//! The only stdout writer. Data goes out through one buffer; callers decide when to flush so a
//! live stream is flushed per message while a backlog is written in large blocks.

use std::io::{self, BufWriter, Stdout, Write};

pub struct Output {
    out: BufWriter<Stdout>,
}

impl Output {
    pub fn stdout() -> Output {
        Output {
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
