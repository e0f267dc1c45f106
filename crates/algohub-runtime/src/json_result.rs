//! Whether a result labelled JSON can be delivered as JSON: valid, and
//! nested no deeper than JSON parsers accept once the call envelope wraps it
//! (serde_json, which builds the envelope and many clients, refuses 128
//! levels; the envelope adds one), so a result is never turned into `null`
//! on its way to the caller, nor into an answer the caller cannot parse.

use serde::de::IgnoredAny;

/// The deepest nesting of arrays and objects a JSON result may have (the
/// envelope `{"result": ...}` then nests 127 levels).
pub const MAX_JSON_DEPTH: usize = 126;

/// `Ok` if `data` is JSON that the call envelope can carry; otherwise what
/// is wrong with it, as the algorithm error's message.
pub fn check_json_result(data: &[u8]) -> Result<(), String> {
    if serde_json::from_slice::<IgnoredAny>(data).is_err() {
        return Err("result is not valid JSON".into());
    }
    let depth = nesting_depth(data);
    if depth > MAX_JSON_DEPTH {
        return Err(format!(
            "result is JSON nested {depth} levels deep: at most {MAX_JSON_DEPTH} levels of \
             arrays and objects can be returned"
        ));
    }
    Ok(())
}

/// The deepest nesting of arrays and objects in valid JSON (brackets inside
/// strings do not count).
fn nesting_depth(data: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in data {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn the_limit_is_where_a_parser_of_the_envelope_stops() {
        let envelope = |result: &str| format!(r#"{{"result": {result}, "async": false}}"#);
        let ok = nested(MAX_JSON_DEPTH);
        assert!(check_json_result(ok.as_bytes()).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&envelope(&ok)).is_ok());
        let deep = nested(MAX_JSON_DEPTH + 1);
        let e = check_json_result(deep.as_bytes()).unwrap_err();
        assert!(e.contains("127 levels deep"), "{e}");
        assert!(serde_json::from_str::<serde_json::Value>(&envelope(&deep)).is_err());
        let objects = format!("{}{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        assert!(check_json_result(objects.as_bytes()).is_err());
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let s = format!(r#"["{}", "\"{}"]"#, "[".repeat(500), "{".repeat(500));
        assert!(check_json_result(s.as_bytes()).is_ok());
        assert!(check_json_result(b"{\"a\": 1").is_err());
    }
}
