//! How sequence models (SASRec, BERT4Rec, GRU4Rec) read a user: a window of tokens.
//!
//! Token `0` pads (on the left), internal item `i` is token `i + 1`, and a masked-item model's
//! mask token is `num_items + 1`. A sequence model's item table has a row per token, so token
//! `t` reads row `t`. ember-data builds training windows with these functions, ember-models
//! reads them, and ember-infer scores histories with them.

/// The padding token.
pub const PAD: i32 = 0;

/// The token of internal item `item`.
pub fn item(item: u32) -> i32 {
    item as i32 + 1
}

/// The internal item of a token that is an item's (not padding, not the mask).
pub fn item_of(token: i32) -> u32 {
    debug_assert!(token > PAD, "token {token} is not an item's");
    (token - 1) as u32
}

/// The mask token of a masked-item model over `num_items` items.
pub fn mask(num_items: usize) -> i32 {
    num_items as i32 + 1
}

/// Rows of a sequence model's item table: padding and every item, and the mask token when the
/// model has one.
pub fn table_rows(num_items: usize, with_mask: bool) -> usize {
    num_items + 1 + usize::from(with_mask)
}

/// The tokens of the last `max_len` items of `items`, left-padded to `max_len`.
pub fn window(items: &[u32], max_len: usize) -> Vec<i32> {
    let kept = &items[items.len().saturating_sub(max_len)..];
    let mut tokens = vec![PAD; max_len - kept.len()];
    tokens.extend(kept.iter().map(|&i| item(i)));
    tokens
}

/// The window a sequence model reads to score a user whose items, oldest first, are `items`:
/// the window of the history, or, for a masked-item model (`mask`), the window of its last
/// `max_len - 1` items followed by the mask token.
pub fn scoring_window(items: &[u32], max_len: usize, mask: Option<i32>) -> Vec<i32> {
    match mask {
        None => window(items, max_len),
        Some(mask) => {
            let mut tokens = window(items, max_len - 1);
            tokens.push(mask);
            tokens
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_keep_the_latest_items_left_padded() {
        assert_eq!(window(&[4, 7], 4), vec![PAD, PAD, 5, 8]);
        assert_eq!(window(&[1, 2, 3, 4, 5], 3), vec![4, 5, 6]);
        assert_eq!(
            scoring_window(&[1, 2, 3], 3, Some(mask(10))),
            vec![3, 4, 11]
        );
        assert_eq!(item_of(item(41)), 41);
        assert_eq!(table_rows(10, true), 12);
    }
}
