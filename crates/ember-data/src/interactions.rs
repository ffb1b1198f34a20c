/// Interactions as read from a file, in file order, with the file's own (external) ids.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    /// External user id of each interaction.
    pub users: Vec<i64>,
    /// External item id of each interaction.
    pub items: Vec<i64>,
    /// Rating of each interaction, when the source has one.
    pub ratings: Option<Vec<f32>>,
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
