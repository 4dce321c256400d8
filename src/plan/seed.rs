//! Seeds and keys: the two values derived by hashing, so users can reproduce them.

use serde_json::Value;

/// A shot's derived seed: `u32::from_le_bytes(BLAKE3("{batch_seed}:{shot_id}")[..4]) & 0x7FFF_FFFF`.
pub fn derive_seed(batch_seed: u64, shot_id: &str) -> u32 {
    let hash = blake3::hash(format!("{batch_seed}:{shot_id}").as_bytes());
    let b = hash.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x7FFF_FFFF
}

/// Canonical JSON: object keys sorted, no whitespace; independent of serde_json's map order.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A shot's key: BLAKE3 hex of the canonical body, each `shot:` media item naming its
/// upstream's key instead of its id.
pub fn shot_key(body: &Value, key_of: impl Fn(&str) -> Option<String>) -> String {
    let mut body = body.clone();
    if let Some(media) = body
        .pointer_mut("/metadata/input/media")
        .and_then(Value::as_array_mut)
    {
        for item in media {
            if let Some(Value::String(shot)) = item.get_mut("shot")
                && let Some(key) = key_of(shot)
            {
                *shot = key;
            }
        }
    }
    blake3::hash(canonical_json(&body).as_bytes())
        .to_hex()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_seeds() {
        // Pinned: changing the formula would silently change every user's seeded batch.
        let got = [
            derive_seed(20261124, "teaser-A1-16x9"),
            derive_seed(0, "a"),
            derive_seed(42, "shot"),
        ];
        assert_eq!(got, GOLDEN);
        for s in GOLDEN {
            assert!(u64::from(s) <= crate::plan::model::MAX_SEED);
        }
    }

    const GOLDEN: [u32; 3] = [1334735562, 1148222863, 1056676324];

    #[test]
    fn canonical_sorts_keys_at_every_level() {
        let v: Value = serde_json::json!({"b": 1, "a": {"z": [true, null], "y": "é\""}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"y":"é\"","z":[true,null]},"b":1}"#
        );
    }
}
