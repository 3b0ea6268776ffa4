//! Text helpers shared by the detectors: comment masking that keeps byte offsets, offsets to
//! line and column, and finding port numbers inside values.
//!
//! Every detector reads a *masked* copy of the file in which comments are replaced by spaces,
//! so a commented-out `EXPOSE 3000` is never seen, while every byte offset still points at the
//! same place in the original text.

/// How a file writes comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommentStyle {
    /// `#` at the start of a line or after whitespace, outside quotes (YAML, shell, Python,
    /// `.env`, nginx, TOML, Procfiles).
    Hash,
    /// `#` only as the first non-blank character of a line (Dockerfile; `#` elsewhere is text).
    HashLineStart,
    /// `#` or `;` as the first non-blank character (systemd units, INI files).
    IniLine,
    /// `//` to the end of the line and `/* ... */` (JavaScript, TypeScript, JSON with comments).
    Slash,
    /// No comments (JSON).
    None,
    /// A line marker and a block marker pair, outside double quotes: Erlang's `%`, Haskell's
    /// and Lua's `--` with `{- -}` and `--[[ ]]`, OCaml's `(* *)`, Lisp's `;`, Nim's `#` with
    /// `#[ ]#`. A line marker counts at the start of a line or after a space or a separator.
    Marked {
        line: &'static [&'static str],
        block: Option<(&'static str, &'static str)>,
    },
}

/// The text with comments blanked out (newlines kept), and the comments themselves as
/// `(byte offset, text)` so suppressions can be read from them.
pub(crate) fn mask_comments(text: &str, style: CommentStyle) -> (String, Vec<(usize, String)>) {
    let mut out = text.as_bytes().to_vec();
    let mut comments = Vec::new();
    let bytes = text.as_bytes();
    match style {
        CommentStyle::None => {}
        CommentStyle::Hash | CommentStyle::HashLineStart | CommentStyle::IniLine => {
            // Only a line holding `#` or `;` can hold a comment: each such line once.
            let mut from = 0;
            while let Some(hit) = memchr::memchr2(b'#', b';', &bytes[from..]).map(|k| from + k) {
                let start = memchr::memrchr(b'\n', &bytes[..hit]).map_or(0, |k| k + 1);
                let next = memchr::memchr(b'\n', &bytes[hit..]).map_or(bytes.len(), |k| hit + k);
                let end = start + text[start..next].trim_end_matches('\r').len();
                if let Some(at) = hash_comment_start(&bytes[start..end], style) {
                    comments.push((start + at, text[start + at..end].to_owned()));
                    blank(&mut out[start + at..end]);
                }
                from = next;
            }
        }
        CommentStyle::Slash => slash_comments(bytes, &mut out, &mut comments, text),
        CommentStyle::Marked { line, block } => {
            marked_comments(text, line, block, &mut out, &mut comments);
        }
    }
    // Only ASCII bytes were replaced by ASCII spaces, or whole comments were blanked; a
    // multi-byte character is blanked entirely or not at all, so this stays UTF-8.
    let masked = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    (masked, comments)
}

fn blank(bytes: &mut [u8]) {
    for b in bytes {
        if *b != b'\n' {
            *b = b' ';
        }
    }
}

/// Where a `#`-style comment starts in one line, if it has one.
fn hash_comment_start(line: &[u8], style: CommentStyle) -> Option<usize> {
    let first = line.iter().position(|b| !b.is_ascii_whitespace())?;
    match style {
        CommentStyle::HashLineStart => return (line[first] == b'#').then_some(first),
        CommentStyle::IniLine => return matches!(line[first], b'#' | b';').then_some(first),
        // A line opened by `;` is an INI-style comment in the `.conf` and `.cfg` files that
        // use `#` elsewhere (`; xmlrpc_port = 3000`); no language read this way starts a line
        // with it.
        CommentStyle::Hash if line[first] == b';' => return Some(first),
        _ => {}
    }
    let mut quote: Option<u8> = None;
    for (i, &b) in line.iter().enumerate() {
        match quote {
            Some(q) if b == q && (i == 0 || line[i - 1] != b'\\') => quote = None,
            Some(_) => {}
            None if (b == b'"' || b == b'\'')
                && (i == 0
                    || matches!(
                        line[i - 1],
                        b' ' | b'\t' | b'=' | b':' | b'(' | b'[' | b',' | b'{'
                    )) =>
            {
                quote = Some(b);
            }
            None if b == b'#' && (i == 0 || line[i - 1].is_ascii_whitespace()) => return Some(i),
            None => {}
        }
    }
    None
}

fn slash_comments(bytes: &[u8], out: &mut [u8], comments: &mut Vec<(usize, String)>, text: &str) {
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q || (b == b'\n' && q != b'`') {
                quote = None;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' | b'\'' | b'`' => quote = Some(b),
            b'/' if bytes.get(i + 1) == Some(&b'/') && (i == 0 || bytes[i - 1] != b':') => {
                let end = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                comments.push((i, text[i..end].to_owned()));
                blank(&mut out[i..end]);
                i = end;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = memchr::memmem::find(&bytes[i + 2..], b"*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
                comments.push((i, text[i..end].to_owned()));
                blank(&mut out[i..end]);
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

fn marked_comments(
    text: &str,
    line: &[&str],
    block: Option<(&str, &str)>,
    out: &mut [u8],
    comments: &mut Vec<(usize, String)>,
) {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            match b {
                b'\\' => i += 1,
                b'"' | b'\n' => quoted = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            quoted = true;
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        // A block first: Lua's `--[[` and Nim's `#[` start with the line marker.
        let end = if let Some((open, close)) = block.filter(|(o, _)| rest.starts_with(o.as_bytes()))
        {
            memchr::memmem::find(&bytes[i + open.len()..], close.as_bytes())
                .map_or(bytes.len(), |n| i + open.len() + n + close.len())
        } else if line.iter().any(|m| rest.starts_with(m.as_bytes()))
            && (i == 0
                || matches!(
                    bytes[i - 1],
                    b' ' | b'\t' | b'\n' | b'\r' | b',' | b';' | b')' | b'}' | b']'
                ))
        {
            memchr::memchr(b'\n', rest).map_or(bytes.len(), |n| i + n)
        } else {
            i += 1;
            continue;
        };
        // Blank whole characters only: the end is moved to a character boundary.
        let mut end = end.min(bytes.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        comments.push((i, text[i..end].to_owned()));
        blank(&mut out[i..end]);
        i = end;
    }
}

/// Byte offsets of line starts, to turn an offset into a 1-based line and character column.
pub(crate) struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Lines { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        (line as u32 + 1, col as u32)
    }

    /// The text of 1-based line `line`, without its line break.
    pub(crate) fn text_of(&self, line: u32) -> &'a str {
        let i = (line as usize).saturating_sub(1);
        let Some(&start) = self.starts.get(i) else {
            return "";
        };
        let end = self.starts.get(i + 1).map_or(self.text.len(), |e| e - 1);
        self.text.get(start..end.max(start)).unwrap_or("")
    }
}

/// A port number spelled by `s` (1-65535, digits only, no sign or leading zero).
pub(crate) fn port_number(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('0') {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

/// The digits starting at `at`, as a port, and their length.
pub(crate) fn digits_at(text: &str, at: usize) -> Option<(u16, usize)> {
    let len = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    // A port is followed by something that is not part of a bigger number or word.
    let next = text.as_bytes().get(at + len).copied();
    if matches!(next, Some(b) if b.is_ascii_alphanumeric() || b == b'.' && text.as_bytes().get(at + len + 1).is_some_and(u8::is_ascii_digit) || b == b'_')
    {
        return None;
    }
    port_number(&text[at..at + len]).map(|p| (p, len))
}

/// Whether a host name or address means this machine's loopback interface.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.starts_with("127.") || host == "::1" || host == "ip6-localhost"
}

/// Whether a host name or address means this machine (loopback or every interface).
pub(crate) fn is_local_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    is_loopback_host(host) || matches!(bare, "0.0.0.0" | "::" | "*" | "" | "0")
}

/// A port value as written in a flag, a setting or a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortValue {
    pub(crate) port: u16,
    /// Byte offset of the digits inside the value.
    pub(crate) at: usize,
    /// The host part, when the value names one (`127.0.0.1:8000`).
    pub(crate) host: Option<String>,
    /// `${PORT:-3001}`: the port is a default the environment may override.
    pub(crate) overridable: Option<String>,
}

/// Reads `8000`, `:8000`, `0.0.0.0:8000`, `[::1]:8000`, `tcp://host:8000`, `${PORT:-8000}`,
/// `0.0.0.0:${PORT:-8000}`. `unix:` paths, `fd://` and bare `$PORT` give `None`: they bind no
/// number the scanner can know.
pub(crate) fn parse_port_value(value: &str) -> Option<PortValue> {
    let mut v = value;
    let mut skip = 0;
    for scheme in ["tcp://", "http://", "https://", "udp://"] {
        if let Some(rest) = v.strip_prefix(scheme) {
            skip = scheme.len();
            v = rest;
        }
    }
    if v.starts_with("unix:") || v.starts_with("fd:") || v.starts_with('/') {
        return None;
    }
    let v = v.trim_end_matches('/');
    // The port is after the last `:` that is not inside brackets or `${...}`.
    let (host, port_part, port_at) = match split_host_port(v) {
        Some((h, p, at)) => (Some(h.to_owned()), p, skip + at),
        None => (None, v, skip),
    };
    if let Some(p) = port_number(port_part) {
        return Some(PortValue {
            port: p,
            at: port_at,
            host,
            overridable: None,
        });
    }
    // `${VAR:-N}` / `${VAR-N}`.
    let inner = port_part.strip_prefix("${")?.strip_suffix('}')?;
    let (var, default) = inner.split_once(":-").or_else(|| inner.split_once('-'))?;
    let p = port_number(default)?;
    let at = port_at + 2 + var.len() + (inner.len() - var.len() - default.len());
    Some(PortValue {
        port: p,
        at,
        host,
        overridable: Some(var.to_owned()),
    })
}

/// Splits `host:port` at the port's colon: `[::1]:80`, `0.0.0.0:80`, `:80`, `${H}:${P:-80}`.
fn split_host_port(v: &str) -> Option<(&str, &str, usize)> {
    let bytes = v.as_bytes();
    let mut depth = 0i32;
    let mut split = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b':' if depth == 0 => split = Some(i),
            _ => {}
        }
    }
    let i = split?;
    let host = &v[..i];
    // `::1` alone is an address, not host `:` + port `1`.
    if host.contains(':') && !host.starts_with('[') {
        return None;
    }
    Some((host, &v[i + 1..], i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_comments_keeping_offsets() {
        let text = "a: 1 # EXPOSE 3000\nurl: \"x # y\" # real\n# whole 8000\n";
        let (masked, comments) = mask_comments(text, CommentStyle::Hash);
        assert_eq!(masked.len(), text.len());
        assert!(!masked.contains("3000") && !masked.contains("8000"));
        assert!(masked.contains("\"x # y\""), "{masked}");
        assert_eq!(comments.len(), 3);
        let js = "const u = 'http://localhost:3000'; // old 8000\n/* 3002\n */ listen(5555)";
        let (masked, _) = mask_comments(js, CommentStyle::Slash);
        assert!(masked.contains("localhost:3000") && masked.contains("listen(5555)"));
        assert!(!masked.contains("8000") && !masked.contains("3002"));
        let docker = "EXPOSE 3000 # not a comment in a Dockerfile\n  # EXPOSE 8000\n";
        let (masked, _) = mask_comments(docker, CommentStyle::HashLineStart);
        assert!(masked.contains("# not a comment") && !masked.contains("8000"));
    }

    #[test]
    fn masks_comments_of_other_languages() {
        let masked = |text: &str, line: &'static [&'static str], block| {
            let (m, _) = mask_comments(text, CommentStyle::Marked { line, block });
            assert_eq!(m.len(), text.len());
            m
        };
        // Erlang: `%` after code or at a line's start; not inside a string.
        let m = masked(
            "{port, 8000}, % was 3000\n%% Port = 3002\n{url, \"http://x/%20\"}\n",
            &["%"],
            None,
        );
        assert!(
            m.contains("8000") && !m.contains("3000") && !m.contains("3002"),
            "{m}"
        );
        assert!(m.contains("%20"), "{m}");
        // XML: `<!-- -->` blocks, across lines too.
        let m = masked(
            "<a port=\"8000\"/>\n<!-- <b port=\"3002\"/> -->\n<!--\n 3000\n-->\n",
            &[],
            Some(("<!--", "-->")),
        );
        assert!(
            m.contains("8000") && !m.contains("3002") && !m.contains("3000"),
            "{m}"
        );
        // OCaml: blocks only.
        let m = masked("let p = 8000 (* was 3000 *)\n", &[], Some(("(*", "*)")));
        assert!(m.contains("8000") && !m.contains("3000"), "{m}");
        // Nim: `#` lines and `#[ ... ]#` blocks across lines.
        let m = masked(
            "#[\n  run(Port(3002))\n]#\nlet port = 8000 # é 3000\n",
            &["#"],
            Some(("#[", "]#")),
        );
        assert!(
            m.contains("8000") && !m.contains("3002") && !m.contains("3000"),
            "{m}"
        );
        // Haskell: `--` and `{- -}`; VCL: `#`, `//` and `/* */`.
        let m = masked(
            "run 8000 -- 3000\n{- 3002 -}\n",
            &["--"],
            Some(("{-", "-}")),
        );
        assert!(
            m.contains("8000") && !m.contains("3000") && !m.contains("3002"),
            "{m}"
        );
        let m = masked(
            "# 3000\n// 3002\n/* 3001 */ .port = \"8000\";\n",
            &["#", "//"],
            Some(("/*", "*/")),
        );
        assert!(m.contains("8000") && !m.contains("300"), "{m}");
    }

    #[test]
    fn positions_count_characters() {
        let text = "é: 1\nab 3000\n";
        let lines = Lines::new(text);
        assert_eq!(lines.position(text.find("3000").unwrap()), (2, 4));
        assert_eq!(lines.position(text.find('1').unwrap()), (1, 4));
    }

    #[test]
    fn port_values() {
        let p = |s: &str| parse_port_value(s).map(|v| (v.port, v.at, v.host));
        assert_eq!(p("8000"), Some((8000, 0, None)));
        assert_eq!(p(":8000"), Some((8000, 1, Some(String::new()))));
        assert_eq!(p("0.0.0.0:5555"), Some((5555, 8, Some("0.0.0.0".into()))));
        assert_eq!(p("[::1]:3000"), Some((3000, 6, Some("[::1]".into()))));
        assert_eq!(
            p("tcp://0.0.0.0:3001"),
            Some((3001, 14, Some("0.0.0.0".into())))
        );
        assert_eq!(p("${PORT:-3001}"), Some((3001, 8, None)));
        assert_eq!(
            p("0.0.0.0:${PORT:-8000}"),
            Some((8000, 16, Some("0.0.0.0".into())))
        );
        assert_eq!(p("unix:/run/gunicorn.sock"), None);
        assert_eq!(p("$PORT"), None);
        assert_eq!(p("::1"), None);
        assert_eq!(p("70000"), None);
        assert_eq!(p("0"), None);
        assert_eq!(digits_at("3000ms", 0), None);
        assert_eq!(digits_at("3000.5", 0), None);
        assert_eq!(digits_at("3000/tcp", 0), Some((3000, 4)));
    }
}
