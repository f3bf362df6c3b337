//! What `apply` would change: a unified line diff per node.

use similar::TextDiff;

/// A unified diff of `old` → `new` with `---`/`+++` headers; empty when they are equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let mut out = TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .missing_newline_hint(false)
        .to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_lines_with_headers() {
        let d = unified("a\nb\nc\n", "a\nB\nc\n", "web-1 generation 3", "new");
        assert_eq!(
            d,
            "--- web-1 generation 3\n+++ new\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        assert_eq!(unified("x\n", "x\n", "a", "b"), "");
    }
}
