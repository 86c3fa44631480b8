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

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
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
    pub fn hashes(&self, tokens: u64, block: u32) -> Arc<[u64]> {
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
        let mut out = Vec::with_capacity((tokens / block as u64) as usize);
        block_hashes(&all, block, &mut out);
        out.into()
    }
}

/// The block hashes are mixed already: the map uses them as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

const NONE: u32 = u32::MAX;

/// A cached block; free ones (`refs` 0) are linked in LRU order.
#[derive(Clone, Copy, Debug)]
struct Node {
    hash: u64,
    refs: u32,
    prev: u32,
    next: u32,
}

struct Holder {
    /// The hashes of every full block the sequence can come to hold.
    hashes: Arc<[u64]>,
    /// Its leading blocks held now.
    held: usize,
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
    index: HashMap<u64, u32, BuildHasherDefault<Identity>>,
    nodes: Vec<Node>,
    spare: Vec<u32>,
    /// The free queue: least recently used at `head`.
    head: u32,
    tail: u32,
    free: u64,
    holders: HashMap<u32, Holder>,
    /// Tokens of blocks in use counted more than once in the sequences'
    /// tokens: `block` per holder past the first.
    pub shared_tokens: u64,
}

impl PrefixCache {
    /// A cache over `kv_tokens` of KV in blocks of `block` tokens.
    pub fn new(block: u32, kv_tokens: u64) -> Self {
        PrefixCache {
            block,
            capacity: kv_tokens / block as u64,
            index: HashMap::default(),
            nodes: Vec::new(),
            spare: Vec::new(),
            head: NONE,
            tail: NONE,
            free: 0,
            holders: HashMap::new(),
            shared_tokens: 0,
        }
    }

    /// Sequence `id` holds content whose full blocks are `hashes`; one
    /// without takes no part.
    pub fn attach(&mut self, id: u32, hashes: Arc<[u64]>) {
        self.holders.insert(id, Holder { hashes, held: 0 });
    }

    /// Sequence `id` left before it was admitted.
    pub fn forget(&mut self, id: u32) {
        self.holders.remove(&id);
    }

    /// Blocks held, free or in use.
    pub fn cached_blocks(&self) -> u64 {
        self.index.len() as u64
    }

    fn unlink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        match prev {
            NONE => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NONE => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
        self.free -= 1;
    }

    fn push_back(&mut self, i: u32) {
        self.nodes[i as usize].prev = self.tail;
        self.nodes[i as usize].next = NONE;
        match self.tail {
            NONE => self.head = i,
            t => self.nodes[t as usize].next = i,
        }
        self.tail = i;
        self.free += 1;
    }

    fn insert(&mut self, hash: u64) -> u32 {
        let node = Node { hash, refs: 0, prev: NONE, next: NONE };
        let i = match self.spare.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.index.insert(hash, i);
        i
    }

    fn drop_node(&mut self, i: u32) {
        self.index.remove(&self.nodes[i as usize].hash);
        self.spare.push(i);
    }

    /// Evicts free blocks, oldest first, to leave room for `kv_used`
    /// tokens of sequences.
    pub fn trim(&mut self, kv_used: u64) {
        let room = self.capacity.saturating_sub(kv_used.div_ceil(self.block as u64));
        while self.free > room {
            let i = self.head;
            self.unlink(i);
            self.drop_node(i);
        }
    }

    /// The cached leading blocks of `id`'s first `tokens` tokens, short of
    /// the last token's block. No change to the cache.
    pub fn look_up(&self, id: u32, tokens: u64) -> Hit {
        self.holders.get(&id).map_or(Hit::default(), |h| self.find(&h.hashes, tokens))
    }

    /// What `look_up` would find for content of block `hashes` (a router's
    /// question).
    pub fn find(&self, hashes: &[u64], tokens: u64) -> Hit {
        let n = (tokens.saturating_sub(1) / self.block as u64) as usize;
        let mut hit = Hit::default();
        for hash in &hashes[..n.min(hashes.len())] {
            match self.index.get(hash) {
                Some(&i) => {
                    hit.blocks += 1;
                    hit.shared += u64::from(self.nodes[i as usize].refs > 0);
                }
                None => break,
            }
        }
        hit
    }

    /// `id` is scheduled with its first `tokens` tokens: it holds their full
    /// blocks, cached ones shared, the others cached from now on.
    pub fn acquire(&mut self, id: u32, tokens: u64) {
        let Some(h) = self.holders.get_mut(&id) else { return };
        let hashes = h.hashes.clone();
        let n = ((tokens / self.block as u64) as usize).min(hashes.len());
        h.held = n;
        for &hash in &hashes[..n] {
            let i = match self.index.get(&hash) {
                Some(&i) => i,
                None => self.insert(hash),
            };
            match self.nodes[i as usize].refs {
                0 if self.nodes[i as usize].prev != NONE || self.head == i => self.unlink(i),
                0 => {}
                _ => self.shared_tokens += self.block as u64,
            }
            self.nodes[i as usize].refs += 1;
        }
    }

    /// `id` frees its blocks (a finish, a preemption) with `computed` of
    /// its tokens in KV: their full blocks stay cached, free, queued tail
    /// first; blocks it held past them (a prefill cut short) are dropped
    /// once free. `done`: it leaves for good.
    pub fn release(&mut self, id: u32, computed: u64, done: bool) {
        let Some(h) = self.holders.get_mut(&id) else { return };
        let hashes = h.hashes.clone();
        let held = std::mem::take(&mut h.held);
        let keep = ((computed / self.block as u64) as usize).min(hashes.len());
        // Last block first: it is queued first, so evicted first.
        for k in (0..held.max(keep)).rev() {
            if k < held {
                let i = self.index[&hashes[k]];
                let node = &mut self.nodes[i as usize];
                node.refs -= 1;
                if node.refs > 0 {
                    self.shared_tokens -= self.block as u64;
                } else if k < keep {
                    self.push_back(i);
                } else {
                    self.drop_node(i);
                }
            } else {
                // A block its decode filled.
                match self.index.get(&hashes[k]).copied() {
                    None => {
                        let i = self.insert(hashes[k]);
                        self.push_back(i);
                    }
                    Some(i) if self.nodes[i as usize].refs == 0 => {
                        self.unlink(i);
                        self.push_back(i);
                    }
                    Some(_) => {}
                }
            }
        }
        if done {
            self.holders.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(segments: &[(u64, u32)], input: u32, own: u64) -> Arc<[u64]> {
        let c = Content {
            segments: segments.iter().map(|&(id, tokens)| Segment { id, tokens }).collect(),
            input,
            own: OWN_CONTENT | own,
            answer: OWN_CONTENT | (own + 1_000_000),
        };
        c.hashes(input as u64 + 20, 16)
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
