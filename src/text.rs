//! Small helpers for the words of user-facing messages, used by every layer.

/// `1 note`, `3 notes`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
