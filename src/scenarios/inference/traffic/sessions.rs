//! Synthetic multi-turn sessions (`[traffic] sessions = { ... }`, SPEC 2.11).
//!
//! The traffic's arrivals start sessions. A session picks one shared system
//! prompt and a number of turns; each turn sends the system prompt, every
//! earlier turn's user tokens and answer, and its own new user tokens, as
//! [`Segment`]s, so that its block hashes chain on from the turn before. The
//! next turn is sent a think time after the previous answer finished: the
//! engine drives it ([`Conversations`]), nothing is drawn ahead.

use std::sync::Arc;

use rand::{Rng, RngExt};
use serde::Serialize;
use serde::ser::SerializeMap;

use super::counts::{CountDist, MAX_TOKENS};
use super::prefix::{Prompt, Request, Segment};
use crate::base::dist::Dist;
use crate::base::time::SimTime;

/// Ids with this bit (and not the prefix cache's own-content bit) name a
/// session's user turns and answers; system prompt k is id k + 1.
const SESSION_CONTENT: u64 = 1 << 62;

/// The shared system prompts and how often each is picked.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemPrompts {
    pub tokens: Vec<u32>,
    /// How the weights were given, for the manifest: `zipf` exponent, or
    /// `None` for explicit weights.
    pub zipf: Option<f64>,
    /// Cumulative weights, the last 1.
    cumulative: Vec<f64>,
}

impl SystemPrompts {
    /// `weights` need not sum to 1; they must be as many as `tokens`, >= 0,
    /// and not all 0 (the reader checks).
    pub fn new(tokens: Vec<u32>, weights: &[f64], zipf: Option<f64>) -> Self {
        let total: f64 = weights.iter().sum();
        let mut sum = 0.0;
        let mut cumulative: Vec<f64> = weights
            .iter()
            .map(|w| {
                sum += w;
                sum / total
            })
            .collect();
        if let Some(last) = cumulative.last_mut() {
            *last = 1.0;
        }
        SystemPrompts { tokens, zipf, cumulative }
    }

    /// Zipf's law: prompt k (from 1) weighs 1 / k^s.
    pub fn zipf(tokens: Vec<u32>, s: f64) -> Self {
        let weights: Vec<f64> = (1..=tokens.len()).map(|k| (k as f64).powf(-s)).collect();
        Self::new(tokens, &weights, Some(s))
    }

    /// The share of sessions that pick prompt `k`.
    pub fn weight(&self, k: usize) -> f64 {
        self.cumulative[k] - if k == 0 { 0.0 } else { self.cumulative[k - 1] }
    }

    fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u: f64 = rng.random();
        self.cumulative.partition_point(|&c| c <= u).min(self.tokens.len() - 1)
    }
}

/// What `[traffic] sessions` describes.
#[derive(Clone, Debug, PartialEq)]
pub struct Sessions {
    pub turns: CountDist,
    /// New user tokens per turn.
    pub input: CountDist,
    pub output: CountDist,
    /// From a turn's last token to the next turn's arrival.
    pub think: Dist,
    pub system_prompts: Option<SystemPrompts>,
}

impl Sessions {
    /// The smallest first turn's prompt, and prompt + output.
    pub fn smallest(&self) -> (u64, u64) {
        let system = self.system_prompts.as_ref().map_or(0, |s| s.tokens.iter().copied().min().unwrap_or(0));
        let prompt = system as u64 + self.input.min() as u64;
        (prompt, prompt + self.output.min() as u64)
    }

    /// The shares of turns whose prompt exceeds `prompt` and whose prompt +
    /// output exceeds `whole`, from 2,000 sessions drawn with `rng` (a
    /// warning's estimate: the prompts grow turn by turn).
    pub fn shares_above<R: Rng + ?Sized>(&self, prompt: u64, whole: u64, rng: &mut R) -> (f64, f64) {
        let (mut turns, mut over_prompt, mut over_whole) = (0u64, 0u64, 0u64);
        for _ in 0..2000 {
            let mut context = self.system_prompts.as_ref().map_or(0, |s| s.tokens[s.pick(rng)] as u64);
            for _ in 0..self.turns.sample(rng) {
                context += self.input.sample(rng) as u64;
                let output = self.output.sample(rng) as u64;
                turns += 1;
                over_prompt += u64::from(context > prompt);
                over_whole += u64::from(context + output > whole);
                context += output;
            }
        }
        let share = |k: u64| k as f64 / turns.max(1) as f64;
        (share(over_prompt), share(over_whole))
    }
}

impl Serialize for Sessions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("turns", &self.turns)?;
        map.serialize_entry("input", &self.input)?;
        map.serialize_entry("output", &self.output)?;
        map.serialize_entry("think", &self.think)?;
        if let Some(p) = &self.system_prompts {
            map.serialize_entry("system_prompts", &p.tokens)?;
            match p.zipf {
                Some(z) => map.serialize_entry("zipf", &z)?,
                None => {
                    map.serialize_entry("weights", &(0..p.tokens.len()).map(|k| p.weight(k)).collect::<Vec<_>>())?
                }
            }
        }
        map.end()
    }
}

/// One session in progress.
#[derive(Clone, Debug)]
struct Live {
    id: u64,
    /// Everything its last turn sent, in order.
    segments: Vec<Segment>,
    context: u64,
    turn: u32,
    turns: u32,
    start: SimTime,
    counted: bool,
    /// The id of the answer in flight.
    answer: u64,
}

/// How a session ended, for its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every turn answered: the session's time, from its first arrival to
    /// its last answer.
    Completed { time: SimTime, counted: bool },
    /// A turn went unanswered (refused, timed out, lost: the user gives up),
    /// or the traffic ended before its next turn.
    Unfinished,
}

/// The sessions in progress in one replication, in slots the engine's
/// requests name.
#[derive(Debug)]
pub struct Conversations {
    spec: Arc<Sessions>,
    live: Vec<Option<Live>>,
    spare: Vec<u32>,
    contents: u64,
    sessions: u64,
}

impl Conversations {
    pub fn new(spec: Arc<Sessions>) -> Self {
        Conversations { spec, live: Vec::new(), spare: Vec::new(), contents: 0, sessions: 0 }
    }

    fn fresh(&mut self) -> u64 {
        self.contents += 1;
        SESSION_CONTENT | self.contents
    }

    /// A session starts at `now`: its slot and its first turn's request.
    pub fn start<R: Rng + ?Sized>(&mut self, now: SimTime, counted: bool, rng: &mut R) -> (u32, Request) {
        let spec = self.spec.clone();
        let mut segments = Vec::new();
        if let Some(p) = &spec.system_prompts {
            let k = p.pick(rng);
            segments.push(Segment { id: k as u64 + 1, tokens: p.tokens[k] });
        }
        let context = segments.iter().map(|s| s.tokens as u64).sum();
        self.sessions += 1;
        let live = Live {
            id: self.sessions,
            segments,
            context,
            turn: 0,
            turns: spec.turns.sample(rng),
            start: now,
            counted,
            answer: 0,
        };
        let slot = match self.spare.pop() {
            Some(s) => {
                self.live[s as usize] = Some(live);
                s
            }
            None => {
                self.live.push(Some(live));
                self.live.len() as u32 - 1
            }
        };
        (slot, self.next_turn(slot, rng))
    }

    /// Session `slot`'s next turn: its new user tokens after everything so far.
    pub fn next_turn<R: Rng + ?Sized>(&mut self, slot: u32, rng: &mut R) -> Request {
        let (user, answer) = (self.fresh(), self.fresh());
        let input = self.spec.input.sample(rng);
        let output = self.spec.output.sample(rng);
        let live = self.live[slot as usize].as_mut().expect("a live session");
        live.turn += 1;
        live.segments.push(Segment { id: user, tokens: input });
        live.context += input as u64;
        live.answer = answer;
        let prompt = Prompt { segments: live.segments.as_slice().into(), answer: Some(answer), session: Some(live.id) };
        // A prompt past the largest count is refused as too big to run.
        Request { input: live.context.min(MAX_TOKENS as u64) as u32, output, prompt: Some(prompt) }
    }

    /// Session `slot`'s turn (`turn` from 1) and whether it is counted.
    pub fn turn(&self, slot: u32) -> (u32, bool) {
        let live = self.live[slot as usize].as_ref().expect("a live session");
        (live.turn, live.counted)
    }

    /// Session `slot`'s turn was answered with `output` tokens at `now`: the
    /// think time before its next turn, or how it ended.
    pub fn answered<R: Rng + ?Sized>(
        &mut self,
        slot: u32,
        output: u32,
        now: SimTime,
        rng: &mut R,
    ) -> Result<SimTime, Ended> {
        let live = self.live[slot as usize].as_mut().expect("a live session");
        live.segments.push(Segment { id: live.answer, tokens: output });
        live.context += output as u64;
        if live.turn < live.turns {
            return Ok(self.spec.think.sample(rng));
        }
        let ended = Ended::Completed { time: now - live.start, counted: live.counted };
        self.end(slot);
        Err(ended)
    }

    /// Session `slot` ends without its remaining turns.
    pub fn end(&mut self, slot: u32) {
        self.live[slot as usize] = None;
        self.spare.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Purpose, Streams};

    fn spec() -> Sessions {
        Sessions {
            turns: CountDist::Constant(3),
            input: CountDist::Constant(100),
            output: CountDist::Constant(50),
            think: Dist::Constant(SimTime::from_secs(5)),
            system_prompts: Some(SystemPrompts::zipf(vec![1000, 2000], 1.0)),
        }
    }

    #[test]
    fn each_turn_resends_the_conversation_so_far() {
        let mut rng = Streams::new(1, 0).rng(Purpose::Sessions);
        let mut c = Conversations::new(Arc::new(spec()));
        let (slot, first) = c.start(SimTime::ZERO, true, &mut rng);
        let p1 = first.prompt.clone().unwrap();
        let system = p1.segments[0];
        assert_eq!(first.input, system.tokens + 100);
        assert_eq!(c.answered(slot, 50, SimTime::from_secs(1), &mut rng), Ok(SimTime::from_secs(5)));
        let second = c.next_turn(slot, &mut rng);
        let p2 = second.prompt.unwrap();
        // System prompt, turn 1's user tokens, turn 1's answer (its id), the new user tokens.
        assert_eq!(p2.segments[..2], p1.segments[..]);
        assert_eq!(p2.segments[2], Segment { id: p1.answer.unwrap(), tokens: 50 });
        assert_eq!((second.input, p2.tokens()), (system.tokens + 250, system.tokens as u64 + 250));
        assert_eq!(p2.session, p1.session);
        assert_eq!(c.turn(slot), (2, true));
        c.answered(slot, 50, SimTime::from_secs(10), &mut rng).unwrap();
        c.next_turn(slot, &mut rng);
        assert_eq!(
            c.answered(slot, 50, SimTime::from_secs(20), &mut rng),
            Err(Ended::Completed { time: SimTime::from_secs(20), counted: true })
        );
        // The slot is reused, with a new session id.
        let (again, r) = c.start(SimTime::ZERO, false, &mut rng);
        assert_eq!(again, slot);
        assert_ne!(r.prompt.unwrap().session, p1.session);
    }

    #[test]
    fn zipf_popularity_is_one_over_rank_to_the_s() {
        let p = SystemPrompts::zipf(vec![1, 2, 3], 1.0);
        let h = 1.0 + 0.5 + 1.0 / 3.0;
        for k in 0..3 {
            assert!((p.weight(k) - 1.0 / ((k + 1) as f64 * h)).abs() < 1e-12);
        }
        let mut rng = Streams::new(7, 0).rng(Purpose::Sessions);
        let n = 60_000;
        let firsts = (0..n).filter(|_| p.pick(&mut rng) == 0).count() as f64 / n as f64;
        // Binomial standard error sqrt(p(1-p)/n) = 0.0020; 5 of them.
        assert!((firsts - 1.0 / h).abs() < 0.01, "{firsts}");
        let explicit = SystemPrompts::new(vec![1, 2], &[3.0, 1.0], None);
        assert_eq!((explicit.weight(0), explicit.weight(1)), (0.75, 0.25));
    }

    #[test]
    fn the_kv_warning_share_counts_turns() {
        let mut rng = Streams::new(1, 0).rng(Purpose::Sessions);
        // Turns' prompts: 1100 or 2100, then +150 a turn; outputs 50.
        let (prompt, whole) = spec().shares_above(2150, 1300, &mut rng);
        // Whole > 1300: all 3 turns on the 2000-token prompt (1/3 of
        // sessions), turn 3 only on the 1000-token one (1150, 1300, 1450).
        let expected_whole = (1.0 / 3.0 * 3.0 + 2.0 / 3.0) / 3.0;
        assert!((whole - expected_whole).abs() < 0.03, "{whole}");
        // Prompt > 2150: turns 2 and 3 of the 2000-token ones.
        assert!((prompt - (1.0 / 3.0) * 2.0 / 3.0).abs() < 0.03, "{prompt}");
    }
}
