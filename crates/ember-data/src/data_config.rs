//! The `[data]` table as a config holds it: the interactions' source ([`DataSource`]) and the
//! optional attribute tables `[data.users]` and `[data.items]` beside its fields.
//!
//! The source is a tagged enum that refuses unknown fields, so the two tables are taken out of
//! the `[data]` table before the rest is read as the source; written back, they follow the
//! source's fields, and a config without them writes exactly what it wrote before they existed
//! (the fingerprint that `--resume` checks is unchanged).

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::attributes::{AttributeTable, LoadedAttributes, Side};
use crate::{DataSource, IdMap, Result};

/// The `[data]` table: the source and the attribute tables.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataConfig {
    /// Where the interactions come from.
    pub source: DataSource,
    /// What is known about the users (`[data.users]`).
    pub users: Option<AttributeTable>,
    /// What is known about the items (`[data.items]`).
    pub items: Option<AttributeTable>,
}

impl From<DataSource> for DataConfig {
    fn from(source: DataSource) -> Self {
        Self {
            source,
            users: None,
            items: None,
        }
    }
}

impl Deref for DataConfig {
    type Target = DataSource;
    fn deref(&self) -> &DataSource {
        &self.source
    }
}

impl DerefMut for DataConfig {
    fn deref_mut(&mut self) -> &mut DataSource {
        &mut self.source
    }
}

/// Both sides' attributes of a run, as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunAttributes {
    /// The users', when `[data.users]` is set.
    pub users: Option<LoadedAttributes>,
    /// The items', when `[data.items]` is set.
    pub items: Option<LoadedAttributes>,
}

impl DataConfig {
    /// The tables that are set, with their sides.
    fn tables(&self) -> impl Iterator<Item = (Side, &AttributeTable)> {
        [(Side::Users, &self.users), (Side::Items, &self.items)]
            .into_iter()
            .filter_map(|(side, table)| Some((side, table.as_ref()?)))
    }

    /// Makes every path of the source and the tables absolute, relative to `base`.
    pub fn make_absolute(&mut self, base: &Path) {
        self.source.make_absolute(base);
        for table in [&mut self.users, &mut self.items].into_iter().flatten() {
            table.make_absolute(base);
        }
    }

    /// The files the source and the tables read.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = self.source.files();
        files.extend(self.tables().flat_map(|(_, t)| t.files()));
        files
    }

    /// Checks the tables' columns against their sides, before anything is read.
    pub fn check_attributes(&self) -> Result<()> {
        self.tables()
            .try_for_each(|(side, table)| table.check(side))
    }

    /// Reads and encodes the attribute tables for the run's users and items.
    pub fn load_attributes(&self, users: &IdMap, items: &IdMap) -> Result<RunAttributes> {
        let load = |table: &Option<AttributeTable>, side, ids| {
            table.as_ref().map(|t| t.load(side, ids)).transpose()
        };
        Ok(RunAttributes {
            users: load(&self.users, Side::Users, users)?,
            items: load(&self.items, Side::Items, items)?,
        })
    }
}

impl<'de> Deserialize<'de> for DataConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut side = |name: &str| {
            table
                .remove(name)
                .map(|value| {
                    AttributeTable::deserialize(value)
                        .map_err(|e| D::Error::custom(format!("data.{name}: {e}")))
                })
                .transpose()
        };
        let users = side("users")?;
        let items = side("items")?;
        let source = DataSource::deserialize(serde_json::Value::Object(table))
            .map_err(|e| D::Error::custom(e.to_string()))?;
        Ok(Self {
            source,
            users,
            items,
        })
    }
}

impl Serialize for DataConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(&self.source).map_err(S::Error::custom)?;
        if let Some(map) = value.as_object_mut() {
            // An absent option is left out, as TOML (which has no null) wrote it before.
            map.retain(|_, v| !v.is_null());
            for (name, table) in [("users", &self.users), ("items", &self.items)] {
                if let Some(table) = table {
                    let table = serde_json::to_value(table).map_err(S::Error::custom)?;
                    map.insert(name.into(), table);
                }
            }
        }
        value.serialize(serializer)
    }
}
