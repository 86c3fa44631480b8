//! Serverless inference: one container per concurrent request, cold starts,
//! keep-alive, provisioned concurrency, and throttling at the concurrency
//! limit. It shares the traffic, the request outcome, the metrics and the
//! timeline with the endpoint engines; `docs/serverless.md` gives the rules.

use super::design::{ArrivalFeed, CapacitySummary, Endpoint, Outcome, TimelineRow, latency_histogram, micros};
use crate::base::time::SimTime;
use crate::engine::progress::Ticker;
use crate::engine::{EventQueue, Purpose, Streams};

#[derive(Clone, Copy, Debug)]
enum Event {
    Arrival,
    Done { container: u32 },
    PeriodEnd,
}

struct Container {
    created: SimTime,
    /// While idle: warm until then.
    warm_until: SimTime,
    provisioned: bool,
}

/// Milliseconds billed for a run of `t`: rounded up to 1 ms.
pub fn billed_ms(t: SimTime) -> u64 {
    t.as_nanos().div_ceil(1_000_000)
}

pub fn simulate(
    ep: &Endpoint,
    streams: &Streams,
    mut timeline: Option<&mut Vec<TimelineRow>>,
) -> (Outcome, CapacitySummary) {
    let sl = ep.serverless.as_ref().expect("serverless mode has serverless terms");
    let end = ep.traffic.duration;
    let factor = sl.service_factor();
    let period = SimTime::from_mins(1);
    let mut cold_rng = streams.rng(Purpose::Startup);
    let mut queue = EventQueue::new();
    let mut out = Outcome::new();
    let mut period_latency = timeline.as_ref().map(|_| latency_histogram());

    let mut containers: Vec<Container> = (0..sl.provisioned_concurrency)
        .map(|_| Container { created: SimTime::ZERO, warm_until: SimTime::MAX, provisioned: true })
        .collect();
    let mut idle_provisioned: Vec<u32> = (0..sl.provisioned_concurrency).rev().collect();
    // Most recently idle on top: the stack's order is also expiry order.
    let mut idle: Vec<u32> = Vec::new();
    let mut busy = 0u32;
    let mut max_busy = 0u32;
    let mut warm_ns: u128 = 0; // on-demand container time warm, expired ones
    let (mut compute_ms_on_demand, mut compute_ms_provisioned, mut billed_requests) = (0u64, 0u64, 0u64);
    let (mut period_arrivals, mut period_throttled, mut period_busy_area, mut last) = (0.0, 0.0, 0.0, SimTime::ZERO);

    let mut feed = ArrivalFeed::start(ep, streams, &mut queue, Event::Arrival);
    if period <= end && timeline.is_some() {
        queue.schedule(period, Event::PeriodEnd);
    }
    let mut ticker = Ticker::default();
    while let Some((now, event)) = queue.pop() {
        period_busy_area += busy as f64 * (now - last).as_secs_f64();
        last = now;
        match event {
            Event::Arrival => {
                ticker.tick();
                let mut service = feed.arrive(&mut queue, Event::Arrival);
                let counted = now >= ep.warmup;
                period_arrivals += 1.0;
                if factor != 1.0 {
                    service = SimTime::from_secs_f64(service.as_secs_f64() * factor);
                }
                if counted {
                    out.requests += 1.0;
                }
                // A warm container: provisioned first, then the most recently
                // idle one; the rest of the stack below an expired one is
                // older, so it has expired too.
                let mut cold = SimTime::ZERO;
                let container = if let Some(c) = idle_provisioned.pop() {
                    Some(c)
                } else if idle.last().is_some_and(|&c| containers[c as usize].warm_until > now) {
                    idle.pop()
                } else {
                    for c in idle.drain(..) {
                        let c = &containers[c as usize];
                        warm_ns += (c.warm_until.min(end) - c.created.min(end)).as_nanos() as u128;
                    }
                    if busy >= sl.max_concurrency {
                        // Throttled, as a 429 would be: refused at once.
                        period_throttled += 1.0;
                        if counted {
                            out.throttled += 1.0;
                            out.rejected += 1.0;
                        }
                        continue;
                    }
                    cold = sl.cold_start.sample(&mut cold_rng);
                    if counted {
                        out.cold_starts += 1.0;
                    }
                    containers.push(Container { created: now, warm_until: SimTime::MAX, provisioned: false });
                    Some(containers.len() as u32 - 1)
                };
                let Some(c) = container else { continue };
                if busy >= sl.max_concurrency {
                    // A warm container, but the concurrency limit is reached.
                    match containers[c as usize].provisioned {
                        true => idle_provisioned.push(c),
                        false => idle.push(c),
                    }
                    period_throttled += 1.0;
                    if counted {
                        out.throttled += 1.0;
                        out.rejected += 1.0;
                    }
                    continue;
                }
                busy += 1;
                max_busy = max_busy.max(busy);
                queue.schedule(now + cold + service, Event::Done { container: c });
                if containers[c as usize].provisioned {
                    compute_ms_provisioned += billed_ms(service);
                } else {
                    compute_ms_on_demand += billed_ms(service);
                }
                billed_requests += 1;
                let latency = cold + service;
                if let Some(h) = period_latency.as_mut() {
                    h.saturating_record(micros(latency));
                }
                if counted {
                    out.finish(now, latency, cold > SimTime::ZERO, ep);
                }
            }
            Event::Done { container } => {
                busy -= 1;
                let c = &mut containers[container as usize];
                if c.provisioned {
                    idle_provisioned.push(container);
                } else {
                    c.warm_until = now + sl.idle_timeout;
                    idle.push(container);
                }
            }
            Event::PeriodEnd => {
                if let Some(rows) = timeline.as_deref_mut() {
                    let warm = sl.provisioned_concurrency as usize
                        + containers.iter().filter(|c| !c.provisioned && c.warm_until > now).count();
                    let hist = period_latency.as_mut().expect("kept with the timeline");
                    rows.push(TimelineRow {
                        instances_in_service: warm as u32,
                        rejected: period_throttled,
                        metric: period_busy_area / period.as_secs_f64(),
                        ..TimelineRow::new(now, period, period_arrivals, hist)
                    });
                }
                (period_arrivals, period_throttled, period_busy_area) = (0.0, 0.0, 0.0);
                if now + period <= end {
                    queue.schedule(now + period, Event::PeriodEnd);
                }
            }
        }
    }
    // Containers still warm count until they expire or the window ends.
    for &c in &idle {
        let c = &containers[c as usize];
        warm_ns += (c.warm_until.min(end) - c.created.min(end)).as_nanos() as u128;
    }
    let window_s = end.as_secs_f64();
    let gb = sl.memory_gb;
    let p = &sl.prices;
    let cost = compute_ms_on_demand as f64 / 1000.0 * gb * p.compute_per_gb_second
        + compute_ms_provisioned as f64 / 1000.0 * gb * p.provisioned_compute_per_gb_second
        + billed_requests as f64 * p.request_price
        + sl.provisioned_concurrency as f64 * gb * p.provisioned_per_gb_second * window_s;
    let warm_hours = warm_ns as f64 / 3.6e12 + sl.provisioned_concurrency as f64 * window_s / 3600.0;
    let capacity = CapacitySummary {
        cost_usd: cost,
        instance_hours: warm_hours,
        instances_mean: if window_s > 0.0 { warm_hours * 3600.0 / window_s } else { 0.0 },
        instances_max: max_busy.max(sl.provisioned_concurrency) as f64,
        availability: if sl.max_concurrency > 0 { 1.0 } else { 0.0 },
        ..CapacitySummary::default()
    };
    (out, capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_rounds_up_to_the_millisecond() {
        assert_eq!(billed_ms(SimTime::from_millis(40)), 40);
        assert_eq!(billed_ms(SimTime::from_nanos(40_000_001)), 41);
        assert_eq!(billed_ms(SimTime::ZERO), 0);
    }
}
