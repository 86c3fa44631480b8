//! Reads `[traffic] sessions = { ... }` (SPEC 2.11; keys and defaults in
//! docs/traffic.md).

use std::collections::HashMap;

use crate::base::trace_file::{CsvTable, TraceError};
use crate::input::section::{Result, Section};
use crate::input::tree::Value;
use crate::scenarios::inference::traffic::prefix::{Prompt, Segment};
use crate::scenarios::inference::traffic::sessions::{Sessions, SystemPrompts};
use crate::scenarios::inference::traffic::tokens::MAX_TOKENS;

/// The most system prompts `count` may make.
const MAX_SYSTEM_PROMPTS: i64 = 1_000_000;

pub(super) fn read_sessions(s: &Section) -> Result<Sessions> {
    let count = |key: &'static str| super::counts::read_count(s, key);
    let turns = count("turns")?;
    let input = count("input")?;
    let output = count("output")?;
    let think = s.dist("think")?.ok_or_else(|| {
        s.missing(
            "think",
            "the time from an answer to the next turn, such as \"2s\" for an agent or { dist = \"lognormal\", ... }",
        )
    })?;
    let system_prompts = match s.section("system_prompts")? {
        Some(p) => Some(read_system_prompts(&p)?),
        None => None,
    };
    s.finish()?;
    Ok(Sessions { turns, input, output, think, system_prompts })
}

/// `{ tokens = [2000, 800], weights = [3, 1] }` or `{ count = 20, tokens =
/// 1500, zipf = 1.1 }`; equal popularity by default.
fn read_system_prompts(p: &Section) -> Result<SystemPrompts> {
    let expected = format!("whole numbers of tokens from 1 to {MAX_TOKENS}");
    let entry = p.entry("tokens").ok_or_else(|| {
        p.missing("tokens", "the system prompts' sizes in tokens, such as [2000, 800], or one size with `count`")
    })?;
    let whole = |v: &Value| match v {
        Value::Int(n) if (1..=MAX_TOKENS as i64).contains(n) => Some(*n as u32),
        _ => None,
    };
    let tokens: Vec<u32> = match &entry.node.value {
        Value::Array(items) => {
            if let Some(e) = p.entry("count") {
                return Err(p
                    .error(e, "`tokens` is an array: it gives every prompt, so `count` has nothing to add")
                    .with_hint(Some("remove `count`, or give one size in `tokens`".into())));
            }
            let sizes: Option<Vec<u32>> = items.iter().map(|n| whole(&n.value)).collect();
            match sizes {
                Some(sizes) if !sizes.is_empty() => sizes,
                _ => {
                    return Err(
                        p.error(entry, format!("expected an array of {expected}, found {}", entry.node.display()))
                    );
                }
            }
        }
        value => {
            let size = whole(value).ok_or_else(|| {
                p.error(entry, format!("expected {expected}, or an array of them, found {}", entry.node.display()))
            })?;
            let n = p
                .integer("count", 1, MAX_SYSTEM_PROMPTS)?
                .ok_or_else(|| p.missing("count", "how many system prompts of that size, such as 20"))?;
            vec![size; n as usize]
        }
    };
    let zipf = p.number("zipf", 0.0, 100.0)?;
    let prompts = match (zipf, p.entry("weights")) {
        (Some(_), Some(e)) => {
            return Err(p.error(e, "give either `zipf` or `weights`, not both"));
        }
        (None, Some(e)) => {
            let weights: Option<Vec<f64>> = match &e.node.value {
                Value::Array(items) => items
                    .iter()
                    .map(|n| match n.value {
                        Value::Int(i) if i >= 0 => Some(i as f64),
                        Value::Float(f) if f.is_finite() && f >= 0.0 => Some(f),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            };
            match weights {
                Some(w) if w.len() == tokens.len() && w.iter().sum::<f64>() > 0.0 => {
                    SystemPrompts::new(tokens, &w, None)
                }
                _ => {
                    return Err(p.error(
                        e,
                        format!(
                            "expected {} weights >= 0, one per system prompt, not all 0; found {}",
                            tokens.len(),
                            e.node.display()
                        ),
                    ));
                }
            }
        }
        (z, None) => SystemPrompts::zipf(tokens, z.unwrap_or(0.0)),
    };
    p.finish()?;
    Ok(prompts)
}

/// Ids with this bit name the content of a requests CSV's session turns
/// (below the prefix cache's own-content bit and synthetic sessions' bit).
const CSV_SESSION_CONTENT: u64 = 1 << 61;

/// Each row's prompt from a requests CSV's session (and optional turn)
/// columns: a turn's prompt starts with its session's previous turn's
/// prompt and answer (as much as its input holds), the rest its own; rows
/// in time order. An error names the key of the column at fault.
pub(super) fn session_prompts(
    csv: &CsvTable,
    session_column: &str,
    turn_column: Option<&str>,
    counts: &[[u32; 2]],
) -> std::result::Result<Vec<Option<Prompt>>, (&'static str, TraceError)> {
    let column = |name: &str, key: &'static str| {
        csv.column(&[name]).ok_or_else(|| {
            let message = format!("no column `{name}` for `{key}`; the columns are {}", csv.header.join(", "));
            (key, TraceError::at(csv.header_line, message))
        })
    };
    let si = column(session_column, "session_column")?;
    let ti = turn_column.map(|t| column(t, "turn_column")).transpose()?;
    // Per session: its id, its last turn, and everything its last turn held.
    let mut sessions: HashMap<String, (u64, u64, Vec<Segment>)> = HashMap::new();
    let mut contents = 0u64;
    let mut prompts = Vec::with_capacity(counts.len());
    for ((line, row), &[input, output]) in csv.rows.iter().zip(counts) {
        let name = csv.cell(row, si, *line).map_err(|e| ("session_column", e))?;
        if name.is_empty() {
            prompts.push(None);
            continue;
        }
        let next_id = sessions.len() as u64 + 1;
        let (id, last_turn, history) = sessions.entry(name.to_string()).or_insert((next_id, 0, Vec::new()));
        if let Some(ti) = ti {
            let text = csv.cell(row, ti, *line).map_err(|e| ("turn_column", e))?;
            let turn = match text.parse::<u64>() {
                Ok(t) if history.is_empty() || t > *last_turn => t,
                Ok(t) => {
                    let message = format!(
                        "column `{}`: turn {t} of session \"{name}\" comes after its turn {last_turn}: expected the \
                         turns of a session in increasing order",
                        csv.header[ti]
                    );
                    return Err(("turn_column", TraceError::at(*line, message)));
                }
                Err(_) => {
                    let message = format!("column `{}`: expected a turn number, found \"{text}\"", csv.header[ti]);
                    return Err(("turn_column", TraceError::at(*line, message)));
                }
            };
            *last_turn = turn;
        }
        // The previous turn's content, as much as this prompt holds.
        let mut segments = Vec::new();
        let mut left = input;
        for s in history.iter() {
            if left == 0 {
                break;
            }
            let tokens = s.tokens.min(left);
            segments.push(Segment { id: s.id, tokens });
            left -= tokens;
        }
        let mut fresh = || {
            contents += 1;
            CSV_SESSION_CONTENT | contents
        };
        if left > 0 {
            segments.push(Segment { id: fresh(), tokens: left });
        }
        let answer = fresh();
        *history = segments.clone();
        history.push(Segment { id: answer, tokens: output });
        prompts.push(Some(Prompt { segments: segments.into(), answer: Some(answer), session: Some(*id) }));
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_turn_resends_its_previous_turn_and_answer() {
        let csv = CsvTable::parse("time_s,s,t\n0,a,1\n1,b,1\n2,a,2\n3,a,3\n4,,1\n").unwrap();
        let counts = [[100, 20], [50, 5], [150, 30], [120, 10], [10, 1]];
        let p = session_prompts(&csv, "s", Some("t"), &counts).unwrap();
        let a1 = p[0].clone().unwrap();
        let a2 = p[2].clone().unwrap();
        // Turn 2: turn 1's 100 prompt tokens, its 20-token answer, 30 new.
        assert_eq!(a2.segments[0], a1.segments[0]);
        assert_eq!(a2.segments[1], Segment { id: a1.answer.unwrap(), tokens: 20 });
        assert_eq!((a2.segments.len(), a2.tokens()), (3, 150));
        assert_eq!(a2.session, a1.session);
        assert_ne!(p[1].as_ref().unwrap().session, a1.session);
        // Turn 3 holds less than turn 2 and its answer: the start of them.
        let a3 = p[3].clone().unwrap();
        assert_eq!((a3.tokens(), a3.segments[..2] == a2.segments[..2]), (120, true));
        assert!(p[4].is_none());
        let back = CsvTable::parse("time_s,s,t\n0,a,2\n1,a,2\n").unwrap();
        let (key, e) = session_prompts(&back, "s", Some("t"), &counts[..2]).unwrap_err();
        assert_eq!(key, "turn_column");
        assert!(e.message.contains("turn 2 of session \"a\" comes after its turn 2"), "{}", e.message);
        let (key, _) = session_prompts(&back, "sess", None, &counts[..2]).unwrap_err();
        assert_eq!(key, "session_column");
    }
}
