//! YAML text into [`RawManifest`], with a located, helpful error when the shape is wrong.

use serde_saphyr::Error as YamlError;

use super::{RawManifest, Written};

/// The YAML could not become a manifest: where, what, and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub help: Option<String>,
}

/// Parses manifest text. Anchors, aliases and merge keys (`<<: *base`) are expanded.
/// Unknown keys are all reported at once; other shape errors one at a time.
pub fn parse_manifest(text: &str) -> Result<RawManifest, Vec<LoadError>> {
    let mut raw =
        serde_saphyr::from_str_with_options::<RawManifest>(text, options()).map_err(|e| {
            if matches!(e.without_snippet(), YamlError::SerdeUnknownField { .. }) {
                let all = super::keys::unknown_keys(text);
                if !all.is_empty() {
                    return all;
                }
            }
            vec![describe(&e)]
        })?;
    for (_, value) in raw.vars.0.iter_mut() {
        Written::settle(value, text);
    }
    for shot in raw.shots.value.iter_mut() {
        if let Some(matrix) = shot.value.matrix.as_mut() {
            for (_, values) in matrix.value.0.iter_mut() {
                values.iter_mut().for_each(|v| Written::settle(v, text));
            }
        }
    }
    Ok(raw)
}

/// YAML 1.2 booleans only (`NO`, `on`, `y` stay text); `.inf` and `.nan` stay text too.
fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::AsString;
    options
}

fn describe(err: &YamlError) -> LoadError {
    let (line, column) = match err.location() {
        Some(loc) if loc.line() > 0 => (Some(loc.line() as usize), Some(loc.column() as usize)),
        _ => (None, None),
    };
    let inner = err.without_snippet();
    let (message, help) = match inner {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            let known = expected.join(", ");
            let help = match super::keys::closest(field, expected) {
                Some(s) => format!("did you mean `{s}`? Known keys here: {known}"),
                None => format!("known keys here: {known}"),
            };
            (format!("unknown key `{field}`"), Some(help))
        }
        YamlError::SerdeMissingField { field, .. } => (
            format!("missing required key `{field}`"),
            Some(format!("add `{field}:` here")),
        ),
        YamlError::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!("the key `{}` is written twice in this mapping", shorten(k)),
                None => "a key is written twice in this mapping".to_owned(),
            },
            Some("keep one of them: YAML would otherwise have to drop one silently".into()),
        ),
        YamlError::Budget { breach, .. } => (budget(breach), Some(TOO_BIG_HELP.into())),
        YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. }
        | YamlError::AliasReplayCounterOverflow { .. } => (
            "aliases (`*name`) expand to more YAML than a manifest may hold".into(),
            Some(TOO_BIG_HELP.into()),
        ),
        YamlError::ExternalMessage { .. } => {
            let (message, help) = explain(&shorten(&clean(&inner.to_string())));
            (message, help.or_else(|| Some(SYNTAX_HELP.into())))
        }
        other => explain(&shorten(&clean(&other.to_string()))),
    };
    LoadError {
        message,
        line,
        column,
        help,
    }
}

/// The help for YAML syntax errors: nearly always indentation or an unquoted value.
const SYNTAX_HELP: &str = "a YAML syntax error: check the indentation here and on the line above (spaces only, keys of one mapping lined up), and quote values that contain `: ` or ` #` or start with `{`, `[`, `*`, `&`, `!`, `@` or `%`";

const TOO_BIG_HELP: &str =
    "keep the manifest small and flat; put large tables in a CSV file under `data:`";

/// serde-saphyr's budget, in the manifest's words.
fn budget(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Events { .. } | B::Nodes { .. } => {
            "the manifest has too many values (more than 250,000 YAML entries)".into()
        }
        B::Aliases { .. } | B::AliasAnchorRatio { .. } => {
            "the manifest uses too many aliases (`*name`)".into()
        }
        B::Anchors { .. } => "the manifest defines too many anchors (`&name`)".into(),
        B::Depth { .. } => "the manifest is nested too deeply".into(),
        B::ScalarBytes { .. } => "the manifest's text values are too large in total".into(),
        B::MergeKeys { .. } => "the manifest uses too many merge keys (`<<`)".into(),
        _ => "the manifest is too large to read safely".into(),
    }
}

/// At most `max` characters of text that may quote a value from a file, so a huge scalar is
/// never echoed whole.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!(
            "{}… ({} characters in all)",
            &text[..cut],
            text.chars().count()
        ),
        None => text.to_owned(),
    }
}

fn shorten(text: &str) -> String {
    clip(text, 80)
}

/// Plainer words for the shapes serde reports by type name.
fn explain(message: &str) -> (String, Option<String>) {
    let known: [(&str, &str, &str); 9] = [
        (
            "untagged enum IntOrTemplate",
            "expected a whole number or a template",
            "write e.g. `duration: 5` or `duration: \"{{ row.seconds }}\"`",
        ),
        (
            "untagged enum BoolOrTemplate",
            "expected true, false or a template",
            "write e.g. `watermark: false`",
        ),
        (
            super::raw::DATA_SOURCE_SHAPE,
            "a data table is a CSV path or `{ rows: [...] }`",
            "e.g. `products: data/products.csv` or `cities: { rows: [{ name: Paris }] }`",
        ),
        (
            "expected string scalar",
            "expected a plain value (text, number or true/false)",
            "lists and mappings cannot be used here",
        ),
        (
            "recursion limit exceeded",
            "the manifest is nested too deeply",
            TOO_BIG_HELP,
        ),
        (
            "invalid u32",
            "expected a whole number from 0 to 4294967295",
            "write digits only, e.g. `1`",
        ),
        (
            "invalid u64",
            "expected a whole number from 0 to 18446744073709551615",
            "write digits only, no sign, e.g. `42`",
        ),
        (
            "expected sequence start",
            "expected a list here",
            "write one `- item` per line, or `[a, b]`",
        ),
        (
            "expected mapping start",
            "expected a mapping (`key: value` lines) here",
            "indent the keys under this one",
        ),
    ];
    match known.iter().find(|(k, _, _)| message.contains(k)) {
        Some((_, m, h)) => ((*m).to_owned(), Some((*h).to_owned())),
        None => (message.to_owned(), None),
    }
}

/// serde-saphyr's message without its own location suffix (we report the location separately).
fn clean(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    match first.find(" at line ") {
        Some(i) => first[..i].to_owned(),
        None => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_suggests_the_close_one() {
        let err = parse_manifest("version: 1\nshots:\n  - id: a\n    promt: hi\n")
            .unwrap_err()
            .remove(0);
        assert_eq!(err.message, "unknown key `promt`");
        assert_eq!((err.line, err.column), (Some(4), Some(5)));
        assert!(err.help.unwrap().starts_with("did you mean `prompt`?"));
    }

    #[test]
    fn merge_keys_and_anchors_expand() {
        let m = parse_manifest("version: 1\nbase: &b {model: i2v}\n");
        assert!(m.is_err(), "unknown top-level key must be refused");
        let m = parse_manifest(
            "version: 1\ndefaults: &d\n  duration: 7\nshots:\n  - <<: *d\n    id: a\n    prompt: x\n",
        )
        .unwrap();
        let shot = &m.shots.value[0].value;
        assert_eq!(
            shot.duration.as_ref().unwrap().value,
            super::super::IntOrTemplate::Int(7)
        );
        assert_eq!(shot.id.referenced.line(), 6);
    }
}
