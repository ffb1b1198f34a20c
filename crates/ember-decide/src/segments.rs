//! Customer segments from a model's user vectors ([`ExportedModel::user_vector`]), made with
//! the numeric toolkit of [`crate::numeric`]:
//!
//! 1. Features are standardised ([`standardise`]), so that no dimension weighs by its scale
//!    alone.
//! 2. For each k of `k_min..=k_max`, k-means from k-means++ seeding ([`kmeans`]) with
//!    `restarts` seeded restarts.
//! 3. k is the one with the highest mean silhouette ([`silhouette`], exact up to
//!    `silhouette_sample` customers, above that on a seeded sample of that many); ties go to
//!    the smaller k.
//! 4. A 2-D map: the standardised features projected on their two principal components
//!    ([`pca2`]), signed so that a map does not flip between runs.
//! 5. Per segment: its size, its top items among the customers' known items (how many of its
//!    customers have each, the share of the segment, and the segment's share of all the
//!    customers who have it), and per customer an outlier score: the Euclidean distance to the
//!    segment's centre divided by the segment's median distance (1: typical; 3: three times as
//!    far as the typical customer).

use std::collections::HashMap;
use std::path::Path;

use crate::numeric::{KMeans, kmeans, pca2, silhouette, squared_distance, standardise};
use crate::table::AtomicFile;
use crate::{DecideError, ExportedModel, Key, number};

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

/// An item of a segment's profile.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentItem {
    /// External item key.
    pub item: Key,
    /// Its name, when the model names its items and has one for it.
    pub name: Option<String>,
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
    /// Its most distinctive items, most first: those held by at least [`DISTINCT_MIN_SHARE`]
    /// of the segment and more often than among every customer, by how much more (penetration
    /// in the segment over penetration overall). They name the segment ([`Segment::label`]).
    pub distinctive: Vec<SegmentItem>,
}

/// The smallest share of a segment that holds an item for it to name the segment: rarer items
/// are distinctive by chance.
pub const DISTINCT_MIN_SHARE: f64 = 0.1;

impl Segment {
    /// An automatic label: its two most distinctive items (by name where the model names
    /// them), e.g. `Star Wars (1977) · Return of the Jedi (1983)`; `segment N` without any.
    pub fn label(&self) -> String {
        let names: Vec<String> = self
            .distinctive
            .iter()
            .take(2)
            .map(|i| crate::label(&i.item, i.name.as_deref()))
            .collect();
        match names.is_empty() {
            true => format!("segment {}", self.id),
            false => names.join(" · "),
        }
    }
}

/// One customer's place.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// External customer key.
    pub customer: Key,
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
    /// Whether the model names its items (the profiles then have a `name` column).
    pub item_names: bool,
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
    customers: Option<&[Key]>,
    options: &SegmentOptions,
) -> Result<Segmentation, DecideError> {
    let customers: Vec<Key> = match customers {
        Some(c) => c.to_vec(),
        None => model.user_keys().to_vec(),
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
        .map(|c| Ok(model.user_vector(c)?.into_iter().map(f64::from).collect()))
        .collect::<Result<Vec<Vec<f64>>, DecideError>>()?;
    standardise(&mut points);
    let (silhouettes, fit) = best_fit(&points, options);
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
    let typical = typical_distances(&distances, &labels, k);
    let projection = pca2(&points);
    let assignments = customers
        .iter()
        .zip(&labels)
        .zip(&distances)
        .zip(&projection.coordinates)
        .map(|(((customer, &segment), &d), &[x, y])| Assignment {
            customer: customer.clone(),
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
    let renumbered_sizes: Vec<usize> = order.iter().map(|&old| sizes[old]).collect();
    Ok(Segmentation {
        k,
        silhouettes,
        segments: profiles(
            model,
            &customers,
            &labels,
            &renumbered_sizes,
            options.top_items,
        )?,
        item_names: model.has_item_names(),
        assignments,
        explained: projection.explained,
    })
}

/// The k-means fit of the k of `k_min..=k_max` (at most one fewer than the points) with the
/// highest mean silhouette (ties: the smaller k), and each k's silhouette.
fn best_fit(points: &[Vec<f64>], options: &SegmentOptions) -> (Vec<(usize, f64)>, KMeans) {
    let mut best: Option<(f64, KMeans)> = None;
    let mut silhouettes = Vec::new();
    for k in options.k_min..=options.k_max.min(points.len() - 1) {
        let seed = options.seed.wrapping_add(k as u64);
        let fit = kmeans(points, k, options.restarts, options.max_iterations, seed);
        let s = silhouette(
            points,
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
    (silhouettes, fit)
}

/// Each segment's typical distance to its centre, the unit of the outlier score: the median
/// of its customers' distances (their mean where the median is 0).
fn typical_distances(distances: &[f64], labels: &[usize], k: usize) -> Vec<f64> {
    let mut typical = vec![0.0; k];
    for (s, t) in typical.iter_mut().enumerate() {
        let mut d: Vec<f64> = distances
            .iter()
            .zip(labels)
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
    typical
}

/// Each segment's profile from its customers' known items: `labels` and `sizes` in the
/// segments' final numbering, the `top_items` most held items each.
fn profiles(
    model: &ExportedModel,
    customers: &[Key],
    labels: &[usize],
    sizes: &[usize],
    top_items: usize,
) -> Result<Vec<Segment>, DecideError> {
    let mut held: Vec<HashMap<u32, usize>> = vec![HashMap::new(); sizes.len()];
    let mut everyone: HashMap<u32, usize> = HashMap::new();
    for (c, &l) in customers.iter().zip(labels) {
        for &i in model.known_internal(model.user_index(c)?) {
            *held[l].entry(i).or_default() += 1;
            *everyone.entry(i).or_default() += 1;
        }
    }
    let n = customers.len();
    let segments = held
        .iter()
        .zip(sizes)
        .enumerate()
        .map(|(s, (held, &size))| {
            let mut items: Vec<(u32, usize)> = held.iter().map(|(&i, &c)| (i, c)).collect();
            // Internal order is key order (the manifest's keys ascend).
            items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let item = |(i, c): (u32, usize)| SegmentItem {
                item: model.item_key(i).clone(),
                name: model.item_name(i).map(String::from),
                customers: c,
                penetration: c as f64 / size.max(1) as f64,
                share: c as f64 / everyone[&i] as f64,
            };
            // Penetration in the segment over penetration overall.
            let lift = |&(i, c): &(u32, usize)| {
                (c as f64 / size.max(1) as f64) / (everyone[&i] as f64 / n as f64)
            };
            let mut distinctive: Vec<(u32, usize)> = items
                .iter()
                .copied()
                .filter(|&(_, c)| c as f64 >= DISTINCT_MIN_SHARE * size as f64)
                .filter(|pair| lift(pair) > 1.0)
                .collect();
            distinctive.sort_by(|a, b| lift(b).total_cmp(&lift(a)).then(a.0.cmp(&b.0)));
            distinctive.truncate(top_items.min(5));
            items.truncate(top_items);
            Segment {
                id: s,
                size,
                share: size as f64 / n as f64,
                top_items: items.into_iter().map(item).collect(),
                distinctive: distinctive.into_iter().map(item).collect(),
            }
        })
        .collect();
    Ok(segments)
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

    /// Writes `segment,size,share,rank,item,customers,penetration,item_share` (`name` after
    /// `item` when the model names its items): each segment's top items, one row each (a
    /// segment without items: one row with the item fields empty).
    pub fn write_profiles_csv(&self, path: &Path) -> Result<(), DecideError> {
        let mut file = AtomicFile::create(path)?;
        let mut header = vec![
            "segment",
            "size",
            "share",
            "rank",
            "item",
            "customers",
            "penetration",
            "item_share",
        ];
        if self.item_names {
            header.insert(5, "name");
        }
        file.write_row(&header)?;
        for s in &self.segments {
            let head = [s.id.to_string(), s.size.to_string(), number(s.share)];
            if s.top_items.is_empty() {
                let mut row = head.to_vec();
                row.resize(header.len(), String::new());
                file.write_row(&row)?;
            }
            for (rank, item) in s.top_items.iter().enumerate() {
                let mut row = head.to_vec();
                row.extend([(rank + 1).to_string(), item.item.to_string()]);
                if self.item_names {
                    row.push(item.name.clone().unwrap_or_default());
                }
                row.extend([
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
}
