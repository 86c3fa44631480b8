//! Token counts of requests: from a request trace's columns, or drawn from
//! count distributions (`[traffic] tokens = { input = ..., output = ... }`).

use std::sync::Arc;

use rand::Rng;
use serde::Serialize;
use serde::ser::SerializeMap;

pub use super::counts::{CountDist, MAX_TOKENS};
use super::prefix::{Prompt, Request};
use super::sessions::Sessions;
use crate::base::trace_file::{CsvTable, TraceError};
use crate::engine::{Purpose, Streams};

/// Where a replication's token counts come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Tokens {
    /// Drawn per request, input then output, from `Purpose::TokenCounts`.
    Drawn { input: CountDist, output: CountDist },
    /// A request trace's columns, row by row (the trace's arrivals carry the row).
    Columns { input_column: String, output_column: String, counts: Arc<[[u32; 2]]> },
    /// A trace whose rows also carry their prompts' content (a Mooncake
    /// JSONL trace, a requests CSV with a hash-ids column), row by row.
    Prompts {
        /// Where they come from, for the manifest: the format or column.
        source: String,
        counts: Arc<[[u32; 2]]>,
        /// One per row (`None`: a row without content ids).
        prompts: Arc<[Option<Prompt>]>,
    },
    /// Synthetic sessions: the engine makes each turn's request
    /// (`sessions::Conversations`).
    Sessions(Arc<Sessions>),
}

impl Tokens {
    /// The smallest prompt, and the smallest prompt + output, of any request.
    pub fn smallest(&self) -> (u64, u64) {
        match self {
            Tokens::Drawn { input, output } => (input.min() as u64, input.min() as u64 + output.min() as u64),
            Tokens::Columns { counts, .. } | Tokens::Prompts { counts, .. } => (
                counts.iter().map(|c| c[0] as u64).min().unwrap_or(0),
                counts.iter().map(|c| c[0] as u64 + c[1] as u64).min().unwrap_or(0),
            ),
            Tokens::Sessions(s) => s.smallest(),
        }
    }

    /// The share of requests whose prompt exceeds `prompt` tokens, and the
    /// share whose prompt + output exceeds `whole`: exact for a trace's
    /// columns; for drawn counts the first is exact and the second averages
    /// the output's share over the prompt's quantiles (the two are drawn
    /// independently).
    pub fn shares_above(&self, prompt: u64, whole: u64) -> Shares {
        match self {
            Tokens::Drawn { input, output } => {
                const N: usize = 4000;
                let kv = (0..N)
                    .map(|j| {
                        let i = input.quantile((j as f64 + 0.5) / N as f64) as u64;
                        if i >= whole { 1.0 } else { output.share_above(whole - i) }
                    })
                    .sum::<f64>()
                    / N as f64;
                Shares { prompt: input.share_above(prompt), whole: kv, of: None }
            }
            Tokens::Columns { counts, .. } | Tokens::Prompts { counts, .. } => {
                let n = counts.len();
                let count = |f: &dyn Fn(&[u32; 2]) -> bool| counts.iter().filter(|c| f(c)).count();
                let p = count(&|c| c[0] as u64 > prompt);
                let w = count(&|c| c[0] as u64 + c[1] as u64 > whole);
                let share = |k: usize| k as f64 / n.max(1) as f64;
                Shares { prompt: share(p), whole: share(w), of: Some([p, w, n]) }
            }
            Tokens::Sessions(s) => {
                let (p, w) = s.shares_above(prompt, whole, &mut Streams::new(0, 0).rng(Purpose::Sessions));
                Shares { prompt: p, whole: w, of: None }
            }
        }
    }

    /// Request `row`'s counts and prompt, for a trace's arrivals; drawn
    /// counts come from `rng` (`row` is then unused).
    pub fn request<R: Rng + ?Sized>(&self, row: Option<u32>, rng: &mut R) -> Request {
        let at = || row.expect("a trace's arrivals carry their row") as usize;
        match self {
            Tokens::Drawn { input, output } => {
                let input = input.sample(rng);
                Request { input, output: output.sample(rng), prompt: None }
            }
            Tokens::Columns { counts, .. } => {
                let [input, output] = counts[at()];
                Request { input, output, prompt: None }
            }
            Tokens::Prompts { counts, prompts, .. } => {
                let [input, output] = counts[at()];
                Request { input, output, prompt: prompts[at()].clone() }
            }
            Tokens::Sessions(_) => unreachable!("the LLM engine makes sessions' requests"),
        }
    }
}

/// What `Tokens::shares_above` finds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shares {
    pub prompt: f64,
    pub whole: f64,
    /// For a trace: the rows above each limit, and all rows.
    pub of: Option<[usize; 3]>,
}

impl Serialize for Tokens {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            Tokens::Drawn { input, output } => {
                map.serialize_entry("input", input)?;
                map.serialize_entry("output", output)?;
            }
            Tokens::Columns { input_column, output_column, .. } => {
                map.serialize_entry("input_tokens_column", input_column)?;
                map.serialize_entry("output_tokens_column", output_column)?;
            }
            Tokens::Prompts { source, prompts, .. } => {
                map.serialize_entry("prompts", source)?;
                map.serialize_entry("with_content", &prompts.iter().filter(|p| p.is_some()).count())?;
            }
            Tokens::Sessions(sessions) => map.serialize_entry("sessions", sessions.as_ref())?,
        }
        map.end()
    }
}

/// A request trace's two token columns, one pair per data row, in row
/// order, from the table its times were read from. Counts must be whole
/// numbers >= 1, as in `tokens`: every request has a prompt token and makes
/// an output token, so a 0 is bad input, not something to round up.
/// An error comes with the key of the column it is about,
/// `input_tokens_column` or `output_tokens_column`.
pub fn parse_token_columns(
    csv: &CsvTable,
    input: &str,
    output: &str,
) -> Result<Vec<[u32; 2]>, (&'static str, TraceError)> {
    const KEYS: [&str; 2] = ["input_tokens_column", "output_tokens_column"];
    let column = |name: &str, key: &'static str| {
        csv.column(&[name]).ok_or_else(|| {
            let message = format!("no column `{name}` for `{key}`; the columns are {}", csv.header.join(", "));
            (key, TraceError::at(csv.header_line, message))
        })
    };
    let (ii, oi) = (column(input, KEYS[0])?, column(output, KEYS[1])?);
    let mut counts = Vec::with_capacity(csv.rows.len());
    for (line, row) in &csv.rows {
        let mut pair = [0u32; 2];
        for (k, i) in [ii, oi].into_iter().enumerate() {
            let text = csv.cell(row, i, *line).map_err(|e| (KEYS[k], e))?;
            pair[k] = match text.parse::<u64>() {
                Ok(n) if (1..=MAX_TOKENS as u64).contains(&n) => n as u32,
                _ => {
                    let column = &csv.header[i];
                    let message = format!(
                        "column `{column}`: expected a token count, a whole number from 1 to {MAX_TOKENS}, found \
                         \"{text}\""
                    );
                    return Err((KEYS[k], TraceError::at(*line, message)));
                }
            };
        }
        counts.push(pair);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn counts_are_whole_and_at_least_one() {
        let mut rng = crate::engine::SimRng::seed_from_u64(3);
        let d = CountDist::LogNormal { median: 2.0, sigma: 2.0 };
        let draws: Vec<u32> = (0..10_000).map(|_| d.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&x| x >= 1));
        let u = CountDist::Uniform { min: 3, max: 5 };
        let draws: Vec<u32> = (0..1000).map(|_| u.sample(&mut rng)).collect();
        assert!(draws.iter().all(|x| (3..=5).contains(x)) && draws.contains(&3) && draws.contains(&5));
        assert_eq!(u.mean(), 4.0);
    }

    #[test]
    fn shares_above_a_limit_match_the_draws() {
        let mut rng = crate::engine::SimRng::seed_from_u64(5);
        let input = CountDist::LogNormal { median: 600.0, sigma: 0.8 };
        let output = CountDist::LogNormal { median: 180.0, sigma: 0.6 };
        let n = 200_000;
        let draws: Vec<[u64; 2]> =
            (0..n).map(|_| [input.sample(&mut rng) as u64, output.sample(&mut rng) as u64]).collect();
        let tokens = Tokens::Drawn { input: input.clone(), output };
        let shares = tokens.shares_above(512, 500);
        let seen = |f: &dyn Fn(&[u64; 2]) -> bool| draws.iter().filter(|d| f(d)).count() as f64 / n as f64;
        // Binomial standard error at n = 200000 is at most 0.0011.
        assert!((shares.prompt - seen(&|d| d[0] > 512)).abs() < 0.004, "{shares:?}");
        assert!((shares.whole - seen(&|d| d[0] + d[1] > 500)).abs() < 0.004, "{shares:?}");
        // The closed form of the prompt share: 1 - Phi(ln(512.5/600)/0.8).
        assert!((shares.prompt - 0.5783).abs() < 1e-3, "{}", shares.prompt);
        let u = CountDist::Uniform { min: 3, max: 6 };
        assert_eq!([2, 3, 5, 6].map(|x| u.share_above(x)), [1.0, 0.75, 0.25, 0.0]);
        assert_eq!([0.1, 0.25, 0.26, 0.99].map(|p| u.quantile(p)), [3, 3, 4, 6]);
        let e = CountDist::Empirical { file: "c.csv".into(), samples: vec![5, 1, 3, 9].into() };
        assert_eq!((e.share_above(3), e.quantile(0.5), e.quantile(0.51)), (0.5, 3, 5));
        assert_eq!(input.quantile(0.5), 600);
    }

    #[test]
    fn token_columns_name_a_missing_column_and_a_bad_row() {
        let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,374,44\n2023-11-16 18:15:47,0,x\n";
        let parse = |text: &str, a: &str, b: &str| parse_token_columns(&CsvTable::parse(text).unwrap(), a, b);
        // The missing output column is the output key's fault.
        let (key, e) = parse(text, "ContextTokens", "Generated").unwrap_err();
        assert_eq!(key, "output_tokens_column");
        assert!(e.message.contains("no column `Generated` for `output_tokens_column`"), "{e}");
        let (key, e) = parse(text, "ContextTokens", "GeneratedTokens").unwrap_err();
        assert_eq!((key, e.line), ("input_tokens_column", Some(3)));
        let ok = "t,a,b\n0,374,44\n1,1,2\n";
        assert_eq!(parse(ok, "a", "b").unwrap(), vec![[374, 44], [1, 2]]);
        // A zero is refused, as `tokens` refuses it, with the row's line.
        let (key, e) = parse("t,a,b\n0,374,44\n1,1,0\n", "a", "b").unwrap_err();
        assert_eq!((key, e.line), ("output_tokens_column", Some(3)));
        assert!(e.message.contains("column `b`") && e.message.contains("from 1 to"), "{e}");
    }
}
