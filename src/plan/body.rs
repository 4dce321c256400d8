//! The request body, exactly the reference's Wan 2.7 form, kept as canonical JSON text.
//!
//! A plan of 100,000 shots holds 100,000 bodies for the whole run; as `serde_json::Value`s
//! (four maps each) they cost about 3 KB a shot, as text about 500 bytes. The text is written
//! directly in canonical form (keys sorted, no whitespace), which is also what a shot's key
//! hashes, and a `Value` is built only where one is needed: when a shot is sent.
//!
//! The form sends the prompt twice (`metadata.input.prompt` and the top-level `prompt`, the
//! last member in canonical order), so a body whose last value repeats an earlier string
//! literal keeps that value once: the text is held without it, and rebuilt where the whole
//! text is needed (hashing, sending, writing `plan.json`).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::{self, Write as _};

use serde::de::Error as _;
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::instance::{Instance, Target};
use super::model::{DEFAULT_RATIO, RatioPolicy};
use super::seed::{canonical_json, write_canonical, write_str};

/// A request body as canonical JSON text (object keys sorted, no whitespace).
///
/// Serialises as the JSON it holds (pretty writers indent it like any other value), so
/// `plan.json` reads the same as if the body were a `Value`; equality compares the text,
/// which for canonical JSON is equality of the values.
#[derive(Clone, PartialEq, Eq)]
pub struct Body {
    /// The canonical text; when `tail` is set, all of it but its last value and closing `}`.
    text: Box<str>,
    /// `(start, len)` of the bytes in `text` that repeat the last value: the canonical text is
    /// `text`, then `text[start..start + len]`, then `}`. `len` 0: `text` is all of it.
    tail: (u32, u32),
}

impl Body {
    /// Holds canonical JSON `text`, its last value once if it repeats an earlier string.
    fn new(mut text: String) -> Body {
        let mut tail = (0, 0);
        if let Some(last) = last_string_value(&text)
            && let Some(start) = text[..last.start].find(&text[last.clone()])
            && let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(last.len()))
        {
            text.truncate(last.start);
            tail = (start, len);
        }
        Body {
            text: text.into_boxed_str(),
            tail,
        }
    }

    /// The canonical JSON text.
    pub fn text(&self) -> Cow<'_, str> {
        let (start, len) = (self.tail.0 as usize, self.tail.1 as usize);
        if len == 0 {
            return Cow::Borrowed(&self.text);
        }
        let mut whole = String::with_capacity(self.text.len() + len + 1);
        whole.push_str(&self.text);
        whole.push_str(&self.text[start..start + len]);
        whole.push('}');
        Cow::Owned(whole)
    }

    /// Bytes held for the text.
    pub fn held_bytes(&self) -> usize {
        self.text.len()
    }

    /// The key of a body without `shot:` media, which needs no other shot's key; `None` for a
    /// body with some.
    pub fn standalone_key(&self) -> Option<String> {
        let text = self.text();
        (!text.contains("\"shot\":")).then(|| blake3::hash(text.as_bytes()).to_hex().to_string())
    }

    /// A shot's key: BLAKE3 hex of the canonical body, each `shot:` media item naming its
    /// upstream's key instead of its id.
    ///
    /// A body without `shot:` media is hashed as it is stored (its text is already canonical).
    /// A `"shot":` can only appear in canonical text as a key: inside a string the quote would be
    /// escaped.
    pub fn key<'k>(&self, key_of: impl Fn(&str) -> Option<&'k str>) -> String {
        if let Some(key) = self.standalone_key() {
            return key;
        }
        let mut text = String::with_capacity(self.text.len() + 64);
        write_canonical(&self.value(), &mut text, &key_of);
        blake3::hash(text.as_bytes()).to_hex().to_string()
    }

    /// The body as a `Value`, built afresh.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.text()).expect("a Body always holds the JSON it was built from")
    }
}

/// Where the last member's value of the canonical object `text` is, when it is a string
/// literal: the object ends `"...":"<value>"}`.
fn last_string_value(text: &str) -> Option<std::ops::Range<usize>> {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut i = 1;
    loop {
        i = skip_value(b, i)?; // the member's key
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = i + 1;
        i = skip_value(b, start)?;
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') if i + 1 == b.len() => {
                return (b[start] == b'"' && i - start >= 2).then_some(start..i);
            }
            _ => return None,
        }
    }
}

/// The end of the JSON value starting at `b[i]` (canonical: no whitespace).
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *b.get(i)? {
            b'"' => {
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
                continue;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            _ => {
                i += b[i..]
                    .iter()
                    .position(|c| matches!(c, b',' | b'}' | b']' | b':'))
                    .unwrap_or(b.len() - i);
            }
        }
        if depth == 0 {
            return Some(i);
        }
        // Inside an array or object: separators belong to it.
        while matches!(b.get(i), Some(b',' | b':')) {
            i += 1;
        }
    }
}

impl From<&Value> for Body {
    fn from(value: &Value) -> Self {
        Body::new(canonical_json(value))
    }
}

impl From<Value> for Body {
    fn from(value: Value) -> Self {
        Body::from(&value)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.text();
        Fragment(&Cell::new(&text)).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if !value.is_object() {
            return Err(D::Error::custom("a request body must be a JSON object"));
        }
        Ok(Body::from(&value))
    }
}

/// The rest of a body's canonical text; each [`Fragment`] serialised consumes one value from
/// its front, so the text is read once, front to back, whatever the nesting.
type Cursor<'a> = Cell<&'a str>;

/// The JSON value at the front of a cursor, serialised as the value it spells.
///
/// Serialisers serialise each value once and in order, which is what the cursor relies on.
struct Fragment<'c, 'a>(&'c Cursor<'a>);

impl Serialize for Fragment<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cursor = self.0;
        let text = cursor.get();
        let bad = || S::Error::custom(format_args!("malformed body JSON near `{text:.40}`"));
        let advance = |n: usize| cursor.set(text.get(n..).unwrap_or(""));
        match text.as_bytes().first() {
            Some(b'{') => {
                advance(1);
                let mut map = serializer.serialize_map(None)?;
                while !take(cursor, b'}') {
                    let key = string(cursor).ok_or_else(bad)?;
                    if !take(cursor, b':') {
                        return Err(bad());
                    }
                    map.serialize_entry(key.as_ref(), &Fragment(cursor))?;
                    take(cursor, b',');
                }
                map.end()
            }
            Some(b'[') => {
                advance(1);
                let mut seq = serializer.serialize_seq(None)?;
                while !take(cursor, b']') {
                    seq.serialize_element(&Fragment(cursor))?;
                    take(cursor, b',');
                }
                seq.end()
            }
            Some(b'"') => serializer.serialize_str(&string(cursor).ok_or_else(bad)?),
            Some(b't') => {
                advance(4);
                serializer.serialize_bool(true)
            }
            Some(b'f') => {
                advance(5);
                serializer.serialize_bool(false)
            }
            Some(b'n') => {
                advance(4);
                serializer.serialize_unit()
            }
            Some(_) => {
                let len = text.find([',', '}', ']']).unwrap_or(text.len());
                let number = &text[..len];
                advance(len);
                if let Ok(n) = number.parse::<u64>() {
                    serializer.serialize_u64(n)
                } else if let Ok(n) = number.parse::<i64>() {
                    serializer.serialize_i64(n)
                } else {
                    serializer.serialize_f64(number.parse().map_err(|_| bad())?)
                }
            }
            None => Err(bad()),
        }
    }
}

/// Consumes `c` from the front of the cursor if it is there.
fn take(cursor: &Cursor<'_>, c: u8) -> bool {
    let text = cursor.get();
    // A byte compare: `strip_prefix(char)` goes through `memcmp`.
    let found = text.as_bytes().first() == Some(&c);
    if found {
        cursor.set(&text[1..]);
    }
    found
}

/// Consumes the string literal at the front of the cursor and returns the string it spells,
/// borrowed when it has no escapes.
fn string<'a>(cursor: &Cursor<'a>) -> Option<Cow<'a, str>> {
    let text = cursor.get();
    let inner = text.strip_prefix('"')?;
    let close = inner.find('"')?;
    if !inner[..close].contains('\\') {
        cursor.set(&inner[close + 1..]);
        return Some(Cow::Borrowed(&inner[..close]));
    }
    let mut out = String::with_capacity(close + 16);
    let mut rest = inner;
    loop {
        let at = rest.find(['"', '\\'])?;
        out.push_str(&rest[..at]);
        if rest.as_bytes()[at] == b'"' {
            cursor.set(&rest[at + 1..]);
            return Some(Cow::Owned(out));
        }
        let escape = rest.as_bytes().get(at + 1)?;
        rest = &rest[at + 2..];
        out.push(match escape {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = u32::from_str_radix(rest.get(..4)?, 16).ok()?;
                rest = &rest[4..];
                match char::from_u32(unit) {
                    Some(c) => c,
                    None => {
                        // The high half of a surrogate pair, e.g. `\ud83c\udfac`.
                        let low = rest.strip_prefix("\\u")?.get(..4)?;
                        let low = u32::from_str_radix(low, 16).ok()?.checked_sub(0xDC00)?;
                        rest = &rest[6..];
                        char::from_u32(0x10000 + (unit.checked_sub(0xD800)? << 10) + low)?
                    }
                }
            }
            _ => return None,
        });
    }
}

/// The ratio a shot sends: none when its model sends none, else its own or the default.
pub fn sent_ratio(inst: &Instance) -> Option<String> {
    match inst.model.ratio {
        RatioPolicy::NotSent => None,
        RatioPolicy::Optional => inst.ratio.as_ref().map(|r| r.value.clone()),
        RatioPolicy::Sent => Some(
            inst.ratio
                .as_ref()
                .map(|r| r.value.clone())
                .unwrap_or_else(|| DEFAULT_RATIO.to_owned()),
        ),
    }
}

/// `prompt` and `duration` in both places; resolution, duration, prompt_extend and watermark
/// always; ratio never for i2v, for edit when written; seed and `audio_setting` when the shot
/// has one. `shot:` media stay `{type, shot}`.
///
/// Written key by key in sorted order, so the text is canonical without building a `Value`.
pub fn body(inst: &Instance) -> Body {
    let mut prompt = String::with_capacity(inst.prompt.value.len() + 2);
    write_str(&inst.prompt.value, &mut prompt);
    let mut out = String::with_capacity(2 * prompt.len() + 320);
    let duration = inst.duration.value;
    let _ = write!(out, "{{\"duration\":{duration}");
    out.push_str(",\"metadata\":{\"input\":{");
    if let Some(a) = &inst.audio_url {
        out.push_str("\"audio_url\":");
        write_str(&a.value, &mut out);
        out.push(',');
    }
    if !inst.media.is_empty() {
        out.push_str("\"media\":[");
        for (i, m) in inst.media.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            if let Some((v, _)) = &m.voice {
                out.push_str("\"reference_voice\":");
                write_str(v, &mut out);
                out.push(',');
            }
            if let Target::Shot(s) = &m.target {
                out.push_str("\"shot\":");
                write_str(s, &mut out);
                out.push(',');
            }
            out.push_str("\"type\":");
            write_str(&m.type_name, &mut out);
            if let Target::Url(u) = &m.target {
                out.push_str(",\"url\":");
                write_str(u, &mut out);
            }
            out.push('}');
        }
        out.push_str("],");
    }
    if let Some(n) = &inst.negative_prompt {
        out.push_str("\"negative_prompt\":");
        write_str(&n.value, &mut out);
        out.push(',');
    }
    out.push_str("\"prompt\":");
    out.push_str(&prompt);
    out.push_str("},\"parameters\":{");
    if let Some(a) = inst
        .audio_setting
        .as_ref()
        .filter(|_| inst.model.audio_setting)
    {
        out.push_str("\"audio_setting\":");
        write_str(&a.value, &mut out);
        out.push(',');
    }
    let _ = write!(out, "\"duration\":{duration}");
    out.push_str(",\"prompt_extend\":");
    out.push_str(bool_text(inst.prompt_extend.value));
    if let Some(r) = sent_ratio(inst) {
        out.push_str(",\"ratio\":");
        write_str(&r, &mut out);
    }
    out.push_str(",\"resolution\":");
    write_str(&inst.resolution.value, &mut out);
    if let Some(s) = &inst.seed {
        let _ = write!(out, ",\"seed\":{}", s.value);
    }
    out.push_str(",\"watermark\":");
    out.push_str(bool_text(inst.watermark));
    out.push_str("}},\"model\":");
    write_str(inst.model.id, &mut out);
    out.push_str(",\"prompt\":");
    out.push_str(&prompt);
    out.push('}');
    Body::new(out)
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "duration": 5,
            "metadata": {
                "input": {
                    "media": [
                        {"shot": "a \"quoted\" id", "type": "first_clip"},
                        {"reference_voice": "https://x/v.mp3", "type": "reference_image", "url": "https://x/é.png"}
                    ],
                    "prompt": "line\nbreak, {braces} [brackets] \\ and \u{1}"
                },
                "parameters": {"duration": 5, "prompt_extend": false, "ratio": "16:9", "seed": 0, "watermark": false},
                "empty": {}, "none": [], "neg": -3, "float": 1.5, "null": null, "ends \\": "with \\", "t": true
            },
            "model": "wan2.7-t2v-2026-04-25",
            "prompt": "line"
        })
    }

    #[test]
    fn serialises_like_the_value_it_holds() {
        let value = sample();
        let body = Body::from(&value);
        assert_eq!(body.text(), serde_json::to_string(&value).unwrap());
        assert_eq!(
            serde_json::to_string_pretty(&body).unwrap(),
            serde_json::to_string_pretty(&value).unwrap()
        );
        assert_eq!(serde_json::to_value(&body).unwrap(), value);
        assert_eq!(body.value(), value);
    }

    #[test]
    fn deserialises_pretty_json_to_the_same_canonical_text() {
        let value = sample();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let back: Body = serde_json::from_str(&pretty).unwrap();
        assert_eq!(back, Body::from(&value));
        assert!(serde_json::from_str::<Body>("[1]").is_err());
    }

    #[test]
    fn string_literals_unescape_like_serde_json() {
        for literal in [
            r#""plain""#,
            r#""q\"uote\\ \/ \b\f\n\r\t""#,
            r#""\u0001 \u00e9 \ud83c\udfac end""#,
            r#""ends \\""#,
        ] {
            let cursor = Cell::new(literal);
            let got = string(&cursor).expect("a valid literal");
            assert_eq!(got, serde_json::from_str::<String>(literal).unwrap());
            assert_eq!(cursor.get(), "");
        }
        for bad in [r#""\x""#, r#""\ud83c""#, r#""open"#] {
            assert!(string(&Cell::new(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_plan_reads_back_from_its_pretty_json() {
        let plan = crate::plan::plan_text(
            std::path::Path::new("m.yaml"),
            "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: \"say \\\"hi\\\"\"\n  - id: b\n    model: i2v\n    prompt: next\n    media:\n      - { type: first_clip, shot: a }\n  - id: c\n    model: edit\n    prompt: restyle\n    media:\n      - { type: video, shot: b }\n",
        )
        .expect("plans")
        .plan;
        assert_eq!(plan.shots[2].input_video.map(|i| i.seconds), Some(5));
        // Shard groups are the planner's, not the document's.
        let mut plan = plan;
        for s in &mut plan.shots {
            s.group = 0;
        }
        let text = serde_json::to_string_pretty(&plan).unwrap();
        let back: crate::plan::Plan = serde_json::from_str(&text).unwrap();
        assert_eq!(back, plan);
        assert_eq!(serde_json::to_string_pretty(&back).unwrap(), text);
    }
}

#[cfg(test)]
mod tail_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repeated_last_string_is_held_once_and_given_back_whole() {
        let prompt = "a \"quoted\" prompt, {braces} [and] \\ \u{1}: long enough to matter";
        let value = json!({
            "duration": 5,
            "metadata": {"input": {"media": [{"type": "x", "url": "u"}], "prompt": prompt},
                         "parameters": {"seed": 1}},
            "model": "m",
            "prompt": prompt
        });
        let canonical = serde_json::to_string(&value).unwrap();
        let body = Body::from(&value);
        assert_eq!(body.text(), canonical);
        assert!(
            body.held_bytes() < canonical.len() - prompt.len(),
            "{body:?}"
        );
        assert_eq!(body.value(), value);
        assert_eq!(serde_json::to_string(&body).unwrap(), canonical);
        assert_eq!(
            body.standalone_key().unwrap(),
            blake3::hash(canonical.as_bytes()).to_hex().to_string()
        );
        // Held as it came when the last value is no repeat, or no string.
        for value in [
            json!({"a": "x", "prompt": "y"}),
            json!({"a": {"b": "yes"}, "z": 5}),
            json!({"a": ["q"], "z": "q"}),
            json!({}),
            json!({"z": ""}),
        ] {
            let body = Body::from(&value);
            let canonical = serde_json::to_string(&value).unwrap();
            assert_eq!(body.text(), canonical);
            assert_eq!(body.value(), value);
        }
        assert!(Body::from(&json!({"a": ["qq"], "z": "qq"})).held_bytes() < 18);
    }

    #[test]
    fn the_last_value_is_found_past_nested_values_and_escapes() {
        let text = r#"{"a":{"b":[1,{"c":"}\"\\"}],"d":true},"e":-1.5e3,"f":"end"}"#;
        let last = last_string_value(text).unwrap();
        assert_eq!(&text[last], r#""end""#);
        assert_eq!(last_string_value(r#"{"a":1}"#), None);
        assert_eq!(last_string_value(r#"{"a":[1]}"#), None);
        assert_eq!(last_string_value("[1]"), None);
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use crate::plan::seed::canonical_json;
    use serde_json::json;

    #[test]
    fn stored_text_and_substituted_upstreams_hash_like_the_canonical_value() {
        let plain = json!({"prompt": "a \"shot\": b", "metadata": {"input": {"prompt": "x"}}});
        let body = Body::from(&plain);
        let want = blake3::hash(canonical_json(&plain).as_bytes())
            .to_hex()
            .to_string();
        assert_eq!(body.key(|_| None), want);

        let linked =
            json!({"metadata": {"input": {"media": [{"type": "first_clip", "shot": "up"}]}}});
        let substituted =
            json!({"metadata": {"input": {"media": [{"type": "first_clip", "shot": "KEY"}]}}});
        let want = blake3::hash(canonical_json(&substituted).as_bytes())
            .to_hex()
            .to_string();
        assert_eq!(
            Body::from(&linked).key(|id| (id == "up").then_some("KEY")),
            want
        );
    }
}
