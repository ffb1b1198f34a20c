//! Item names where a person reads: the `name` column decision outputs write next to an item
//! key, and the labels of summaries and charts, from the names an export carries (a `name`
//! column in the run's `[data.items]` table).

use crate::{ExportedModel, Key};

/// The item names of a model that has them.
#[derive(Debug, Clone, Copy)]
pub struct ItemNames<'a>(&'a ExportedModel);

impl<'a> ItemNames<'a> {
    /// The names of `model`'s items; `None` when it has none (outputs then have no `name`
    /// column, as before names existed).
    pub fn of(model: &'a ExportedModel) -> Option<Self> {
        model.has_item_names().then_some(Self(model))
    }

    /// The name of `item`, empty when the table had none for it.
    pub fn name(&self, item: &Key) -> &'a str {
        self.0.item_name_of(item).unwrap_or("")
    }
}

/// How a summary or a chart shows an item: `Star Wars (1977) [50]` when it has a name, the
/// key alone when not.
pub fn label(item: &Key, name: Option<&str>) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} [{item}]"),
        None => item.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_leads_with_the_name() {
        let item = Key::String("SKU-00042".into());
        assert_eq!(
            label(&item, Some("Shampoo 250 ml")),
            "Shampoo 250 ml [SKU-00042]"
        );
        assert_eq!(label(&item, Some("")), "SKU-00042");
        assert_eq!(label(&Key::Integer(50), None), "50");
    }
}
