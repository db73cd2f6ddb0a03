//! Fixed-seed slices of the in-repository fuzzers (`nnc::fuzz`): the same
//! inputs on every run, so a failure here is reproducible with
//! `nnc fuzz TARGET --seed SEED --count N`. CI runs the release build
//! (tens of thousands of inputs, well under two minutes); a debug build
//! runs a tenth of them.

use nnc::fuzz::{self, Limits, Stop};
use std::time::Duration;

/// Inputs in the release build; a debug build is ~20x slower.
fn count(release: u64) -> u64 {
    if cfg!(debug_assertions) {
        release / 10
    } else {
        release
    }
}

fn run(target: &str, seed: u64, n: u64) {
    let t = fuzz::target(target).expect("a target");
    let limits = Limits {
        time: Duration::from_secs(if cfg!(debug_assertions) { 60 } else { 20 }),
        // Other tests run in this process at the same time.
        memory: 3 << 30,
    };
    let out = std::env::temp_dir().join(format!("nnc-fuzz-ci-{}", std::process::id()));
    let r = fuzz::campaign(
        t,
        seed,
        Stop {
            count: Some(n),
            seconds: None,
        },
        limits,
        Some(&out),
    );
    eprintln!("fuzz {target}: {} inputs in {:.1} s ({:.0}/s)", r.inputs, r.seconds, r.per_second());
    assert!(
        r.failures.is_empty(),
        "{} of {} {target} inputs failed (seed {seed}); first, input {}: {} {}\n{}",
        r.failures.len(),
        r.inputs,
        r.failures[0].index,
        r.failures[0].kind,
        r.failures[0].message,
        String::from_utf8_lossy(&r.failures[0].input)
    );
    assert_eq!(r.inputs, n);
}

#[test]
fn fuzz_sources_fixed_seed() {
    run("sources", 11, count(10_000));
}

#[test]
fn fuzz_lsp_fixed_seed() {
    run("lsp", 12, count(300));
}

#[test]
fn fuzz_data_fixed_seed() {
    run("data", 13, count(20_000));
}

/// The fuzzer itself: it catches a panic, minimises it and writes a
/// reproducer that replays to the same failure.
#[test]
fn the_fuzz_runner_catches_and_minimises_a_panic() {
    struct Planted;
    impl fuzz::Target for Planted {
        fn name(&self) -> &'static str {
            "planted"
        }
        fn extension(&self, _: &[u8]) -> &'static str {
            "txt"
        }
        fn generate(&self, rng: &mut fuzz::rng::Rng, _: u64) -> Vec<u8> {
            let mut v: Vec<u8> = (0..200).map(|_| b'a' + rng.below(26) as u8).collect();
            if rng.one_in(4) {
                v.splice(100..100, b"BUG".iter().copied());
            }
            v
        }
        fn check(&self, input: &[u8]) {
            assert!(!input.windows(3).any(|w| w == b"BUG"), "planted bug");
        }
    }
    static PLANTED: Planted = Planted;
    let out = std::env::temp_dir().join(format!("nnc-fuzz-planted-{}", std::process::id()));
    let r = fuzz::campaign(
        &PLANTED,
        1,
        Stop {
            count: Some(40),
            seconds: None,
        },
        Limits {
            time: Duration::from_secs(20),
            memory: 3 << 30,
        },
        Some(&out),
    );
    assert!(!r.failures.is_empty() && r.failures.len() < 40, "{}", r.failures.len());
    for f in &r.failures {
        assert_eq!(f.kind, "panic");
        assert_eq!(f.input, b"BUG", "not minimised: {:?}", String::from_utf8_lossy(&f.input));
        let path = f.path.as_ref().expect("a reproducer");
        let saved = std::fs::read(path).unwrap();
        assert!(fuzz::replay(&PLANTED, &saved).unwrap_err().contains("planted bug"));
    }
}

/// An input that takes longer than the time limit is reported as a hang
/// with its input, and the campaign ends.
#[test]
fn the_fuzz_runner_reports_a_hang() {
    struct Slow;
    impl fuzz::Target for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn extension(&self, _: &[u8]) -> &'static str {
            "txt"
        }
        fn generate(&self, _: &mut fuzz::rng::Rng, index: u64) -> Vec<u8> {
            format!("input {index}").into_bytes()
        }
        fn check(&self, input: &[u8]) {
            if input == b"input 2" {
                // Finite, so the detached worker ends soon after.
                std::thread::sleep(Duration::from_secs(3));
            }
        }
    }
    static SLOW: Slow = Slow;
    let r = fuzz::campaign(
        &SLOW,
        1,
        Stop {
            count: Some(5),
            seconds: None,
        },
        Limits {
            time: Duration::from_millis(500),
            memory: 3 << 30,
        },
        None,
    );
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert_eq!((r.failures[0].kind, r.failures[0].index), ("hang", 2));
    assert_eq!(r.failures[0].input, b"input 2");
}

/// Compilations share the parsed stdlib and (per thread) its scope; what
/// a file's diagnostics are must not depend on what was compiled before
/// it: every corpus file gives the same rendered diagnostics on a fresh
/// thread as after all the others, in reverse order, on one thread.
#[test]
fn shared_stdlib_never_changes_diagnostics() {
    let corpus = nnc::fuzz::sources::corpus();
    let render = |text: &str| -> Vec<String> {
        let c = nnc::driver::compile("corpus.nn", text);
        c.diagnostics().iter().map(|d| nnc::diag::render_plain(d, &c.db)).collect()
    };
    let warm: Vec<Vec<String>> = std::thread::scope(|t| {
        t.spawn(|| {
            let mut v: Vec<_> = corpus.iter().rev().map(|text| render(text)).collect();
            v.reverse();
            v
        })
        .join()
        .unwrap()
    });
    let mut diagnosed = 0;
    for (text, want) in corpus.iter().zip(&warm) {
        let cold = std::thread::scope(|t| t.spawn(|| render(text)).join().unwrap());
        assert_eq!(&cold, want, "{text}");
        diagnosed += usize::from(!want.is_empty());
    }
    assert!(diagnosed > 50, "only {diagnosed} corpus files have diagnostics");
}
