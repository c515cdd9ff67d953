//! Trigger filters over an event: conditions on a path (`data.user.name`, `subject`,
//! an extension) with the operators `eq`, `ne`, `in`, `glob`, `exists`, `gt`, `gte`,
//! `lt`, `lte`, `contains`, combined with `all`, `any` and `not` (pure).
//!
//! ```json
//! {"all": [{"path": "data.env", "in": ["prod", "stage"]},
//!          {"any": [{"path": "data.size", "gt": 100}, {"path": "subject", "glob": "vm-*"}]}]}
//! ```

use super::cloudevent::CloudEvent;
use serde_json::Value;

/// Most nodes in one filter (conditions and combinators).
pub const MAX_FILTER_NODES: usize = 256;

/// A compiled filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every part matches (true when empty).
    All(Vec<Filter>),
    /// At least one part matches (false when empty).
    Any(Vec<Filter>),
    /// The part does not match.
    Not(Box<Filter>),
    /// A condition on one path.
    Cond {
        /// Path segments: the first names an attribute (`type`, `subject`, `data`, an
        /// extension, ...), the rest walk into `data` (object keys, array indexes).
        path: Vec<String>,
        /// The test.
        op: Op,
    },
}

/// A test on the value at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Equal (numbers compare by value: 1 equals 1.0).
    Eq(Value),
    /// Not equal; also true when the path is absent.
    Ne(Value),
    /// Equal to one of these.
    In(Vec<Value>),
    /// A string matching this glob (`*` any run of characters, `?` one character).
    Glob(String),
    /// Present and not null (`true`) or absent or null (`false`).
    Exists(bool),
    /// A number greater than this.
    Gt(f64),
    /// A number greater than or equal to this.
    Gte(f64),
    /// A number less than this.
    Lt(f64),
    /// A number less than or equal to this.
    Lte(f64),
    /// A string containing this substring, an array containing this element, or an
    /// object with this key.
    Contains(Value),
}

const OPS: &[&str] = &[
    "eq", "ne", "in", "glob", "exists", "gt", "gte", "lt", "lte", "contains",
];

/// Compile a filter from JSON; errors name the place (`filter.all[1].gt: ...`).
pub fn compile(v: &Value) -> Result<Filter, crate::Invalid> {
    let mut nodes = 0;
    Ok(compile_at(v, "filter", &mut nodes)?)
}

fn compile_at(v: &Value, at: &str, nodes: &mut usize) -> Result<Filter, String> {
    *nodes += 1;
    if *nodes > MAX_FILTER_NODES {
        return Err(format!("{at}: a filter has at most {MAX_FILTER_NODES} parts"));
    }
    let Value::Object(obj) = v else {
        return Err(format!("{at}: expected an object"));
    };
    let list = |key: &str, nodes: &mut usize| -> Result<Vec<Filter>, String> {
        let Some(Value::Array(parts)) = obj.get(key) else {
            return Err(format!("{at}.{key}: expected an array of filters"));
        };
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| compile_at(p, &format!("{at}.{key}[{i}]"), nodes))
            .collect()
    };
    if obj.len() == 1 {
        if obj.contains_key("all") {
            return Ok(Filter::All(list("all", nodes)?));
        }
        if obj.contains_key("any") {
            return Ok(Filter::Any(list("any", nodes)?));
        }
        if let Some(inner) = obj.get("not") {
            return Ok(Filter::Not(Box::new(compile_at(
                inner,
                &format!("{at}.not"),
                nodes,
            )?)));
        }
    }
    let path = match obj.get("path") {
        Some(Value::String(p)) => parse_path(p).map_err(|e| format!("{at}.path: {e}"))?,
        Some(_) => return Err(format!("{at}.path: expected a string such as \"data.user\"")),
        None => {
            return Err(format!(
                "{at}: expected {{\"all\": [..]}}, {{\"any\": [..]}}, {{\"not\": {{..}}}} or a condition {{\"path\": .., \"eq\": ..}}"
            ));
        }
    };
    let ops: Vec<&String> = obj.keys().filter(|k| *k != "path").collect();
    let [name] = ops.as_slice() else {
        return Err(format!(
            "{at}: a condition has exactly one operator of {}",
            OPS.join(", ")
        ));
    };
    let arg = &obj[name.as_str()];
    let number = |arg: &Value| {
        arg.as_f64()
            .ok_or_else(|| format!("{at}.{name}: expected a number"))
    };
    let op = match name.as_str() {
        "eq" => Op::Eq(arg.clone()),
        "ne" => Op::Ne(arg.clone()),
        "in" => match arg {
            Value::Array(items) => Op::In(items.clone()),
            _ => return Err(format!("{at}.in: expected an array")),
        },
        "glob" => match arg {
            Value::String(g) => Op::Glob(g.clone()),
            _ => return Err(format!("{at}.glob: expected a string")),
        },
        "exists" => match arg {
            Value::Bool(b) => Op::Exists(*b),
            _ => return Err(format!("{at}.exists: expected true or false")),
        },
        "gt" => Op::Gt(number(arg)?),
        "gte" => Op::Gte(number(arg)?),
        "lt" => Op::Lt(number(arg)?),
        "lte" => Op::Lte(number(arg)?),
        "contains" => Op::Contains(arg.clone()),
        other => {
            return Err(format!(
                "{at}.{other}: unknown operator (use one of {})",
                OPS.join(", ")
            ));
        }
    };
    Ok(Filter::Cond { path, op })
}

fn parse_path(p: &str) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    let parts: Vec<String> = p.split('.').map(str::to_string).collect();
    if parts.iter().any(String::is_empty) {
        return Err(format!("{p:?} has an empty segment"));
    }
    Ok(parts)
}

/// The value at `path` in `event`, if any.
pub fn lookup<'a>(event: &'a CloudEvent, path: &[String]) -> Option<std::borrow::Cow<'a, Value>> {
    use std::borrow::Cow;
    let (first, rest) = path.split_first()?;
    let owned = |s: &Option<String>| s.clone().map(Value::String).map(Cow::Owned);
    let root: Cow<'a, Value> = match first.as_str() {
        "type" => Cow::Owned(Value::String(event.kind.clone())),
        "source" => Cow::Owned(Value::String(event.source.clone())),
        "id" => Cow::Owned(Value::String(event.id.clone())),
        "subject" => owned(&event.subject)?,
        "time" => owned(&event.time)?,
        "datacontenttype" => owned(&event.datacontenttype)?,
        "data" => Cow::Borrowed(event.data.as_ref()?),
        ext => Cow::Borrowed(event.extensions.get(ext)?),
    };
    let mut cur = root;
    for seg in rest {
        let next = match cur {
            Cow::Borrowed(v) => Cow::Borrowed(step(v, seg)?),
            Cow::Owned(v) => Cow::Owned(step(&v, seg)?.clone()),
        };
        cur = next;
    }
    Some(cur)
}

fn step<'v>(v: &'v Value, seg: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    }
}

/// JSON equality with numbers compared by value.
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Whether `text` matches `pattern` (`*` any run of characters, `?` one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Filter {
    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &CloudEvent) -> bool {
        match self {
            Filter::All(parts) => parts.iter().all(|f| f.matches(event)),
            Filter::Any(parts) => parts.iter().any(|f| f.matches(event)),
            Filter::Not(inner) => !inner.matches(event),
            Filter::Cond { path, op } => {
                let found = lookup(event, path);
                let v = found.as_deref().filter(|v| !v.is_null());
                match (op, v) {
                    (Op::Exists(want), _) => v.is_some() == *want,
                    (Op::Ne(x), None) => !x.is_null(),
                    (Op::Ne(x), Some(v)) => !equal(v, x),
                    (_, None) => false,
                    (Op::Eq(x), Some(v)) => equal(v, x),
                    (Op::In(xs), Some(v)) => xs.iter().any(|x| equal(v, x)),
                    (Op::Glob(g), Some(Value::String(s))) => glob_match(g, s),
                    (Op::Glob(_), Some(_)) => false,
                    (Op::Gt(x), Some(v)) => v.as_f64().is_some_and(|n| n > *x),
                    (Op::Gte(x), Some(v)) => v.as_f64().is_some_and(|n| n >= *x),
                    (Op::Lt(x), Some(v)) => v.as_f64().is_some_and(|n| n < *x),
                    (Op::Lte(x), Some(v)) => v.as_f64().is_some_and(|n| n <= *x),
                    (Op::Contains(x), Some(Value::String(s))) => {
                        x.as_str().is_some_and(|sub| s.contains(sub))
                    }
                    (Op::Contains(x), Some(Value::Array(items))) => items.iter().any(|i| equal(i, x)),
                    (Op::Contains(x), Some(Value::Object(m))) => {
                        x.as_str().is_some_and(|k| m.contains_key(k))
                    }
                    (Op::Contains(_), Some(_)) => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> CloudEvent {
        super::super::cloudevent::parse_structured(&json!({
            "specversion": "1.0", "id": "1", "source": "/crm", "type": "user.login", "subject": "vm-web-01",
            "region": "eu", "data": {"user": {"name": "alice", "groups": ["ops", "dev"]}, "size": 150,
                "env": "prod", "note": null, "tags": {"db": true}}
        }))
        .unwrap()
    }

    fn check(f: Value) -> bool {
        compile(&f).unwrap().matches(&event())
    }

    #[test]
    fn every_operator_matches_and_refuses() {
        // (filter that matches, filter that must not)
        let cases = [
            (
                json!({"path": "data.user.name", "eq": "alice"}),
                json!({"path": "data.user.name", "eq": "bob"}),
            ),
            (
                json!({"path": "data.size", "eq": 150.0}),
                json!({"path": "data.size", "eq": "150"}),
            ),
            (
                json!({"path": "data.env", "ne": "stage"}),
                json!({"path": "data.env", "ne": "prod"}),
            ),
            (
                json!({"path": "data.missing", "ne": "x"}),
                json!({"path": "data.env", "ne": "prod"}),
            ),
            (
                json!({"path": "data.env", "in": ["prod", "stage"]}),
                json!({"path": "data.env", "in": ["dev"]}),
            ),
            (
                json!({"path": "subject", "glob": "vm-*-0?"}),
                json!({"path": "subject", "glob": "db-*"}),
            ),
            (
                json!({"path": "data.user", "exists": true}),
                json!({"path": "data.note", "exists": true}),
            ),
            (
                json!({"path": "data.note", "exists": false}),
                json!({"path": "data.env", "exists": false}),
            ),
            (
                json!({"path": "data.size", "gt": 100}),
                json!({"path": "data.size", "gt": 150}),
            ),
            (
                json!({"path": "data.size", "gte": 150}),
                json!({"path": "data.size", "gte": 151}),
            ),
            (
                json!({"path": "data.size", "lt": 151}),
                json!({"path": "data.size", "lt": 150}),
            ),
            (
                json!({"path": "data.size", "lte": 150}),
                json!({"path": "data.size", "lte": 149.5}),
            ),
            (
                json!({"path": "data.user.groups", "contains": "ops"}),
                json!({"path": "data.user.groups", "contains": "qa"}),
            ),
            (
                json!({"path": "data.user.name", "contains": "lic"}),
                json!({"path": "data.user.name", "contains": "bob"}),
            ),
            (
                json!({"path": "data.tags", "contains": "db"}),
                json!({"path": "data.tags", "contains": "web"}),
            ),
            (
                json!({"path": "data.user.groups.1", "eq": "dev"}),
                json!({"path": "data.user.groups.5", "eq": "dev"}),
            ),
            (
                json!({"path": "region", "eq": "eu"}),
                json!({"path": "type", "eq": "user.logout"}),
            ),
            (
                json!({"all": [{"path": "data.env", "eq": "prod"}, {"path": "data.size", "gt": 1}]}),
                json!({"all": [{"path": "data.env", "eq": "prod"}, {"path": "data.size", "gt": 1000}]}),
            ),
            (
                json!({"any": [{"path": "data.env", "eq": "dev"}, {"path": "data.size", "gt": 1}]}),
                json!({"any": [{"path": "data.env", "eq": "dev"}, {"path": "data.size", "gt": 1000}]}),
            ),
            (
                json!({"not": {"path": "data.env", "eq": "dev"}}),
                json!({"not": {"path": "data.env", "eq": "prod"}}),
            ),
            (json!({"all": []}), json!({"any": []})),
        ];
        for (yes, no) in cases {
            assert!(check(yes.clone()), "must match: {yes}");
            assert!(!check(no.clone()), "must not match: {no}");
        }
        // Type mismatches never match.
        assert!(!check(json!({"path": "data.env", "gt": 1})));
        assert!(!check(json!({"path": "data.size", "glob": "1*"})));
    }

    #[test]
    fn bad_filters_name_the_place() {
        let err = |v: Value| compile(&v).unwrap_err().to_string();
        assert_eq!(
            err(json!({"all": [{"path": "a", "gt": "x"}]})),
            "filter.all[0].gt: expected a number"
        );
        assert!(err(json!({"path": "a", "like": 1})).starts_with("filter.like: unknown operator"));
        assert!(err(json!({"path": "a", "eq": 1, "ne": 2})).contains("exactly one operator"));
        assert!(err(json!({"path": "a..b", "eq": 1})).starts_with("filter.path"));
        assert!(err(json!({"any": {"path": "a"}})).starts_with("filter.any: expected an array"));
        assert!(err(json!({"eq": 1})).contains("expected {\"all\""));
        assert!(err(json!([])).contains("expected an object"));
        let deep = (0..300).fold(json!({"path": "a", "eq": 1}), |f, _| json!({"not": f}));
        assert!(err(deep).contains("at most 256"));
    }

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("sync.*", "sync.failed", true),
            ("sync.*", "sync.", true),
            ("sync.*", "async.failed", false),
            ("*.failed", "sync.failed", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("?", "é", true),
            ("", "", true),
            ("*", "", true),
            ("a?c", "abbc", false),
        ] {
            assert_eq!(glob_match(p, t), want, "{p} ~ {t}");
        }
    }
}
