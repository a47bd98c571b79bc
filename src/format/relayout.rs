//! `%J`: a JSON payload validated (RFC 8259) and written through the JSON writer, its strings
//! and numbers as spelled and its whitespace re-laid, so the object stays on one line.

use super::MAX_JSON_DEPTH;
use super::json::Json;

/// Validates `src` as one JSON value (RFC 8259; the caller has checked UTF-8) and writes it
/// through `j`, keeping strings and numbers as spelled but re-laying whitespace. False if it
/// is not JSON.
pub(super) fn relayout_json(src: &[u8], j: &mut Json) -> bool {
    let mut s = Src { b: src, i: 0 };
    if json_value(&mut s, j, 0).is_none() {
        return false;
    }
    s.ws();
    s.i == src.len()
}

pub(super) struct Src<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Src<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn literal(&mut self, word: &[u8]) -> Option<&'a [u8]> {
        let end = self.i + word.len();
        let got = self.b.get(self.i..end)?;
        (got == word).then(|| {
            self.i = end;
            got
        })
    }

    /// A string literal, quotes included.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        if !self.eat(b'"') {
            return None;
        }
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(&self.b[start..self.i]);
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.b.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
    }

    fn number(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.skip_digits(),
            _ => return None,
        }
        if self.eat(b'.') {
            self.need_digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            self.need_digits()?;
        }
        Some(&self.b[start..self.i])
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn need_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.skip_digits();
        (self.i > start).then_some(())
    }
}

pub(super) fn json_value(s: &mut Src, j: &mut Json, depth: usize) -> Option<()> {
    if depth >= MAX_JSON_DEPTH {
        return None;
    }
    s.ws();
    match s.peek()? {
        b'{' => {
            s.i += 1;
            j.open_object();
            s.ws();
            if s.eat(b'}') {
                j.close_object(false);
                return Some(());
            }
            let mut first = true;
            loop {
                s.ws();
                let key = s.string()?;
                j.raw_key(first, key);
                first = false;
                s.ws();
                if !s.eat(b':') {
                    return None;
                }
                json_value(s, j, depth + 1)?;
                s.ws();
                if s.eat(b'}') {
                    break;
                }
                if !s.eat(b',') {
                    return None;
                }
            }
            j.close_object(true);
        }
        b'[' => {
            s.i += 1;
            j.open_array();
            s.ws();
            if !s.eat(b']') {
                let mut first = true;
                loop {
                    j.element(first);
                    first = false;
                    json_value(s, j, depth + 1)?;
                    s.ws();
                    if s.eat(b']') {
                        break;
                    }
                    if !s.eat(b',') {
                        return None;
                    }
                }
            }
            j.close_array();
        }
        b'"' => {
            let text = s.string()?;
            j.out.extend_from_slice(text);
        }
        b't' => j.out.extend_from_slice(s.literal(b"true")?),
        b'f' => j.out.extend_from_slice(s.literal(b"false")?),
        b'n' => j.out.extend_from_slice(s.literal(b"null")?),
        _ => {
            let number = s.number()?;
            j.out.extend_from_slice(number);
        }
    }
    Some(())
}
