//! `nnc fuzz [TARGET]`: run the in-repository fuzzers (`crate::fuzz`) for
//! a count of inputs, a time, or until interrupted, printing inputs per
//! second and writing each failure as a minimised reproducer; `--replay`
//! checks saved reproducers.

use super::say;
use crate::fuzz::{self, Limits, Stop};
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct FuzzArgs {
    /// `sources`, `lsp`, `data`, or `all` (one after another, in rounds).
    #[arg(default_value = "all")]
    pub target: String,
    /// The campaign seed: input i of a seed is always the same input.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this many inputs per target.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds in all (default: run until interrupted).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Where reproducers of failures are written.
    #[arg(long, default_value = "fuzz-failures")]
    pub out: PathBuf,
    /// Seconds one input (an LSP session: dozens of edits) may take before
    /// it counts as a hang; raise it on a loaded machine or under `nice`.
    #[arg(long, default_value_t = 30.0)]
    pub time_limit: f64,
    /// MiB the process may grow by before an input counts as a runaway.
    #[arg(long, default_value_t = 2048)]
    pub memory_mib: u64,
    /// Check these saved reproducers instead of fuzzing.
    #[arg(long, num_args = 1..)]
    pub replay: Vec<PathBuf>,
    /// Worker processes, each its own campaign: job k uses seed `seed + k`
    /// (job 0 the same inputs as one process), and `--count` is split
    /// among them.
    #[arg(long, default_value_t = 1)]
    pub jobs: u64,
    /// Print each target's totals as one `nnc-fuzz-totals` line at the
    /// end (how the processes of `--jobs` report to the parent).
    #[arg(long, hide = true)]
    pub totals_line: bool,
}

/// The totals line a job prints: target, inputs, seconds, LSP edits, failures.
const TOTALS: &str = "nnc-fuzz-totals";

/// Inputs per round of one target before the next target's turn (and a
/// progress line).
const ROUND_SECONDS: f64 = 30.0;

pub fn fuzz(args: &FuzzArgs) -> i32 {
    if !args.replay.is_empty() {
        return replay(args);
    }
    if args.jobs > 1 {
        return jobs(args);
    }
    let targets: Vec<&str> = if args.target == "all" {
        fuzz::TARGETS.to_vec()
    } else if fuzz::target(&args.target).is_some() {
        vec![args.target.as_str()]
    } else {
        eprintln!(
            "error: unknown fuzz target `{}` (targets: {}, all)",
            args.target,
            fuzz::TARGETS.join(", ")
        );
        return 2;
    };
    let limits = Limits {
        time: Duration::from_secs_f64(args.time_limit),
        memory: args.memory_mib << 20,
    };
    let started = Instant::now();
    let mut totals = vec![(0u64, 0f64); targets.len()];
    let mut failures = 0;
    let mut round = 0u64;
    loop {
        for (t, name) in targets.iter().enumerate() {
            let left_count = args.count.map(|c| c.saturating_sub(totals[t].0));
            let left_secs = args.seconds.map(|s| s - started.elapsed().as_secs_f64());
            if left_count == Some(0) || left_secs.is_some_and(|s| s <= 0.0) {
                continue;
            }
            let stop = Stop {
                count: left_count,
                seconds: Some(left_secs.map_or(ROUND_SECONDS, |s| s.min(ROUND_SECONDS))),
            };
            // Each round continues the seed's stream where the last ended.
            let target = fuzz::target(name).expect("checked");
            let seed = args.seed.wrapping_add(round.wrapping_mul(0x9e37_79b9));
            let r = fuzz::campaign(target, seed, stop, limits, Some(&args.out));
            totals[t].0 += r.inputs;
            totals[t].1 += r.seconds;
            for f in &r.failures {
                failures += 1;
                eprintln!(
                    "{name}: {} (seed {seed}, input {}): {}{}",
                    f.kind,
                    f.index,
                    f.message,
                    f.path
                        .as_ref()
                        .map(|p| format!("\n  reproducer: {}", p.display()))
                        .unwrap_or_default()
                );
            }
            let extra = if *name == "lsp" {
                format!(", {} edits", fuzz::lsp::EDITS.load(std::sync::atomic::Ordering::Relaxed))
            } else {
                String::new()
            };
            say!(
                "{name}: {} inputs in {:.0} s ({:.0}/s){extra}, {failures} failures so far",
                totals[t].0,
                totals[t].1,
                totals[t].0 as f64 / totals[t].1.max(1e-9)
            );
            if r.failures.iter().any(|f| f.kind != "panic") {
                // A hung worker is still running: stop here.
                return 1;
            }
        }
        round += 1;
        let done = targets
            .iter()
            .enumerate()
            .all(|(t, _)| args.count.is_some_and(|c| totals[t].0 >= c))
            || args.seconds.is_some_and(|s| started.elapsed().as_secs_f64() >= s);
        if done {
            break;
        }
    }
    if args.totals_line {
        for (t, name) in targets.iter().enumerate() {
            let edits = if *name == "lsp" {
                fuzz::lsp::EDITS.load(std::sync::atomic::Ordering::Relaxed)
            } else {
                0
            };
            say!("{TOTALS} {name} {} {:.3} {edits} {failures}", totals[t].0, totals[t].1);
        }
    }
    i32::from(failures > 0)
}

/// `--jobs N`: N processes of this binary, each a campaign on its own
/// seed (separate processes, so a hang or a runaway allocation is charged
/// to the input that caused it); their progress lines are passed on with
/// the job's number, and their totals summed.
fn jobs(args: &FuzzArgs) -> i32 {
    use std::io::BufRead as _;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find this program to start jobs: {e}");
            return 2;
        }
    };
    let started = Instant::now();
    let mut children = vec![];
    for k in 0..args.jobs {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("fuzz")
            .arg(&args.target)
            .arg("--seed")
            .arg(args.seed.wrapping_add(k).to_string())
            .arg("--out")
            .arg(&args.out)
            .arg("--time-limit")
            .arg(args.time_limit.to_string())
            .arg("--memory-mib")
            .arg(args.memory_mib.to_string())
            .arg("--totals-line")
            .stdout(std::process::Stdio::piped());
        if let Some(c) = args.count {
            // The first `c % jobs` jobs take one more.
            cmd.arg("--count").arg((c / args.jobs + u64::from(k < c % args.jobs)).to_string());
        }
        if let Some(s) = args.seconds {
            cmd.arg("--seconds").arg(s.to_string());
        }
        match cmd.spawn() {
            Ok(child) => children.push(child),
            Err(e) => {
                eprintln!("error: cannot start job {k}: {e}");
                return 2;
            }
        }
    }
    // One reader per job, so no job blocks on a full pipe.
    let readers: Vec<_> = children
        .iter_mut()
        .enumerate()
        .map(|(k, child)| {
            let out = child.stdout.take().expect("piped");
            std::thread::spawn(move || {
                let mut totals = vec![];
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    match line.strip_prefix(TOTALS) {
                        Some(rest) => totals.push(rest.split_whitespace().map(str::to_string).collect::<Vec<_>>()),
                        None => say!("job {k}: {line}"),
                    }
                }
                totals
            })
        })
        .collect();
    let mut sums: Vec<(String, u64, f64, u64, u64)> = vec![];
    for r in readers {
        for t in r.join().unwrap_or_default() {
            let [name, inputs, secs, edits, fails] = &t[..] else { continue };
            let i = match sums.iter().position(|s| s.0 == *name) {
                Some(i) => i,
                None => {
                    sums.push((name.clone(), 0, 0.0, 0, 0));
                    sums.len() - 1
                }
            };
            sums[i].1 += inputs.parse::<u64>().unwrap_or(0);
            sums[i].2 += secs.parse::<f64>().unwrap_or(0.0);
            sums[i].3 += edits.parse::<u64>().unwrap_or(0);
            sums[i].4 += fails.parse::<u64>().unwrap_or(0);
        }
    }
    let mut status = 0;
    for mut c in children {
        let code = c.wait().ok().and_then(|s| s.code()).unwrap_or(1);
        status = status.max(code);
    }
    let wall = started.elapsed().as_secs_f64();
    for (name, inputs, _, edits, fails) in &sums {
        let extra = if name == "lsp" { format!(", {edits} edits") } else { String::new() };
        say!(
            "{name}: {inputs} inputs in {wall:.0} s over {} jobs ({:.0}/s){extra}, {fails} failures",
            args.jobs,
            *inputs as f64 / wall.max(1e-9)
        );
    }
    status
}

fn replay(args: &FuzzArgs) -> i32 {
    let mut status = 0;
    for path in &args.replay {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let name = fuzz::TARGETS.iter().find(|t| file.starts_with(&format!("{t}-"))).copied();
        let name = if args.target != "all" { Some(args.target.as_str()) } else { name };
        let Some(target) = name.and_then(fuzz::target) else {
            eprintln!("error: {}: name the target (`nnc fuzz sources --replay FILE`)", path.display());
            status = 2;
            continue;
        };
        let input = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                status = 2;
                continue;
            }
        };
        match fuzz::replay(target, &input) {
            Ok(()) => say!("{}: ok", path.display()),
            Err(m) => {
                say!("{}: fails: {m}", path.display());
                status = 1;
            }
        }
    }
    status
}
