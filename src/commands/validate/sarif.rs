//! `--format sarif`: a SARIF 2.1.0 log for code scanning (`upload-sarif`), one result per
//! problem with its manifest span and, when a data row caused it, the CSV line as a related
//! location; nothing is capped here, so problems past the annotation cap are kept.

use std::path::Path;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

use super::Problem;

/// Characters escaped in a path made a URI reference (`/` stays a separator).
const URI_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The rules: one per level, as diagnostics carry no code of their own.
const RULES: [(&str, &str, &str); 2] = [
    (
        "manifest-error",
        "error",
        "The manifest or its data is invalid: a run would refuse it and send nothing.",
    ),
    (
        "manifest-warning",
        "warning",
        "The manifest plans, but something in it is likely not what was meant.",
    ),
];

pub fn render(problems: &[Problem<'_>]) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, level, text)| {
            json!({
                "id": id,
                "shortDescription": { "text": text },
                "defaultConfiguration": { "level": level },
            })
        })
        .collect();
    let results: Vec<Value> = problems.iter().map(result).collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "shotlist",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_default();
    text.push('\n');
    text
}

fn result(p: &Problem<'_>) -> Value {
    let d = p.diagnostic;
    let index = usize::from(p.level() == "warning");
    let mut region = serde_json::Map::new();
    if let Some(line) = d.line {
        region.insert("startLine".into(), line.into());
        if let Some(column) = d.column {
            region.insert("startColumn".into(), column.into());
        }
        if let Some(end) = p.end_column {
            region.insert("endLine".into(), line.into());
            region.insert("endColumn".into(), end.into());
        }
    }
    let mut message = p.text();
    if let Some(help) = &d.help {
        message = format!("{message}\nhelp: {help}");
    }
    let mut out = json!({
        "ruleId": RULES[index].0,
        "ruleIndex": index,
        "level": p.level(),
        "message": { "text": message },
        "locations": [location(&d.file, region)],
    });
    if let (Some((csv, line)), Some(data)) = (&p.data_file, &d.data) {
        let mut region = serde_json::Map::new();
        if let Some(line) = line {
            region.insert("startLine".into(), (*line).into());
        }
        let mut related = location(csv, region);
        related["id"] = 1.into();
        related["message"] = json!({ "text": crate::plan::diagnostic::row_place(data) });
        out["relatedLocations"] = json!([related]);
    }
    out
}

fn location(file: &Path, region: serde_json::Map<String, Value>) -> Value {
    let mut physical = json!({ "artifactLocation": { "uri": uri(file) } });
    if !region.is_empty() {
        physical["region"] = Value::Object(region);
    }
    json!({ "physicalLocation": physical })
}

/// A relative path stays a relative reference (code scanning resolves it against the
/// repository root); an absolute one becomes a `file://` URI.
fn uri(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let text = text.strip_prefix("./").unwrap_or(&text);
    let encoded = utf8_percent_encode(text, URI_PATH).to_string();
    if path.is_absolute() {
        format!(
            "file://{}{encoded}",
            if encoded.starts_with('/') { "" } else { "/" }
        )
    } else {
        encoded
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(
            super::uri(Path::new("./manifests/a b#1.yaml")),
            "manifests/a%20b%231.yaml"
        );
        assert_eq!(super::uri(Path::new("data/ü.csv")), "data/%C3%BC.csv");
        assert_eq!(super::uri(Path::new("/srv/m.yaml")), "file:///srv/m.yaml");
    }
}
