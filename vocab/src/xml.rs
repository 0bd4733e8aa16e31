//! Text for XML (the JUnit reports of `scenario run` and `doctor`). Pure.

/// Text escaped for XML attributes and content; characters XML 1.0 cannot carry are
/// dropped, a line break is kept as `&#10;` (so it survives in an attribute too).
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_quotes_breaks_and_what_xml_cannot_carry() {
        assert_eq!(
            super::escaped("a<b & \"c\"\nd\u{1}\te"),
            "a&lt;b &amp; &quot;c&quot;&#10;d e"
        );
    }
}
