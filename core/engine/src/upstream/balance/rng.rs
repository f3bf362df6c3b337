//! The balancers' pseudo-random numbers: wyrand, one generator per balancer.
//!
//! Where it sits: inside the Balance stage (after routing, before the pool), feeding the random
//! and least_request picks, ring hash's keyless fallback and round robin's starting offset. It
//! needs speed and spread, not secrecy: nothing here is cryptographic. Each balancer gets its
//! own seed so that workers do not make the same choices in lockstep.
//!
//! Config read: none. Metrics: none. Errors: none.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// wyrand (Wang Yi): a 64-bit state stepped by a constant and mixed by a 128-bit multiply.
/// Passes BigCrush and PractRand; one multiply per number.
#[derive(Debug)]
pub(super) struct Rng {
    state: Cell<u64>,
}

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng {
            state: Cell::new(seed),
        }
    }

    pub(super) fn next_u64(&self) -> u64 {
        let s = self.state.get().wrapping_add(0xa076_1d64_78bd_642f);
        self.state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t as u64) ^ ((t >> 64) as u64)
    }

    /// A number in `0..n` (Lemire's multiply-shift; the bias is below n / 2^64). 0 when n is 0.
    pub(super) fn below(&self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// A fresh seed for a new balancer: a per-thread sequence started from entropy.
pub(super) fn seed() -> u64 {
    thread_local! {
        static NEXT: Cell<u64> = Cell::new(entropy());
    }
    NEXT.try_with(|next| {
        let s = next.get().wrapping_add(GOLDEN_GAMMA);
        next.set(s);
        splitmix64(s)
    })
    // Only during thread teardown: take fresh entropy instead.
    .unwrap_or_else(|_| splitmix64(entropy()))
}

/// Mixes what differs between threads, processes and runs: the standard library's randomly
/// keyed hasher (seeded from the OS), the clock, and the address of a stack variable.
fn entropy() -> u64 {
    let keyed = RandomState::new().build_hasher().finish();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    let stack = std::ptr::addr_of!(local) as usize as u64;
    splitmix64(keyed ^ splitmix64(nanos ^ splitmix64(stack)))
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finalizer: a bijection that spreads every input bit over the output.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_different_seed_different_sequence() {
        let (a, b, c) = (Rng::new(1), Rng::new(1), Rng::new(2));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let rng = Rng::new(3);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let x = rng.below(7);
            assert!(x < 7);
            seen[x as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn seeds_differ_between_balancers_and_threads() {
        let here = (seed(), seed());
        let there = std::thread::spawn(seed).join().unwrap();
        assert_ne!(here.0, here.1);
        assert_ne!(here.0, there);
        assert_ne!(here.1, there);
    }
}
