//! Reads `[traffic] sessions = { ... }` (SPEC 2.11; keys and defaults in
//! docs/traffic.md).

use crate::input::section::{Result, Section};
use crate::input::tree::Value;
use crate::scenarios::inference::traffic::sessions::{Sessions, SystemPrompts};
use crate::scenarios::inference::traffic::tokens::MAX_TOKENS;

/// The most system prompts `count` may make.
const MAX_SYSTEM_PROMPTS: i64 = 1_000_000;

pub(super) fn read_sessions(s: &Section) -> Result<Sessions> {
    let count = |key: &'static str| super::llm::read_count(s, key);
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
