//! The numeric toolkit customer segments ([`crate::segments`]) are made with, on points given
//! as rows of f64, deterministic for a seed:
//!
//! - [`standardise`]: each dimension centred on its mean and divided by its standard deviation
//!   over the points (population, `1/n`; a constant dimension is only centred), so that no
//!   dimension weighs by its scale alone.
//! - [`kmeans`]: Lloyd's iterations until no point moves (at most `max_iterations`) from
//!   k-means++ seeding (Arthur & Vassilvitskii, SODA 2007: each next centre drawn with
//!   probability proportional to the squared distance to the nearest centre so far), with
//!   `restarts` seeded restarts, keeping the lowest within-segment sum of squares. A segment
//!   left empty takes the point farthest from its centre.
//! - [`silhouette`]: the mean silhouette (Rousseeuw 1987: `s(i) = (b − a) / max(a, b)`, `a` the
//!   mean distance to the point's own segment, `b` to the nearest other segment; 0 for a point
//!   alone in a segment), exact up to `sample` points, above that on a seeded sample of that
//!   many (distances within the sample).
//! - [`pca2`]: the points projected on the covariance matrix's two leading eigenvectors (cyclic
//!   Jacobi rotations, exact for a symmetric matrix), each with the sign that makes its largest
//!   component positive, so a map does not flip between runs.

use crate::rng::Rng;

/// The means and standard deviations features were standardised with.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    /// Per dimension.
    pub means: Vec<f64>,
    /// Per dimension (0 for a constant one, which is only centred).
    pub deviations: Vec<f64>,
}

/// Standardises `points` in place (see the module docs).
pub fn standardise(points: &mut [Vec<f64>]) -> Scaling {
    let d = points.first().map_or(0, Vec::len);
    let n = points.len().max(1) as f64;
    let mut means = vec![0.0; d];
    for p in points.iter() {
        means.iter_mut().zip(p).for_each(|(m, x)| *m += x / n);
    }
    let mut deviations = vec![0.0; d];
    for p in points.iter() {
        deviations
            .iter_mut()
            .zip(p.iter().zip(&means))
            .for_each(|(s, (x, m))| *s += (x - m) * (x - m) / n);
    }
    deviations.iter_mut().for_each(|s| *s = s.sqrt());
    for p in points.iter_mut() {
        for ((x, m), s) in p.iter_mut().zip(&means).zip(&deviations) {
            *x = if *s > 0.0 { (*x - m) / s } else { *x - m };
        }
    }
    Scaling { means, deviations }
}

/// The squared Euclidean distance of `a` and `b`.
pub(crate) fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// A k-means solution.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// The segments' centres.
    pub centroids: Vec<Vec<f64>>,
    /// Each point's segment.
    pub labels: Vec<usize>,
    /// The within-segment sum of squared distances.
    pub inertia: f64,
}

/// The nearest centre of `p`, and the squared distance to it.
fn nearest(p: &[f64], centroids: &[Vec<f64>]) -> (usize, f64) {
    centroids
        .iter()
        .enumerate()
        .map(|(c, centre)| (c, squared_distance(p, centre)))
        .fold(
            (0, f64::INFINITY),
            |best, x| if x.1 < best.1 { x } else { best },
        )
}

/// k-means++ seeding.
fn seed_centroids(points: &[Vec<f64>], k: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
    let mut centroids = vec![points[rng.below(points.len())].clone()];
    let mut distances: Vec<f64> = points
        .iter()
        .map(|p| squared_distance(p, &centroids[0]))
        .collect();
    while centroids.len() < k {
        let total: f64 = distances.iter().sum();
        let next = if total > 0.0 {
            let mut target = rng.uniform() * total;
            let mut chosen = points.len() - 1;
            for (i, d) in distances.iter().enumerate() {
                if target < *d {
                    chosen = i;
                    break;
                }
                target -= d;
            }
            chosen
        } else {
            rng.below(points.len())
        };
        centroids.push(points[next].clone());
        for (d, p) in distances.iter_mut().zip(points) {
            *d = d.min(squared_distance(p, &centroids[centroids.len() - 1]));
        }
    }
    centroids
}

/// One k-means run from `centroids`.
fn lloyd(points: &[Vec<f64>], mut centroids: Vec<Vec<f64>>, max_iterations: usize) -> KMeans {
    let (k, d) = (centroids.len(), points[0].len());
    let mut labels = vec![usize::MAX; points.len()];
    for _ in 0..max_iterations.max(1) {
        let mut moved = false;
        for (label, p) in labels.iter_mut().zip(points) {
            let (c, _) = nearest(p, &centroids);
            moved |= *label != c;
            *label = c;
        }
        if !moved {
            break;
        }
        let mut sums = vec![vec![0.0; d]; k];
        let mut counts = vec![0usize; k];
        for (&label, p) in labels.iter().zip(points) {
            counts[label] += 1;
            sums[label].iter_mut().zip(p).for_each(|(s, x)| *s += x);
        }
        for c in 0..k {
            if counts[c] > 0 {
                centroids[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            } else {
                // An empty segment takes the point farthest from its centre.
                let far = (0..points.len())
                    .max_by(|&a, &b| {
                        let da = squared_distance(&points[a], &centroids[labels[a]]);
                        let db = squared_distance(&points[b], &centroids[labels[b]]);
                        da.total_cmp(&db).then(b.cmp(&a))
                    })
                    .expect("points");
                centroids[c] = points[far].clone();
                labels[far] = c;
            }
        }
    }
    for (label, p) in labels.iter_mut().zip(points) {
        *label = nearest(p, &centroids).0;
    }
    let inertia = labels
        .iter()
        .zip(points)
        .map(|(&l, p)| squared_distance(p, &centroids[l]))
        .sum();
    KMeans {
        centroids,
        labels,
        inertia,
    }
}

/// k-means with k-means++ seeding and `restarts` seeded restarts (the lowest inertia wins).
/// `points` must hold at least `k` points, all of one dimension.
pub fn kmeans(
    points: &[Vec<f64>],
    k: usize,
    restarts: usize,
    max_iterations: usize,
    seed: u64,
) -> KMeans {
    assert!(k >= 1 && points.len() >= k, "at least k points");
    let mut rng = Rng::new(seed);
    (0..restarts.max(1))
        .map(|_| lloyd(points, seed_centroids(points, k, &mut rng), max_iterations))
        .min_by(|a, b| a.inertia.total_cmp(&b.inertia))
        .expect("one restart at least")
}

/// The mean silhouette of `labels` (segments `0..k`) over `points`: exact up to `sample`
/// points, else over a seeded sample of `sample` of them.
pub fn silhouette(
    points: &[Vec<f64>],
    labels: &[usize],
    k: usize,
    sample: usize,
    seed: u64,
) -> f64 {
    let chosen: Vec<usize> = if points.len() <= sample {
        (0..points.len()).collect()
    } else {
        Rng::new(seed).sample(points.len(), sample)
    };
    let mut total = 0.0;
    for &i in &chosen {
        let mut sums = vec![0.0; k];
        let mut counts = vec![0usize; k];
        for &j in &chosen {
            if j != i {
                sums[labels[j]] += squared_distance(&points[i], &points[j]).sqrt();
                counts[labels[j]] += 1;
            }
        }
        let own = labels[i];
        if counts[own] == 0 {
            continue; // alone in its segment: 0
        }
        let a = sums[own] / counts[own] as f64;
        let b = (0..k)
            .filter(|&c| c != own && counts[c] > 0)
            .map(|c| sums[c] / counts[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() && a.max(b) > 0.0 {
            total += (b - a) / a.max(b);
        }
    }
    total / chosen.len().max(1) as f64
}

/// Eigenvalues and eigenvectors (as columns of `vectors`, row-major `d × d`) of the symmetric
/// `d × d` matrix `a`, by cyclic Jacobi rotations.
fn jacobi(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; d * d];
    (0..d).for_each(|i| v[i * d + i] = 1.0);
    for _ in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j] * a[i * d + j])
            .sum();
        let scale: f64 = a.iter().map(|x| x * x).sum::<f64>();
        if off <= 1e-24 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
                let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..d {
                    let (arp, arq) = (a[r * d + p], a[r * d + q]);
                    a[r * d + p] = c * arp - s * arq;
                    a[r * d + q] = s * arp + c * arq;
                }
                for r in 0..d {
                    let (apr, aqr) = (a[p * d + r], a[q * d + r]);
                    a[p * d + r] = c * apr - s * aqr;
                    a[q * d + r] = s * apr + c * aqr;
                }
                for r in 0..d {
                    let (vrp, vrq) = (v[r * d + p], v[r * d + q]);
                    v[r * d + p] = c * vrp - s * vrq;
                    v[r * d + q] = s * vrp + c * vrq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

/// A 2-D projection of points.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Each point's coordinates on the two components.
    pub coordinates: Vec<[f64; 2]>,
    /// The two components (unit vectors, largest component positive).
    pub components: [Vec<f64>; 2],
    /// The share of the total variance each component holds.
    pub explained: [f64; 2],
}

/// The principal-component projection of (centred) `points` on two components (see the
/// module docs); a second component of zeros for 1-D points.
pub fn pca2(points: &[Vec<f64>]) -> Projection {
    let d = points.first().map_or(0, Vec::len);
    let n = points.len().max(1) as f64;
    let mut mean = vec![0.0; d];
    for p in points {
        mean.iter_mut().zip(p).for_each(|(m, x)| *m += x / n);
    }
    let mut covariance = vec![0.0; d * d];
    for p in points {
        for i in 0..d {
            let xi = p[i] - mean[i];
            for j in i..d {
                covariance[i * d + j] += xi * (p[j] - mean[j]) / n;
            }
        }
    }
    for i in 0..d {
        for j in 0..i {
            covariance[i * d + j] = covariance[j * d + i];
        }
    }
    let (values, vectors) = jacobi(covariance, d);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let component = |rank: usize| -> (Vec<f64>, f64) {
        let Some(&c) = order.get(rank) else {
            return (vec![0.0; d], 0.0);
        };
        let mut v: Vec<f64> = (0..d).map(|r| vectors[r * d + c]).collect();
        let largest = v
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() + 1e-12 { x } else { m });
        if largest < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        let share = if total > 0.0 {
            values[c].max(0.0) / total
        } else {
            0.0
        };
        (v, share)
    };
    let ((first, e1), (second, e2)) = (component(0), component(1));
    let coordinates = points
        .iter()
        .map(|p| {
            let project = |v: &[f64]| {
                p.iter()
                    .zip(&mean)
                    .zip(v)
                    .map(|((x, m), w)| (x - m) * w)
                    .sum()
            };
            [project(&first), project(&second)]
        })
        .collect();
    Projection {
        coordinates,
        components: [first, second],
        explained: [e1, e2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Three round clusters of 60 points around (0, 0), (10, 0) and (0, 10), spread 0.5.
    fn blobs(seed: u64) -> (Vec<Vec<f64>>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut points = Vec::new();
        let mut truth = Vec::new();
        for k in 0..180 {
            let c = k % 3;
            points.push(vec![
                centres[c][0] + 0.5 * rng.normal(),
                centres[c][1] + 0.5 * rng.normal(),
            ]);
            truth.push(c);
        }
        (points, truth)
    }

    #[test]
    fn kmeans_recovers_separated_clusters_and_silhouette_picks_their_number() {
        let (mut points, truth) = blobs(3);
        standardise(&mut points);
        let fit = kmeans(&points, 3, 5, 100, 1);
        // The same partition up to the segments' numbering.
        let mut map = HashMap::new();
        for (&l, &t) in fit.labels.iter().zip(&truth) {
            assert_eq!(*map.entry(l).or_insert(t), t, "a segment mixes clusters");
        }
        assert_eq!(map.len(), 3);
        let scores: Vec<(usize, f64)> = (2..=6)
            .map(|k| {
                let fit = kmeans(&points, k, 5, 100, k as u64);
                (k, silhouette(&points, &fit.labels, k, 2_000, 0))
            })
            .collect();
        let best = scores.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        assert_eq!(best.0, 3, "{scores:?}");
        assert!(best.1 > 0.8, "{scores:?}");
        // A sample of the points gives nearly the same silhouette.
        let sampled = silhouette(&points, &fit.labels, 3, 90, 7);
        assert!(
            (sampled - scores[1].1).abs() < 0.05,
            "{sampled} vs {scores:?}"
        );
    }

    #[test]
    fn standardised_features_have_mean_0_and_deviation_1() {
        let mut points = vec![vec![1.0, 5.0], vec![3.0, 5.0], vec![5.0, 5.0]];
        let scaling = standardise(&mut points);
        assert_eq!(scaling.means, [3.0, 5.0]);
        assert!((scaling.deviations[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let column: Vec<f64> = points.iter().map(|p| p[0]).collect();
        assert!((column.iter().sum::<f64>()).abs() < 1e-12);
        assert!((column.iter().map(|x| x * x).sum::<f64>() / 3.0 - 1.0).abs() < 1e-12);
        assert!(points.iter().all(|p| p[1] == 0.0));
    }

    /// Points on the line y = x, each twice with ±0.1 across it: the first component is
    /// (1, 1)/√2 with a positive sign, holding nearly all the variance; the second is
    /// (−1, 1)/√2 up to sign, made positive on its largest component.
    #[test]
    fn pca_finds_the_main_direction_with_a_fixed_sign() {
        let points: Vec<Vec<f64>> = (0..100)
            .map(|k| {
                let t = (k / 2) as f64 - 25.0;
                let e = if k % 2 == 0 { 0.1 } else { -0.1 };
                vec![t - e, t + e]
            })
            .collect();
        let p = pca2(&points);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!(
            (p.components[0][0] - h).abs() < 1e-9 && (p.components[0][1] - h).abs() < 1e-9,
            "{p:?}"
        );
        assert!(p.components[1].iter().any(|x| (*x - h).abs() < 1e-9));
        assert!(p.explained[0] > 0.999 && p.explained[0] + p.explained[1] > 0.999_999);
        // A point's first coordinate is its centred position along the line (the mean is
        // −0.5), its second the ±0.1 across it.
        assert!((p.coordinates[0][0] - (-25.0 + 0.5) * 2.0 * h).abs() < 1e-9);
        assert!((p.coordinates[0][1].abs() - 0.2 * h).abs() < 1e-9);
        // The symmetric eigensolver on a known matrix: [[2, 1], [1, 2]] has 3 and 1.
        let (mut values, _) = jacobi(vec![2.0, 1.0, 1.0, 2.0], 2);
        values.sort_by(f64::total_cmp);
        assert!((values[0] - 1.0).abs() < 1e-12 && (values[1] - 3.0).abs() < 1e-12);
    }
}
