//! Values kept as their author wrote them.
//!
//! YAML's resolution turns `1.10` into 1.1 and `0o17` into 15; a prompt built from `vars` or a
//! matrix must see what was written. Numbers and nulls remember their source text (filled in
//! from the span after parsing), so the plan stage renders them exactly as written.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::OrderedMap;

/// A YAML value with the text of its scalars.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    Text(String),
    Bool(bool),
    /// A whole number and the text it was written as.
    Int(i64, String),
    /// Any other number (or a whole number beyond i64) and its text.
    Float(f64, String),
    /// `~`, `null` or nothing, as written.
    Null(String),
    List(Vec<Spanned<Written>>),
    Map(OrderedMap<Spanned<Written>>),
}

impl Written {
    /// Fills in the source text of numbers and nulls from `source`, the manifest text.
    pub fn settle(node: &mut Spanned<Written>, source: &str) {
        // An alias points at its anchor: the text is where the value was defined.
        let span = node.defined.span();
        let text = || {
            let start = span.byte_offset()? as usize;
            let end = start.checked_add(span.byte_len()? as usize)?;
            source.get(start..end).map(str::to_owned)
        };
        match &mut node.value {
            Written::Int(_, t) | Written::Float(_, t) | Written::Null(t) => {
                *t = text().unwrap_or_default();
            }
            Written::List(items) => items.iter_mut().for_each(|i| Written::settle(i, source)),
            Written::Map(map) => map
                .0
                .iter_mut()
                .for_each(|(_, v)| Written::settle(v, source)),
            Written::Text(_) | Written::Bool(_) => {}
        }
    }

    /// True for text, numbers, booleans and null.
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Written::List(_) | Written::Map(_))
    }
}

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WrittenVisitor;
        impl<'de> Visitor<'de> for WrittenVisitor {
            type Value = Written;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a plain value, a list or a mapping")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Written, E> {
                Ok(Written::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Written, E> {
                Ok(Written::Int(v, String::new()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Written, E> {
                Ok(match i64::try_from(v) {
                    Ok(i) => Written::Int(i, String::new()),
                    Err(_) => Written::Float(v as f64, String::new()),
                })
            }
            fn visit_i128<E>(self, v: i128) -> Result<Written, E> {
                Ok(Written::Float(v as f64, String::new()))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Written, E> {
                Ok(Written::Float(v as f64, String::new()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Written, E> {
                Ok(Written::Float(v, String::new()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Written, E> {
                Ok(Written::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Written, E> {
                Ok(Written::Text(v))
            }
            fn visit_unit<E>(self) -> Result<Written, E> {
                Ok(Written::Null(String::new()))
            }
            fn visit_none<E>(self) -> Result<Written, E> {
                Ok(Written::Null(String::new()))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Written, D::Error> {
                Written::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Written, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Written>>()? {
                    items.push(item);
                }
                Ok(Written::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Written, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value::<Spanned<Written>>()?));
                }
                Ok(Written::Map(OrderedMap(entries)))
            }
        }
        deserializer.deserialize_any(WrittenVisitor)
    }
}
