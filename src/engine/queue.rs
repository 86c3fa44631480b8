//! A pending-event set with a deterministic order.
//!
//! Ordering contract: events leave in order of time; events at the same
//! instant leave in the order they were scheduled (first in, first out), by a
//! global sequence number. Nothing depends on addresses or hashing.
//!
//! Events that are scheduled in time order anyway (trace arrivals, zero-delay
//! follow-ups) can go to a plain FIFO lane, which costs O(1) instead of the
//! heap's O(log n).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use crate::base::time::SimTime;

struct Entry<E> {
    at: SimTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    lane: VecDeque<Entry<E>>,
    seq: u64,
    now: SimTime,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), lane: VecDeque::new(), seq: 0, now: SimTime::ZERO }
    }

    /// The time of the event popped last.
    pub fn now(&self) -> SimTime {
        self.now
    }

    pub fn len(&self) -> usize {
        self.heap.len() + self.lane.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(&mut self, at: SimTime, event: E) -> Entry<E> {
        debug_assert!(at >= self.now, "an event was scheduled in the past");
        self.seq += 1;
        Entry { at: at.max(self.now), seq: self.seq, event }
    }

    /// Schedules `event` at `at` (not before now).
    pub fn schedule(&mut self, at: SimTime, event: E) {
        let entry = self.entry(at, event);
        self.heap.push(entry);
    }

    /// Schedules `event` on the FIFO lane. The caller promises that lane
    /// events come in non-decreasing time; a late one falls back to the heap.
    pub fn schedule_in_order(&mut self, at: SimTime, event: E) {
        let entry = self.entry(at, event);
        match self.lane.back() {
            Some(last) if last.at > entry.at => self.heap.push(entry),
            _ => self.lane.push_back(entry),
        }
    }

    /// Time of the next event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        match (self.heap.peek(), self.lane.front()) {
            (Some(h), Some(l)) => Some(h.at.min(l.at)),
            (Some(h), None) => Some(h.at),
            (None, Some(l)) => Some(l.at),
            (None, None) => None,
        }
    }

    /// Removes the earliest event (FIFO among equal times) and advances `now`.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let from_lane = match (self.heap.peek(), self.lane.front()) {
            (Some(h), Some(l)) => (l.at, l.seq) < (h.at, h.seq),
            (None, Some(_)) => true,
            (_, None) => false,
        };
        let entry = if from_lane { self.lane.pop_front() } else { self.heap.pop() }?;
        self.now = entry.at;
        Some((entry.at, entry.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_with_fifo_ties() {
        let mut q = EventQueue::new();
        q.schedule(SimTime::from_secs(5), "c");
        q.schedule(SimTime::from_secs(1), "a");
        q.schedule(SimTime::from_secs(5), "d");
        q.schedule_in_order(SimTime::from_secs(1), "b");
        q.schedule_in_order(SimTime::from_secs(5), "e");
        q.schedule(SimTime::from_secs(9), "f");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(q.now(), SimTime::from_secs(9));
    }

    #[test]
    fn out_of_order_lane_events_still_come_out_in_time_order() {
        let mut q = EventQueue::new();
        q.schedule_in_order(SimTime::from_secs(3), 3);
        q.schedule_in_order(SimTime::from_secs(2), 2);
        q.schedule_in_order(SimTime::from_secs(4), 4);
        assert_eq!(q.peek_time(), Some(SimTime::from_secs(2)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, [2, 3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn many_equal_times_keep_insertion_order() {
        let mut q = EventQueue::new();
        for i in 0..1000 {
            if i % 3 == 0 {
                q.schedule_in_order(SimTime::from_secs(1), i);
            } else {
                q.schedule(SimTime::from_secs(1), i);
            }
        }
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, (0..1000).collect::<Vec<_>>());
    }
}
