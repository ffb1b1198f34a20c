//! A seeded synthetic interaction generator: the built-in default data set, and what
//! benchmarks and scale tests use.
//!
//! Each user and item gets a latent vector; item popularity follows a power law (Zipf). An
//! interaction is drawn by taking `candidates` items from the popularity distribution and keeping
//! the one the user likes best (latent affinity plus Gumbel noise), so that both popularity and
//! personal taste carry signal. With probability `sequential`, the next item is instead the
//! "successor" of the user's previous item (each item has one fixed successor), which gives
//! sequence models something to learn. Timestamps increase along each user's history; ratings
//! (1–5) follow the affinity.

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use crate::{DataError, Interactions, Result};

/// Parameters of the synthetic data set (the `[data.synthetic]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Number of users.
    pub users: usize,
    /// Number of items.
    pub items: usize,
    /// Mean interactions per user (each user gets between half and 1.5× this).
    pub interactions_per_user: usize,
    /// Latent dimension of the true preferences.
    pub factors: usize,
    /// Zipf exponent of item popularity (0 = uniform).
    pub popularity_exponent: f64,
    /// Popularity draws per interaction among which taste picks (more = taste matters more).
    pub candidates: usize,
    /// Standard deviation of the user–item affinity against unit Gumbel noise (how strongly
    /// taste decides among the candidates).
    pub taste: f32,
    /// Probability that the next item is the previous item's successor.
    pub sequential: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            users: 2000,
            items: 1000,
            interactions_per_user: 40,
            factors: 8,
            popularity_exponent: 0.8,
            candidates: 32,
            taste: 3.0,
            sequential: 0.2,
            seed: 42,
        }
    }
}

impl SyntheticConfig {
    /// Generates the interactions. External ids are 1-based, as in most public data sets.
    pub fn generate(&self) -> Result<Interactions> {
        if self.users == 0
            || self.items < 2
            || self.interactions_per_user == 0
            || self.candidates == 0
        {
            return Err(DataError::Invalid(
                "synthetic data needs users >= 1, items >= 2, interactions_per_user >= 1 and candidates >= 1".into(),
            ));
        }
        if !(0.0..=5.0).contains(&self.popularity_exponent)
            || !(0.0..=1.0).contains(&self.sequential)
        {
            return Err(DataError::Invalid(
                "synthetic data needs popularity_exponent in [0, 5] and sequential in [0, 1]"
                    .into(),
            ));
        }
        if self.interactions_per_user * 3 / 2 >= self.items {
            return Err(DataError::Invalid(format!(
                "synthetic data: interactions_per_user ({}) must stay below two thirds of items ({})",
                self.interactions_per_user, self.items
            )));
        }
        let mut rng = SmallRng::seed_from_u64(self.seed);
        let d = self.factors.max(1);
        let normal = Normal::new(0.0f32, 1.0 / (d as f32).sqrt()).expect("valid normal");
        let item_vecs: Vec<f32> = (0..self.items * d)
            .map(|_| normal.sample(&mut rng))
            .collect();
        // Popularity: Zipf over a random permutation of the items.
        let mut rank: Vec<usize> = (0..self.items).collect();
        rand::seq::SliceRandom::shuffle(rank.as_mut_slice(), &mut rng);
        let mut cumulative = Vec::with_capacity(self.items);
        let mut total = 0.0;
        for &r in &rank {
            total += 1.0 / ((r + 1) as f64).powf(self.popularity_exponent);
            cumulative.push(total);
        }
        let successor: Vec<usize> = (0..self.items)
            .map(|_| rng.random_range(0..self.items))
            .collect();

        let mut out = Interactions {
            ratings: Some(Vec::new()),
            timestamps: Some(Vec::new()),
            ..Default::default()
        };
        let mut user_vec = vec![0.0f32; d];
        let mut time = 0i64;
        for user in 0..self.users {
            // Item vectors have variance 1/d, so the affinity has standard deviation `taste`.
            user_vec
                .iter_mut()
                .for_each(|x| *x = normal.sample(&mut rng) * (d as f32).sqrt() * self.taste);
            let low = (self.interactions_per_user / 2).max(1);
            let high = self.interactions_per_user * 3 / 2;
            let n = rng.random_range(low..=high.max(low));
            let mut seen = HashSet::with_capacity(n);
            let mut previous: Option<usize> = None;
            while seen.len() < n {
                let follow = previous
                    .map(|p| successor[p])
                    .filter(|s| !seen.contains(s) && rng.random::<f64>() < self.sequential);
                let item = match follow {
                    Some(s) => s,
                    None => {
                        let mut best = (f32::NEG_INFINITY, 0usize);
                        for _ in 0..self.candidates {
                            let x = rng.random::<f64>() * total;
                            let i = cumulative.partition_point(|&c| c <= x).min(self.items - 1);
                            let gumbel = -(-(rng.random::<f32>().max(1e-12)).ln()).ln();
                            let value =
                                affinity(&user_vec, &item_vecs[i * d..(i + 1) * d]) + gumbel;
                            if value > best.0 && !seen.contains(&i) {
                                best = (value, i);
                            }
                        }
                        if best.0 == f32::NEG_INFINITY {
                            // Every popularity draw was already seen (the user has taken most
                            // of the popular items): take an unseen item uniformly instead.
                            loop {
                                let i = rng.random_range(0..self.items);
                                if !seen.contains(&i) {
                                    break i;
                                }
                            }
                        } else {
                            best.1
                        }
                    }
                };
                seen.insert(item);
                previous = Some(item);
                time += 1;
                let a = affinity(&user_vec, &item_vecs[item * d..(item + 1) * d]);
                out.users.push(user as i64 + 1);
                out.items.push(item as i64 + 1);
                out.ratings.as_mut().expect("set").push(
                    (3.0 + 2.0 * (a / self.taste.max(1e-6)).tanh())
                        .round()
                        .clamp(1.0, 5.0),
                );
                out.timestamps.as_mut().expect("set").push(time);
            }
        }
        Ok(out)
    }
}

fn affinity(user: &[f32], item: &[f32]) -> f32 {
    user.iter().zip(item).map(|(a, b)| a * b).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_shaped() {
        let cfg = SyntheticConfig {
            users: 50,
            items: 100,
            interactions_per_user: 10,
            ..Default::default()
        };
        let a = cfg.generate().unwrap();
        assert_eq!(a, cfg.generate().unwrap());
        assert!(a.len() >= 50 * 5 && a.len() <= 50 * 15);
        assert!(a.items.iter().all(|&i| (1..=100).contains(&i)));
        let b = SyntheticConfig { seed: 1, ..cfg }.generate().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn popularity_is_skewed() {
        let cfg = SyntheticConfig {
            users: 300,
            items: 200,
            interactions_per_user: 20,
            ..Default::default()
        };
        let data = cfg.generate().unwrap();
        let mut counts = vec![0usize; 201];
        for &i in &data.items {
            counts[i as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top_tenth: usize = counts[..20].iter().sum();
        // Far above the 10% a uniform catalogue would give.
        assert!(
            top_tenth as f64 > 0.25 * data.len() as f64,
            "top 10% items hold {top_tenth} of {}",
            data.len()
        );
    }
}
