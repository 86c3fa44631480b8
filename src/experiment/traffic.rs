//! Reads `[traffic]` into a `Traffic`. Keys, defaults and formulas are in
//! `docs/traffic.md`.

use crate::base::time::SimTime;
use crate::base::trace_file::CsvTable;
use crate::input::section::{Result, Section};
use crate::input::tree::Entry;
use crate::scenarios::inference::traffic::mooncake::{MOONCAKE_BLOCK_TOKENS, parse_mooncake};
use crate::scenarios::inference::traffic::tokens::Tokens;
use crate::scenarios::inference::traffic::{
    DEFAULT_BIN, DEFAULT_PERIOD, DEFAULT_STEP, MAX_PIECES, Replay, Spike, TraceError, Traffic, TrafficSource,
    parse_rate_trace, parse_request_trace, request_trace_length,
};

/// Which load test, if any, the experiment holds: a load test makes its own
/// load, so it need not ask `[traffic]` for arrivals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// None: `[traffic]` gives the arrivals.
    Traffic,
    /// `[loadtest] threshold`: its Poisson load at the rates it searches;
    /// `[traffic]` may still give arrivals (for `spotsim run`) and gives
    /// the token counts.
    OpenLoop,
    /// `[loadtest] users`: its users; `[traffic]` holds only `duration`
    /// (and `tokens`).
    ClosedLoop,
}

/// Reads the `[traffic]` table itself (the caller passes
/// `root.section("traffic")`). Trace files are read here, relative to the
/// experiment file.
pub fn read_traffic(t: &Section, load: Load) -> Result<Traffic> {
    let closed_loop = load == Load::ClosedLoop;
    if load == Load::OpenLoop && !t.has("trace") && !t.has("synthetic") {
        // The load test uses only the token counts; a duration, if given,
        // is what `check` shows.
        let duration = t.positive_duration("duration")?.unwrap_or(SimTime::from_hours(1));
        let mut traffic = Traffic::constant(0.0, duration);
        super::llm::read_tokens(t, &mut traffic, None)?;
        t.finish()?;
        return Ok(traffic);
    }
    let duration = t
        .positive_duration("duration")?
        .ok_or_else(|| t.missing("duration", "how long the traffic runs, such as \"1d\""))?;
    if closed_loop {
        if let Some(e) = ["trace", "synthetic", "scale"].iter().find_map(|&k| t.entry(k)) {
            return Err(t
                .error(e, "the users of `[loadtest] users` make the requests: [traffic] holds only `duration`")
                .with_hint(Some("remove it, or drop `users` for an open-loop load test".into())));
        }
        // An LLM engine's users still draw their requests' token counts.
        let mut traffic = Traffic::constant(0.0, duration);
        super::llm::read_tokens(t, &mut traffic, None)?;
        t.finish()?;
        return Ok(traffic);
    }
    let scale = t.number("scale", 0.0, 1.0e9)?.unwrap_or(1.0);
    if scale == 0.0 {
        return Err(t.error(entry(t, "scale"), "expected a number greater than 0"));
    }
    let trace = t.string("trace")?;
    let synthetic = t.section("synthetic")?;
    // A request trace's table, read once for its times and its token columns.
    let mut table = None;
    // A Mooncake trace's token counts and prompts.
    let mut prompts = None;
    let source = match (trace, synthetic) {
        (Some(_), Some(_)) => {
            return Err(t.error(entry(t, "synthetic"), "give either `trace` or `synthetic`, not both"));
        }
        (None, None) => {
            return Err(t.missing(
                "trace",
                "a trace file, such as \"traces/requests.csv\", or `synthetic = { mean_rps = 50, ... }`",
            ));
        }
        (Some(file), None) => read_trace(t, file, scale, duration, &mut table, &mut prompts)?,
        (None, Some(s)) => {
            for key in ["format", "replay", "bin", "size_column", "input_tokens_column", "output_tokens_column"] {
                if let Some(e) = t.entry(key) {
                    return Err(t.error(e, "applies to a `trace` only, not to `synthetic` traffic"));
                }
            }
            read_synthetic(&s)?
        }
    };
    let mut traffic = Traffic { source, scale, duration, tokens: None };
    match prompts {
        Some(tokens) => {
            if let Some(key) = ["tokens", "input_tokens_column", "output_tokens_column", "hash_ids_column", "sessions"]
                .into_iter()
                .find(|&k| t.has(k))
            {
                return Err(t
                    .error(entry(t, key), "a Mooncake trace gives each request's tokens and hash ids")
                    .with_hint(Some("remove it".into())));
            }
            traffic.tokens = Some(tokens);
        }
        None => {
            super::llm::read_tokens(t, &mut traffic, table.as_ref())?;
            if let Some(e) = t.entry("hash_block_tokens").filter(|_| !t.has("hash_ids_column")) {
                return Err(t
                    .error(e, "applies to a trace with hash ids only")
                    .with_hint(Some("add `format = \"mooncake\"`, or `hash_ids_column` to a requests trace".into())));
            }
        }
    }
    t.finish()?;
    let pieces = traffic.piece_bound();
    if pieces > MAX_PIECES {
        let finer = match &traffic.source {
            TrafficSource::Synthetic { .. } => "a longer `synthetic.step`",
            TrafficSource::Requests { .. } => "a longer `bin`",
            TrafficSource::Rates { .. } => "a coarser trace",
        };
        return Err(t
            .error(
                entry(t, "duration"),
                format!("{duration} of traffic makes about {pieces} rate pieces per replication; at most {MAX_PIECES}"),
            )
            .with_hint(Some(format!("use a shorter `duration` or {finer}"))));
    }
    Ok(traffic)
}

/// The entry of a key a getter has just read.
fn entry<'a>(t: &Section<'a>, key: &'static str) -> &'a Entry {
    t.entry(key).expect("read just before")
}

/// A trace's arrivals; a request trace also leaves its parsed table in
/// `table` for the token columns.
fn read_trace(
    t: &Section,
    file: String,
    scale: f64,
    duration: SimTime,
    table: &mut Option<CsvTable>,
    prompts: &mut Option<Tokens>,
) -> Result<TrafficSource> {
    let format = t.choice("format", &["rates", "requests", "mooncake"])?.unwrap_or("rates");
    let trace_entry = entry(t, "trace");
    let at_trace = |message: String| t.error(trace_entry, format!("{file}{message}"));
    let from_trace = |e: TraceError| match e.line {
        Some(line) => at_trace(format!(" line {line}: {}", e.message)),
        None => at_trace(format!(": {}", e.message)),
    };
    let text = crate::input::section::read_text(&t.base_dir().join(&file)).map_err(from_trace)?;
    if format == "rates" {
        for key in ["replay", "bin", "size_column"] {
            if let Some(e) = t.entry(key) {
                return Err(t
                    .error(e, "applies to request traces only")
                    .with_hint(Some("add `format = \"requests\"` for a trace with one row per request".into())));
            }
        }
        let trace = parse_rate_trace(&text).map_err(from_trace)?;
        return Ok(TrafficSource::Rates { file, starts: trace.starts, rates: trace.rates, length: trace.length });
    }
    let replay = match t.choice("replay", &["as-is", "rates"])? {
        Some("rates") => Replay::Rates { bin: t.positive_duration("bin")?.unwrap_or(DEFAULT_BIN) },
        _ => {
            if let Some(e) = t.entry("bin") {
                return Err(t
                    .error(e, "applies to `replay = \"rates\"` only")
                    .with_hint(Some("an as-is replay uses the trace's own timestamps".into())));
            }
            if scale > 1.0 {
                return Err(t
                    .error(
                        entry(t, "scale"),
                        format!(
                            "an as-is replay can only thin a trace: expected a scale up to 1, found {}",
                            crate::input::error::number(scale)
                        ),
                    )
                    .with_hint(Some(
                        "use `replay = \"rates\"` to scale a request trace up (Poisson arrivals over its binned rate)"
                            .into(),
                    )));
            }
            Replay::AsIs
        }
    };
    if format == "mooncake" {
        if let Some(e) = t.entry("size_column") {
            return Err(t.error(e, "applies to `format = \"requests\"` only"));
        }
        let block = t.integer("hash_block_tokens", 1, 1 << 20)?.map_or(MOONCAKE_BLOCK_TOKENS, |b| b as u32);
        let trace = parse_mooncake(&text, block).map_err(from_trace)?;
        let length = request_trace_length(&trace.times, duration.as_secs_f64());
        *prompts = Some(Tokens::Prompts {
            source: format!("mooncake, {block} tokens per hash id"),
            counts: trace.counts.into(),
            prompts: trace.prompts.into(),
        });
        return Ok(TrafficSource::Requests {
            file,
            times: trace.times.into(),
            size_column: None,
            sizes: None,
            length,
            replay,
        });
    }
    let size_column = t.string("size_column")?;
    let csv = table.insert(CsvTable::parse(&text).map_err(from_trace)?);
    let trace = parse_request_trace(csv, size_column.as_deref(), duration.as_secs_f64()).map_err(from_trace)?;
    Ok(TrafficSource::Requests {
        file,
        times: trace.times.into(),
        size_column,
        sizes: trace.sizes.map(Into::into),
        length: trace.length,
        replay,
    })
}

fn read_synthetic(s: &Section) -> Result<TrafficSource> {
    let mean_rps = s
        .number("mean_rps", 0.0, 1.0e9)?
        .ok_or_else(|| s.missing("mean_rps", "the mean rate in requests per second, such as 50"))?;
    let diurnal_amplitude = s.number("diurnal_amplitude", 0.0, 1.0)?.unwrap_or(0.0);
    let period = s.positive_duration("period")?.unwrap_or(DEFAULT_PERIOD);
    let noise = s.number("noise", 0.0, 100.0)?.unwrap_or(0.0);
    let step = s.positive_duration("step")?.unwrap_or(DEFAULT_STEP);
    let mut spikes = Vec::new();
    for spike in s.tables("spikes")?.unwrap_or_default() {
        let start = spike.duration("start")?.ok_or_else(|| spike.missing("start", "a time, such as \"6h\""))?;
        let duration = spike
            .positive_duration("duration")?
            .ok_or_else(|| spike.missing("duration", "a duration, such as \"30m\""))?;
        let multiplier = spike
            .number("multiplier", 0.0, 1.0e6)?
            .ok_or_else(|| spike.missing("multiplier", "a factor on the rate, such as 3"))?;
        spike.finish()?;
        spikes.push(Spike { start, duration, multiplier });
    }
    s.finish()?;
    Ok(TrafficSource::Synthetic { mean_rps, diurnal_amplitude, period, noise, step, spikes })
}

#[cfg(test)]
mod tests {
    use crate::input::test_files::with_files;
    use std::path::Path;

    use super::*;
    use crate::base::time::SimTime;
    use crate::engine::Streams;
    use crate::input::error::{InputError, Origin};
    use crate::input::tree::parse_document;

    fn read_in(dir: &Path, text: &str) -> std::result::Result<Traffic, InputError> {
        let doc = parse_document(text, "experiment.toml")?;
        let root = Section::root(&doc, Origin::file("experiment.toml", 1), dir);
        let t = root.section("traffic")?.expect("a [traffic] table");
        read_traffic(&t, Load::Traffic)
    }

    fn read(text: &str) -> std::result::Result<Traffic, InputError> {
        read_in(Path::new("."), text)
    }

    fn error(dir: &Path, text: &str) -> String {
        read_in(dir, text).unwrap_err().to_string()
    }

    #[test]
    fn synthetic_with_defaults_and_spikes() {
        let t = read(
            "[traffic]\nsynthetic = { mean_rps = 50, diurnal_amplitude = 0.6, noise = 0.1, spikes = [\n  { start = \"2h\", duration = \"30m\", multiplier = 3 },\n] }\nduration = \"1d\"\n",
        )
        .unwrap();
        assert_eq!(t.scale, 1.0);
        assert_eq!(t.duration, SimTime::from_hours(24));
        let TrafficSource::Synthetic { mean_rps, diurnal_amplitude, period, noise, step, spikes } = &t.source else {
            panic!("{t:?}")
        };
        assert_eq!((*mean_rps, *diurnal_amplitude, *noise), (50.0, 0.6, 0.1));
        assert_eq!((*period, *step), (DEFAULT_PERIOD, DEFAULT_STEP));
        assert_eq!(
            spikes,
            &[Spike { start: SimTime::from_hours(2), duration: SimTime::from_mins(30), multiplier: 3.0 }]
        );
        // Also as a TOML array of tables.
        let t = read(
            "[traffic]\nduration = \"1h\"\nscale = 2\n[traffic.synthetic]\nmean_rps = 1\n[[traffic.synthetic.spikes]]\nstart = \"0s\"\nduration = \"1m\"\nmultiplier = 0\n",
        )
        .unwrap();
        assert_eq!(t.profile(&Streams::new(1, 0)).rate_at(SimTime::ZERO), 0.0);
        assert_eq!(t.profile(&Streams::new(1, 0)).rate_at(SimTime::from_mins(1)), 2.0);
    }

    #[test]
    fn rate_and_request_traces_relative_to_the_experiment() {
        let dir = with_files(&[
            ("traces/rates.csv", "time_s,rate\n0,5\n60,10\n120,0\n"),
            ("traces/req.csv", "time_s,tokens\n0,10\n0.5,20\n2,30\n"),
        ]);
        let t =
            read_in(dir.path(), "[traffic]\ntrace = \"traces/rates.csv\"\nduration = \"10m\"\nscale = 0.5\n").unwrap();
        let TrafficSource::Rates { file, starts, rates, length } = &t.source else { panic!() };
        assert_eq!((file.as_str(), starts.len(), rates[1], *length), ("traces/rates.csv", 3, 10.0, 180.0));
        assert_eq!(t.profile(&Streams::new(1, 0)).rate_at(SimTime::from_secs(250)), 5.0);

        let t = read_in(
            dir.path(),
            "[traffic]\ntrace = \"traces/req.csv\"\nformat = \"requests\"\nsize_column = \"tokens\"\nduration = \"10s\"\n",
        )
        .unwrap();
        let TrafficSource::Requests { times, sizes, length, replay, .. } = &t.source else { panic!() };
        assert_eq!((&times[..], *length, *replay), (&[0.0, 0.5, 2.0][..], 3.0, Replay::AsIs));
        assert_eq!(sizes.as_deref(), Some(&[10.0, 20.0, 30.0][..]));
        assert_eq!(t.arrivals(&Streams::new(1, 0)).count(), 11); // 3 per 3 s cycle, then 9 and 9.5 s

        let t = read_in(
            dir.path(),
            "[traffic]\ntrace = \"traces/req.csv\"\nformat = \"requests\"\nreplay = \"rates\"\nbin = \"1s\"\nscale = 4\nduration = \"1h\"\n",
        )
        .unwrap();
        assert!(
            matches!(t.source, TrafficSource::Requests { replay: Replay::Rates { bin }, .. } if bin == SimTime::from_secs(1))
        );
        let json = serde_json::to_string(&t).unwrap();
        assert!(
            json.starts_with("{\"trace\":\"traces/req.csv\",\"format\":\"requests\",\"replay\":\"rates\""),
            "{json}"
        );
    }

    #[test]
    fn trace_errors_name_the_experiment_line_and_the_trace_line() {
        let dir = with_files(&[
            ("traces/x.csv", "time_s,rate\n0,1\nabc,2\n"),
            ("traces/y.csv", "time_s,rate\n0,1\n60,abc\n"),
            ("traces/back.csv", "TIMESTAMP\n2023-11-16 18:15:46.68\n2023-11-16 18:15:45\n"),
            ("traces/one.csv", "time_s,rate\n0,1\n"),
        ]);
        let d = dir.path();
        std::fs::write(d.join("traces/bin.csv"), b"time_s,rate\n0,\xff\xfe\n").unwrap();
        assert_eq!(
            error(d, "[traffic]\nduration = \"1h\"\ntrace = \"traces/y.csv\"\n"),
            "experiment.toml:3: `traffic.trace`: traces/y.csv line 3: expected a rate >= 0, found \"abc\""
        );
        let e = error(d, "[traffic]\ntrace = \"traces/x.csv\"\nduration = \"1h\"\n");
        assert!(e.starts_with("experiment.toml:2: `traffic.trace`: traces/x.csv line 3: expected a time"), "{e}");
        let e = error(d, "[traffic]\ntrace = \"traces/back.csv\"\nformat = \"requests\"\nduration = \"1h\"\n");
        assert!(e.contains("traces/back.csv line 3: time goes backwards"), "{e}");
        let e = error(d, "[traffic]\ntrace = \"traces/one.csv\"\nduration = \"1h\"\n");
        assert!(e.contains("`traffic.trace`: traces/one.csv: expected at least two data rows"), "{e}");
        let e = error(d, "[traffic]\ntrace = \"traces/none.csv\"\nduration = \"1h\"\n");
        assert!(e.contains("traces/none.csv: cannot read the file"), "{e}");
        let e = error(d, "[traffic]\ntrace = \"traces/bin.csv\"\nduration = \"1h\"\n");
        assert!(e.contains("traces/bin.csv line 2: not valid UTF-8"), "{e}");
        let e = error(d, "[traffic]\ntrace = \"traces/y.csv\"\nformat = \"request\"\nduration = \"1h\"\n");
        assert!(e.contains("`traffic.format`") && e.contains("did you mean `requests`?"), "{e}");
        let e = error(
            d,
            "[traffic]\ntrace = \"traces/back.csv\"\nformat = \"requests\"\nsize_column = \"n\"\nduration = \"1h\"\n",
        );
        assert!(e.contains("line 1: no column `n` for `size_column`"), "{e}");
    }

    #[test]
    fn key_errors() {
        let dir = with_files(&[("r.csv", "time_s\n0\n1\n2\n"), ("rates.csv", "time_s,rate\n0,1\n1,1\n")]);
        let d = dir.path();
        let cases = [
            ("[traffic]\nsynthetic = { mean_rps = 1 }\n", "experiment.toml:1: `traffic.duration`: this key is missing"),
            ("[traffic]\nduration = \"1h\"\n", "`traffic.trace`: this key is missing"),
            ("[traffic]\nduration = 60\nsynthetic = { mean_rps = 1 }\n", "a bare number is not a duration"),
            ("[traffic]\nduration = \"0s\"\nsynthetic = { mean_rps = 1 }\n", "greater than zero"),
            (
                "[traffic]\nduration = \"1h\"\nscale = 0\nsynthetic = { mean_rps = 1 }\n",
                "experiment.toml:3: `traffic.scale`: expected a number greater than 0",
            ),
            (
                "[traffic]\nduration = \"1h\"\nscale = -1\nsynthetic = { mean_rps = 1 }\n",
                "`traffic.scale`: expected a number from 0",
            ),
            (
                "[traffic]\nduration = \"1h\"\ntrace = \"r.csv\"\nsynthetic = { mean_rps = 1 }\n",
                "either `trace` or `synthetic`",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\nreplay = \"rates\"\n",
                "`traffic.replay`: applies to a `trace` only",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\nduraton = \"1h\"\n",
                "did you mean `duration`?",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rsp = 1 }\n",
                "experiment.toml:3: `traffic.synthetic.mean_rsp`: unknown key in `traffic.synthetic`\n  hint: did you mean `mean_rps`?",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1, amplitude = 0.5 }\n",
                "unknown key in `traffic.synthetic`",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1, diurnal_amplitude = 1.5 }\n",
                "from 0 to 1, found 1.5",
            ),
            ("[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1, noise = -0.1 }\n", "`traffic.synthetic.noise`"),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1, period = \"0s\" }\n",
                "`traffic.synthetic.period`",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1, spikes = { start = \"1m\" } }\n",
                "expected an array of tables",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1, spikes = [1] }\n",
                "`traffic.synthetic.spikes[0]`: expected a table",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1, spikes = [{ start = \"1m\", duration = \"1m\" }] }\n",
                "`traffic.synthetic.spikes[0].multiplier`: this key is missing",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1, spikes = [{ start = \"1m\", duration = \"1m\", multiplier = 2, end = \"2m\" }] }\n",
                "unknown key in `traffic.synthetic.spikes[0]`",
            ),
            (
                "[traffic]\nduration = \"1000d\"\nsynthetic = { mean_rps = 1, step = \"1s\" }\n",
                "rate pieces per replication",
            ),
            (
                "[traffic]\nduration = \"1h\"\ntrace = \"rates.csv\"\nreplay = \"rates\"\n",
                "`traffic.replay`: applies to request traces only",
            ),
            (
                "[traffic]\nduration = \"1h\"\ntrace = \"r.csv\"\nformat = \"requests\"\nbin = \"1m\"\n",
                "`traffic.bin`: applies to `replay = \"rates\"` only",
            ),
            (
                "[traffic]\nduration = \"1h\"\ntrace = \"r.csv\"\nformat = \"requests\"\nreplay = \"asis\"\n",
                "did you mean `as-is`?",
            ),
            (
                "[traffic]\nduration = \"1h\"\ntrace = \"r.csv\"\nformat = \"requests\"\nscale = 1.5\n",
                "use `replay = \"rates\"` to scale a request trace up",
            ),
            ("[traffic]\nduration = \"1h\"\ntrace = 3\n", "`traffic.trace`: expected a string"),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\nsessions = { turns = 3, input = 50, output = 20 }\n",
                "experiment.toml:4: `traffic.sessions.think`: this key is missing",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\nsessions = { turns = 3, input = 50, output = 20, thnk = \"5s\" }\n",
                "did you mean `think`?",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\ntokens = { input = 5, output = 5 }\nsessions = { turns = 3, input = 50, output = 20, think = \"5s\" }\n",
                "`traffic.tokens`: `sessions` gives each turn's tokens",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\nsessions = { turns = 3, input = 50, output = 20, think = \"5s\", system_prompts = { tokens = [100, 200], weights = [1] } }\n",
                "`traffic.sessions.system_prompts.weights`: expected 2 weights >= 0, one per system prompt",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\nsessions = { turns = 3, input = 50, output = 20, think = \"5s\", system_prompts = { tokens = [100], count = 4 } }\n",
                "`traffic.sessions.system_prompts.count`: `tokens` is an array",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\nsessions = { turns = 3, input = 50, output = 20, think = \"5s\", system_prompts = { tokens = 100 } }\n",
                "`traffic.sessions.system_prompts.count`: this key is missing",
            ),
            (
                "[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\nsessions = { turns = 0, input = 50, output = 20, think = \"5s\" }\n",
                "`traffic.sessions.turns`: expected a whole number",
            ),
        ];
        for (text, want) in cases {
            let e = error(d, text);
            assert!(e.contains(want), "{text}\n  gave: {e}\n  want: {want}");
        }
    }

    #[test]
    fn bundled_traces_load() {
        let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        let t = read_in(
            &experiments,
            "[traffic]\ntrace = \"../models/traces/azure-llm-2023-conv.csv\"\nformat = \"requests\"\nsize_column = \"GeneratedTokens\"\nduration = \"2h\"\n",
        )
        .unwrap();
        let TrafficSource::Requests { times, sizes, length, .. } = &t.source else { panic!() };
        assert_eq!(times.len(), 19_366);
        assert_eq!(sizes.as_ref().unwrap().len(), 19_366);
        assert!((3_400.0..3_700.0).contains(length), "{length}");
        let arrivals: Vec<_> = t.arrivals(&Streams::new(1, 0)).collect();
        // Two hours of a trace of about 58 minutes: two whole cycles and a bit.
        let expected = 19_366.0 * 7200.0 / length;
        assert!((arrivals.len() as f64 - expected).abs() < 1000.0, "{} vs {expected}", arrivals.len());
        assert!(arrivals.windows(2).all(|w| w[0].at <= w[1].at));

        let t = read_in(&experiments, "[traffic]\ntrace = \"../models/traces/example-rates.csv\"\nduration = \"1h\"\n")
            .unwrap();
        let p = t.profile(&Streams::new(1, 0));
        assert!(p.mean_rate() > 0.0 && p.end() == SimTime::from_hours(1));
    }
}
