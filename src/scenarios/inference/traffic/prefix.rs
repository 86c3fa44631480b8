//! What a prompt is made of, for prefix caching (SPEC 2.11).
//!
//! A prompt is a list of [`Segment`]s in order: runs of tokens whose content
//! is named by an id, so two segments with one id hold the same tokens (a
//! shorter one being the start of a longer one). Two prompts share their
//! first k tokens iff their segment lists agree that far. Tokens of the
//! request past its segments are its own: no other prompt shares them.
//!
//! Sources of prompts:
//! - a Mooncake JSONL trace: one segment per `hash_ids` entry, of
//!   `hash_block_tokens` (512) tokens, the last one what is left of
//!   `input_length`;
//! - a requests CSV with a hash-ids column, the same way;
//! - synthetic sessions (`[traffic] sessions`): turn k's prompt is the
//!   session's system-prompt segment, then every earlier turn's user segment
//!   and answer segment, then the new user segment; its answer gets a fresh
//!   [`Prompt::answer`] id that the next turn's prompt resends.
//!
//! The cache never sees tokens, only one chained hash per full block
//! ([`block_hashes`]), so its work follows blocks and segments, not tokens.

use std::sync::Arc;

/// A run of prompt tokens whose content is identified by `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    pub id: u64,
    pub tokens: u32,
}

/// What a request's tokens hold, for the cache and the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// The prompt's leading content, covering at most the request's input
    /// tokens.
    pub segments: Arc<[Segment]>,
    /// The id of the answer's content, for a later prompt that resends it
    /// (`None`: no later prompt does).
    pub answer: Option<u64>,
    /// The session the request belongs to, for `session-affinity` routing.
    pub session: Option<u64>,
}

/// One request as the engine takes it: its token counts and, for traffic
/// that carries prefixes, its prompt's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub input: u32,
    pub output: u32,
    pub prompt: Option<Prompt>,
}

impl Prompt {
    /// Segments of `block_tokens` tokens, one per id, the last one holding
    /// what is left of `input` (Mooncake's `hash_ids`). An error if the ids
    /// need more tokens than `input` has: the error names how many.
    pub fn from_hash_ids(ids: &[u64], block_tokens: u32, input: u32) -> Result<Prompt, String> {
        let need = (input as u64).div_ceil(block_tokens as u64);
        if ids.len() as u64 > need {
            return Err(format!(
                "{} hash ids for {input} input tokens: at most {need} (one per {block_tokens} tokens)",
                ids.len()
            ));
        }
        let segments = ids
            .iter()
            .enumerate()
            .map(|(k, &id)| Segment { id, tokens: block_tokens.min(input - k as u32 * block_tokens) })
            .collect();
        Ok(Prompt { segments, answer: None, session: None })
    }

    /// Tokens its segments cover.
    pub fn tokens(&self) -> u64 {
        self.segments.iter().map(|s| s.tokens as u64).sum()
    }
}

/// A 64-bit mix (splitmix64's finaliser): the chain's step, fixed so that
/// results do not depend on the process.
fn mix(h: u64, x: u64) -> u64 {
    let mut z = (h ^ x.rotate_left(29)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One chained hash per full block of `block_size` tokens of `segments`,
/// appended to `out`: block j's hash is the hash of block j-1's and of the
/// (segment id, offset, length) runs block j covers, as vLLM chains a
/// block's hash to its parent's. A partial last block gets none (vLLM
/// caches full blocks only). The work is one step per run, not per token.
pub fn block_hashes(segments: &[Segment], block_size: u32, out: &mut Vec<u64>) {
    let b = block_size as u64;
    let mut h = 0u64;
    let mut filled = 0u64;
    for s in segments {
        let mut offset = 0u64;
        let len = s.tokens as u64;
        while offset < len {
            let run = (len - offset).min(b - filled);
            // One mix per run: the id spread by an odd constant, offset and
            // length packed (each below 2^32).
            h = mix(h, s.id.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (offset << 32 | run));
            offset += run;
            filled += run;
            if filled == b {
                out.push(h);
                filled = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: u64, tokens: u32) -> Segment {
        Segment { id, tokens }
    }

    fn hashes(segments: &[Segment], b: u32) -> Vec<u64> {
        let mut out = Vec::new();
        block_hashes(segments, b, &mut out);
        out
    }

    #[test]
    fn shared_leading_segments_share_leading_blocks() {
        let a = hashes(&[seg(1, 40), seg(2, 30)], 16);
        let b = hashes(&[seg(1, 40), seg(3, 30)], 16);
        // 70 tokens: 4 full blocks; the first 40 tokens are shared, so
        // blocks 0 and 1 (tokens 0..32) agree and block 2 (32..48) differs.
        assert_eq!((a.len(), b.len()), (4, 4));
        assert_eq!(a[..2], b[..2]);
        assert!(a[2..].iter().zip(&b[2..]).all(|(x, y)| x != y));
        // A shorter segment with the same id is the start of the longer one.
        let c = hashes(&[seg(1, 35)], 16);
        assert_eq!(c, a[..2]);
        // Chained: the same block content after a different parent differs.
        let d = hashes(&[seg(9, 16), seg(1, 16)], 16);
        assert_ne!(d[1], a[0]);
    }

    #[test]
    fn mooncake_hash_ids_are_blocks_of_512_the_last_partial() {
        let p = Prompt::from_hash_ids(&[7, 8, 9], 512, 1100).unwrap();
        assert_eq!(p.segments[..], [seg(7, 512), seg(8, 512), seg(9, 76)]);
        assert_eq!(p.tokens(), 1100);
        assert!(Prompt::from_hash_ids(&[7, 8, 9], 512, 1024).unwrap_err().contains("at most 2"));
        assert_eq!(Prompt::from_hash_ids(&[7], 512, 1024).unwrap().tokens(), 512);
    }
}
