//! A replica's block-level prefix cache, as vLLM V1's automatic prefix
//! caching keeps one (vLLM v0.11.0: `vllm/v1/core/kv_cache_manager.py`,
//! `vllm/v1/core/block_pool.py`; design page "Automatic Prefix Caching",
//! <https://docs.vllm.ai/en/v0.11.0/design/prefix_caching.html>, retrieved
//! 2026-12-07):
//! - KV is held in blocks of `block_size` tokens; a full block is named by
//!   its content and that of every block before it (vLLM chains its hash
//!   to its parent's);
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
//!
//! The blocks are kept as a radix tree: a node is a run of blocks along
//! one path with one state (its holders, cached or evicted), and a free
//! node is one entry of the LRU queue, its blocks queued deepest first. So
//! the work of a look-up, an admission or a finish follows the nodes on a
//! path (the points where prompts part or sequences end) and the segments
//! compared, never the blocks. The answers are those of a cache of single
//! blocks under vLLM's rules, which a test holds it to. A node evicted
//! while a deeper one is still cached (vLLM keeps such a block, unreachable
//! until its parent is cached again) stays as an evicted node.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::scenarios::inference::traffic::prefix::Segment;

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
    /// Its first `tokens` tokens, as runs.
    pub fn runs(&self, tokens: u64) -> Arc<Runs> {
        let covered: u64 = self.segments.iter().map(|s| s.tokens as u64).sum();
        let own = Segment { id: self.own, tokens: (self.input as u64).saturating_sub(covered) as u32 };
        let answer = Segment { id: self.answer, tokens: u32::MAX };
        Arc::new(Runs::new(self.segments.iter().chain(&[own, answer]), tokens))
    }
}

/// A sequence's content as runs of tokens: token `p` of run `r` is the one
/// at offset `p - r.start` of segment `r.id`'s content, so two sequences
/// hold the same token there iff their runs agree on the id and the start.
#[derive(Debug, Default)]
pub struct Runs {
    runs: Vec<Lead>,
    pub tokens: u64,
}

/// A multiply-rotate step for the nodes' keys (they need no more than
/// spread, and a collision is caught where it would matter).
fn fold(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(27)
}

impl Runs {
    /// The first `tokens` tokens of `segments` (empty ones dropped).
    fn new<'a>(segments: impl Iterator<Item = &'a Segment>, tokens: u64) -> Runs {
        let mut runs = Runs { runs: Vec::with_capacity(segments.size_hint().0), tokens: 0 };
        for s in segments {
            let t = (s.tokens as u64).min(tokens - runs.tokens);
            if t > 0 {
                runs.runs.push(Lead { id: s.id, start: runs.tokens, end: runs.tokens + t });
                runs.tokens += t;
            }
        }
        runs
    }

    /// The run holding token `p` (below `tokens`).
    fn at(&self, p: u64) -> usize {
        self.runs.partition_point(|r| r.start <= p) - 1
    }

    fn lead(&self, p: u64) -> Lead {
        self.runs[self.at(p)]
    }

    /// The first token in `from..to` where the two differ (`to`: none);
    /// both hold at least `to` tokens. One step per run.
    fn agree(&self, other: &Runs, from: u64, to: u64) -> u64 {
        if from >= to {
            return to;
        }
        let (mut i, mut j, mut p) = (self.at(from), other.at(from), from);
        while p < to {
            let (a, b) = (self.runs[i], other.runs[j]);
            if a.id != b.id || a.start != b.start {
                return p;
            }
            p = a.end.min(b.end).min(to);
            i += usize::from(p == a.end);
            j += usize::from(p == b.end);
        }
        to
    }

    /// The key of block `b`'s content (blocks of `block` tokens) as a child
    /// of node `parent`.
    fn block_key(&self, parent: u32, b: u64, block: u64) -> u64 {
        self.block_key_from(parent, b, block, self.at(b * block))
    }

    /// `block_key` with `i`, the run holding the block's first token.
    fn block_key_from(&self, parent: u32, b: u64, block: u64, mut i: usize) -> u64 {
        let (mut p, end) = (b * block, (b + 1) * block);
        let mut h = fold(0, parent as u64);
        while p < end {
            let r = self.runs[i];
            let stop = r.end.min(end);
            h = fold(fold(h, r.id), (p - r.start) << 32 | (stop - p));
            (p, i) = (stop, i + 1);
        }
        h ^ h >> 32
    }
}

/// The keys are mixed already: the map uses them as they are.
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

/// A key's bit in its parent's `seen`.
fn seen_bit(key: u64) -> u64 {
    1 << (key >> 58)
}
const ROOT: u32 = 0;

/// A run of a content: its segment's id, where the segment starts and
/// where the run ends, in tokens.
#[derive(Clone, Copy, Debug, Default)]
struct Lead {
    id: u64,
    start: u64,
    end: u64,
}

/// Blocks `start..end` of one path, in one state.
#[derive(Clone, Debug)]
struct Node {
    parent: u32,
    start: u64,
    end: u64,
    /// The run holding its first token: most nodes lie within it, so that
    /// a look-up compares them without reading `runs`.
    lead: Lead,
    /// The content of a sequence through it.
    runs: Arc<Runs>,
    /// Its entry in `children`.
    key: u64,
    children: u32,
    /// A bit per key its children have had, never cleared: a clear bit
    /// proves it has no such child, without reading `children`.
    seen: u64,
    /// Sequences holding it.
    refs: u32,
    /// False: evicted, kept for the cached nodes below it.
    cached: bool,
    /// The LRU queue's links, when free (cached, held by none).
    prev: u32,
    next: u32,
}

impl Node {
    fn blocks(&self) -> u64 {
        self.end - self.start
    }
}

struct Holder {
    runs: Arc<Runs>,
    /// Full blocks of its content.
    blocks: u64,
    /// Its leading blocks held now, and the node they end with.
    held: u64,
    end: u32,
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
    nodes: Vec<Node>,
    spare: Vec<u32>,
    /// Nodes by their parent and their first block's content.
    children: HashMap<u64, u32, BuildHasherDefault<Identity>>,
    /// The free queue: least recently used at `head`.
    head: u32,
    tail: u32,
    /// Blocks free, and cached (free or in use).
    free: u64,
    cached: u64,
    holders: HashMap<u32, Holder>,
    /// The nodes a walk passed, reused.
    path: Vec<u32>,
    /// Tokens of blocks in use counted more than once in the sequences'
    /// tokens: `block` per holder past the first.
    pub shared_tokens: u64,
}

impl PrefixCache {
    /// A cache over `kv_tokens` of KV in blocks of `block` tokens.
    pub fn new(block: u32, kv_tokens: u64) -> Self {
        let root = Node {
            parent: NONE,
            start: 0,
            end: 0,
            lead: Lead::default(),
            runs: Arc::default(),
            key: 0,
            children: 0,
            seen: 0,
            refs: 0,
            cached: true,
            prev: NONE,
            next: NONE,
        };
        PrefixCache {
            block,
            capacity: kv_tokens / block as u64,
            nodes: vec![root],
            spare: Vec::new(),
            children: HashMap::default(),
            head: NONE,
            tail: NONE,
            free: 0,
            cached: 0,
            holders: HashMap::new(),
            path: Vec::new(),
            shared_tokens: 0,
        }
    }

    /// Sequence `id` holds content `runs`; one without takes no part.
    pub fn attach(&mut self, id: u32, runs: Arc<Runs>) {
        let blocks = runs.tokens / self.block as u64;
        self.holders.insert(id, Holder { runs, blocks, held: 0, end: ROOT });
    }

    /// Sequence `id` left before it was admitted.
    pub fn forget(&mut self, id: u32) {
        self.holders.remove(&id);
    }

    /// Blocks held, free or in use.
    pub fn cached_blocks(&self) -> u64 {
        self.cached
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
        self.free -= self.nodes[i as usize].blocks();
    }

    fn push_back(&mut self, i: u32) {
        self.nodes[i as usize].prev = self.tail;
        self.nodes[i as usize].next = NONE;
        match self.tail {
            NONE => self.head = i,
            t => self.nodes[t as usize].next = i,
        }
        self.tail = i;
        self.free += self.nodes[i as usize].blocks();
    }

    fn slot(&mut self, node: Node) -> u32 {
        match self.spare.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// The child `c` of `parent` whose first block is block `at` of `runs`,
    /// and where the two part (in blocks, at most `to`; `at` if they do
    /// not agree on the first token, which only a collision of keys gives).
    fn child(&self, parent: u32, runs: &Runs, at: u64, to: u64) -> Option<(u32, u64)> {
        let b = self.block as u64;
        let i = runs.at(at * b);
        let key = runs.block_key_from(parent, at, b, i);
        if self.nodes[parent as usize].seen & seen_bit(key) == 0 {
            return None;
        }
        let c = *self.children.get(&key)?;
        let (n, lead) = (&self.nodes[c as usize], runs.runs[i]);
        if lead.id != n.lead.id || lead.start != n.lead.start {
            return Some((c, at));
        }
        let stop = n.end.min(to) * b;
        let p = lead.end.min(n.lead.end).min(stop);
        Some((c, if p == stop { stop / b } else { n.runs.agree(runs, p, stop) / b }))
    }

    /// Node `c` parts at block `m`: a new node takes its blocks before `m`
    /// (and its place in the tree, and in the queue after it), and is returned.
    fn split(&mut self, c: u32, m: u64) -> u32 {
        let n = self.nodes[c as usize].clone();
        let upper = Node { end: m, children: 1, prev: NONE, next: NONE, ..n.clone() };
        let u = self.slot(upper);
        self.children.insert(n.key, u);
        let b = self.block as u64;
        let (key, lead) = (n.runs.block_key(u, m, b), n.runs.lead(m * b));
        self.children.insert(key, c);
        self.nodes[u as usize].seen = seen_bit(key);
        let lower = &mut self.nodes[c as usize];
        (lower.parent, lower.start, lower.key, lower.lead) = (u, m, key, lead);
        if n.cached && n.refs == 0 {
            // Queued deepest first: its upper blocks go after the lower.
            let next = n.next;
            (self.nodes[u as usize].prev, self.nodes[u as usize].next) = (c, next);
            self.nodes[c as usize].next = u;
            match next {
                NONE => self.tail = u,
                x => self.nodes[x as usize].prev = u,
            }
        }
        u
    }

    /// Walks from node `parent` (ending at block `at`) along `runs` to block
    /// `to`, splitting and adding (evicted) nodes so that `path` is the
    /// nodes covering `at..to` exactly.
    fn descend(&mut self, mut parent: u32, mut at: u64, runs: &Arc<Runs>, to: u64) {
        self.path.clear();
        while at < to {
            let x = match self.child(parent, runs, at, to) {
                None => {
                    let key = runs.block_key(parent, at, self.block as u64);
                    let node = Node {
                        parent,
                        start: at,
                        end: to,
                        lead: runs.lead(at * self.block as u64),
                        runs: runs.clone(),
                        key,
                        children: 0,
                        seen: 0,
                        refs: 0,
                        cached: false,
                        prev: NONE,
                        next: NONE,
                    };
                    let x = self.slot(node);
                    self.children.insert(key, x);
                    self.nodes[parent as usize].children += 1;
                    self.nodes[parent as usize].seen |= seen_bit(key);
                    x
                }
                Some((c, m)) => {
                    assert!(m > at, "two blocks' 64-bit keys collide");
                    if m < self.nodes[c as usize].end { self.split(c, m) } else { c }
                }
            };
            self.path.push(x);
            (parent, at) = (x, self.nodes[x as usize].end);
        }
    }

    /// Evicted node `x` goes, and evicted parents left without children.
    fn prune(&mut self, mut x: u32) {
        while x != ROOT && !self.nodes[x as usize].cached && self.nodes[x as usize].children == 0 {
            let (parent, key) = (self.nodes[x as usize].parent, self.nodes[x as usize].key);
            self.children.remove(&key);
            self.nodes[parent as usize].children -= 1;
            self.spare.push(x);
            x = parent;
        }
    }

    /// Free node `x` is no longer cached.
    fn evict(&mut self, x: u32) {
        self.nodes[x as usize].cached = false;
        self.cached -= self.nodes[x as usize].blocks();
        self.prune(x);
    }

    /// Evicts free blocks, oldest first, to leave room for `kv_used`
    /// tokens of sequences.
    pub fn trim(&mut self, kv_used: u64) {
        let room = self.capacity.saturating_sub(kv_used.div_ceil(self.block as u64));
        while self.free > room {
            let x = self.head;
            let (over, blocks, end) = (self.free - room, self.nodes[x as usize].blocks(), self.nodes[x as usize].end);
            if over < blocks && self.nodes[x as usize].children == 0 {
                // Its deepest blocks are the oldest: a leaf just ends sooner.
                self.nodes[x as usize].end -= over;
                self.free -= over;
                self.cached -= over;
                break;
            }
            if over < blocks {
                self.split(x, end - over);
            }
            self.unlink(x);
            self.evict(x);
        }
    }

    /// The cached leading blocks of `id`'s first `tokens` tokens, short of
    /// the last token's block. No change to the cache.
    pub fn look_up(&self, id: u32, tokens: u64) -> Hit {
        self.holders.get(&id).map_or(Hit::default(), |h| self.find(&h.runs, tokens))
    }

    /// What `look_up` would find for content `runs` (a router's question).
    pub fn find(&self, runs: &Runs, tokens: u64) -> Hit {
        let b = self.block as u64;
        let n = (tokens.saturating_sub(1) / b).min(runs.tokens / b);
        let (mut parent, mut at, mut hit) = (ROOT, 0, Hit::default());
        while at < n {
            let Some((c, m)) = self.child(parent, runs, at, n) else { break };
            let node = &self.nodes[c as usize];
            if !node.cached {
                break;
            }
            hit.blocks += m - at;
            hit.shared += if node.refs > 0 { m - at } else { 0 };
            if m < node.end || node.children == 0 {
                break;
            }
            (parent, at) = (c, m);
        }
        hit
    }

    /// `id` is scheduled with its first `tokens` tokens: it holds their full
    /// blocks, cached ones shared, the others cached from now on.
    pub fn acquire(&mut self, id: u32, tokens: u64) {
        let Some(h) = self.holders.get(&id) else { return };
        let (runs, n) = (h.runs.clone(), (tokens / self.block as u64).min(h.blocks));
        self.descend(ROOT, 0, &runs, n);
        let path = std::mem::take(&mut self.path);
        for &x in &path {
            let node = &mut self.nodes[x as usize];
            let blocks = node.blocks();
            match (node.cached, node.refs) {
                (false, _) => {
                    node.cached = true;
                    self.cached += blocks;
                }
                (true, 0) => self.unlink(x),
                (true, _) => self.shared_tokens += self.block as u64 * blocks,
            }
            self.nodes[x as usize].refs += 1;
        }
        let end = path.last().copied().unwrap_or(ROOT);
        self.path = path;
        if let Some(h) = self.holders.get_mut(&id) {
            (h.held, h.end) = (n, end);
        }
    }

    /// `id` frees its blocks (a finish, a preemption) with `computed` of
    /// its tokens in KV: their full blocks stay cached, free, queued tail
    /// first; blocks it held past them (a prefill cut short) are dropped
    /// once free. `done`: it leaves for good.
    pub fn release(&mut self, id: u32, computed: u64, done: bool) {
        let Some(h) = self.holders.get_mut(&id) else { return };
        let (runs, held, end) = (h.runs.clone(), std::mem::take(&mut h.held), std::mem::replace(&mut h.end, ROOT));
        let keep = (computed / self.block as u64).min(h.blocks);
        if done {
            self.holders.remove(&id);
        }
        // Blocks its decode filled: cached, or refreshed if free; the
        // deepest queued first.
        let b = self.block as u64;
        let last = &mut self.nodes[end as usize];
        if keep > held && end != ROOT && last.refs == 1 && last.children == 0 {
            // Its own leaf: the blocks past it would be queued just before
            // it, so it takes them in.
            (last.end, last.lead) = (keep, runs.lead(last.start * b));
            last.runs = runs.clone();
            self.cached += keep - held;
        } else if keep > held {
            self.descend(end, held, &runs, keep);
            let path = std::mem::take(&mut self.path);
            for &x in path.iter().rev() {
                let node = &mut self.nodes[x as usize];
                match (node.cached, node.refs) {
                    (_, 1..) => continue,
                    (false, _) => {
                        node.cached = true;
                        self.cached += node.blocks();
                    }
                    (true, _) => self.unlink(x),
                }
                self.push_back(x);
            }
            self.path = path;
        }
        if keep < held {
            // A node starts at `keep`: those past it are dropped.
            let mut y = end;
            while self.nodes[y as usize].start > keep {
                y = self.nodes[y as usize].parent;
            }
            if self.nodes[y as usize].start < keep {
                self.split(y, keep);
            }
        }
        // The blocks it held, deepest first.
        let mut x = end;
        while x != ROOT {
            let node = &mut self.nodes[x as usize];
            let parent = node.parent;
            node.refs -= 1;
            if node.refs > 0 {
                self.shared_tokens -= self.block as u64 * node.blocks();
            } else if node.end <= keep {
                self.push_back(x);
            } else {
                self.evict(x);
            }
            x = parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::inference::traffic::prefix::block_hashes;

    fn content(segments: &[(u64, u32)], input: u32, own: u64) -> Arc<Runs> {
        let c = Content {
            segments: segments.iter().map(|&(id, tokens)| Segment { id, tokens }).collect(),
            input,
            own: OWN_CONTENT | own,
            answer: OWN_CONTENT | (own + 1_000_000),
        };
        c.runs(input as u64 + 20)
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

    /// vLLM's rules over single blocks named by chained hashes (as the
    /// cache was first written): what the tree must answer.
    struct Blocks {
        block: u64,
        capacity: u64,
        refs: HashMap<u64, u32>,
        /// The free ones, least recently used first.
        lru: Vec<u64>,
        holders: HashMap<u32, (Vec<u64>, usize)>,
        shared_tokens: u64,
    }

    impl Blocks {
        fn new(block: u32, kv_tokens: u64) -> Self {
            let (refs, lru, holders) = (HashMap::new(), Vec::new(), HashMap::new());
            Blocks { block: block as u64, capacity: kv_tokens / block as u64, refs, lru, holders, shared_tokens: 0 }
        }

        fn attach(&mut self, id: u32, runs: &Runs) {
            let mut hashes = Vec::new();
            let segments: Vec<Segment> =
                runs.runs.iter().map(|r| Segment { id: r.id, tokens: (r.end - r.start) as u32 }).collect();
            block_hashes(&segments, self.block as u32, &mut hashes);
            self.holders.insert(id, (hashes, 0));
        }

        fn find(&self, id: u32, tokens: u64) -> Hit {
            let hashes = &self.holders[&id].0;
            let n = (tokens.saturating_sub(1) / self.block) as usize;
            let mut hit = Hit::default();
            for h in hashes[..n.min(hashes.len())].iter().map_while(|h| self.refs.get(h)) {
                hit.blocks += 1;
                hit.shared += u64::from(*h > 0);
            }
            hit
        }

        fn acquire(&mut self, id: u32, tokens: u64) {
            let (hashes, held) = self.holders.get_mut(&id).unwrap();
            *held = ((tokens / self.block) as usize).min(hashes.len());
            for h in &hashes[..*held] {
                let r = self.refs.entry(*h).or_insert(0);
                match *r {
                    0 => self.lru.retain(|x| x != h),
                    _ => self.shared_tokens += self.block,
                }
                *r += 1;
            }
        }

        fn release(&mut self, id: u32, computed: u64, done: bool) {
            let (hashes, held) = self.holders.get_mut(&id).unwrap();
            let (hashes, held) = (hashes.clone(), std::mem::take(held));
            let keep = ((computed / self.block) as usize).min(hashes.len());
            for (k, h) in hashes.iter().enumerate().take(held.max(keep)).rev() {
                match self.refs.get_mut(h) {
                    Some(r) if k < held => {
                        *r -= 1;
                        if *r > 0 {
                            self.shared_tokens -= self.block;
                        } else if k < keep {
                            self.lru.push(*h);
                        } else {
                            self.refs.remove(h);
                        }
                    }
                    None => {
                        self.refs.insert(*h, 0);
                        self.lru.push(*h);
                    }
                    Some(0) => {
                        self.lru.retain(|x| x != h);
                        self.lru.push(*h);
                    }
                    Some(_) => {}
                }
            }
            if done {
                self.holders.remove(&id);
            }
        }

        fn trim(&mut self, kv_used: u64) {
            let room = self.capacity.saturating_sub(kv_used.div_ceil(self.block)) as usize;
            while self.lru.len() > room {
                let h = self.lru.remove(0);
                self.refs.remove(&h);
            }
        }
    }

    /// Random admissions, finishes, preemptions (cut short and not),
    /// departures and trims over contents drawn from few segments, so that
    /// prompts share, part and resend each other's blocks: after every
    /// step the tree and the single blocks agree on every look-up, the
    /// blocks cached and free and the shared tokens.
    #[test]
    fn the_tree_answers_as_single_blocks_do() {
        use rand::{RngExt, SeedableRng};
        for seed in 0..100u64 {
            let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
            let block = [1, 2, 4, 16][seed as usize % 4];
            let kv = block as u64 * rng.random_range(4..40u64);
            let (mut tree, mut blocks) = (PrefixCache::new(block, kv), Blocks::new(block, kv));
            // Per slot: its content's tokens and whether it holds blocks.
            let mut slots: Vec<Option<(u64, bool)>> = vec![None; 6];
            for _ in 0..400 {
                let k = rng.random_range(0..slots.len());
                match slots[k] {
                    None => {
                        let segments: Vec<Segment> = (0..rng.random_range(1..5))
                            .map(|_| Segment { id: rng.random_range(1..4), tokens: rng.random_range(1..=5 * block) })
                            .collect();
                        let runs = Runs::new(segments.iter(), u64::MAX);
                        blocks.attach(k as u32, &runs);
                        slots[k] = Some((runs.tokens, false));
                        tree.attach(k as u32, Arc::new(runs));
                    }
                    Some((_, false)) if rng.random_bool(0.2) => {
                        tree.forget(k as u32);
                        blocks.holders.remove(&(k as u32));
                        slots[k] = None;
                    }
                    Some((tokens, false)) => {
                        let l = rng.random_range(1..=tokens);
                        assert_eq!(tree.look_up(k as u32, l), blocks.find(k as u32, l), "seed {seed}");
                        tree.acquire(k as u32, l);
                        blocks.acquire(k as u32, l);
                        slots[k] = Some((tokens, true));
                    }
                    Some((tokens, true)) => {
                        let (computed, done) = (rng.random_range(0..=tokens + 3), rng.random_bool(0.5));
                        tree.release(k as u32, computed, done);
                        blocks.release(k as u32, computed, done);
                        slots[k] = (!done).then_some((tokens, false));
                    }
                }
                if rng.random_bool(0.5) {
                    let used = rng.random_range(0..=kv);
                    tree.trim(used);
                    blocks.trim(used);
                }
                assert_eq!(tree.cached_blocks(), blocks.refs.len() as u64, "seed {seed}");
                assert_eq!(tree.free, blocks.lru.len() as u64, "seed {seed}");
                assert_eq!(tree.shared_tokens, blocks.shared_tokens, "seed {seed}");
                for (id, slot) in slots.iter().enumerate() {
                    if let Some((tokens, _)) = slot {
                        for l in [1, tokens / 2, *tokens] {
                            assert_eq!(tree.look_up(id as u32, l), blocks.find(id as u32, l), "seed {seed}");
                        }
                    }
                }
            }
        }
    }
}
