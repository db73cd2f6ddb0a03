//! Runs a fuzz target's inputs one after another on a worker thread, each
//! under a panic catcher, while the calling thread watches the clock and
//! the process's memory.
//!
//! A panic is caught, minimised (the smallest input that still panics with
//! the same message) and reported; the campaign goes on. A hang or a
//! runaway allocation cannot be interrupted inside the process (Rust has no
//! safe thread cancellation), so the watchdog writes the input that caused
//! it and ends the campaign: a hang leaves the worker detached (it dies
//! with the process); memory past the budget exits the process at once,
//! before the machine runs out.

use super::rng::Rng;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One kind of input and the property every input must have.
pub trait Target: Sync {
    fn name(&self) -> &'static str;
    /// The file extension of a reproducer (`nn`, `lsp`, `csv`...).
    fn extension(&self, input: &[u8]) -> &'static str;
    fn generate(&self, rng: &mut Rng, index: u64) -> Vec<u8>;
    /// Panics when the input shows a bug (a panic inside nnc, or a broken
    /// property such as an unanswered request).
    fn check(&self, input: &[u8]);
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time for one input.
    pub time: Duration,
    /// Growth of the process's resident memory over the campaign's start.
    pub memory: u64,
}

/// When to stop: after `count` inputs or `seconds`, whichever comes first.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stop {
    pub count: Option<u64>,
    pub seconds: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct Failure {
    /// `panic`, `hang` or `memory`.
    pub kind: &'static str,
    pub message: String,
    /// The campaign index that produced it (regenerate with the seed).
    pub index: u64,
    /// The input, minimised for panics.
    pub input: Vec<u8>,
    /// Where the reproducer was written.
    pub path: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Report {
    pub target: &'static str,
    pub inputs: u64,
    pub seconds: f64,
    pub failures: Vec<Failure>,
}

impl Report {
    pub fn per_second(&self) -> f64 {
        self.inputs as f64 / self.seconds.max(1e-9)
    }
}

/// Names of the threads whose panics the hook captures instead of printing.
pub const THREAD_PREFIX: &str = "nnc-fuzz";

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics seen on fuzz threads other than the worker (the language
/// server's thread catches its own panics; the LSP target reads this).
static OTHER_PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Install (once) a panic hook that records panics on fuzz threads quietly
/// and leaves every other thread's panics to the previous hook.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if !name.starts_with(THREAD_PREFIX) {
                return previous(info);
            }
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let text = format!("{msg}{at}");
            if name == WORKER {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else if let Ok(mut v) = OTHER_PANICS.lock() {
                v.push((name.to_string(), text));
            }
        }));
    });
}

/// Panics recorded on the fuzz thread named `thread`, removed from the log.
pub fn take_panics_of(thread: &str) -> Vec<String> {
    let Ok(mut v) = OTHER_PANICS.lock() else { return vec![] };
    let (mine, rest): (Vec<_>, Vec<_>) = v.drain(..).partition(|(n, _)| n == thread);
    *v = rest;
    mine.into_iter().map(|(_, m)| m).collect()
}

const WORKER: &str = "nnc-fuzz-worker";

/// Resident memory of this process in bytes (0 where /proc is missing).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// The input being checked: its bytes, campaign index, start time.
type Current = Option<(Arc<Vec<u8>>, u64, Instant)>;

/// What the watchdog sees of the worker.
struct Shared {
    current: Mutex<Current>,
    done: AtomicBool,
    inputs: AtomicU64,
    failures: Mutex<Vec<Failure>>,
}

/// Check one input: `Err(message)` when it panics.
fn check_one(target: &dyn Target, shared: &Shared, input: &Arc<Vec<u8>>, index: u64) -> Result<(), String> {
    if let Ok(mut c) = shared.current.lock() {
        *c = Some((input.clone(), index, Instant::now()));
    }
    let r = catch_unwind(AssertUnwindSafe(|| target.check(input)));
    if let Ok(mut c) = shared.current.lock() {
        *c = None;
    }
    r.map_err(|_| LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "panic".into()))
}

/// The first line of a panic message with the location: what must stay
/// the same while minimising (line numbers of the input may change).
fn signature(msg: &str) -> String {
    let at = msg.rfind(" at ").map_or("", |i| &msg[i..]);
    let first = msg.lines().next().unwrap_or("");
    let head: String = first.chars().take(60).collect();
    format!("{head}…{at}")
}

/// Delta debugging over lines, then bytes: remove chunks while the input
/// still panics with the same signature. Bounded in attempts.
fn minimise(target: &dyn Target, shared: &Shared, input: &[u8], index: u64, msg: &str) -> Vec<u8> {
    let want = signature(msg);
    let mut best = input.to_vec();
    let mut attempts = 0;
    let still_fails = |cand: &[u8], attempts: &mut usize| -> bool {
        *attempts += 1;
        let cand = Arc::new(cand.to_vec());
        matches!(check_one(target, shared, &cand, index), Err(m) if signature(&m) == want)
    };
    for unit_is_line in [true, false] {
        let mut chunk = (best.len() / 2).max(1);
        while chunk >= 1 && attempts < 3000 {
            let units: Vec<(usize, usize)> = if unit_is_line {
                let mut v = vec![];
                let mut s = 0;
                for (i, &b) in best.iter().enumerate() {
                    if b == b'\n' {
                        v.push((s, i + 1));
                        s = i + 1;
                    }
                }
                if s < best.len() {
                    v.push((s, best.len()));
                }
                v
            } else {
                (0..best.len()).map(|i| (i, i + 1)).collect()
            };
            let per = chunk.min(units.len().max(1));
            let mut removed = false;
            let mut i = 0;
            while i < units.len() && attempts < 3000 {
                let j = (i + per).min(units.len());
                let (a, b) = (units[i].0, units[j - 1].1);
                let mut cand = best[..a].to_vec();
                cand.extend_from_slice(&best[b..]);
                if still_fails(&cand, &mut attempts) {
                    best = cand;
                    removed = true;
                    break;
                }
                i = j;
            }
            if !removed {
                if chunk == 1 {
                    break;
                }
                chunk /= 2;
            }
        }
    }
    best
}

fn write_reproducer(dir: &Path, target: &dyn Target, f: &Failure) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    // Named by content, so the same failure found twice is one file.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&f.input, &mut h);
    let path = dir.join(format!(
        "{}-{}-{:016x}.{}",
        target.name(),
        f.kind,
        std::hash::Hasher::finish(&h),
        target.extension(&f.input)
    ));
    crate::runtime::checkpoint::write_atomic(&path, &f.input).ok()?;
    let mut why = path.clone().into_os_string();
    why.push(".message");
    let _ = crate::runtime::checkpoint::write_atomic(Path::new(&why), format!("{}: {}\n", f.kind, f.message).as_bytes());
    Some(path)
}

/// Run `target` on inputs `0..` from `seed` until `stop`, writing each
/// failure's reproducer under `out` when given.
pub fn campaign(target: &'static dyn Target, seed: u64, stop: Stop, limits: Limits, out: Option<&Path>) -> Report {
    install_panic_hook();
    let shared = Arc::new(Shared {
        current: Mutex::new(None),
        done: AtomicBool::new(false),
        inputs: AtomicU64::new(0),
        failures: Mutex::new(vec![]),
    });
    let started = Instant::now();
    let deadline = stop.seconds.map(|s| started + Duration::from_secs_f64(s));
    let worker = {
        let shared = shared.clone();
        let out = out.map(Path::to_path_buf);
        std::thread::Builder::new()
            .name(WORKER.into())
            .stack_size(crate::lsp::STACK_SIZE)
            .spawn(move || {
                let mut index = 0u64;
                while stop.count.is_none_or(|c| index < c) && deadline.is_none_or(|d| Instant::now() < d) {
                    let mut rng = Rng::fork(seed, index);
                    let input = Arc::new(target.generate(&mut rng, index));
                    if let Err(msg) = check_one(target, &shared, &input, index) {
                        let small = minimise(target, &shared, &input, index, &msg);
                        let mut f = Failure {
                            kind: "panic",
                            message: msg,
                            index,
                            input: small,
                            path: None,
                        };
                        if let Some(dir) = &out {
                            f.path = write_reproducer(dir, target, &f);
                        }
                        if let Ok(mut v) = shared.failures.lock() {
                            v.push(f);
                        }
                    }
                    index += 1;
                    shared.inputs.store(index, Ordering::Relaxed);
                }
                shared.done.store(true, Ordering::Release);
            })
            .expect("spawn the fuzz worker")
    };
    let baseline = resident_bytes();
    let mut stuck: Option<Failure> = None;
    while !shared.done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
        let over = resident_bytes().saturating_sub(baseline);
        let cur = shared.current.lock().ok().and_then(|c| c.clone());
        let Some((input, index, since)) = cur else { continue };
        let kind = if over > limits.memory {
            "memory"
        } else if since.elapsed() > limits.time {
            "hang"
        } else {
            continue;
        };
        let message = match kind {
            "memory" => format!("resident memory grew by {} MiB (limit {} MiB)", over >> 20, limits.memory >> 20),
            _ => format!(
                "no result after {:.1} s (limit {:.1} s)",
                since.elapsed().as_secs_f64(),
                limits.time.as_secs_f64()
            ),
        };
        let mut f = Failure {
            kind,
            message,
            index,
            input: input.to_vec(),
            path: None,
        };
        if let Some(dir) = out {
            f.path = write_reproducer(dir, target, &f);
        }
        if kind == "memory" {
            eprintln!(
                "nnc fuzz {}: input {index}: {} — exiting before the machine runs out{}",
                target.name(),
                f.message,
                f.path
                    .as_ref()
                    .map(|p| format!("; reproducer: {}", p.display()))
                    .unwrap_or_default()
            );
            eprintln!("{}", String::from_utf8_lossy(&f.input));
            std::process::exit(3);
        }
        stuck = Some(f);
        break;
    }
    let mut failures = shared.failures.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
    match stuck {
        Some(f) => failures.push(f), // The worker is left running detached.
        None => {
            let _ = worker.join();
        }
    }
    Report {
        target: target.name(),
        inputs: shared.inputs.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        failures,
    }
}

/// Check one saved reproducer: `Err` with the panic message if it fails.
pub fn replay(target: &'static dyn Target, input: &[u8]) -> Result<(), String> {
    install_panic_hook();
    let input = input.to_vec();
    let handle = std::thread::Builder::new()
        .name(WORKER.into())
        .stack_size(crate::lsp::STACK_SIZE)
        .spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(|| target.check(&input)));
            r.map_err(|_| LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "panic".into()))
        })
        .map_err(|e| e.to_string())?;
    handle.join().unwrap_or_else(|_| Err("the replay thread died".into()))
}
