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
            Value::Float(f) => super::error::number(*f),
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
        let offset = e.span().map(|s| s.start);
        let line = offset.map_or(1, |o| lines.line(o));
        let key = offset.and_then(|o| key_at(text, o));
        InputError::new(&Origin::file(file, line), key.as_deref(), format!("not valid TOML: {}", toml_message(&e)))
    })?;
    let at = |offset: usize| Origin::file(file, lines.line(offset));
    convert_table(doc.into_inner(), "", &at)
}

fn toml_message(e: &toml::de::Error) -> String {
    e.message().trim().trim_end_matches('.').to_string()
}

/// Parses a `--set` value for `key` with the file's syntax; a value that is
/// not TOML is taken as a string, so `--set x.interval=45m` needs no quotes.
/// What starts like a TOML string, array or table must be one.
pub fn parse_override(key: &str, text: &str) -> Result<Node, InputError> {
    let origin = Origin::command_line();
    let at = |_: usize| origin.clone();
    let value = match DeValue::parse(text) {
        Ok(v) => convert_value(v.into_inner(), key, &origin, &at)?,
        Err(e) if text.trim_start().starts_with(['{', '[', '"', '\'']) => {
            return Err(InputError::new(&origin, Some(key), format!("not valid TOML: {}", toml_message(&e))));
        }
        Err(_) => Value::Str(text.to_string()),
    };
    Ok(Node { value, origin })
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

fn convert_table(table: DeTable<'_>, prefix: &str, at: &dyn Fn(usize) -> Origin) -> Result<Table, InputError> {
    let mut items: Vec<_> = table.into_iter().collect();
    // The parser's map is sorted by key; the file's order reads better.
    items.sort_by_key(|(k, _)| k.span().start);
    let mut entries = Vec::with_capacity(items.len());
    for (key, value) in items {
        let key_origin = at(key.span().start);
        let origin = at(value.span().start);
        let value = convert_value(value.into_inner(), &join(prefix, key.get_ref()), &key_origin, at)?;
        entries.push(Entry { key: key.into_inner().into_owned(), key_origin, node: Node { value, origin } });
    }
    Ok(Table { entries })
}

/// Converts one value; errors name `path` at `origin` (the key's line, or an
/// array item's), however deep the value sits.
fn convert_value(
    value: DeValue<'_>,
    path: &str,
    origin: &Origin,
    at: &dyn Fn(usize) -> Origin,
) -> Result<Value, InputError> {
    let error = |message: String| InputError::new(origin, Some(path), message);
    Ok(match value {
        DeValue::String(s) => Value::Str(s.into_owned()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            Value::Int(
                i64::from_str_radix(&digits, i.radix())
                    .map_err(|_| error(format!("integer {i} is out of range (at most {})", i64::MAX)))?,
            )
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            Value::Float(match text.as_str() {
                "inf" | "+inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "+nan" | "-nan" => f64::NAN,
                _ => text.parse().map_err(|_| error(format!("cannot read the number {f}")))?,
            })
        }
        DeValue::Boolean(b) => Value::Bool(b),
        DeValue::Datetime(d) => {
            return Err(error(format!(
                "dates are not used in experiments (found {d}); durations are strings such as \"30m\""
            )));
        }
        DeValue::Array(items) => {
            let mut nodes = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let item_origin = at(item.span().start);
                let value = convert_value(item.into_inner(), &format!("{path}[{i}]"), &item_origin, at)?;
                nodes.push(Node { value, origin: item_origin });
            }
            Value::Array(nodes)
        }
        DeValue::Table(t) => Value::Table(convert_table(t, path, at)?),
    })
}

/// The dotted key that a syntax error at byte `offset` is about, when its line
/// shows it: a table header, or the key being assigned (inside inline tables
/// too). A guess from the text alone, so `None` when in doubt.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[start..end];
    if let Some(header) = header(line) {
        return Some(header);
    }
    let table = text[..start].lines().rev().find_map(header);
    // Inline tables opened before the offset, and the key whose value it is in.
    let mut open: Vec<String> = Vec::new();
    let mut assigned: Option<String> = None;
    let mut token = String::new();
    let mut in_value = false;
    let mut chars = line[..offset - start].chars();
    while let Some(c) = chars.next() {
        match c {
            '#' => return None,
            '"' | '\'' => {
                let mut quoted = String::from(c);
                let mut escaped = false;
                for d in chars.by_ref() {
                    quoted.push(d);
                    if d == c && !escaped {
                        break;
                    }
                    escaped = c == '"' && d == '\\' && !escaped;
                }
                if !in_value {
                    token.push_str(&quoted);
                }
            }
            '=' if !in_value => {
                assigned = Some(std::mem::take(&mut token).trim().to_string());
                in_value = true;
            }
            '{' if in_value => {
                open.extend(assigned.take());
                in_value = false;
            }
            '}' => {
                open.pop();
                assigned = None;
            }
            ',' if !open.is_empty() => {
                assigned = None;
                token.clear();
                in_value = false;
            }
            _ if !in_value => token.push(c),
            _ => {}
        }
    }
    // Outside a value, the offset is in a key (a duplicate): that key is meant.
    let key = if in_value {
        assigned?
    } else {
        let rest = &line[offset - start..];
        token + &rest[..rest.find('=')?]
    };
    let key = key.trim().to_string();
    if !is_key(&key) {
        return None;
    }
    let parts = table.into_iter().chain(open).chain(std::iter::once(key));
    Some(parts.collect::<Vec<_>>().join("."))
}

/// The dotted key of a `[table]` or `[[array]]` header line.
fn header(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix('[')?.trim_start_matches('[');
    let inner = inner.split(']').next()?.trim();
    is_key(inner).then(|| inner.to_string())
}

/// A plausible (possibly dotted, possibly quoted) TOML key.
fn is_key(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| c.is_alphanumeric() || "_-. \"'".contains(c))
        && !text.starts_with('.')
        && !text.ends_with('.')
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
    fn syntax_errors_name_the_key_where_the_line_shows_it() {
        let key = |text: &str| parse_document(text, "e.toml").unwrap_err().key;
        let head = "name = \"x\"\n[training]\ninstance = \"ml.p3.2xlarge\"\n";
        assert_eq!(key(&format!("{head}work = \"10h\"\nwork = \"5h\"\n")).as_deref(), Some("training.work"));
        assert_eq!(key(&format!("{head}[training]\n")).as_deref(), Some("training"));
        assert_eq!(key(&format!("{head}work = 10h\n")).as_deref(), Some("training.work"));
        let inline = format!("{head}checkpoint = {{ interval = \"1h\", write = \"1m\", interval = \"2h\" }}\n");
        assert_eq!(key(&inline).as_deref(), Some("training.checkpoint.interval"));
        let e = parse_document(&format!("{head}x.y = 1\nx.y = 2\n"), "e.toml").unwrap_err();
        assert_eq!((e.origin.line, e.key.as_deref()), (Some(5), Some("training.x.y")));
        assert_eq!(key("= 3\n"), None);
    }

    #[test]
    fn value_errors_name_the_key_and_its_line_however_deep() {
        let text =
            "[training]\nwork = \"1h\"\n\n[training.checkpoint]\nwrite = \"1m\"\ninterval = 99999999999999999999\n";
        let e = parse_document(text, "e.toml").unwrap_err();
        assert_eq!((e.origin.line, e.key.as_deref()), (Some(6), Some("training.checkpoint.interval")), "{e}");
        let e = parse_document("[spot]\nx = { a = [1, 1979-05-27] }\n", "e.toml").unwrap_err();
        assert_eq!((e.origin.line, e.key.as_deref()), (Some(2), Some("spot.x.a[1]")), "{e}");
        assert!(e.message.contains("dates are not used"), "{e}");
    }

    #[test]
    fn overrides_accept_toml_or_bare_strings() {
        let value = |text: &str| parse_override("k", text).unwrap().value;
        assert_eq!(value("45m"), Value::Str("45m".into()));
        assert_eq!(value("\"45m\""), Value::Str("45m".into()));
        assert_eq!(value("3"), Value::Int(3));
        assert_eq!(value("0.5"), Value::Float(0.5));
        assert_eq!(value("true"), Value::Bool(true));
        assert!(matches!(value("{ model = \"poisson\", mtbf = \"3h\" }"), Value::Table(_)));
    }

    #[test]
    fn overrides_that_look_like_toml_must_be_toml() {
        let e = parse_override("spot.interruptions", "{ model = \"poisson\"").unwrap_err();
        assert!(e.message.starts_with("not valid TOML"), "{e}");
        assert_eq!(e.key.as_deref(), Some("spot.interruptions"));
        let e = parse_override("training.instances", "99999999999999999999").unwrap_err();
        assert!(e.message.contains("out of range"), "{e}");
    }

    #[test]
    fn set_path_creates_and_replaces() {
        let mut doc =
            parse_document("[spot]\ninterruptions = { model = \"poisson\", mtbf = \"10h\" }\n", "e.toml").unwrap();
        let o = Origin::command_line();
        let value = |text: &str| parse_override("k", text).unwrap();
        doc.set_path("spot.interruptions.mtbf", value("3h"), &o).unwrap();
        doc.set_path("training.checkpoint.interval", value("45m"), &o).unwrap();
        assert!(doc.set_path("spot.interruptions.mtbf.x", value("1"), &o).is_err());
        let Value::Table(spot) = &doc.get("spot").unwrap().node.value else { panic!() };
        let Value::Table(int) = &spot.get("interruptions").unwrap().node.value else { panic!() };
        assert_eq!(int.get("mtbf").unwrap().node.value, Value::Str("3h".into()));
        assert_eq!(int.get("model").unwrap().node.value, Value::Str("poisson".into()));
    }
}
