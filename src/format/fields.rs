//! The field writers of `-F`: strings, payloads, hex, integers and floats with printf's widths,
//! cuts and padding, and the numbers and times the formats write without `fmt`.

use chrono::{DateTime, Datelike, TimeZone, Timelike};

use super::Opts;

pub(super) fn pad(out: &mut Vec<u8>, n: usize, with: u8) {
    out.resize(out.len() + n, with);
}

/// A string field: `.N` cuts, the width pads with spaces (`0` is ignored, as by printf `%s`).
pub(super) fn push_str_field(out: &mut Vec<u8>, value: &[u8], opts: &Opts) {
    let value = match opts.precision {
        Some(max) => &value[..value.len().min(max)],
        None => value,
    };
    let fill = opts.width.saturating_sub(value.len());
    if !opts.left {
        pad(out, fill, b' ');
    }
    out.extend_from_slice(value);
    if opts.left {
        pad(out, fill, b' ');
    }
}

/// Applies a string field's cut and width to what was written to `out` since `start`.
pub(super) fn fit_str_field(out: &mut Vec<u8>, start: usize, opts: &Opts) {
    if let Some(max) = opts.precision {
        out.truncate(start + (out.len() - start).min(max));
    }
    let fill = opts.width.saturating_sub(out.len() - start);
    if opts.left {
        pad(out, fill, b' ');
    } else if fill > 0 {
        out.splice(start..start, std::iter::repeat_n(b' ', fill));
    }
}

pub(super) fn push_opt_str(out: &mut Vec<u8>, value: Option<&str>, opts: &Opts) {
    match value {
        Some(v) => push_str_field(out, v.as_bytes(), opts),
        None => pad(out, opts.width, b' '),
    }
}

/// `%p`: `.N` cuts (smq, d#9), the width pads with the pad character (mosquitto honours `0`).
pub(super) fn push_payload(out: &mut Vec<u8>, payload: &[u8], opts: &Opts) {
    let payload = match opts.precision {
        Some(max) => &payload[..payload.len().min(max)],
        None => payload,
    };
    let fill = opts.width.saturating_sub(payload.len());
    if opts.left {
        out.extend_from_slice(payload);
        pad(out, fill, b' ');
    } else {
        pad(out, fill, if opts.zero { b'0' } else { b' ' });
        out.extend_from_slice(payload);
    }
}

/// `%x`/`%X` as in mosquitto 2.1, except that the width never cuts: `.N` puts `sep` after every
/// N hex digits, counting right-aligned padding as digits, so `%08.2x` of `ab` is `00 00 61 62`.
pub(super) fn push_hex(out: &mut Vec<u8>, payload: &[u8], opts: &Opts, digits: &[u8; 16]) {
    let group = opts.precision.unwrap_or(0);
    let fill = opts.width.saturating_sub(payload.len() * 2);
    if group == 0 {
        if !opts.left {
            pad(out, fill, if opts.zero { b'0' } else { b' ' });
        }
        out.reserve(payload.len() * 2);
        for &b in payload {
            out.push(digits[usize::from(b >> 4)]);
            out.push(digits[usize::from(b & 0xf)]);
        }
    } else {
        let mut pos = 0;
        let sep = |out: &mut Vec<u8>, pos: &mut usize| {
            if *pos % group == group - 1 {
                out.push(opts.sep);
            }
            *pos += 1;
        };
        if !opts.left {
            // Blank padding gets blank separators, so that `%8.2:x` lines up without a
            // stray `:` in front (mosquitto 2.1 writes `  :  :61:62`).
            let (fill_char, fill_sep) = if opts.zero {
                (b'0', opts.sep)
            } else {
                (b' ', b' ')
            };
            for _ in 0..fill {
                out.push(fill_char);
                if pos % group == group - 1 {
                    out.push(fill_sep);
                }
                pos += 1;
            }
        }
        for (n, &b) in payload.iter().enumerate() {
            out.push(digits[usize::from(b >> 4)]);
            sep(out, &mut pos);
            out.push(digits[usize::from(b & 0xf)]);
            if n + 1 < payload.len() {
                sep(out, &mut pos);
            }
        }
    }
    if opts.left {
        pad(out, fill, b' ');
    }
}

/// An integer field as printf `%d`/`%-d`/`%0d` prints it.
pub(super) fn push_int_field(out: &mut Vec<u8>, value: u64, opts: &Opts) {
    let mut buf = [0; 20];
    let text = u64_text(value, &mut buf);
    let fill = opts.width.saturating_sub(text.len());
    if opts.left {
        out.extend_from_slice(text);
        pad(out, fill, b' ');
    } else {
        pad(out, fill, if opts.zero { b'0' } else { b' ' });
        out.extend_from_slice(text);
    }
}

pub(super) fn push_opt_int(out: &mut Vec<u8>, value: Option<u64>, opts: &Opts) {
    match value {
        Some(v) => push_int_field(out, v, opts),
        None => pad(out, opts.width, b' '),
    }
}

/// `%f`/`%d` as printf `%[-][0][width].[precision]f` prints a double (precision 6 by default).
pub(super) fn push_float(out: &mut Vec<u8>, value: f64, opts: &Opts) {
    let precision = opts.precision.unwrap_or(6);
    let width = opts.width;
    if !value.is_finite() {
        // printf's spellings; `0` does not apply to them.
        let text: &[u8] = match (value.is_nan(), value.is_sign_negative()) {
            (true, false) => b"nan",
            (true, true) => b"-nan",
            (false, false) => b"inf",
            (false, true) => b"-inf",
        };
        let opts = Opts {
            precision: None,
            ..*opts
        };
        push_str_field(out, text, &opts);
        return;
    }
    // Writing into a Vec can't fail.
    let _ = if opts.left {
        std::io::Write::write_fmt(out, format_args!("{value:<width$.precision$}"))
    } else if opts.zero {
        std::io::Write::write_fmt(out, format_args!("{value:0width$.precision$}"))
    } else {
        std::io::Write::write_fmt(out, format_args!("{value:>width$.precision$}"))
    };
}

// ---- numbers and times without fmt ----

pub(super) fn u64_text(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &buf[i..]
}

pub(super) fn push_u64(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0; 20];
    out.extend_from_slice(u64_text(value, &mut buf));
}

pub(super) fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_u64(out, value.unsigned_abs());
}

/// `value` in decimal, zero-padded to at least `width` digits.
pub(super) fn push_zero_padded(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut buf = [0; 20];
    let text = u64_text(value, &mut buf);
    pad(out, width.saturating_sub(text.len()), b'0');
    out.extend_from_slice(text);
}

/// `YYYY-MM-DDTHH:MM:SS` of `t` in its own zone.
pub(super) fn push_date_time<Tz: TimeZone>(out: &mut Vec<u8>, t: &DateTime<Tz>) {
    let year = t.year();
    if year < 0 {
        out.push(b'-');
    }
    push_zero_padded(out, u64::from(year.unsigned_abs()), 4);
    for (sep, v) in [
        (b'-', t.month()),
        (b'-', t.day()),
        (b'T', t.hour()),
        (b':', t.minute()),
        (b':', t.second()),
    ] {
        out.push(sep);
        push_zero_padded(out, u64::from(v), 2);
    }
}

/// strftime's `%z`: `+hhmm`.
pub(super) fn push_offset(out: &mut Vec<u8>, seconds_east: i32) {
    out.push(if seconds_east < 0 { b'-' } else { b'+' });
    let minutes = seconds_east.unsigned_abs() / 60;
    push_zero_padded(out, u64::from(minutes / 60), 2);
    push_zero_padded(out, u64::from(minutes % 60), 2);
}
