//! Experiment files as a tree of values that remember where they came from.
//!
//! Overrides (`--set`) and sweep points are applied to this tree before it is
//! read into a design, so every error, whatever its source, can point at the
//! line (or the command-line flag) that caused it.

use toml::de::{DeTable, DeValue};

use super::error::{InputError, Origin};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Node>),
    Table(Table),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    /// Where the key itself stands (the line to blame for an unknown key).
    pub key_origin: Origin,
    pub node: Node,
}

/// A table whose entries keep the order of the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub entries: Vec<Entry>,
}

impl Value {
    /// How a user would name this kind of value in a message.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

impl Node {
    /// The value as written, for output columns and messages.
    pub fn display(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(Node::display).collect();
                format!("[{}]", parts.join(", "))
            }
            Value::Table(t) => {
                let parts: Vec<String> =
                    t.entries.iter().map(|e| format!("{} = {}", e.key, e.node.display())).collect();
                format!("{{ {} }}", parts.join(", "))
            }
        }
    }
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(i))
    }

    /// Sets the value at a dotted path, creating tables on the way. `origin`
    /// is blamed for the keys this creates.
    pub fn set_path(&mut self, path: &str, node: Node, origin: &Origin) -> Result<(), InputError> {
        let parts: Vec<&str> = path.split('.').collect();
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(InputError::new(
                origin,
                Some(path),
                "expected a dotted key path such as `training.checkpoint.interval`",
            ));
        }
        let mut table = self;
        for (depth, part) in parts.iter().enumerate() {
            let last = depth + 1 == parts.len();
            let i = match table.entries.iter().position(|e| e.key == *part) {
                Some(i) => i,
                None => {
                    table.entries.push(Entry {
                        key: part.to_string(),
                        key_origin: origin.clone(),
                        node: Node { value: Value::Table(Table::default()), origin: origin.clone() },
                    });
                    table.entries.len() - 1
                }
            };
            let entry = &mut table.entries[i];
            if last {
                entry.node = node;
                entry.key_origin = origin.clone();
                return Ok(());
            }
            match &mut entry.node.value {
                Value::Table(inner) => table = inner,
                other => {
                    let prefix = parts[..=depth].join(".");
                    return Err(InputError::new(
                        origin,
                        Some(path),
                        format!("`{prefix}` is {}, not a table, so `{path}` cannot be set", other.kind()),
                    ));
                }
            }
        }
        unreachable!("a path has at least one part")
    }
}

/// Line numbers of byte offsets in one text.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Lines { starts }
    }
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

/// Parses a whole experiment file. `file` is the name used in messages.
pub fn parse_document(text: &str, file: &str) -> Result<Table, InputError> {
    let lines = Lines::new(text);
    let doc = DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|s| lines.line(s.start)).unwrap_or(1);
        let message = e.message().trim().trim_end_matches('.').to_string();
        InputError::new(&Origin::file(file, line), None, format!("not valid TOML: {message}"))
    })?;
    let at = |offset: usize| Origin::file(file, lines.line(offset));
    convert_table(doc.into_inner(), &at)
}

/// Parses a `--set` value with the file's syntax; anything that is not a
/// TOML value is taken as a string, so `--set x.interval=45m` needs no quotes.
pub fn parse_override(text: &str) -> Node {
    let origin = Origin::command_line();
    let at = |_: usize| origin.clone();
    match DeValue::parse(text) {
        Ok(v) => match convert_value(v.into_inner(), &at, 0) {
            Ok(value) => Node { value, origin: origin.clone() },
            Err(_) => Node { value: Value::Str(text.to_string()), origin: origin.clone() },
        },
        Err(_) => Node { value: Value::Str(text.to_string()), origin: origin.clone() },
    }
}

fn convert_table(table: DeTable<'_>, at: &dyn Fn(usize) -> Origin) -> Result<Table, InputError> {
    let mut items: Vec<_> = table.into_iter().collect();
    // The parser's map is sorted by key; the file's order reads better.
    items.sort_by_key(|(k, _)| k.span().start);
    let mut entries = Vec::with_capacity(items.len());
    for (key, value) in items {
        let key_origin = at(key.span().start);
        let start = value.span().start;
        let value = convert_value(value.into_inner(), at, start)
            .map_err(|msg| InputError::new(&key_origin, Some(key.get_ref()), msg))?;
        entries.push(Entry { key: key.into_inner().into_owned(), key_origin, node: Node { value, origin: at(start) } });
    }
    Ok(Table { entries })
}

fn convert_value(value: DeValue<'_>, at: &dyn Fn(usize) -> Origin, offset: usize) -> Result<Value, String> {
    Ok(match value {
        DeValue::String(s) => Value::Str(s.into_owned()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            Value::Int(i64::from_str_radix(&digits, i.radix()).map_err(|_| format!("integer {i} is out of range"))?)
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            Value::Float(match text.as_str() {
                "inf" | "+inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "+nan" | "-nan" => f64::NAN,
                _ => text.parse().map_err(|_| format!("cannot read the number {f}"))?,
            })
        }
        DeValue::Boolean(b) => Value::Bool(b),
        DeValue::Datetime(d) => {
            return Err(format!(
                "dates are not used in experiments (found {d}); durations are strings such as \"30m\""
            ));
        }
        DeValue::Array(items) => {
            let mut nodes = Vec::new();
            for item in items {
                let start = item.span().start;
                let value = convert_value(item.into_inner(), at, start)?;
                nodes.push(Node { value, origin: at(start) });
            }
            Value::Array(nodes)
        }
        DeValue::Table(t) => {
            let _ = offset;
            Value::Table(convert_table(t, at).map_err(|e| e.message)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_and_file_order() {
        let doc = parse_document("name = \"x\"\n\n[training]\nwork = \"10h\"\ninstances = 2\n", "e.toml").unwrap();
        let keys: Vec<_> = doc.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["name", "training"]);
        let Value::Table(training) = &doc.get("training").unwrap().node.value else { panic!() };
        let work = training.get("work").unwrap();
        assert_eq!(work.key_origin, Origin::file("e.toml", 4));
        assert_eq!(work.node.value, Value::Str("10h".into()));
        assert_eq!(training.get("instances").unwrap().key_origin.line, Some(5));
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let e = parse_document("a = 1\nb = \n", "bad.toml").unwrap_err();
        assert_eq!(e.origin, Origin::file("bad.toml", 2));
        assert!(e.message.starts_with("not valid TOML"), "{e}");
    }

    #[test]
    fn overrides_accept_toml_or_bare_strings() {
        assert_eq!(parse_override("45m").value, Value::Str("45m".into()));
        assert_eq!(parse_override("\"45m\"").value, Value::Str("45m".into()));
        assert_eq!(parse_override("3").value, Value::Int(3));
        assert_eq!(parse_override("0.5").value, Value::Float(0.5));
        assert_eq!(parse_override("true").value, Value::Bool(true));
        assert!(matches!(parse_override("{ model = \"poisson\", mtbf = \"3h\" }").value, Value::Table(_)));
    }

    #[test]
    fn set_path_creates_and_replaces() {
        let mut doc =
            parse_document("[spot]\ninterruptions = { model = \"poisson\", mtbf = \"10h\" }\n", "e.toml").unwrap();
        let o = Origin::command_line();
        doc.set_path("spot.interruptions.mtbf", parse_override("3h"), &o).unwrap();
        doc.set_path("training.checkpoint.interval", parse_override("45m"), &o).unwrap();
        assert!(doc.set_path("spot.interruptions.mtbf.x", parse_override("1"), &o).is_err());
        let Value::Table(spot) = &doc.get("spot").unwrap().node.value else { panic!() };
        let Value::Table(int) = &spot.get("interruptions").unwrap().node.value else { panic!() };
        assert_eq!(int.get("mtbf").unwrap().node.value, Value::Str("3h".into()));
        assert_eq!(int.get("model").unwrap().node.value, Value::Str("poisson".into()));
    }
}
