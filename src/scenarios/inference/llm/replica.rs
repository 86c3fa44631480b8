//! One model replica: continuous batching over its sequences, iteration by
//! iteration, with runs of decode-only iterations advanced in closed form.
//!
//! A replica keeps running sums (B sequences decoding, their context sum
//! S) and a min-heap of the decode iteration at which each one finishes, so
//! nothing here costs per token per sequence. Its clock is in integer
//! picoseconds (`step`), so a run advanced in bulk lands on exactly the
//! instant the same iterations one by one would.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use super::Scheduler;
use super::prefix_cache::PrefixCache;
use super::step::{Batch, Run, StepTime};
use crate::base::time::SimTime;

/// The attention term of a prefill of `new` tokens after `cached` tokens
/// already in KV: causal attention costs ∝ Σ positions, (c+u)² − c² =
/// u² + 2·u·c in the units the step model's `prompt_sq` term takes (u² for
/// a prompt with nothing cached, as before).
fn attention(new: u64, cached: u64) -> u64 {
    new * new + 2 * new * cached
}

/// Picoseconds to the nanosecond at or after them (event times).
pub fn ps_to_time(ps: u128) -> SimTime {
    SimTime::from_nanos(ps.div_ceil(1000).min(u64::MAX as u128) as u64)
}

pub fn time_to_ps(t: SimTime) -> u128 {
    t.as_nanos() as u128 * 1000
}

/// What a replica's iterations are bound by.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub scheduler: Scheduler,
    pub chunk: u64,
    pub max_seqs: u64,
    pub max_batched_tokens: u64,
    pub kv_tokens: u64,
    pub step: StepTime,
    pub timeout: SimTime,
    /// Debugging: advance decode runs one iteration per event.
    pub single_steps: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Free,
    Waiting,
    /// Admitted, its prompt (partly) being prefilled.
    Prefill,
    Running,
}

/// One request's sequence.
#[derive(Clone, Copy, Debug)]
pub struct Seq {
    pub state: State,
    /// Tells a reused slot's requests apart.
    pub serial: u64,
    pub arrival: SimTime,
    /// When its first prefill started (`MAX`: not yet).
    pub started: SimTime,
    pub first_token: SimTime,
    /// Tokens to prefill: the prompt, or after a preemption the prompt and
    /// the tokens generated so far (recompute).
    pub prompt: u32,
    /// The request's own prompt tokens.
    pub input: u32,
    /// Prompt tokens prefilled so far (chunked), from `cached`.
    pub done: u32,
    /// Leading prompt tokens found in the prefix cache at its admission.
    pub cached: u32,
    /// Output tokens still to produce, and all of them.
    pub left: u32,
    pub output: u32,
    pub counted: bool,
    pub replica: u32,
    /// Admission order, for the most recent to be preempted first.
    admit: u64,
    /// Context and decode counter when it joined the running batch.
    ctx_join: u64,
    d_join: u64,
}

impl Seq {
    pub fn new(serial: u64, arrival: SimTime, input: u32, output: u32, counted: bool, replica: u32) -> Self {
        Seq {
            state: State::Waiting,
            serial,
            arrival,
            started: SimTime::MAX,
            first_token: SimTime::MAX,
            prompt: input,
            input,
            done: 0,
            cached: 0,
            left: output,
            output,
            counted,
            replica,
            admit: 0,
            ctx_join: 0,
            d_join: 0,
        }
    }
}

/// Sequences of all replicas, in reused slots.
#[derive(Default)]
pub struct Seqs {
    pub slab: Vec<Seq>,
    free: Vec<u32>,
}

impl Seqs {
    pub fn insert(&mut self, seq: Seq) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.slab[id as usize] = seq;
                id
            }
            None => {
                self.slab.push(seq);
                (self.slab.len() - 1) as u32
            }
        }
    }

    pub fn remove(&mut self, id: u32) {
        self.slab[id as usize].state = State::Free;
        self.free.push(id);
    }
}

/// A request leaving a replica, for the engine to record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    Finished(u32),
    /// Waited past its timeout before being admitted.
    Expired(u32),
}

/// Totals the engine reads across replicas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// ∫ KV tokens in use dt, token·ps, over completed iterations.
    pub kv_area: u128,
    /// Tokens produced (first tokens, decode tokens, recompute tokens).
    pub tokens: u64,
    pub preemptions: u64,
    /// Counted requests' prompt tokens at their first admission, and of
    /// them those found in the prefix cache.
    pub prompt_tokens: u64,
    pub hit_tokens: u64,
    /// Prompt tokens prefilled (recomputes included), of counted requests.
    pub prefill_tokens: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Activity {
    Idle,
    /// One iteration with prompt work (a prefill, or a chunked mix).
    Single {
        end: u128,
        decodes: bool,
    },
    /// `n` decode-only iterations from `clock`.
    Run {
        run: Run,
        n: u64,
    },
}

pub struct Replica {
    pub instance: u32,
    pub alive: bool,
    /// Requests routed here and not yet gone.
    pub outstanding: u32,
    pub waiting: VecDeque<u32>,
    /// Running sequences by admission order.
    running: BTreeMap<u64, u32>,
    /// (finishing decode iteration, admission) of running sequences; stale
    /// entries (preempted) are skipped when met.
    finishes: BinaryHeap<Reverse<(u64, u64)>>,
    /// Chunked: admitted prompts being prefilled, in admission order.
    prefilling: VecDeque<u32>,
    /// The prompt work of the iteration in flight: (sequence, tokens).
    batch: Vec<(u32, u32)>,
    /// Sum of the running sequences' contexts, decode counter, KV reserved
    /// for prompts admitted and not yet running.
    ctx: u64,
    d: u64,
    reserved: u64,
    next_admit: u64,
    /// Start of the current iteration (or run), picoseconds.
    clock: u128,
    activity: Activity,
    /// The wake the engine has scheduled, and its generation.
    pub scheduled: Option<u128>,
    pub generation: u32,
    /// With `prefix_caching`: the blocks it keeps.
    pub cache: Option<PrefixCache>,
}

impl Replica {
    pub fn new(instance: u32, cache: Option<PrefixCache>) -> Self {
        Replica {
            instance,
            alive: true,
            outstanding: 0,
            waiting: VecDeque::new(),
            running: BTreeMap::new(),
            finishes: BinaryHeap::new(),
            prefilling: VecDeque::new(),
            batch: Vec::new(),
            ctx: 0,
            d: 0,
            reserved: 0,
            next_admit: 0,
            clock: 0,
            activity: Activity::Idle,
            scheduled: None,
            generation: 0,
            cache,
        }
    }

    pub fn busy(&self) -> bool {
        self.activity != Activity::Idle
    }

    fn seqs_decoding(&self) -> u64 {
        self.running.len() as u64
    }

    /// KV tokens held now, blocks shared by sequences counted once.
    fn kv_used(&self) -> u64 {
        self.ctx + self.reserved - self.shared()
    }

    fn shared(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.shared_tokens)
    }

    /// Sequence `id`'s blocks are freed with `computed` tokens in KV.
    fn release(&mut self, id: u32, computed: u64, done: bool) {
        if let Some(c) = self.cache.as_mut() {
            c.release(id, computed, done);
        }
    }

    /// When the replica next needs the engine (`None`: idle).
    pub fn wake_at(&self, limits: &Limits) -> Option<u128> {
        match self.activity {
            Activity::Idle => None,
            Activity::Single { end, .. } => Some(end),
            Activity::Run { run, n } => Some(self.clock + run.time(if limits.single_steps { 1 } else { n })),
        }
    }

    /// A request arrives: it waits for the next iteration boundary (now,
    /// if the replica is idle).
    pub fn arrive(
        &mut self,
        id: u32,
        now: u128,
        limits: &Limits,
        seqs: &mut Seqs,
        totals: &mut Totals,
        out: &mut Vec<Leave>,
    ) {
        self.waiting.push_back(id);
        self.outstanding += 1;
        match self.activity {
            Activity::Idle => self.schedule(now, limits, seqs, totals, out),
            Activity::Single { .. } => {}
            Activity::Run { run, n } => {
                // Stop the run at the end of the iteration in flight.
                let span = now - self.clock;
                let k = run.fit(span, n);
                let stop = if run.time(k) == span { k } else { k + 1 };
                if stop == 0 {
                    self.activity = Activity::Idle;
                    self.schedule(now, limits, seqs, totals, out);
                } else if stop < n {
                    self.activity = Activity::Run { run, n: stop };
                }
            }
        }
    }

    /// The scheduled wake: the iteration in flight (or the run) ends.
    pub fn wake(&mut self, now: u128, limits: &Limits, seqs: &mut Seqs, totals: &mut Totals, out: &mut Vec<Leave>) {
        match self.activity {
            Activity::Idle => {}
            Activity::Single { end, decodes } => {
                debug_assert_eq!(end, now);
                totals.kv_area += self.kv_used() as u128 * (end - self.clock);
                if decodes {
                    self.decode_iterations(1, totals);
                }
                self.complete_prompts(end, seqs, totals, out);
                self.finish(seqs, out);
                self.schedule(end, limits, seqs, totals, out);
            }
            Activity::Run { run, n } => {
                if limits.single_steps && n > 1 {
                    // An uneventful boundary: one iteration, nothing else.
                    self.advance_run(run, 1, totals);
                    let run = limits.step.run(self.seqs_decoding(), self.ctx);
                    self.activity = Activity::Run { run, n: n - 1 };
                    return;
                }
                self.advance_run(run, n, totals);
                self.activity = Activity::Idle;
                self.finish(seqs, out);
                self.schedule(self.clock, limits, seqs, totals, out);
            }
        }
    }

    /// Brings the totals up to `now` (completed iterations of a run), and
    /// returns the KV area of the iteration in flight so far. The state
    /// and the plan do not change.
    pub fn cut(&mut self, now: u128, limits: &Limits, totals: &mut Totals) -> u128 {
        if let Activity::Run { run, n } = self.activity {
            let k = run.fit(now.saturating_sub(self.clock), n).min(n - 1);
            if k > 0 {
                self.advance_run(run, k, totals);
                let run = limits.step.run(self.seqs_decoding(), self.ctx);
                self.activity = Activity::Run { run, n: n - k };
            }
        }
        match self.activity {
            Activity::Idle => 0,
            _ => self.kv_used() as u128 * now.saturating_sub(self.clock),
        }
    }

    /// `k` iterations of the run from `clock`: time, KV area, tokens, contexts.
    fn advance_run(&mut self, run: Run, k: u64, totals: &mut Totals) {
        totals.kv_area += run.kv_area(k) + self.reserved as u128 * run.time(k) - self.shared() as u128 * run.time(k);
        self.clock += run.time(k);
        self.decode_iterations(k, totals);
    }

    fn decode_iterations(&mut self, k: u64, totals: &mut Totals) {
        let b = self.seqs_decoding();
        self.ctx += k * b;
        self.d += k;
        totals.tokens += k * b;
    }

    /// Running sequences whose last token came at this decode iteration leave.
    fn finish(&mut self, seqs: &mut Seqs, out: &mut Vec<Leave>) {
        while let Some(&Reverse((at, admit))) = self.finishes.peek() {
            let Some(&id) = self.running.get(&admit) else {
                self.finishes.pop(); // preempted since
                continue;
            };
            if at > self.d {
                break;
            }
            self.finishes.pop();
            self.running.remove(&admit);
            let s = &mut seqs.slab[id as usize];
            self.ctx -= s.ctx_join + (self.d - s.d_join);
            s.left = 0;
            // The last token's KV is never written.
            let computed = s.input as u64 + s.output as u64 - 1;
            self.release(id, computed, true);
            self.leave(out, Leave::Finished(id));
        }
    }

    fn leave(&mut self, out: &mut Vec<Leave>, how: Leave) {
        self.outstanding -= 1;
        out.push(how);
    }

    /// Prompts whose prefill this iteration completed make their next token
    /// and join the running batch (or finish, if that was their last).
    fn complete_prompts(&mut self, end: u128, seqs: &mut Seqs, totals: &mut Totals, out: &mut Vec<Leave>) {
        let at = ps_to_time(end);
        let mut batch = std::mem::take(&mut self.batch);
        for &(id, tokens) in &batch {
            let s = &mut seqs.slab[id as usize];
            s.done += tokens;
            if s.done < s.prompt {
                continue;
            }
            let l = s.prompt as u64;
            self.reserved -= l + 1;
            if s.state == State::Prefill && self.prefilling.front() == Some(&id) {
                self.prefilling.pop_front();
            }
            totals.tokens += 1;
            if s.first_token == SimTime::MAX {
                s.first_token = at;
            }
            s.left -= 1;
            if s.left == 0 {
                let computed = s.prompt as u64;
                self.release(id, computed, true);
                self.leave(out, Leave::Finished(id));
                continue;
            }
            s.state = State::Running;
            s.ctx_join = l + 1;
            s.d_join = self.d;
            self.ctx += l + 1;
            self.running.insert(s.admit, id);
            self.finishes.push(Reverse((self.d + s.left as u64, s.admit)));
        }
        batch.clear();
        self.batch = batch; // keeps its allocation
    }

    /// Preempts the most recently admitted sequence (a chunked prompt being
    /// prefilled first): it goes back to the front of the queue, to be
    /// prefilled again with the tokens it had generated.
    fn preempt(&mut self, seqs: &mut Seqs, totals: &mut Totals) -> bool {
        let id = if let Some(id) = self.prefilling.pop_back() {
            let s = &mut seqs.slab[id as usize];
            self.reserved -= s.prompt as u64 + 1;
            let computed = s.done as u64;
            self.release(id, computed, false);
            id
        } else if let Some((_, id)) = self.running.pop_last() {
            let s = &mut seqs.slab[id as usize];
            let ctx = s.ctx_join + (self.d - s.d_join);
            self.ctx -= ctx;
            // vLLM V1 frees a preempted request's blocks, which stay cached.
            if let Some(c) = self.cache.as_mut() {
                c.release(id, ctx - 1, false);
            }
            // Prompt and generated tokens, all of which it holds; `left`
            // stood still while it ran.
            s.prompt = ctx as u32;
            s.left = (s.d_join + s.left as u64 - self.d) as u32;
            id
        } else {
            return false;
        };
        let s = &mut seqs.slab[id as usize];
        s.done = 0;
        s.cached = 0;
        s.state = State::Waiting;
        self.waiting.push_front(id);
        totals.preemptions += 1;
        true
    }

    /// Drops requests at the head of the queue whose timeout has passed.
    fn expire(&mut self, now: SimTime, timeout: SimTime, seqs: &mut Seqs, out: &mut Vec<Leave>) {
        while let Some(&id) = self.waiting.front() {
            if seqs.slab[id as usize].arrival + timeout > now {
                break;
            }
            self.waiting.pop_front();
            self.forget(id);
            self.leave(out, Leave::Expired(id));
        }
    }

    fn forget(&mut self, id: u32) {
        if let Some(c) = self.cache.as_mut() {
            c.forget(id);
        }
    }

    /// Takes `id` out of the queue (its timeout passed), if it is there.
    pub fn expire_one(&mut self, id: u32, out: &mut Vec<Leave>) -> bool {
        match self.waiting.iter().position(|&w| w == id) {
            Some(i) => {
                self.waiting.remove(i);
                self.forget(id);
                self.leave(out, Leave::Expired(id));
                true
            }
            None => false,
        }
    }

    /// The head of the queue, `id`, as the prefix cache finds it: the
    /// tokens it need not prefill, and the KV it would add (its prompt and
    /// first output token, less the blocks it would share).
    fn look_up(&mut self, id: u32, seqs: &Seqs) -> (u64, u64) {
        let l = seqs.slab[id as usize].prompt as u64;
        match self.cache.as_mut() {
            None => (0, l + 1),
            Some(c) => {
                let hit = c.look_up(id, l);
                (hit.blocks * c.block as u64, l + 1 - hit.shared * c.block as u64)
            }
        }
    }

    /// Admits `id` with its first `cached` tokens found in the cache;
    /// returns the tokens it prefills.
    fn admit(&mut self, id: u32, now: SimTime, cached: u64, seqs: &mut Seqs, totals: &mut Totals) -> u64 {
        self.waiting.pop_front();
        let s = &mut seqs.slab[id as usize];
        s.admit = self.next_admit;
        self.next_admit += 1;
        s.state = State::Prefill;
        let l = s.prompt as u64;
        if s.counted {
            if s.started == SimTime::MAX {
                totals.prompt_tokens += l;
                totals.hit_tokens += cached;
            }
            totals.prefill_tokens += l - cached;
        }
        if s.started == SimTime::MAX {
            s.started = now;
        }
        s.cached = cached as u32;
        s.done = cached as u32;
        self.reserved += l + 1;
        if let Some(c) = self.cache.as_mut() {
            c.acquire(id, l);
            c.trim(self.ctx + self.reserved - c.shared_tokens);
        }
        l - cached
    }

    fn trim_cache(&mut self) {
        let used = self.kv_used();
        if let Some(c) = self.cache.as_mut() {
            c.trim(used);
        }
    }

    /// At an iteration boundary: the next iteration, per the scheduler.
    fn schedule(&mut self, now: u128, limits: &Limits, seqs: &mut Seqs, totals: &mut Totals, out: &mut Vec<Leave>) {
        debug_assert!(self.batch.is_empty());
        self.clock = now;
        let at = ps_to_time(now);
        self.expire(at, limits.timeout, seqs, out);
        self.trim_cache();
        let cap = limits.kv_tokens;
        let mut batch = Batch::default();
        match limits.scheduler {
            Scheduler::Vllm => {
                // Whole prompts, first come first served, while they fit.
                while let Some(&id) = self.waiting.front() {
                    let (cached, kv) = self.look_up(id, seqs);
                    let l = seqs.slab[id as usize].prompt as u64 - cached;
                    let fits_tokens = self.batch.is_empty() || batch.prompt + l <= limits.max_batched_tokens;
                    let fits_seqs = self.seqs_decoding() + (self.batch.len() as u64) < limits.max_seqs;
                    // The prompt and its first output token must fit.
                    if !(fits_tokens && fits_seqs && self.kv_used() + kv <= cap) {
                        break;
                    }
                    self.admit(id, at, cached, seqs, totals);
                    self.batch.push((id, l as u32));
                    batch.prompt += l;
                    batch.prompt_sq += attention(l, cached);
                }
                if !self.batch.is_empty() {
                    let end = now + limits.step.iteration(&batch);
                    self.activity = Activity::Single { end, decodes: false };
                    return;
                }
                while self.kv_used() > cap && self.preempt(seqs, totals) {}
            }
            Scheduler::Chunked => {
                while self.kv_used() > cap && self.preempt(seqs, totals) {}
                let mut budget = limits.chunk.saturating_sub(self.seqs_decoding());
                for &id in &self.prefilling {
                    if budget == 0 {
                        break;
                    }
                    let s = &seqs.slab[id as usize];
                    let c = budget.min((s.prompt - s.done) as u64);
                    self.batch.push((id, c as u32));
                    budget -= c;
                }
                while budget > 0 {
                    let Some(&id) = self.waiting.front() else { break };
                    let (cached, kv) = self.look_up(id, seqs);
                    let room = (self.seqs_decoding() + self.prefilling.len() as u64) < limits.max_seqs;
                    if !(room && self.kv_used() + kv <= cap) {
                        break;
                    }
                    let l = self.admit(id, at, cached, seqs, totals);
                    self.prefilling.push_back(id);
                    let c = budget.min(l);
                    self.batch.push((id, c as u32));
                    budget -= c;
                }
                for &(id, c) in &self.batch {
                    batch.prompt += c as u64;
                    batch.prompt_sq += attention(c as u64, seqs.slab[id as usize].cached as u64);
                }
                if !self.batch.is_empty() {
                    batch.seqs = self.seqs_decoding();
                    batch.ctx = self.ctx;
                    let end = now + limits.step.iteration(&batch);
                    self.activity = Activity::Single { end, decodes: batch.seqs > 0 };
                    return;
                }
            }
        }
        let b = self.seqs_decoding();
        if b == 0 {
            self.activity = Activity::Idle;
            return;
        }
        // Decode-only iterations until the next finish or the iteration
        // that would overflow the KV cache, whichever comes first.
        let next_finish = loop {
            let Some(&Reverse((at, admit))) = self.finishes.peek() else { unreachable!("running sequences finish") };
            if self.running.contains_key(&admit) {
                break at;
            }
            self.finishes.pop();
        };
        let until_finish = next_finish - self.d;
        let until_full = (cap - self.kv_used()) / b + 1;
        let run = limits.step.run(b, self.ctx);
        self.activity = Activity::Run { run, n: until_finish.min(until_full) };
    }

    /// The instance is lost: every sequence here fails. Returns them.
    pub fn fail_all(&mut self, out: &mut Vec<u32>) {
        // A vllm prefill in flight holds its prompts in `batch` only; a
        // chunked one's are in `prefilling` too.
        if self.prefilling.is_empty() {
            out.extend(self.batch.iter().map(|&(id, _)| id));
        }
        out.extend(self.waiting.drain(..));
        out.extend(self.prefilling.drain(..));
        out.extend(self.running.values().copied());
        self.running.clear();
        self.finishes.clear();
        self.batch.clear();
        self.ctx = 0;
        self.reserved = 0;
        self.outstanding = 0;
        self.activity = Activity::Idle;
        self.alive = false;
        // Its KV, and so its cache, is gone with the instance.
        self.cache = None;
    }
}
