//! Small helpers for the words of user-facing messages, used by every layer.

/// `1 note`, `3 notes`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// What starts at an escape introducer (ESC, or a C1 control written in UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Not an introducer.
    None,
    /// A whole sequence of this many bytes, introducer included.
    Complete(usize),
    /// The text ends inside a sequence: more may follow.
    Incomplete,
}

/// The longest sequence taken as one (the body of an OSC, DCS, ..., or the parameters of a CSI);
/// an introducer whose end is farther is a lone control character. Keeps a stream's held-back
/// bytes bounded.
pub(crate) const MAX_STRING_SEQUENCE: usize = 4096;

/// The escape sequence at the start of `b`, by the byte classes of ECMA-48: CSI (`ESC [` or
/// U+009B) takes parameters and intermediates up to a final byte; a string sequence (`ESC ]`,
/// `ESC P`, `ESC X`, `ESC ^`, `ESC _` or their C1 forms) ends after BEL or U+009C, before an
/// ESC (the one of ST, `ESC \`, which is a sequence of its own) or before a newline; any other
/// ESC takes intermediates and one final byte. The masker and every place that strips escapes
/// from output use this one reading, so that what is masked is what a reader sees.
pub(crate) fn escape_at(b: &[u8]) -> Escape {
    // Bytes of the introducer, bytes before the body, and which kind of sequence.
    let (intro, body, csi, string) = match b {
        [0x1b, b'[', ..] => (1, 2, true, false),
        [0x1b, b']' | b'P' | b'X' | b'^' | b'_', ..] => (1, 2, false, true),
        [0x1b] => return Escape::Incomplete,
        [0x1b, ..] => (1, 1, false, false),
        [0xc2, 0x9b, ..] => (2, 2, true, false),
        [0xc2, 0x90 | 0x98 | 0x9d | 0x9e | 0x9f, ..] => (2, 2, false, true),
        [0xc2] => return Escape::Incomplete,
        _ => return Escape::None,
    };
    let rest = &b[body..];
    if csi {
        let params = rest
            .iter()
            .take_while(|c| (0x20..=0x3f).contains(*c))
            .count();
        if params > MAX_STRING_SEQUENCE {
            return Escape::Complete(intro);
        }
        return match rest.get(params) {
            None => Escape::Incomplete,
            Some(c) if (0x40..=0x7e).contains(c) => Escape::Complete(body + params + 1),
            Some(_) => Escape::Complete(body + params),
        };
    }
    if string {
        let window = &rest[..rest.len().min(MAX_STRING_SEQUENCE)];
        for (i, pair) in window.windows(2).enumerate() {
            match pair {
                [0x07, _] => return Escape::Complete(body + i + 1),
                [0xc2, 0x9c] => return Escape::Complete(body + i + 2),
                [0x1b | b'\n', _] => return Escape::Complete(body + i),
                _ => {}
            }
        }
        return match window.last() {
            Some(0x07) => Escape::Complete(body + window.len()),
            Some(0x1b | b'\n') => Escape::Complete(body + window.len() - 1),
            _ if rest.len() > MAX_STRING_SEQUENCE => Escape::Complete(intro),
            _ => Escape::Incomplete,
        };
    }
    let inter = rest
        .iter()
        .take_while(|c| (0x20..=0x2f).contains(*c))
        .count();
    if inter > MAX_STRING_SEQUENCE {
        return Escape::Complete(intro);
    }
    match rest.get(inter) {
        None => Escape::Incomplete,
        Some(c) if (0x30..=0x7e).contains(c) => Escape::Complete(body + inter + 1),
        Some(_) => Escape::Complete(body + inter),
    }
}

/// What a reader sees of the bytes at the start of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The first byte shows.
    Visible,
    /// This many bytes show nothing: an escape sequence, a carriage return (a terminal draws
    /// what follows over what preceded it, a log viewer drops it), another control character
    /// (tab and newline excepted), or a bidi control.
    Hidden(usize),
    /// The text ends where more bytes could still make a hidden sequence.
    Unfinished,
}

/// What a reader sees at the start of `b`; with `at_end`, nothing follows `b`, and an
/// unfinished escape sequence hides the rest, as every place that shows output treats it.
/// The set matches what the terminal and JUnit writers strip, so that the masker matches
/// secrets as they are read.
pub(crate) fn seen_at(b: &[u8], at_end: bool) -> Seen {
    match escape_at(b) {
        Escape::Complete(n) => return Seen::Hidden(n),
        Escape::Incomplete if at_end => return Seen::Hidden(b.len()),
        Escape::Incomplete => return Seen::Unfinished,
        Escape::None => {}
    }
    match b {
        [c, ..] if (*c < 0x20 && *c != b'\t' && *c != b'\n') || *c == 0x7f => Seen::Hidden(1),
        [0xc2, 0x80..=0x9f, ..] => Seen::Hidden(2),
        [0xe2, 0x80, 0xaa..=0xae, ..] | [0xe2, 0x81, 0xa6..=0xa9, ..] => Seen::Hidden(3),
        [0xe2] | [0xe2, 0x80 | 0x81] if !at_end => Seen::Unfinished,
        _ => Seen::Visible,
    }
}

/// Whether `b` may hold bytes a reader does not see (see [`seen_at`]); a quick test that may
/// say yes for text that has none, never no for text that has some.
pub(crate) fn may_hide(b: &[u8]) -> bool {
    // Folded without an early exit, so that it compiles to a vector loop.
    b.chunks(256)
        .any(|chunk| chunk.iter().fold(false, |any, &c| any | may_hide_byte(c)))
}

/// Whether a byte may begin something hidden ([`seen_at`]); every other byte shows as written.
pub(crate) fn may_hide_byte(c: u8) -> bool {
    ((c < 0x20) & (c != b'\t') & (c != b'\n')) | (c == 0x7f) | (c == 0xc2) | (c == 0xe2)
}

/// Text inside a Mermaid `["..."]` label: Mermaid reads it as HTML, so `"`, `<`, `>`, `&` and
/// `#` are written as its entity codes, and line breaks as spaces.
pub(crate) fn mermaid_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_read_whole() {
        let cases: [(&[u8], Escape); 16] = [
            (b"plain", Escape::None),
            (b"\x1b[0mx", Escape::Complete(4)),
            (b"\x1b[38;5;1mx", Escape::Complete(9)),
            (b"\x1b[3", Escape::Incomplete),
            (b"\x1b[3\xe2", Escape::Complete(3)),
            (b"\x1b]0;title\x07x", Escape::Complete(10)),
            (b"\x1b]8;;http://x\x1b\\x", Escape::Complete(13)),
            (b"\x1b]0;title\nx", Escape::Complete(9)),
            (b"\x1b]0;tit", Escape::Incomplete),
            (b"\x1b(Bx", Escape::Complete(3)),
            (b"\x1b\\", Escape::Complete(2)),
            (b"\x1b", Escape::Incomplete),
            ("\u{9b}1Ax".as_bytes(), Escape::Complete(4)),
            ("\u{9d}0;t\u{9c}x".as_bytes(), Escape::Complete(7)),
            ("é".as_bytes(), Escape::None),
            (b"\xc2", Escape::Incomplete),
        ];
        for (input, want) in cases {
            assert_eq!(
                escape_at(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let mut long = b"\x1b]".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_STRING_SEQUENCE + 1));
        assert_eq!(escape_at(&long), Escape::Complete(1));
        let mut params = b"\x1b[".to_vec();
        params.extend(std::iter::repeat_n(b'1', MAX_STRING_SEQUENCE + 1));
        assert_eq!(escape_at(&params), Escape::Complete(1));
    }

    #[test]
    fn hidden_bytes() {
        let cases: [(&[u8], bool, Seen); 10] = [
            (b"a", false, Seen::Visible),
            (b"\tx", false, Seen::Visible),
            (b"\rx", false, Seen::Hidden(1)),
            (b"\x08x", false, Seen::Hidden(1)),
            (b"\x1b[1mx", false, Seen::Hidden(4)),
            (b"\x1b[1", false, Seen::Unfinished),
            (b"\x1b[1", true, Seen::Hidden(3)),
            ("\u{202e}x".as_bytes(), false, Seen::Hidden(3)),
            (b"\xe2\x80", false, Seen::Unfinished),
            ("→".as_bytes(), false, Seen::Visible),
        ];
        for (input, at_end, want) in cases {
            assert_eq!(seen_at(input, at_end), want, "{input:?}");
            assert!(want == Seen::Visible || may_hide(input), "{input:?}");
        }
        assert!(!may_hide(b"plain text\twith tabs\n"));
    }
}
