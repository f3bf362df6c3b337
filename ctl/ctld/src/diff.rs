//! What `apply` would change: a unified line diff per node, secrets redacted unless asked.

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

/// [`unified`], of the redacted texts unless `show_secrets` (`ringside_config::redact`): a
/// change to a secret alone is then said in a line of its own rather than shown.
pub fn shown(old: &str, new: &str, old_name: &str, new_name: &str, show_secrets: bool) -> String {
    if show_secrets {
        return unified(old, new, old_name, new_name);
    }
    // A text that does not parse cannot be redacted line by line: none of it is shown.
    let redact = |t: &str| {
        ringside_config::redact::redact_source(t).unwrap_or_else(|_| {
            "# (the configuration does not parse; shown with --show-secrets)\n".to_string()
        })
    };
    let (old_r, new_r) = (redact(old), redact(new));
    let mut out = unified(&old_r, &new_r, old_name, new_name);
    if old != new && old_r == new_r {
        out.push_str(&format!(
            "{new_name}: secrets changed ([redacted]; shown with --show-secrets)\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_unless_asked() {
        let old = "[[consumers]]\nname = \"a\"\napi_keys = [{ key = \"k-old-secret\" }]\nx = 1\n";
        let new = "[[consumers]]\nname = \"a\"\napi_keys = [{ key = \"k-new-secret\" }]\nx = 2\n";
        let d = shown(old, new, "old", "new", false);
        assert!(!d.contains("secret"), "{d}");
        assert!(d.contains("-x = 1") && d.contains("+x = 2"), "{d}");
        let shown_all = shown(old, new, "old", "new", true);
        assert!(
            shown_all.contains("+api_keys = [{ key = \"k-new-secret\" }]"),
            "{shown_all}"
        );
        // Only a secret changed: said, not shown.
        let only = shown(
            old,
            &old.replace("old-secret", "new-secret"),
            "old",
            "new",
            false,
        );
        assert_eq!(
            only,
            "new: secrets changed ([redacted]; shown with --show-secrets)\n"
        );
        assert_eq!(shown(old, old, "old", "new", false), "");
    }

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
