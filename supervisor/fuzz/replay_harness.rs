// The stable replay harness of every keel fuzz crate (supervisor/fuzz, netcfg/fuzz,
// sshkeys/fuzz, init/fuzz): each crate's tests/replay.rs names its `TARGETS` and
// `include!`s this file, so the harness is written once. `CARGO_MANIFEST_DIR` is the
// including crate's: seeds, corpus and artifacts are its own.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `f` on `data`; on a panic, saves the input and says where.
fn run_one(target: &str, f: fn(&[u8]), data: &[u8], what: &str) {
    if panic::catch_unwind(|| f(data)).is_err() {
        let dir = root().join("artifacts").join(target);
        let _ = fs::create_dir_all(&dir);
        let file = dir.join(format!("stable-crash-{}", hash(data)));
        let saved = fs::write(&file, data).is_ok();
        panic!(
            "target {target} failed on {what}; input {}",
            if saved {
                file.display().to_string()
            } else {
                format!("{data:?}")
            }
        );
    }
}

fn hash(data: &[u8]) -> String {
    // FNV-1a: a stable name for a saved input.
    let h = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

#[test]
fn every_target_has_seeds() {
    for (name, _) in TARGETS {
        let seeds = inputs(&root().join("seeds").join(name));
        assert!(
            seeds.len() >= 3,
            "seeds/{name} has {} inputs; add some",
            seeds.len()
        );
    }
}

#[test]
fn seeds_and_corpus_replay_clean() {
    for (name, f) in TARGETS {
        for dir in ["seeds", "corpus"] {
            for file in inputs(&root().join(dir).join(name)) {
                let Ok(data) = fs::read(&file) else { continue };
                run_one(name, *f, &data, &file.display().to_string());
            }
        }
    }
}

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Interesting bytes for the text formats: separators, escapes, quotes, brackets.
const SPICE: &[u8] = b"\n\t\\\"'[]{}=,.#:- 0123456789abcdefnrtux/\r\xff\xc3";

fn mutate(rng: &mut Rng, seed: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(d.len() + 1);
        match rng.below(7) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = rng.next() as u8;
            }
            1 if !d.is_empty() => {
                let end = (at + rng.below(16)).min(d.len());
                d.drain(at.min(end)..end);
            }
            2 => d.insert(at, SPICE[rng.below(SPICE.len())]),
            3 if !d.is_empty() => {
                // Duplicate a slice (repeated tables, keys, lines).
                let s = rng.below(d.len());
                let e = (s + rng.below(64)).min(d.len());
                let chunk = d[s..e].to_vec();
                d.splice(at..at, chunk);
            }
            4 if !pool.is_empty() => {
                // Splice in part of another seed.
                let other = &pool[rng.below(pool.len())];
                let s = rng.below(other.len());
                let e = (s + rng.below(128)).min(other.len());
                d.splice(at..at, other[s..e].iter().copied());
            }
            5 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = d[i].wrapping_add(rng.below(3) as u8).wrapping_sub(1);
            }
            _ => d.truncate(at),
        }
    }
    d
}

#[test]
fn bounded_random_mutation_finds_nothing() {
    let iters: usize = std::env::var("FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6b65_656c);
    for (t, (name, f)) in TARGETS.iter().enumerate() {
        let pool: Vec<Vec<u8>> = inputs(&root().join("seeds").join(name))
            .iter()
            .filter_map(|p| fs::read(p).ok())
            .collect();
        let mut rng = Rng(seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        for i in 0..iters {
            let data = if pool.is_empty() || rng.below(10) == 0 {
                (0..rng.below(256)).map(|_| rng.next() as u8).collect()
            } else {
                let pick = rng.below(pool.len());
                mutate(&mut rng, &pool[pick], &pool)
            };
            run_one(name, *f, &data, &format!("mutation {i} (FUZZ_SEED={seed})"));
        }
    }
}
