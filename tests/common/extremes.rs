//! Generates hostile variants of a JSON document, driven by the document
//! itself: every node (leaf or container) of a fully-populated example is
//! replaced in turn by each extreme value, so a field added to a type (and
//! to its example, which tests/bounds.rs forces) is covered with no list
//! to update. Also finds, by bisection, the largest value a numeric field
//! accepts.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A path from the root: object keys and array indices, as strings (the
/// form berth's errors name fields in: `mounts.0.size`).
pub type Path = Vec<String>;

/// Every node below the root, parents before children.
pub fn node_paths(v: &Value) -> Vec<Path> {
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn walk(v: &Value, here: &mut Path, out: &mut Vec<Path>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, c)| (k.clone(), c)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        _ => return,
    };
    for (step, child) in children {
        here.push(step);
        out.push(here.clone());
        walk(child, here, out);
        here.pop();
    }
}

/// Paths of numbers only (the fields bisection applies to).
pub fn number_paths(v: &Value) -> Vec<Path> {
    node_paths(v)
        .into_iter()
        .filter(|p| get(v, p).is_some_and(Value::is_number))
        .collect()
}

pub fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |node, step| match node {
        Value::Object(m) => m.get(step),
        Value::Array(a) => a.get(step.parse::<usize>().ok()?),
        _ => None,
    })
}

/// `v` with the node at `path` replaced by `new`.
pub fn replaced(v: &Value, path: &[String], new: Value) -> Value {
    let mut out = v.clone();
    let mut node = &mut out;
    for step in path {
        node = match node {
            Value::Object(m) => m.get_mut(step).expect("path from node_paths"),
            Value::Array(a) => &mut a[step.parse::<usize>().expect("an index")],
            _ => unreachable!("path from node_paths"),
        };
    }
    *node = new;
    out
}

/// Marks where raw text (not expressible as a `Value`: `1e999`, deep
/// nesting) is spliced into the serialized document.
const SPLICE: &str = "\u{1}splice\u{1}";

/// One extreme: its name, and the document's text with it in place.
pub struct Variant {
    pub extreme: &'static str,
    pub text: String,
}

/// Each extreme at `path`: numbers at and past every limit, overflowing
/// and NaN-like values, a 1 MiB string, 20 000-entry lists and maps (of
/// copies of the node's own first entry, so only their size is wrong)
/// and 5000-deep nesting.
pub fn variants(doc: &Value, path: &[String]) -> Vec<Variant> {
    let node = get(doc, path).cloned().unwrap_or(Value::Null);
    let values: Vec<(&'static str, Value)> = vec![
        ("0", Value::from(0)),
        ("-1", Value::from(-1)),
        ("u64::MAX", Value::from(u64::MAX)),
        ("1e300", Value::from(1e300)),
        ("\"NaN\"", Value::from("NaN")),
        ("\"-1\"", Value::from("-1")),
        (
            "\"99999999999999999999g\"",
            Value::from("99999999999999999999g"),
        ),
        ("1 MiB string", Value::from("a".repeat(1 << 20))),
        ("20k-entry list", long_list(&node)),
        ("20k-entry map", big_map(&node)),
    ];
    let mut out: Vec<Variant> = values
        .into_iter()
        .map(|(extreme, v)| Variant {
            extreme,
            text: replaced(doc, path, v).to_string(),
        })
        .collect();
    for (extreme, raw) in [
        ("1e999", "1e999".to_string()),
        ("5000-deep nesting", "[".repeat(5000) + &"]".repeat(5000)),
    ] {
        let text = replaced(doc, path, Value::from(SPLICE)).to_string();
        let marker = serde_json::to_string(SPLICE).expect("a string serializes");
        out.push(Variant {
            extreme,
            text: text.replacen(&marker, &raw, 1),
        });
    }
    out
}

const MANY: usize = 20_000;

fn long_list(node: &Value) -> Value {
    let item = match node {
        Value::Array(a) => a.first().cloned().unwrap_or(Value::from(0)),
        other => other.clone(),
    };
    Value::Array(vec![item; MANY])
}

fn big_map(node: &Value) -> Value {
    let item = match node {
        Value::Object(m) => m.values().next().cloned().unwrap_or(Value::from("")),
        other => other.clone(),
    };
    let map: Map<String, Value> = (0..MANY).map(|i| (format!("k{i}"), item.clone())).collect();
    Value::Object(map)
}

/// The largest number the field at `path` accepts, the rest of `doc`
/// unchanged; None when even the example's value is refused. Assumes the
/// accepted values form a range from the example's up (they are bounds).
pub fn largest_accepted(
    doc: &Value,
    path: &[String],
    accepts: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let current = get(doc, path)?;
    let try_value = |v: Value| accepts(&replaced(doc, path, v));
    if let Some(lo) = current.as_u64() {
        let (mut lo, mut hi) = (lo, u64::MAX);
        if !try_value(Value::from(lo)) {
            return None;
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if try_value(Value::from(mid)) {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        return Some(Value::from(lo));
    }
    let (mut lo, mut hi) = (current.as_f64()?, 1e12);
    if !try_value(Value::from(lo)) {
        return None;
    }
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if try_value(Value::from(mid)) {
            lo = mid
        } else {
            hi = mid
        }
    }
    Some(Value::from(lo))
}

/// Every object key of `v`, as paths with array indices written `*`, so
/// that two documents' shapes can be compared.
pub fn key_shapes(v: &Value) -> BTreeSet<String> {
    node_paths(v)
        .into_iter()
        .filter(|p| p.last().is_some_and(|s| s.parse::<usize>().is_err()))
        .map(|p| {
            p.iter()
                .map(|s| {
                    if s.parse::<usize>().is_ok() {
                        "*"
                    } else {
                        s.as_str()
                    }
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}
