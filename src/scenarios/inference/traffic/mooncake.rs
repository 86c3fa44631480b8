//! Mooncake's JSONL request traces (SPEC 2.11; kvcache-ai/Mooncake,
//! `FAST25-release/traces/*.jsonl`, format in `FAST25-release/README.md`):
//! one JSON object a line, `timestamp` (ms), `input_length`,
//! `output_length`, `hash_ids` (one id per `hash_block_tokens` prompt
//! tokens, 512 in Mooncake's traces, the last block possibly partial).
//! Other fields are ignored; a hash-ids cell of a requests CSV is read by
//! [`parse_hash_ids`].

use serde_json::Value;

use super::prefix::Prompt;
use super::tokens::MAX_TOKENS;
use crate::base::trace_file::TraceError;
use crate::input::error::did_you_mean;

/// Mooncake's block of prompt tokens per hash id.
pub const MOONCAKE_BLOCK_TOKENS: u32 = 512;

const FIELDS: [&str; 4] = ["timestamp", "input_length", "output_length", "hash_ids"];

/// A Mooncake trace, read: arrival times (s, the first at 0), token counts
/// and prompts, row by row, and the replay's length (as a request trace's).
#[derive(Debug)]
pub struct MooncakeTrace {
    pub times: Vec<f64>,
    pub counts: Vec<[u32; 2]>,
    pub prompts: Vec<Option<Prompt>>,
}

/// Hash ids from a CSV cell: whole numbers separated by spaces or `;`
/// (a comma would split the CSV's cell), optionally in `[ ]`.
pub fn parse_hash_ids(text: &str) -> Result<Vec<u64>, String> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(|c: char| c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| format!("expected hash ids, whole numbers separated by spaces or `;`, found \"{s}\""))
        })
        .collect()
}

/// The token count in field `key` of `line`'s object.
fn count(obj: &serde_json::Map<String, Value>, key: &str, line: usize) -> Result<u32, TraceError> {
    let v = field(obj, key, line)?;
    match v.as_u64() {
        Some(n) if (1..=MAX_TOKENS as u64).contains(&n) => Ok(n as u32),
        _ => Err(TraceError::at(line, format!("`{key}`: expected a whole number from 1 to {MAX_TOKENS}, found {v}"))),
    }
}

fn field<'a>(obj: &'a serde_json::Map<String, Value>, key: &str, line: usize) -> Result<&'a Value, TraceError> {
    obj.get(key).ok_or_else(|| {
        let near = obj.keys().find(|k| did_you_mean(k, [key]).is_some());
        let hint = near.map_or(String::new(), |k| format!(" (found `{k}`: did you mean `{key}`?)"));
        TraceError::at(line, format!("missing `{key}`: each line needs {}{hint}", FIELDS.join(", ")))
    })
}

/// Parses a Mooncake JSONL trace with `block_tokens` tokens per hash id.
/// Timestamps must not go backwards; hash ids may not need more tokens
/// than the line's `input_length` has.
pub fn parse_mooncake(text: &str, block_tokens: u32) -> Result<MooncakeTrace, TraceError> {
    let mut trace = MooncakeTrace { times: Vec::new(), counts: Vec::new(), prompts: Vec::new() };
    let mut first = None;
    let mut last = 0.0f64;
    for (k, raw) in text.lines().enumerate() {
        let line = k + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| TraceError::at(line, format!("expected a JSON object with {}: {e}", FIELDS.join(", "))))?;
        let Value::Object(obj) = value else {
            return Err(TraceError::at(line, format!("expected a JSON object with {}", FIELDS.join(", "))));
        };
        let ts = field(&obj, "timestamp", line)?;
        let ms = ts
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| TraceError::at(line, format!("`timestamp`: expected milliseconds >= 0, found {ts}")))?;
        let t = ms / 1000.0 - *first.get_or_insert(ms / 1000.0);
        if t < last {
            return Err(TraceError::at(line, format!("`timestamp` goes backwards: {ts} is before the line above")));
        }
        last = t;
        let input = count(&obj, "input_length", line)?;
        let output = count(&obj, "output_length", line)?;
        let ids = field(&obj, "hash_ids", line)?;
        let ids: Vec<u64> = match ids.as_array().map(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>()) {
            Some(Some(ids)) => ids,
            _ => {
                return Err(TraceError::at(line, format!("`hash_ids`: expected a list of whole numbers, found {ids}")));
            }
        };
        let prompt = Prompt::from_hash_ids(&ids, block_tokens, input)
            .map_err(|e| TraceError::at(line, format!("`hash_ids`: {e}; see `hash_block_tokens`")))?;
        trace.times.push(t);
        trace.counts.push([input, output]);
        trace.prompts.push((!ids.is_empty()).then_some(prompt));
    }
    if trace.times.is_empty() {
        return Err(TraceError::whole("expected at least one request, found none"));
    }
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_slice_reads_and_its_prompts_share_the_system_block() {
        let text = std::fs::read_to_string("tests/data/mooncake-conversation-600s.jsonl").unwrap();
        let t = parse_mooncake(&text, MOONCAKE_BLOCK_TOKENS).unwrap();
        assert_eq!(t.times.len(), 1750);
        assert_eq!(t.counts[0], [6758, 500]);
        let p = t.prompts[0].as_ref().unwrap();
        // 6758 tokens: 13 blocks of 512 and 102 left.
        assert_eq!((p.segments.len(), p.segments[13].tokens, p.tokens()), (14, 102, 6758));
        assert!(t.prompts.iter().all(|p| p.as_ref().unwrap().segments[0].id == 0));
        assert!(t.times.windows(2).all(|w| w[0] <= w[1]) && t.times[0] == 0.0);
    }

    #[test]
    fn bad_lines_name_the_line_the_field_and_what_was_expected() {
        let err = |text: &str| parse_mooncake(text, 512).unwrap_err();
        let ok = "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [1, 2]}\n";
        let e = err(&format!("{ok}{{\"timestamp\": 5, \"input_len\": 600, \"output_length\": 5, \"hash_ids\": []}}\n"));
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("missing `input_length`") && e.message.contains("did you mean"), "{e}");
        let e = err("{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [1, 2, 3]}\n");
        assert!(e.message.contains("3 hash ids for 600 input tokens: at most 2"), "{e}");
        let e = err(&format!("{ok}{{\"timestamp\": -1}}\n"));
        assert!(e.message.contains("`timestamp`: expected milliseconds"), "{e}");
        let e = err(&format!("{ok}not json\n"));
        assert!(e.line == Some(2) && e.message.contains("expected a JSON object"), "{e}");
        let e = err("{\"timestamp\": 0, \"input_length\": 0, \"output_length\": 5, \"hash_ids\": []}\n");
        assert!(e.message.contains("`input_length`: expected a whole number from 1"), "{e}");
        let e = err("{\"timestamp\": 0, \"input_length\": 6, \"output_length\": 5, \"hash_ids\": [\"a\"]}\n");
        assert!(e.message.contains("`hash_ids`: expected a list of whole numbers"), "{e}");
        assert_eq!(parse_hash_ids("[3; 4 5]").unwrap(), vec![3, 4, 5]);
        assert!(parse_hash_ids("3,4").unwrap_err().contains("spaces or `;`"));
    }
}
