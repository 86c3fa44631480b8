//! Reads `[zones]`.

use crate::base::time::SimTime;
use crate::input::section::{Result, Section};
use crate::input::tree::Value;
use crate::zones::{DEFAULT_DETECTION, MAX_ZONES, Outage, SpotReclaim, Zones};

/// Reads the `[zones]` table `s`.
pub(crate) fn read_zones(s: &Section) -> Result<Zones> {
    let count = s
        .integer("count", 1, MAX_ZONES as i64)?
        .ok_or_else(|| s.missing("count", &format!("the number of availability zones, from 1 to {MAX_ZONES}")))?
        as u32;
    let outage = match s.section("outage")? {
        Some(o) => {
            let mtbf = o
                .positive_duration("mtbf")?
                .ok_or_else(|| o.missing("mtbf", "the mean up time of a zone between outages, such as \"2000h\""))?;
            let duration = o
                .dist("duration")?
                .ok_or_else(|| o.missing("duration", "a distribution of outage durations, such as \"2h\""))?;
            if duration.mean_secs() <= 0.0 {
                let entry = o.entry("duration").expect("read");
                return Err(o.error(entry, "expected outages that last longer than zero on average"));
            }
            o.finish()?;
            Some(Outage { mtbf, duration })
        }
        None => None,
    };
    // "never": lost instances are not replaced (`SimTime::MAX`).
    let detection = match s.entry("detection").map(|e| &e.node.value) {
        Some(Value::Str(never)) if never == "never" => SimTime::MAX,
        _ => s.duration("detection")?.unwrap_or(DEFAULT_DETECTION),
    };
    let spot_reclaim = match s.choice("spot_reclaim", &["instance", "zone"])? {
        Some("zone") => SpotReclaim::Zone,
        _ => SpotReclaim::Instance,
    };
    let rebalance = s.boolean("rebalance")?.unwrap_or(false);
    s.finish()?;
    Ok(Zones { count, outage, detection, spot_reclaim, rebalance })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::base::dist::Dist;
    use crate::base::time::SimTime;
    use crate::input::error::{InputError, Origin};
    use crate::input::tree::parse_document;

    fn read(body: &str) -> std::result::Result<Zones, InputError> {
        let text = format!("[zones]\n{body}");
        let doc = parse_document(&text, "e.toml")?;
        let root = Section::root(&doc, Origin::file("e.toml", 1), Path::new("."));
        let section = root.section("zones")?.expect("present");
        read_zones(&section)
    }

    fn err(body: &str) -> InputError {
        read(body).expect_err("should fail")
    }

    #[test]
    fn defaults_are_filled_in() {
        let z = read("count = 3\n").unwrap();
        assert_eq!(
            z,
            Zones {
                count: 3,
                outage: None,
                detection: SimTime::from_mins(5),
                spot_reclaim: SpotReclaim::Instance,
                rebalance: false,
            }
        );
    }

    #[test]
    fn every_key_is_read() {
        let z = read(
            "count = 4\noutage = { mtbf = \"2000h\", duration = { dist = \"lognormal\", median = \"2h\", sigma = 1.0 } }\n\
             detection = \"0s\"\nspot_reclaim = \"zone\"\nrebalance = true\n",
        )
        .unwrap();
        assert_eq!(z.count, 4);
        assert_eq!(
            z.outage,
            Some(Outage { mtbf: SimTime::from_hours(2000), duration: Dist::LogNormal { median: 7200.0, sigma: 1.0 } })
        );
        assert_eq!((z.detection, z.spot_reclaim, z.rebalance), (SimTime::ZERO, SpotReclaim::Zone, true));

        let z = read("count = 1\nspot_reclaim = \"instance\"\n[zones.outage]\nmtbf = \"10h\"\nduration = \"30m\"\n")
            .unwrap();
        let outage = z.outage.unwrap();
        assert_eq!((outage.mtbf, outage.duration), (SimTime::from_hours(10), Dist::Constant(SimTime::from_mins(30))));
        assert_eq!(z.spot_reclaim, SpotReclaim::Instance);
    }

    #[test]
    fn required_keys_are_named() {
        let e = err("detection = \"5m\"\n");
        assert_eq!(e.key.as_deref(), Some("zones.count"));
        assert!(e.message.contains("missing"), "{e}");

        let e = err("count = 3\noutage = { duration = \"2h\" }\n");
        assert_eq!((e.origin.line, e.key.as_deref()), (Some(3), Some("zones.outage.mtbf")));
        let e = err("count = 3\noutage = { mtbf = \"2000h\" }\n");
        assert_eq!(e.key.as_deref(), Some("zones.outage.duration"));
    }

    #[test]
    fn bad_values_point_at_their_line() {
        for body in ["count = 0\n", "count = 65\n", "count = 2.5\n"] {
            let e = err(body);
            assert_eq!((e.origin.line, e.key.as_deref()), (Some(2), Some("zones.count")), "{body}: {e}");
        }
        let e = err("count = 3\noutage = { mtbf = \"0s\", duration = \"2h\" }\n");
        assert_eq!(e.key.as_deref(), Some("zones.outage.mtbf"));
        assert!(e.message.contains("greater than zero"), "{e}");
        let e = err("count = 3\noutage = { mtbf = 2000, duration = \"2h\" }\n");
        assert!(e.message.contains("bare number"), "{e}");
        let e = err("count = 3\noutage = { mtbf = \"20h\", duration = \"0s\" }\n");
        assert_eq!(e.key.as_deref(), Some("zones.outage.duration"));
        let e = err("count = 3\ndetection = \"soon\"\n");
        assert_eq!((e.origin.line, e.key.as_deref()), (Some(3), Some("zones.detection")));
        let e = err("count = 3\nrebalance = \"yes\"\n");
        assert_eq!(e.key.as_deref(), Some("zones.rebalance"));
        let e = err("count = 3\noutage = \"often\"\n");
        assert_eq!(e.key.as_deref(), Some("zones.outage"));
    }

    #[test]
    fn near_misses_get_a_hint() {
        let e = err("count = 3\nspot_reclaim = \"zones\"\n");
        assert_eq!(e.hint.as_deref(), Some("did you mean `zone`?"));
        let e = err("count = 3\ndetecton = \"5m\"\n");
        assert_eq!((e.origin.line, e.hint.as_deref()), (Some(3), Some("did you mean `detection`?")));
        let e = err("count = 3\noutage = { mtbf = \"20h\", duration = \"1h\", mtbf_h = 3 }\n");
        assert_eq!(e.key.as_deref(), Some("zones.outage.mtbf_h"));
        let e = err("count = 3\noutage = { mtbf = \"20h\", durations = \"1h\" }\n");
        // A misspelt required key is named as the typo, not as missing.
        assert_eq!(e.key.as_deref(), Some("zones.outage.durations"), "{e}");
        assert!(e.hint.as_deref().unwrap().starts_with("did you mean `duration`?"), "{e}");
    }
}
