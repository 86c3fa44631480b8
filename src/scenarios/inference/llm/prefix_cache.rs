//! A replica's block-level prefix cache, as vLLM V1's automatic prefix
//! caching keeps one (vLLM v0.11.0: `vllm/v1/core/kv_cache_manager.py`,
//! `vllm/v1/core/block_pool.py`; design page "Automatic Prefix Caching",
//! <https://docs.vllm.ai/en/v0.11.0/design/prefix_caching.html>, retrieved
//! 2026-12-07):
//! - KV is held in blocks of `block_size` tokens; a full block is named by
//!   a hash chained to the blocks before it (`traffic::prefix::block_hashes`);
//! - on admission the longest run of leading blocks in the cache is a hit,
//!   but never the block of the prompt's last token: vLLM caps the hit at
//!   `num_tokens - 1` tokens so that the last token is computed for its
//!   logits (`get_computed_blocks`);
//! - a sequence's full blocks are cached when it is scheduled (vLLM's
//!   `allocate_slots` caches up to the tokens it schedules);
//! - blocks in use are counted once however many sequences share them;
//! - freed blocks (a finish, a preemption) stay cached while free, in a
//!   least-recently-used queue; a sequence's blocks are queued tail first,
//!   so its last blocks go first (`free_blocks` takes them reversed).
//!
//! The free cached blocks may hold only the room that running sequences
//! leave; the cache is trimmed to it, oldest first, whenever it is looked
//! at, which evicts the blocks vLLM's allocator would have taken by then.
//! Private (unshared) KV stays counted in tokens, as without the cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::scenarios::inference::traffic::prefix::{Segment, block_hashes};

/// Ids with the top bit set name a request's own content (the tokens past
/// its segments, its answer when the traffic gives none).
pub const OWN_CONTENT: u64 = 1 << 63;

/// What a sequence's tokens hold: its prompt's segments, its own tokens up
/// to `input`, then its answer.
#[derive(Clone, Debug)]
pub struct Content {
    pub segments: Arc<[Segment]>,
    pub input: u32,
    pub own: u64,
    pub answer: u64,
}

impl Content {
    /// The chained hashes of the full blocks of its first `tokens` tokens.
    fn hashes(&self, tokens: u64, block: u32, out: &mut Vec<u64>) {
        out.clear();
        let covered: u64 = self.segments.iter().map(|s| s.tokens as u64).sum();
        let mut all: Vec<Segment> = Vec::with_capacity(self.segments.len() + 2);
        let mut left = tokens;
        for s in self.segments.iter().chain(&[
            Segment { id: self.own, tokens: (self.input as u64).saturating_sub(covered) as u32 },
            Segment { id: self.answer, tokens: u32::MAX },
        ]) {
            if left == 0 {
                break;
            }
            let t = (s.tokens as u64).min(left);
            all.push(Segment { id: s.id, tokens: t as u32 });
            left -= t;
        }
        block_hashes(&all, block, out);
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Sequences holding it; 0: free, in the LRU queue at `stamp`.
    refs: u32,
    stamp: u64,
}

struct Holder {
    content: Content,
    /// Blocks it holds, in order.
    held: Vec<u64>,
}

/// What a look-up found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hit {
    /// Leading blocks cached.
    pub blocks: u64,
    /// Of which held by running sequences (shared, not new KV).
    pub shared: u64,
}

pub struct PrefixCache {
    pub block: u32,
    capacity: u64,
    blocks: HashMap<u64, Entry>,
    /// Free cached blocks by stamp, the least recently used first.
    free: BTreeMap<u64, u64>,
    stamp: u64,
    holders: HashMap<u32, Holder>,
    /// Tokens of blocks in use counted more than once in the sequences'
    /// tokens: `block` per holder past the first.
    pub shared_tokens: u64,
    scratch: Vec<u64>,
}

impl PrefixCache {
    /// A cache over `kv_tokens` of KV in blocks of `block` tokens.
    pub fn new(block: u32, kv_tokens: u64) -> Self {
        PrefixCache {
            block,
            capacity: kv_tokens / block as u64,
            blocks: HashMap::new(),
            free: BTreeMap::new(),
            stamp: 0,
            holders: HashMap::new(),
            shared_tokens: 0,
            scratch: Vec::new(),
        }
    }

    /// Sequence `id` carries `content`; one without takes no part.
    pub fn attach(&mut self, id: u32, content: Content) {
        self.holders.insert(id, Holder { content, held: Vec::new() });
    }

    /// Sequence `id` left before it was admitted.
    pub fn forget(&mut self, id: u32) {
        self.holders.remove(&id);
    }

    /// Blocks held, free or in use.
    pub fn cached_blocks(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// Evicts free blocks, oldest first, until at most `room` are left.
    pub fn trim(&mut self, kv_used: u64) {
        let room = self.capacity.saturating_sub(kv_used.div_ceil(self.block as u64));
        while self.free.len() as u64 > room {
            let (_, hash) = self.free.pop_first().expect("a free block");
            self.blocks.remove(&hash);
        }
    }

    /// The cached leading blocks of `id`'s first `tokens` tokens, short of
    /// the last token's block. No change to the cache.
    pub fn look_up(&mut self, id: u32, tokens: u64) -> Hit {
        match self.holders.get(&id) {
            Some(h) => {
                let content = h.content.clone();
                self.find(&content, tokens)
            }
            None => Hit::default(),
        }
    }

    /// What `look_up` would find for `content` (a router's question).
    pub fn find(&mut self, content: &Content, tokens: u64) -> Hit {
        let mut hashes = std::mem::take(&mut self.scratch);
        content.hashes(tokens.saturating_sub(1), self.block, &mut hashes);
        let mut hit = Hit::default();
        for hash in &hashes {
            match self.blocks.get(hash) {
                Some(e) => {
                    hit.blocks += 1;
                    hit.shared += u64::from(e.refs > 0);
                }
                None => break,
            }
        }
        self.scratch = hashes;
        hit
    }

    /// `id` is scheduled with its first `tokens` tokens: it holds their full
    /// blocks, cached ones shared, the others cached from now on.
    pub fn acquire(&mut self, id: u32, tokens: u64) {
        let Some(h) = self.holders.get_mut(&id) else { return };
        h.content.hashes(tokens, self.block, &mut h.held);
        for hash in &h.held {
            let e = self.blocks.entry(*hash).or_insert(Entry { refs: 0, stamp: u64::MAX });
            if e.refs == 0 && e.stamp != u64::MAX {
                self.free.remove(&e.stamp);
            }
            if e.refs > 0 {
                self.shared_tokens += self.block as u64;
            }
            e.refs += 1;
        }
    }

    /// `id` frees its blocks (a finish, a preemption) with `computed` of
    /// its tokens in KV: their full blocks stay cached, free, queued tail
    /// first; blocks it held past them (a prefill cut short) are dropped
    /// once free. `done`: it leaves for good.
    pub fn release(&mut self, id: u32, computed: u64, done: bool) {
        let Some(h) = self.holders.get_mut(&id) else { return };
        let mut keep = std::mem::take(&mut self.scratch);
        h.content.hashes(computed, self.block, &mut keep);
        let held = std::mem::take(&mut h.held);
        for (k, hash) in held.iter().enumerate().rev() {
            let e = self.blocks.get_mut(hash).expect("a held block is cached");
            e.refs -= 1;
            if e.refs > 0 {
                self.shared_tokens -= self.block as u64;
            } else if k >= keep.len() {
                self.blocks.remove(hash);
            }
        }
        // Free blocks join the queue tail first: the last is evicted first.
        for hash in keep.iter().rev() {
            let e = self.blocks.entry(*hash).or_insert(Entry { refs: 0, stamp: u64::MAX });
            if e.refs == 0 {
                if e.stamp != u64::MAX {
                    self.free.remove(&e.stamp);
                }
                e.stamp = self.stamp;
                self.free.insert(self.stamp, *hash);
                self.stamp += 1;
            }
        }
        self.scratch = keep;
        if done {
            self.holders.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(segments: &[(u64, u32)], input: u32, own: u64) -> Content {
        Content {
            segments: segments.iter().map(|&(id, tokens)| Segment { id, tokens }).collect(),
            input,
            own: OWN_CONTENT | own,
            answer: OWN_CONTENT | (own + 1_000_000),
        }
    }

    #[test]
    fn a_shared_prefix_hits_and_the_last_token_block_never_does() {
        let mut c = PrefixCache::new(16, 1600);
        c.attach(0, content(&[(1, 64)], 80, 0));
        assert_eq!(c.look_up(0, 80), Hit::default());
        c.acquire(0, 80);
        // In use by 0: a second request with the same 64 tokens shares them.
        c.attach(1, content(&[(1, 64)], 80, 1));
        assert_eq!(c.look_up(1, 80), Hit { blocks: 4, shared: 4 });
        c.acquire(1, 80);
        assert_eq!(c.shared_tokens, 64);
        // A prompt that is all cached: its last block is recomputed.
        c.attach(2, content(&[(1, 64)], 64, 2));
        assert_eq!(c.look_up(2, 64).blocks, 3);
        c.release(0, 80 + 9, true);
        c.release(1, 80 + 9, true);
        assert_eq!(c.shared_tokens, 0);
        // Free now, still cached: 4 shared + 1 own block each (+ answer's none:
        // 89 tokens are 5 full blocks).
        assert_eq!(c.cached_blocks(), 4 + 1 + 1);
        assert_eq!(c.look_up(2, 64), Hit { blocks: 3, shared: 0 });
    }

    #[test]
    fn eviction_takes_the_least_recently_used_tail_first() {
        // Room for 4 free blocks.
        let mut c = PrefixCache::new(16, 64);
        for k in 0..2u32 {
            c.attach(k, content(&[(10 + k as u64, 32)], 32, k as u64));
            c.acquire(k, 32);
            c.release(k, 32, true);
        }
        assert_eq!(c.cached_blocks(), 4);
        // One block in use leaves room for 3: the first request's tail goes.
        c.trim(16);
        c.attach(5, content(&[(10, 32)], 48, 5));
        assert_eq!(c.look_up(5, 48).blocks, 1);
        c.attach(6, content(&[(11, 32)], 48, 6));
        assert_eq!(c.look_up(6, 48).blocks, 2);
    }
}
