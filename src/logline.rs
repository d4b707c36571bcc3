//! Text from outside (event ids, message ids, blob names, operator input) made safe for one log
//! line: control characters are escaped, so no input can end a line early and forge the next one,
//! or send terminal escapes to whoever reads the logs. The text log format applies the same rule to
//! every line it writes ([`EscapingWriter`]); JSON lines escape control characters by themselves.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

/// `text` with every control character written as an escape (`\n`, `\r`, `\t`, `\u{1b}`).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Wraps a log writer: each write is one formatted line (the fmt layer writes a whole event at
/// once), and every control character in it except the final newline is escaped.
pub struct EscapingWriter<W>(pub W);

impl<W: io::Write> io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, newline) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (buf, false),
        };
        let text = String::from_utf8_lossy(body);
        let mut line = escape(&text).into_owned();
        if newline {
            line.push('\n');
        }
        self.0.write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn escapes_control_characters_only() {
        assert_eq!(escape("plain name.bak"), "plain name.bak");
        assert_eq!(
            escape("x\n2026-01-01 INFO forged\r\t\u{1b}[2J\0"),
            "x\\n2026-01-01 INFO forged\\r\\t\\u{1b}[2J\\u{0}"
        );
    }

    #[test]
    fn a_writer_line_keeps_only_its_final_newline() {
        let mut out = EscapingWriter(Vec::new());
        out.write_all(b"INFO id=a\nINFO forged\n").unwrap();
        assert_eq!(out.0, b"INFO id=a\\nINFO forged\n");
    }
}
