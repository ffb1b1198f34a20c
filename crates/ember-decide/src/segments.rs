//! Customer segments from a model's user vectors ([`ExportedModel::user_vector`]).
//!
//! 1. Features are standardised: each dimension centred on its mean and divided by its
//!    standard deviation over the customers (population, `1/n`; a constant dimension is only
//!    centred), so that no dimension weighs by its scale alone.
//! 2. k-means (Lloyd's iterations until no customer moves, at most `max_iterations`) from
//!    k-means++ seeding (Arthur & Vassilvitskii, SODA 2007: each next centre drawn with
//!    probability proportional to the squared distance to the nearest centre so far), with
//!    `restarts` seeded restarts, keeping the lowest within-segment sum of squares. A segment
//!    left empty takes the customer farthest from their centre.
//! 3. k is the one of `k_min..=k_max` with the highest mean silhouette (Rousseeuw 1987:
//!    `s(i) = (b − a) / max(a, b)`, `a` the mean distance to the customer's own segment, `b`
//!    to the nearest other segment; 0 for a customer alone in a segment), exact up to
//!    `silhouette_sample` customers, above that on a seeded sample of that many (distances
//!    within the sample); ties go to the smaller k.
//! 4. A 2-D map: the standardised features projected on the covariance matrix's two leading
//!    eigenvectors (cyclic Jacobi rotations, exact for a symmetric matrix), each with the sign
//!    that makes its largest component positive, so a map does not flip between runs.
//! 5. Per segment: its size, its top items among the customers' known items (how many of its
//!    customers have each, the share of the segment, and the segment's share of all the
//!    customers who have it), and per customer an outlier score: the Euclidean distance to the
//!    segment's centre divided by the segment's median distance (1: typical; 3: three times as
//!    far as the typical customer).

use std::collections::HashMap;
use std::path::Path;

use crate::rng::Rng;
use crate::table::AtomicFile;
use crate::{DecideError, ExportedModel, number};

/// The most values of k one segmentation tries. Each k costs `restarts` runs of k-means and a
/// silhouette, so a range like `2..2000` ran for hours; choosing among 50 candidates is as
/// fine a choice as the silhouette can support.
pub const MAX_K_VALUES: usize = 50;

/// The most segments. Past a thousand, segments are no longer groups a person can act on,
/// and a k-means iteration costs `customers × k × dimensions`.
pub const MAX_K: usize = 1_000;

/// How customers are segmented.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// Fewest segments tried (at least 2).
    pub k_min: usize,
    /// Most segments tried.
    pub k_max: usize,
    /// k-means restarts per k.
    pub restarts: usize,
    /// Lloyd iterations per restart at most.
    pub max_iterations: usize,
    /// Seed of the restarts and of the silhouette's sample.
    pub seed: u64,
    /// Customers the silhouette is computed on exactly; above it, a sample of this many.
    pub silhouette_sample: usize,
    /// Top items per segment.
    pub top_items: usize,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            k_min: 2,
            k_max: 8,
            restarts: 10,
            max_iterations: 100,
            seed: 0,
            silhouette_sample: 2_000,
            top_items: 10,
        }
    }
}

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

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
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

/// An item of a segment's profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentItem {
    /// External item id.
    pub item: i64,
    /// Customers of the segment who have it.
    pub customers: usize,
    /// `customers / segment size`.
    pub penetration: f64,
    /// The segment's share of every segmented customer who has it.
    pub share: f64,
}

/// A segment's profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Segment number (0-based, by decreasing size).
    pub id: usize,
    /// Customers in it.
    pub size: usize,
    /// `size / customers`.
    pub share: f64,
    /// Its most held items, most first (ties by item id).
    pub top_items: Vec<SegmentItem>,
}

/// One customer's place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    /// External customer id.
    pub customer: i64,
    /// Their segment.
    pub segment: usize,
    /// Coordinates on the 2-D map.
    pub x: f64,
    /// Coordinates on the 2-D map.
    pub y: f64,
    /// Distance to the segment's centre over the segment's median distance.
    pub outlier: f64,
}

/// The segmentation of a model's customers.
#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    /// Segments chosen.
    pub k: usize,
    /// The mean silhouette of each k tried.
    pub silhouettes: Vec<(usize, f64)>,
    /// The segments, largest first.
    pub segments: Vec<Segment>,
    /// Every customer, in the order segmented.
    pub assignments: Vec<Assignment>,
    /// The map's components' shares of the variance.
    pub explained: [f64; 2],
}

/// Checks that `k_min..=k_max` is a range segmentation tries: 2 ≤ k_min ≤ k_max ≤
/// [`MAX_K`], at most [`MAX_K_VALUES`] values.
fn check_k_range(k_min: usize, k_max: usize) -> Result<(), DecideError> {
    if k_min < 2 || k_max < k_min {
        return Err(DecideError::Invalid(format!(
            "segments are tried for k in `k_min`..=`k_max`, with 2 ≤ k_min ≤ k_max; got {k_min}..={k_max}"
        )));
    }
    if k_max > MAX_K || k_max - k_min >= MAX_K_VALUES {
        return Err(DecideError::Invalid(format!(
            "segments are tried for k in `k_min`..=`k_max`, at most {MAX_K_VALUES} values of k \
             and k ≤ {MAX_K}; got {k_min}..={k_max} ({} values)",
            k_max - k_min + 1
        )));
    }
    Ok(())
}

/// Segments `customers` (every customer of the model when `None`) from their user vectors.
pub fn segment(
    model: &ExportedModel,
    customers: Option<&[i64]>,
    options: &SegmentOptions,
) -> Result<Segmentation, DecideError> {
    let customers: Vec<i64> = match customers {
        Some(c) => c.to_vec(),
        None => model.manifest().user_ids.clone(),
    };
    check_k_range(options.k_min, options.k_max)?;
    if customers.len() <= options.k_min {
        return Err(DecideError::Invalid(format!(
            "{} customers cannot form {} segments",
            customers.len(),
            options.k_min
        )));
    }
    let mut points = customers
        .iter()
        .map(|&c| Ok(model.user_vector(c)?.into_iter().map(f64::from).collect()))
        .collect::<Result<Vec<Vec<f64>>, DecideError>>()?;
    standardise(&mut points);
    let mut best: Option<(f64, KMeans)> = None;
    let mut silhouettes = Vec::new();
    for k in options.k_min..=options.k_max.min(points.len() - 1) {
        let seed = options.seed.wrapping_add(k as u64);
        let fit = kmeans(&points, k, options.restarts, options.max_iterations, seed);
        let s = silhouette(
            &points,
            &fit.labels,
            k,
            options.silhouette_sample,
            options.seed,
        );
        silhouettes.push((k, s));
        if best.as_ref().is_none_or(|(b, _)| s > *b) {
            best = Some((s, fit));
        }
    }
    let (_, fit) = best.expect("one k at least");
    let k = fit.centroids.len();
    // Segments numbered by decreasing size (ties by first customer).
    let mut sizes = vec![0usize; k];
    fit.labels.iter().for_each(|&l| sizes[l] += 1);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut renumber = vec![0; k];
    order
        .iter()
        .enumerate()
        .for_each(|(new, &old)| renumber[old] = new);
    let labels: Vec<usize> = fit.labels.iter().map(|&l| renumber[l]).collect();
    let distances: Vec<f64> = points
        .iter()
        .zip(&fit.labels)
        .map(|(p, &l)| squared_distance(p, &fit.centroids[l]).sqrt())
        .collect();
    let mut typical = vec![0.0; k];
    for (s, t) in typical.iter_mut().enumerate() {
        let mut d: Vec<f64> = distances
            .iter()
            .zip(&labels)
            .filter(|&(_, &l)| l == s)
            .map(|(d, _)| *d)
            .collect();
        d.sort_by(f64::total_cmp);
        let median = if d.is_empty() {
            0.0
        } else if d.len() % 2 == 1 {
            d[d.len() / 2]
        } else {
            (d[d.len() / 2 - 1] + d[d.len() / 2]) / 2.0
        };
        let mean = d.iter().sum::<f64>() / d.len().max(1) as f64;
        *t = if median > 0.0 { median } else { mean };
    }
    let projection = pca2(&points);
    let assignments = customers
        .iter()
        .zip(&labels)
        .zip(&distances)
        .zip(&projection.coordinates)
        .map(|(((&customer, &segment), &d), &[x, y])| Assignment {
            customer,
            segment,
            x,
            y,
            outlier: if typical[segment] > 0.0 {
                d / typical[segment]
            } else {
                0.0
            },
        })
        .collect();
    // Profiles from the customers' known items.
    let mut held: Vec<HashMap<u32, usize>> = vec![HashMap::new(); k];
    let mut everyone: HashMap<u32, usize> = HashMap::new();
    for (&c, &l) in customers.iter().zip(&labels) {
        for &i in model.known_internal(model.user_index(c)?) {
            *held[l].entry(i).or_default() += 1;
            *everyone.entry(i).or_default() += 1;
        }
    }
    let item_ids = &model.manifest().item_ids;
    let n = customers.len();
    let segments = (0..k)
        .map(|s| {
            let size = order.get(s).map_or(0, |&old| sizes[old]);
            let mut items: Vec<(u32, usize)> = held[s].iter().map(|(&i, &c)| (i, c)).collect();
            items.sort_by(|a, b| {
                b.1.cmp(&a.1)
                    .then(item_ids[a.0 as usize].cmp(&item_ids[b.0 as usize]))
            });
            items.truncate(options.top_items);
            Segment {
                id: s,
                size,
                share: size as f64 / n as f64,
                top_items: items
                    .into_iter()
                    .map(|(i, c)| SegmentItem {
                        item: item_ids[i as usize],
                        customers: c,
                        penetration: c as f64 / size.max(1) as f64,
                        share: c as f64 / everyone[&i] as f64,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Segmentation {
        k,
        silhouettes,
        segments,
        assignments,
        explained: projection.explained,
    })
}

impl Segmentation {
    /// Writes `customer,segment,x,y,outlier` per customer (temporary name, then renamed).
    pub fn write_assignments_csv(&self, path: &Path) -> Result<(), DecideError> {
        let mut file = AtomicFile::create(path)?;
        file.write_row(&["customer", "segment", "x", "y", "outlier"])?;
        for a in &self.assignments {
            file.write_row(&[
                a.customer.to_string(),
                a.segment.to_string(),
                number(a.x),
                number(a.y),
                number(a.outlier),
            ])?;
        }
        file.commit()
    }

    /// Writes `segment,size,share,rank,item,customers,penetration,item_share`: each segment's
    /// top items, one row each (a segment without items: one row with the item fields empty).
    pub fn write_profiles_csv(&self, path: &Path) -> Result<(), DecideError> {
        let mut file = AtomicFile::create(path)?;
        file.write_row(&[
            "segment",
            "size",
            "share",
            "rank",
            "item",
            "customers",
            "penetration",
            "item_share",
        ])?;
        for s in &self.segments {
            let head = [s.id.to_string(), s.size.to_string(), number(s.share)];
            if s.top_items.is_empty() {
                let mut row = head.to_vec();
                row.extend(std::iter::repeat_n(String::new(), 5));
                file.write_row(&row)?;
            }
            for (rank, item) in s.top_items.iter().enumerate() {
                let mut row = head.to_vec();
                row.extend([
                    (rank + 1).to_string(),
                    item.item.to_string(),
                    item.customers.to_string(),
                    number(item.penetration),
                    number(item.share),
                ]);
                file.write_row(&row)?;
            }
        }
        file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn k_ranges_are_capped_in_count_and_size() {
        assert!(check_k_range(2, 8).is_ok());
        assert!(check_k_range(2, 51).is_ok());
        assert!(check_k_range(951, 1000).is_ok());
        assert_eq!(
            check_k_range(2, 52).unwrap_err().to_string(),
            "segments are tried for k in `k_min`..=`k_max`, at most 50 values of k and k ≤ 1000; \
             got 2..=52 (51 values)"
        );
        assert_eq!(
            check_k_range(1000, 1001).unwrap_err().to_string(),
            "segments are tried for k in `k_min`..=`k_max`, at most 50 values of k and k ≤ 1000; \
             got 1000..=1001 (2 values)"
        );
        assert!(check_k_range(1, 4).is_err());
        assert!(check_k_range(5, 4).is_err());
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
