use crate::keys::KeyDictionary;

/// Interactions as read from a file, in file order, with the file's own (external) ids.
///
/// `users` and `items` hold each interaction's key as a code: the integer key itself, or for
/// string keys the string's rank in its column's dictionary (`user_keys`, `item_keys`; see
/// [`crate::keys`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    /// External user id (key code) of each interaction.
    pub users: Vec<i64>,
    /// External item id (key code) of each interaction.
    pub items: Vec<i64>,
    /// What the user codes stand for.
    pub user_keys: KeyDictionary,
    /// What the item codes stand for.
    pub item_keys: KeyDictionary,
    /// Rating of each interaction, when the source has one.
    pub ratings: Option<Vec<f32>>,
    /// Weight of each interaction (a count, quantity or spend, 0 or more), when the run
    /// weights interactions (`[data] weight` or `[weights] from = "rating"`).
    pub weights: Option<Vec<f32>>,
    /// Timestamp of each interaction, when the source has one.
    pub timestamps: Option<Vec<i64>>,
}

impl Interactions {
    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Keeps the interactions whose index passes `keep`, in order, and returns the others, in
    /// order: what preprocessing drops is still something the user did.
    pub fn split_off_indices(&mut self, keep: &[bool]) -> Interactions {
        fn partition<T: Copy>(v: &mut Vec<T>, keep: &[bool]) -> Vec<T> {
            let (mut kept, mut removed) = (Vec::new(), Vec::new());
            for (x, k) in v.iter().zip(keep) {
                if *k {
                    kept.push(*x);
                } else {
                    removed.push(*x);
                }
            }
            *v = kept;
            removed
        }
        Interactions {
            users: partition(&mut self.users, keep),
            items: partition(&mut self.items, keep),
            user_keys: self.user_keys.clone(),
            item_keys: self.item_keys.clone(),
            ratings: self.ratings.as_mut().map(|r| partition(r, keep)),
            weights: self.weights.as_mut().map(|w| partition(w, keep)),
            timestamps: self.timestamps.as_mut().map(|t| partition(t, keep)),
        }
    }

    /// No interactions, with the same optional columns (ratings, timestamps, weights) as `self`.
    pub fn empty_like(&self) -> Interactions {
        Interactions {
            ratings: self.ratings.as_ref().map(|_| Vec::new()),
            weights: self.weights.as_ref().map(|_| Vec::new()),
            timestamps: self.timestamps.as_ref().map(|_| Vec::new()),
            user_keys: self.user_keys.clone(),
            item_keys: self.item_keys.clone(),
            ..Default::default()
        }
    }

    /// Appends `other`'s interactions (which must come from the same source: the same optional
    /// columns and key dictionaries).
    pub fn append(&mut self, mut other: Interactions) {
        self.users.append(&mut other.users);
        self.items.append(&mut other.items);
        if let (Some(mine), Some(theirs)) = (&mut self.ratings, &mut other.ratings) {
            mine.append(theirs);
        }
        if let (Some(mine), Some(theirs)) = (&mut self.timestamps, &mut other.timestamps) {
            mine.append(theirs);
        }
        if let (Some(mine), Some(theirs)) = (&mut self.weights, &mut other.weights) {
            mine.append(theirs);
        }
    }

    /// Keeps the interactions whose index passes `keep`, in order.
    pub fn retain_indices(&mut self, keep: &[bool]) {
        fn filter<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| *x)
                .collect()
        }
        self.users = filter(&self.users, keep);
        self.items = filter(&self.items, keep);
        self.ratings = self.ratings.as_deref().map(|r| filter(r, keep));
        self.timestamps = self.timestamps.as_deref().map(|t| filter(t, keep));
        self.weights = self.weights.as_deref().map(|w| filter(w, keep));
    }

    /// The order in which a user's interactions happened: by timestamp when there is one, ties
    /// and untimed data in file order.
    pub fn chronological_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(ts) = &self.timestamps {
            order.sort_by_key(|&i| ts[i]); // stable: equal timestamps keep file order
        }
        order
    }
}

/// What a source's timestamps count, when they are points in time: the unit of their distance
/// from 1970-01-01 00:00 UTC. Sources whose timestamps only order a user's interactions (file
/// positions) have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Unix seconds (MovieLens, the NCF files, integer timestamp columns).
    Seconds,
    /// Milliseconds (a Parquet datetime column in ms).
    Milliseconds,
    /// Microseconds.
    Microseconds,
    /// Nanoseconds.
    Nanoseconds,
    /// Days (a Parquet date column).
    Days,
}

impl TimeUnit {
    /// The day (days since 1970-01-01, UTC) of timestamp `t`, rounded down, saturating at the
    /// ends of `i32`.
    pub fn day(self, t: i64) -> i32 {
        let per_day: i64 = match self {
            TimeUnit::Seconds => 86_400,
            TimeUnit::Milliseconds => 86_400_000,
            TimeUnit::Microseconds => 86_400_000_000,
            TimeUnit::Nanoseconds => 86_400_000_000_000,
            TimeUnit::Days => 1,
        };
        t.div_euclid(per_day)
            .clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
}
