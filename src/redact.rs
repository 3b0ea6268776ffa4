//! Secret masking for every byte portcullis writes: logs, terminal lines and reports.
//!
//! The main type is [`Redactor`]. Built once from the resolved secret values, it replaces each
//! value by `***`, and with it the forms a stage is likely to print it in: base64, URL
//! percent-encoding, JSON string escaping and, for a multi-line value, its lines. Other tools
//! leak exactly these forms or over-mask by hiding single characters, so both the encodings and
//! the minimum lengths below are deliberate.
//!
//! Output that arrives in pieces goes through a [`RedactStream`], which holds back only the few
//! bytes that could still be the start of a secret. Memory therefore stays bounded by the longest
//! pattern, even when a stage prints a gigabyte without a newline, and a secret printed across
//! several writes is masked all the same.

use std::borrow::Cow;
use std::fmt;

use aho_corasick::{AhoCorasick, Input, MatchKind};

use crate::text::{Seen, may_hide_byte, seen_at};

/// What every occurrence of a secret becomes.
pub(crate) const MASK: &str = "***";

/// A value is masked only when, trimmed of surrounding whitespace, it has at least this many
/// characters. Masking `a` or `42` would destroy every log while protecting nothing, so shorter
/// values are left alone; the runner should warn about them.
pub(crate) const MIN_SECRET_CHARS: usize = 3;

/// A line of a multi-line value is masked on its own from this many characters (after trimming).
/// Shorter lines such as `{` or `}` of a JSON key file would otherwise mask every brace in the log.
const MIN_LINE_CHARS: usize = 4;

/// A value embedded in a longer text that is then base64-encoded (`user:password` in a Basic
/// auth header, or `echo "$TOKEN" | base64`, which appends a newline) encodes differently at each
/// of the three byte alignments. Only the characters that depend on the value alone are stable,
/// so those are masked, but only when there are enough of them not to hit unrelated base64.
const MIN_BASE64_CORE_CHARS: usize = 8;

const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL_SAFE: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Percent-encoders disagree on which bytes beyond RFC 3986's unreserved set they leave alone and
/// on how they write a space, so each common style is masked: strict RFC 3986, form encoding (Go
/// `QueryEscape`, Python `quote_plus`), JavaScript `encodeURIComponent`, and Python `quote`.
const URL_STYLES: [(&[u8], bool); 4] =
    [(b"", false), (b"", true), (b"!'()*", false), (b"/", false)];

/// JSON encoders agree on `\"`, `\\` and control characters but differ beyond: serde_json and
/// JavaScript write other characters as they are, Python escapes all non-ASCII, Go escapes
/// `<>&` and U+2028/U+2029, and PHP escapes `/` and all non-ASCII.
const JSON_STYLES: [JsonStyle; 4] = [
    JsonStyle {
        ascii_only: false,
        html_safe: false,
        escape_slash: false,
    },
    JsonStyle {
        ascii_only: true,
        html_safe: false,
        escape_slash: false,
    },
    JsonStyle {
        ascii_only: false,
        html_safe: true,
        escape_slash: false,
    },
    JsonStyle {
        ascii_only: true,
        html_safe: false,
        escape_slash: true,
    },
];

/// Replaces secret values, and their common encodings, by [`MASK`].
///
/// Cloning is cheap: the compiled matcher is shared.
#[derive(Clone)]
pub(crate) struct Redactor {
    engine: Engine,
}

#[derive(Clone)]
enum Engine {
    /// No value long enough to mask: redaction copies nothing and scans nothing.
    Nothing,
    Patterns {
        /// Leftmost-longest, so that of two overlapping secrets the longer one is masked.
        matcher: AhoCorasick,
        /// Length in bytes of the longest pattern; every pattern is at least `MASK.len()` long.
        max_len: usize,
    },
    /// The matcher could not be built (only conceivable for patterns of gigabytes). Failing
    /// closed is the only safe answer: all output is withheld rather than printed unmasked.
    WithholdAll,
}

impl Redactor {
    /// Builds a redactor for the given secret values; values too short to mask are ignored.
    pub(crate) fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut patterns: Vec<Vec<u8>> =
            values.into_iter().flat_map(|v| patterns_for(&v)).collect();
        // Output is matched as it is read, without what shows nothing; so are the patterns.
        let seen: Vec<Vec<u8>> = patterns
            .iter()
            .filter(|p| crate::text::may_hide(p))
            .map(|p| visible(p))
            .collect();
        patterns.extend(seen);
        // In-place masking in `RedactStream` relies on no pattern being shorter than the mask.
        patterns.retain(|p| p.len() >= MASK.len());
        patterns.sort_unstable();
        patterns.dedup();
        let Some(max_len) = patterns.iter().map(Vec::len).max() else {
            return Redactor {
                engine: Engine::Nothing,
            };
        };
        let engine = match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
        {
            Ok(matcher) => Engine::Patterns { matcher, max_len },
            Err(_) => Engine::WithholdAll,
        };
        Redactor { engine }
    }

    /// Masks every secret in a whole text.
    pub(crate) fn redact_str<'a>(&self, s: &'a str) -> Cow<'a, str> {
        match &self.engine {
            Engine::Nothing => Cow::Borrowed(s),
            Engine::Patterns { matcher, .. } => {
                if crate::text::may_hide(s.as_bytes()) {
                    let mut out = Vec::with_capacity(s.len());
                    let mut seen = Projection::default();
                    seen.fill(s.as_bytes(), true);
                    mask_visible(
                        matcher,
                        s.as_bytes(),
                        &seen,
                        None,
                        &mut out,
                        &mut Vec::new(),
                    );
                    return match String::from_utf8(out) {
                        Ok(masked) if masked == s => Cow::Borrowed(s),
                        Ok(masked) => Cow::Owned(masked),
                        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    };
                }
                // Text with a secret is scanned twice so that text without one, by far the
                // common case, is neither copied nor allocated for.
                if matcher.find(s).is_none() {
                    return Cow::Borrowed(s);
                }
                let mut out = String::with_capacity(s.len());
                matcher.replace_all_with(s, &mut out, |_, _, dst| {
                    dst.push_str(MASK);
                    true
                });
                Cow::Owned(out)
            }
            Engine::WithholdAll if s.is_empty() => Cow::Borrowed(s),
            Engine::WithholdAll => Cow::Borrowed(MASK),
        }
    }

    /// Masks every secret in a whole text of arbitrary bytes.
    pub(crate) fn redact_bytes<'a>(&self, b: &'a [u8]) -> Cow<'a, [u8]> {
        match &self.engine {
            Engine::Nothing => Cow::Borrowed(b),
            Engine::Patterns { matcher, .. } => {
                if crate::text::may_hide(b) {
                    let mut out = Vec::with_capacity(b.len());
                    let mut seen = Projection::default();
                    seen.fill(b, true);
                    mask_visible(matcher, b, &seen, None, &mut out, &mut Vec::new());
                    return Cow::Owned(out);
                }
                if matcher.find(b).is_none() {
                    return Cow::Borrowed(b);
                }
                let mut out = Vec::with_capacity(b.len());
                matcher.replace_all_with_bytes(b, &mut out, |_, _, dst| {
                    dst.extend_from_slice(MASK.as_bytes());
                    true
                });
                Cow::Owned(out)
            }
            Engine::WithholdAll if b.is_empty() => Cow::Borrowed(b),
            Engine::WithholdAll => Cow::Borrowed(MASK.as_bytes()),
        }
    }

    /// A stream that masks output arriving in pieces; use one per output (stdout, stderr).
    pub(crate) fn stream(&self) -> RedactStream {
        let carry_capacity = match &self.engine {
            Engine::Patterns { max_len, .. } => max_len - 1,
            Engine::Nothing | Engine::WithholdAll => 0,
        };
        RedactStream {
            redactor: self.clone(),
            carry: Vec::with_capacity(carry_capacity),
            withheld: false,
            raw: Vec::new(),
            seen: Projection::default(),
        }
    }
}

impl fmt::Debug for Redactor {
    // The derived form would print the patterns, that is, the secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Redactor");
        match &self.engine {
            Engine::Nothing => d.field("patterns", &0),
            Engine::Patterns { matcher, max_len } => d
                .field("patterns", &matcher.patterns_len())
                .field("max_len", max_len),
            Engine::WithholdAll => d.field("withhold_all", &true),
        };
        d.finish()
    }
}

/// Masks secrets in output that arrives in chunks, such as a child's stdout.
///
/// Only bytes that could still begin a secret are held back: at most the longest pattern's length
/// minus one. Everything else is appended to the caller's buffer as soon as it is pushed, so a
/// stage that prints without newlines is neither delayed nor able to exhaust memory.
pub(crate) struct RedactStream {
    redactor: Redactor,
    /// The unsettled tail of what was pushed; never longer than the longest pattern minus one.
    carry: Vec<u8>,
    /// Whether anything was pushed while the redactor withholds all output.
    withheld: bool,
    /// Buffers of the masking of output with hidden bytes, kept between pushes.
    raw: Vec<u8>,
    seen: Projection,
}

impl RedactStream {
    /// Appends to `out` the masked form of everything pushed so far that can no longer be part
    /// of a secret.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        match &self.redactor.engine {
            Engine::Nothing => out.extend_from_slice(chunk),
            Engine::Patterns { matcher, max_len } => {
                if crate::text::may_hide(chunk) || crate::text::may_hide(&self.carry) {
                    self.raw.clear();
                    self.raw.append(&mut self.carry);
                    self.raw.extend_from_slice(chunk);
                    let keep_back = Some(max_len - 1);
                    self.seen.fill(&self.raw, keep_back.is_none());
                    mask_visible(
                        matcher,
                        &self.raw,
                        &self.seen,
                        keep_back,
                        out,
                        &mut self.carry,
                    );
                    return;
                }
                let start = out.len();
                out.extend_from_slice(&self.carry);
                out.extend_from_slice(chunk);
                self.carry.clear();
                // A match starting before `settled` lies wholly in the buffer, since no pattern
                // is longer than `max_len`, so it is the same match the whole text would give.
                // One starting later might still grow with the next chunk.
                let settled = out.len().saturating_sub(max_len - 1).max(start);
                mask_in_place(matcher, out, start, settled, &mut self.carry);
            }
            Engine::WithholdAll => self.withheld |= !chunk.is_empty(),
        }
    }

    /// Appends to `out` the masked form of what is still held back; the stream is then empty.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        match &self.redactor.engine {
            Engine::Nothing => {}
            Engine::Patterns { matcher, .. } => {
                if crate::text::may_hide(&self.carry) {
                    let raw = std::mem::take(&mut self.carry);
                    self.seen.fill(&raw, true);
                    mask_visible(matcher, &raw, &self.seen, None, out, &mut self.carry);
                    return;
                }
                let start = out.len();
                out.extend_from_slice(&self.carry);
                self.carry.clear();
                let end = out.len();
                mask_in_place(matcher, out, start, end, &mut self.carry);
            }
            Engine::WithholdAll => {
                if std::mem::take(&mut self.withheld) {
                    out.extend_from_slice(MASK.as_bytes());
                }
            }
        }
    }
}

/// Masks `buf[start..]` in place, settling every match that starts before `settled`, then moves
/// the unsettled tail into `carry`.
///
/// The tail begins where a fresh leftmost-longest search over the whole text would resume: at the
/// end of the last settled match if that lies beyond `settled`, else at `settled`, since no match
/// starts between the last settled one and `settled`. In-place writing never overtakes reading
/// because no pattern is shorter than the mask.
fn mask_in_place(
    matcher: &AhoCorasick,
    buf: &mut Vec<u8>,
    start: usize,
    settled: usize,
    carry: &mut Vec<u8>,
) {
    let end = buf.len();
    let (mut read, mut write) = (start, start);
    while let Some(m) = matcher.find(Input::new(buf.as_slice()).range(read..end)) {
        if m.start() >= settled {
            break;
        }
        buf.copy_within(read..m.start(), write);
        write += m.start() - read;
        buf[write..write + MASK.len()].copy_from_slice(MASK.as_bytes());
        write += MASK.len();
        read = m.end();
    }
    let cut = read.max(settled);
    buf.copy_within(read..cut, write);
    write += cut - read;
    carry.extend_from_slice(&buf[cut..end]);
    buf.truncate(write);
}

/// Masks `raw` as a reader sees it: matches are searched in its visible bytes ([`seen_at`]:
/// without escape sequences, carriage returns and other controls), and each is replaced with
/// whatever it spans in `raw`, hidden bytes included. Everything else, colours included, is
/// kept as written. With `keep_back`, the last `keep_back` visible bytes (which could still
/// begin a secret) and what follows them go to `carry` instead of `out`, as does an escape
/// sequence not yet finished.
fn mask_visible(
    matcher: &AhoCorasick,
    raw: &[u8],
    seen: &Projection,
    keep_back: Option<usize>,
    out: &mut Vec<u8>,
    carry: &mut Vec<u8>,
) {
    let shown = &seen.shown;
    let settled = keep_back.map_or(shown.len(), |k| shown.len().saturating_sub(k));
    let (mut read_shown, mut read_raw) = (0, 0);
    while let Some(m) = matcher.find(Input::new(shown).range(read_shown..)) {
        if m.start() >= settled {
            break;
        }
        out.extend_from_slice(&raw[read_raw..seen.raw(m.start())]);
        out.extend_from_slice(MASK.as_bytes());
        read_raw = seen.raw(m.end() - 1) + 1;
        read_shown = m.end();
    }
    let cut = read_shown.max(settled);
    let cut_raw = if cut < shown.len() {
        seen.raw(cut)
    } else {
        seen.unfinished
    };
    out.extend_from_slice(&raw[read_raw..cut_raw]);
    carry.extend_from_slice(&raw[cut_raw..]);
    // Held back are at most `keep_back` visible bytes, but any number of hidden ones between
    // them; past a bound those are dropped (only a stage printing endless escape sequences
    // between a few characters meets it), keeping the visible bytes that matter.
    if carry.len() > CARRY_BOUND.max(2 * keep_back.unwrap_or(0)) {
        *carry = compact(carry);
    }
}

/// The visible bytes of a text ([`Projection::fill`]), and where they are in it.
#[derive(Default)]
struct Projection {
    shown: Vec<u8>,
    /// Runs of visible bytes: where each starts in `shown` and in the text.
    runs: Vec<(usize, usize)>,
    /// Where an unfinished sequence at the end begins (the text's length when there is none).
    unfinished: usize,
}

impl Projection {
    /// Reads `raw`, reusing the buffers; with `at_end`, nothing follows it.
    fn fill(&mut self, raw: &[u8], at_end: bool) {
        self.shown.clear();
        self.runs.clear();
        self.unfinished = raw.len();
        let seen = self;
        let mut i = 0;
        while i < raw.len() {
            // Plain text, in one copy.
            let plain = raw[i..]
                .iter()
                .position(|&c| may_hide_byte(c))
                .unwrap_or(raw.len() - i);
            if plain > 0 {
                seen.visible(i, &raw[i..i + plain]);
                i += plain;
                continue;
            }
            let c = raw[i];
            // A lone control byte (a carriage return, NUL, backspace...) needs no parsing.
            if (c < 0x20 && c != 0x1b) || c == 0x7f {
                i += 1;
                continue;
            }
            match seen_at(&raw[i..], at_end) {
                Seen::Visible => {
                    seen.visible(i, &raw[i..=i]);
                    i += 1;
                }
                Seen::Hidden(n) => i += n.max(1),
                Seen::Unfinished => {
                    seen.unfinished = i;
                    break;
                }
            }
        }
    }

    fn visible(&mut self, at: usize, bytes: &[u8]) {
        let contiguous = self
            .runs
            .last()
            .is_some_and(|&(shown, raw)| raw + (self.shown.len() - shown) == at);
        if !contiguous {
            self.runs.push((self.shown.len(), at));
        }
        self.shown.extend_from_slice(bytes);
    }

    /// Where the visible byte `i` is in the text.
    fn raw(&self, i: usize) -> usize {
        let run = self.runs.partition_point(|&(shown, _)| shown <= i) - 1;
        let (shown, raw) = self.runs[run];
        raw + (i - shown)
    }
}

/// Where a stream's held-back bytes are stripped of what shows nothing.
const CARRY_BOUND: usize = 64 * 1024;

/// `raw` without its hidden bytes; an unfinished sequence at its end is kept.
fn compact(raw: &[u8]) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        match seen_at(&raw[i..], false) {
            Seen::Visible => {
                kept.push(raw[i]);
                i += 1;
            }
            Seen::Hidden(n) => i += n.max(1),
            Seen::Unfinished => {
                kept.extend_from_slice(&raw[i..]);
                break;
            }
        }
    }
    kept
}

/// A pattern (or any text) as a reader sees it.
pub(crate) fn visible(pattern: &[u8]) -> Vec<u8> {
    let mut shown = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        match seen_at(&pattern[i..], true) {
            Seen::Hidden(n) => i += n.max(1),
            Seen::Visible | Seen::Unfinished => {
                shown.push(pattern[i]);
                i += 1;
            }
        }
    }
    shown
}

/// Every byte string to mask for one secret value, possibly with duplicates.
fn patterns_for(value: &str) -> Vec<Vec<u8>> {
    let trimmed = value.trim();
    if trimmed.chars().count() < MIN_SECRET_CHARS {
        return Vec::new();
    }
    let bytes = value.as_bytes();
    let mut out = vec![value.to_owned(), trimmed.to_owned()];
    for alphabet in [BASE64_STANDARD, BASE64_URL_SAFE] {
        let padded = base64(bytes, alphabet);
        out.push(padded.trim_end_matches('=').to_owned());
        out.push(padded);
        // Skipping 0, 1 or 2 leading bytes puts the value's first byte at each alignment.
        for skip in 0..3 {
            let rest = bytes.get(skip..).unwrap_or_default();
            let core = base64(&rest[..rest.len() / 3 * 3], alphabet);
            if core.len() >= MIN_BASE64_CORE_CHARS {
                out.push(core);
            }
        }
    }
    for (keep, space_as_plus) in URL_STYLES {
        out.push(percent_encode(bytes, keep, space_as_plus));
    }
    for style in JSON_STYLES {
        out.push(json_escape(value, style));
    }
    // How shells quote the value when they print it: `set -x` (bash, and `printf %q`'s
    // single-quote form) writes `'a'\''b'` for a value holding `'`, and a word of only safe
    // characters is printed bare (already covered).
    if value.contains('\'') {
        let quoted = value.replace('\'', r"'\''");
        out.push(format!("'{quoted}'"));
        out.push(quoted);
    }
    if value.contains('\n') {
        let lines = value.lines().map(str::trim);
        out.extend(
            lines
                .filter(|l| l.chars().count() >= MIN_LINE_CHARS)
                .map(str::to_owned),
        );
    }
    out.into_iter().map(String::into_bytes).collect()
}

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(alphabet[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn percent_encode(bytes: &[u8], keep: &[u8], space_as_plus: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else if b == b' ' && space_as_plus {
            out.push('+');
        } else {
            out.extend([
                '%',
                char::from(HEX[usize::from(b >> 4)]),
                char::from(HEX[usize::from(b & 15)]),
            ]);
        }
    }
    out
}

#[derive(Clone, Copy)]
struct JsonStyle {
    ascii_only: bool,
    html_safe: bool,
    escape_slash: bool,
}

/// The value as it appears between the quotes of a JSON string.
fn json_escape(value: &str, style: JsonStyle) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if style.escape_slash => out.push_str("\\/"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if style.html_safe => {
                push_utf16_escapes(&mut out, c)
            }
            c if c < ' ' || (style.ascii_only && !c.is_ascii()) => push_utf16_escapes(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

fn push_utf16_escapes(out: &mut String, c: char) {
    let mut units = [0; 2];
    for unit in c.encode_utf16(&mut units) {
        out.push_str(&format!("\\u{unit:04x}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn redactor(values: &[&str]) -> Redactor {
        Redactor::new(values.iter().map(|v| (*v).to_owned()))
    }

    fn stream_all(r: &Redactor, chunks: &[&[u8]]) -> Vec<u8> {
        let mut stream = r.stream();
        let mut out = Vec::new();
        for chunk in chunks {
            stream.push(chunk, &mut out);
        }
        stream.finish(&mut out);
        out
    }

    #[test]
    fn masks_values_and_their_encodings() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&["hunter2"], "pw=hunter2;", "pw=***;"),
            (&["hunter2"], "b64 aHVudGVyMg== end", "b64 *** end"),
            (&["hunter2"], "unpadded aHVudGVyMg end", "unpadded *** end"),
            (
                &["a?b>c~d"],
                "std YT9iPmN+ZA== url YT9iPmN-ZA",
                "std *** url ***",
            ),
            (&["p@ss word/1"], "u=p%40ss%20word%2F1", "u=***"),
            (&["p@ss word/1"], "u=p%40ss+word%2F1", "u=***"),
            (
                &["p@ss word/1"],
                "postgres://u:p%40ss%20word/1@h",
                "postgres://u:***@h",
            ),
            (&["pa\"ss\\x"], r#"{"pw":"pa\"ss\\x"}"#, r#"{"pw":"***"}"#),
            (
                &["pässwort"],
                r#"{"pw":"p\u00e4sswort"}"#,
                r#"{"pw":"***"}"#,
            ),
            (&["a<b>c&d"], r#""a\u003cb\u003ec\u0026d""#, r#""***""#),
            (&["x/y\nz"], r#""x\/y\nz""#, r#""***""#),
            (&["line one\n{\nline two\n"], "> line two <", "> *** <"),
            (&["line one\n{\nline two\n"], "a { brace", "a { brace"),
            (&["  padded  "], "[padded]", "[***]"),
            (&["abc"], "xabcx", "x***x"),
            (&["ab", "  x \n"], "ab x ab", "ab x ab"),
            (&["   \n  "], "a    \n   b", "a    \n   b"),
            (&["abc", "abcdef"], "abcdefg abcd", "***g ***d"),
            (&["abcdef", "defghi"], "abcdefghi", "***ghi"),
            (&[], "nothing hunter2", "nothing hunter2"),
        ];
        for (values, input, expected) in cases {
            let r = redactor(values);
            assert_eq!(
                r.redact_str(input),
                *expected,
                "values {values:?}, input {input:?}"
            );
            assert_eq!(r.redact_bytes(input.as_bytes()), expected.as_bytes());
            assert_eq!(stream_all(&r, &[input.as_bytes()]), expected.as_bytes());
        }
    }

    #[test]
    fn masks_base64_of_a_value_inside_a_longer_text() {
        let secret = "correct-horse-battery";
        let r = redactor(&[secret]);
        for prefix in ["", "u:", "user:"] {
            for suffix in ["", "\n", "-x"] {
                let encoded = base64(
                    format!("{prefix}{secret}{suffix}").as_bytes(),
                    BASE64_STANDARD,
                );
                let masked = r.redact_str(&encoded);
                assert!(masked.contains(MASK), "{prefix:?}+{suffix:?}: {masked}");
                // What stays visible is the base64 groups shared with the surrounding text: two
                // at each end here, holding at most two bytes of the value each.
                assert!(
                    masked.len() <= MASK.len() + 16,
                    "{prefix:?}+{suffix:?}: {masked}"
                );
            }
        }
    }

    #[test]
    fn nothing_to_mask_borrows() {
        let r = redactor(&["hunter2"]);
        assert!(matches!(r.redact_str("clean"), Cow::Borrowed(_)));
        assert!(matches!(r.redact_bytes(b"\xff clean"), Cow::Borrowed(_)));
        let empty = redactor(&[]);
        assert!(matches!(empty.redact_str("hunter2"), Cow::Borrowed(_)));
        assert_eq!(stream_all(&empty, &[b"hun", b"ter2"]), b"hunter2");
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let shown = format!("{:?}", redactor(&["hunter2"]));
        assert!(
            !shown.contains("hunter2") && !shown.contains("aHVudGVy"),
            "{shown}"
        );
    }

    #[test]
    fn stream_masks_a_secret_split_across_writes() {
        let r = redactor(&["hunter2"]);
        let mut stream = r.stream();
        let mut out = Vec::new();
        stream.push(b"pw: hun", &mut out);
        assert!(
            !out.ends_with(b"hun"),
            "the start of a secret must be held back"
        );
        stream.push(b"ter2 ok\n", &mut out);
        stream.finish(&mut out);
        assert_eq!(out, b"pw: *** ok\n");
    }

    #[test]
    fn stream_memory_stays_bounded() {
        let secret = "0123456789-secret-abcdef";
        let r = redactor(&[secret]);
        let max_len = match &r.engine {
            Engine::Patterns { max_len, .. } => *max_len,
            Engine::Nothing | Engine::WithholdAll => unreachable!("patterns expected"),
        };
        let mut chunk = vec![b'x'; 64 * 1024];
        // The secret straddles the boundary between two consecutive chunks.
        chunk[..10].copy_from_slice(&secret.as_bytes()[14..]);
        chunk[64 * 1024 - 14..].copy_from_slice(&secret.as_bytes()[..14]);
        let mut stream = r.stream();
        let capacity = stream.carry.capacity();
        let mut out = Vec::new();
        let chunks = 100 * 1024 * 1024 / chunk.len();
        let (mut total, mut masks) = (0, 0);
        for _ in 0..chunks {
            stream.push(&chunk, &mut out);
            assert!(stream.carry.len() < max_len);
            assert_eq!(stream.carry.capacity(), capacity);
            total += out.len();
            masks += out.iter().filter(|&&b| b == b'*').count() / MASK.len();
            out.clear();
        }
        stream.finish(&mut out);
        total += out.len();
        assert_eq!(masks, chunks - 1);
        assert_eq!(
            total,
            chunks * chunk.len() - (chunks - 1) * (secret.len() - MASK.len())
        );
    }

    /// Text from a small alphabet, so secrets overlap, recur and nearly match often, with
    /// invalid UTF-8 mixed in.
    fn text_byte() -> impl Strategy<Value = u8> {
        prop_oneof![8 => prop::sample::select(b"abcde\n".to_vec()), 1 => Just(0xff)]
    }

    fn case() -> impl Strategy<Value = (Vec<String>, Vec<u8>, Vec<usize>)> {
        let secrets = prop::collection::vec("[a-e\n]{1,12}", 0..5);
        (
            secrets,
            prop::collection::vec(prop::collection::vec(text_byte(), 0..40), 1..8),
        )
            .prop_flat_map(|(secrets, pieces)| {
                let count = secrets.len().max(1);
                let inserts = prop::collection::vec(0..count, pieces.len() - 1);
                (Just(secrets), Just(pieces), inserts)
            })
            .prop_flat_map(|(secrets, pieces, inserts)| {
                let mut text = pieces[0].clone();
                for (piece, &which) in pieces[1..].iter().zip(&inserts) {
                    let secret = secrets.get(which).map(String::as_str).unwrap_or_default();
                    let encoded = base64(secret.as_bytes(), BASE64_STANDARD);
                    text.extend_from_slice(if piece.len() % 2 == 0 {
                        secret.as_bytes()
                    } else {
                        encoded.as_bytes()
                    });
                    text.extend_from_slice(piece);
                }
                let cuts = prop::collection::vec(0..=text.len(), 0..10);
                (Just(secrets), Just(text), cuts)
            })
    }

    proptest! {
        #[test]
        fn streaming_equals_whole_text_and_leaks_nothing((secrets, text, mut cuts) in case()) {
            let r = Redactor::new(secrets.clone());
            cuts.push(0);
            cuts.push(text.len());
            cuts.sort_unstable();
            let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &text[w[0]..w[1]]).collect();
            let whole = r.redact_bytes(&text);
            prop_assert_eq!(stream_all(&r, &chunks), whole.as_ref());
            for secret in secrets.iter().filter(|s| s.trim().chars().count() >= MIN_SECRET_CHARS) {
                let encoded = base64(secret.as_bytes(), BASE64_STANDARD);
                for needle in [secret.as_bytes(), encoded.as_bytes()] {
                    prop_assert!(!whole.windows(needle.len()).any(|w| w == needle));
                }
            }
        }

        /// A secret split by what shows nothing (colours, links, carriage returns, controls,
        /// bidi overrides) is masked as a reader sees it, however the output is cut.
        #[test]
        fn secrets_are_masked_as_read(
            secret in "[a-f]{3,10}",
            noise in prop::collection::vec(0usize..8, 1..4),
            at in prop::collection::vec(0usize..10, 1..4),
            cut in prop::collection::vec(0usize..60, 0..6),
        ) {
            const NOISE: [&str; 8] = [
                "\x1b[31m", "\x1b]8;;http://x\x1b\\", "\r", "\u{9b}1m", "\u{202e}", "\x08",
                "\x1b]0;t\x07", "\x1b(B",
            ];
            let mut split = secret.clone();
            for (n, a) in noise.iter().zip(&at) {
                let mut i = (a % (split.len() - 1)) + 1;
                while !split.is_char_boundary(i) { i += 1; }
                split.insert_str(i, NOISE[*n]);
            }
            let text = format!("\x1b[32mok\x1b[0m {split} end\n");
            let r = Redactor::new([secret.clone()]);
            let whole = r.redact_str(&text).into_owned();
            let mut cuts: Vec<usize> = cut.into_iter().map(|c| c.min(text.len())).collect();
            cuts.extend([0, text.len()]);
            cuts.sort_unstable();
            let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &text.as_bytes()[w[0]..w[1]]).collect();
            prop_assert_eq!(stream_all(&r, &chunks), whole.as_bytes());
            let read = String::from_utf8(visible(whole.as_bytes())).expect("UTF-8");
            prop_assert!(!read.contains(&secret), "{:?} -> {:?}", text, whole);
            prop_assert!(!crate::report::junit::xml_safe(&whole).replace('\r', "").contains(&secret));
            prop_assert!(whole.starts_with("\x1b[32mok\x1b[0m "), "{:?}", whole);
        }

        #[test]
        fn short_values_are_never_masked(value in "[a-e ]{0,2}", text in "[a-e ]{0,30}") {
            let r = Redactor::new([value]);
            prop_assert_eq!(r.redact_str(&text), text.as_str());
        }
    }
}
