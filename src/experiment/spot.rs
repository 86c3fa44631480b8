//! Reads `[spot]`, and the one rule that ties it to a scenario: `[spot]` is
//! required exactly when the scenario's `market` is spot, and `[zones]` is
//! then checked against it (a real trace needs one file per zone).

use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::experiment::zones::read_zones;
use crate::input::InputError;
use crate::input::section::{Result, Section};
use crate::input::tree::Value;
use crate::spot::{ADVISOR_BANDS, AdvisorDraw, Interruptions, Market, SpotTerms};
use crate::zones::Zones;

/// What a scenario's market comes to: spot terms when it is spot, and zones.
pub struct MarketTerms {
    pub market: Market,
    pub spot: Option<SpotTerms>,
    pub zones: Option<Zones>,
}

/// Reads `market` from the scenario's table `scenario` (default `default`),
/// then `[spot]` and `[zones]` from `root`. `[spot]` is read and checked
/// whenever it is present, so that a file can sweep `market`; it is used only
/// on spot.
pub fn read_market(root: &Section, scenario: &Section, default: Market, on_demand_price: f64) -> Result<MarketTerms> {
    let market = match scenario.choice("market", &["spot", "on-demand"])? {
        Some("spot") => Market::Spot,
        Some(_) => Market::OnDemand,
        None => default,
    };
    let spot = match root.section("spot")? {
        Some(s) => Some(read_spot(&s, on_demand_price)?),
        None if market == Market::Spot => {
            let why =
                format!("a [spot] table with `interruptions`, since `{}` is \"spot\"", scenario.key_path("market"));
            return Err(root.missing("spot", &why));
        }
        None => None,
    };
    let spot = if market == Market::Spot { spot } else { None };
    let zones = read_zones_for(root, spot.as_ref())?;
    Ok(MarketTerms { market, spot, zones })
}

/// `[zones]`, checked against the spot terms: a real trace needs one file per
/// zone.
fn read_zones_for(root: &Section, spot: Option<&SpotTerms>) -> Result<Option<Zones>> {
    let zones = match root.section("zones")? {
        Some(z) => Some(read_zones(&z)?),
        None => None,
    };
    if let Some(SpotTerms { interruptions: Interruptions::Trace { files, .. }, .. }) = spot {
        let count = zones.as_ref().map_or(1, |z| z.count) as usize;
        if files.len() != count {
            let spot = root.section("spot")?.expect("spot terms come from [spot]");
            let interruptions = spot.section("interruptions")?.expect("read before");
            return Err(InputError::new(
                interruptions.origin(),
                Some("spot.interruptions"),
                format!("expected one trace file per zone: {count} zone(s), {} file(s)", files.len()),
            )
            .with_hint(Some(
                "give `files = [...]` with one file per zone, in zone order, and `[zones] count`".into(),
            )));
        }
    }
    Ok(zones)
}

/// Default spot discount off the on-demand price when neither `discount` nor
/// `price_per_hour` is given.
pub const DEFAULT_DISCOUNT: f64 = 0.70;
/// AWS's spot interruption notice.
pub const DEFAULT_NOTICE: SimTime = SimTime::from_mins(2);

fn read_spot(s: &Section, on_demand_price: f64) -> Result<SpotTerms> {
    let interruptions = match s.section("interruptions")? {
        Some(i) => read_interruptions(&i)?,
        None => {
            return Err(
                s.missing("interruptions", "an interruption model, such as { model = \"poisson\", mtbf = \"10h\" }")
            );
        }
    };
    let notice = s.duration("notice")?.unwrap_or(DEFAULT_NOTICE);
    let capacity_wait = s.dist("capacity_wait")?.unwrap_or(Dist::Constant(SimTime::ZERO));
    let discount = s.number("discount", 0.0, 1.0)?;
    let price = s.number("price_per_hour", 0.0, 1.0e6)?;
    let price_per_hour = match (discount, price) {
        (Some(_), Some(_)) => {
            let entry = s.entry("price_per_hour").expect("read");
            return Err(s.error(entry, "give either `discount` or `price_per_hour`, not both"));
        }
        (_, Some(p)) => p,
        (d, None) => (1.0 - d.unwrap_or(DEFAULT_DISCOUNT)) * on_demand_price,
    };
    let fallback_after_wait = match s.section("fallback")? {
        Some(f) => {
            let after =
                f.duration("after_wait")?.ok_or_else(|| f.missing("after_wait", "a duration, such as \"1h\""))?;
            f.finish()?;
            Some(after)
        }
        None => None,
    };
    s.finish()?;
    Ok(SpotTerms { interruptions, notice, capacity_wait, price_per_hour, fallback_after_wait })
}

fn read_interruptions(i: &Section) -> Result<Interruptions> {
    let models = ["poisson", "weibull", "advisor", "trace"];
    let model = i
        .choice("model", &models)?
        .ok_or_else(|| i.missing("model", "one of \"poisson\", \"weibull\", \"advisor\", \"trace\""))?;
    let need = |key: &'static str, what: &str| i.positive_duration(key)?.ok_or_else(|| i.missing(key, what));
    let result = match model {
        "poisson" => {
            Interruptions::Poisson { mtbf: need("mtbf", "the mean time between interruptions, such as \"10h\"")? }
        }
        "weibull" => Interruptions::Weibull {
            shape: i.number("shape", 0.05, 100.0)?.ok_or_else(|| i.missing("shape", "a number > 0"))?,
            scale: need("scale", "a duration, such as \"12h\"")?,
        },
        "advisor" => {
            let labels: Vec<&'static str> = ADVISOR_BANDS.iter().map(|b| b.0).collect();
            let band = i
                .choice("band", &labels)?
                .ok_or_else(|| i.missing("band", "a Spot Instance Advisor band, such as \"10-15%\""))?;
            let &(band, low, high) = ADVISOR_BANDS.iter().find(|b| b.0 == band).expect("a listed band");
            let draw = match i.choice("draw", &["midpoint", "uniform"])? {
                Some("uniform") => AdvisorDraw::Uniform,
                _ => AdvisorDraw::Midpoint,
            };
            Interruptions::Advisor { band, low, high, draw }
        }
        _ => {
            // `offset`: where in the trace every replication starts; by
            // default a uniformly random point per replication.
            let offset = match i.entry("offset").map(|e| &e.node.value) {
                Some(Value::Str(random)) if random == "random" => None,
                _ => i.duration("offset")?,
            };
            let tick = i.positive_duration("tick")?;
            let traces = super::spot_trace::read_trace_interruptions(i, tick)?;
            Interruptions::Trace { files: traces.iter().map(|t| t.file.clone()).collect(), traces, offset, tick }
        }
    };
    i.finish()?;
    Ok(result)
}
