//! `${NAME}` and `${NAME:-default}` in a proxy configuration file, replaced
//! by environment variables before the YAML is parsed, so one file serves
//! every deployment of the same topology (docker-compose.yml sets host
//! names, scripts/cluster sets loopback ports). Only `${` starts a
//! reference (`$${` writes a literal `${`), and comment lines (first
//! non-blank character `#`) are left as they are; a variable that is
//! unset and has no default is an error naming it and its line, never an
//! empty value.

use super::config::ConfigError;

/// `text` with every reference replaced by `lookup(name)` or its default.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            expand_line(line, n + 1, &lookup, &mut out)?;
        }
    }
    Ok(out)
}

/// Appends `text` (line `line` of the file) to `out`, references replaced.
fn expand_line(
    text: &str,
    line: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), ConfigError> {
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(body) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let problem = |p: String| ConfigError {
            path: format!("line {line}"),
            problem: p,
        };
        let end = body
            .find('}')
            .ok_or_else(|| problem("`${` without a closing `}`".into()))?;
        let (name, default) = match body[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&body[..end], None),
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(problem(format!(
                "`${{{}}}` is not a variable reference: write ${{NAME}} or ${{NAME:-default}}",
                &body[..end]
            )));
        }
        match lookup(name).or_else(|| default.map(str::to_string)) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(problem(format!(
                    "environment variable {name} is not set and `${{{name}}}` has no default \
                     (write ${{{name}:-default}})"
                )))
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("7000".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced_by_the_variable_or_the_default() {
        let text = "# ${NOT_EXPANDED}\nport: ${PORT}\nhost: ${HOST:-127.0.0.1}\nx: ${EMPTY:-d}\ncost: $5 $${KEEP}\n";
        assert_eq!(
            expand(text, env).unwrap(),
            "# ${NOT_EXPANDED}\nport: 7000\nhost: 127.0.0.1\nx: \ncost: $5 ${KEEP}\n"
        );
    }

    #[test]
    fn unset_variables_and_bad_references_name_the_line() {
        let e = expand("a: 1\nb: ${NOPE}\n", env).unwrap_err();
        assert_eq!(e.path, "line 2");
        assert!(e.problem.contains("NOPE is not set"), "{}", e.problem);
        let e = expand("a: ${1X}", env).unwrap_err();
        assert!(
            e.problem.contains("not a variable reference"),
            "{}",
            e.problem
        );
        let e = expand("a: ${PORT", env).unwrap_err();
        assert!(e.problem.contains("closing"), "{}", e.problem);
    }
}
