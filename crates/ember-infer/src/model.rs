//! A loaded model and its queries. Loading reads the manifest, checks it (version, spec,
//! ids), reads every user's known items, and hands the weights to the family's loader
//! (`families::registration`); queries translate external ids and ask the family
//! ([`Family`]), never its kind.
//!
//! The rule every query follows: items a user already has (their known items, see
//! [`crate::KNOWN_ITEMS`]) are never recommended to them, and users who already have an item
//! are never in its audience, unless the query's policy says otherwise ([`Known::Include`]:
//! none left out, for catalogues people buy again; [`Known::Since`]: only what was had since
//! a day). Only scoring
//! ([`ExportedModel::score`], [`ExportedModel::score_internal_pairs`],
//! [`ExportedModel::item_scores_internal`]) scores everything asked.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::families::{self, Family, Subject, Unexplained};
use crate::format::{
    FORMAT_VERSION, KNOWN_EXTENSIONS, Keys, Manifest, OLDEST_FORMAT_VERSION, sha256,
};
use crate::source::{SparseRows, Tensors};
use crate::topk::{Ranked, Scored, top_k};
use crate::{ATTRIBUTES_EXTENSION, ExportedAttributes, InferError, Key, KeyKind, SideAttributes};

/// Manifests larger than this are refused before parsing (a model's id maps are far smaller).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// A loaded model. Immutable, so it can be shared between threads (`Arc<ExportedModel>`).
#[derive(Debug, Clone)]
pub struct ExportedModel {
    manifest: Manifest,
    family: Arc<dyn Family>,
    /// The manifest's keys, indexed by internal id, and the internal id of each.
    user_keys: Vec<Key>,
    item_keys: Vec<Key>,
    users: HashMap<Key, u32>,
    items: HashMap<Key, u32>,
    /// Each user's known items; `None` for a format-version-1 export, which has none.
    known: Option<Arc<SparseRows>>,
    /// The day of each known item's latest interaction, aligned with `known`'s columns, when
    /// the export has them ([`crate::KNOWN_DAYS`]).
    known_days: Option<Arc<Vec<i32>>>,
    /// What the run knew of its users and items (`[data.users]`, `[data.items]`): encoders,
    /// names and labels, checked against the id lists at load.
    attributes: Arc<ExportedAttributes>,
}

/// Which of what the user already has (their known items) a query leaves out: the exclusion
/// policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Known {
    /// Leave out every known item (an audience: every user who has the item).
    #[default]
    Exclude,
    /// Leave out none: rank them with the rest (catalogues people buy again, such as
    /// groceries; or to see what the model reconstructs).
    Include,
    /// Leave out the known items whose latest interaction was on or after this day (days
    /// since 1970-01-01, UTC); earlier ones may be recommended again. Needs an export with
    /// each known item's day ([`ExportedModel::has_known_days`]).
    Since(i32),
}

impl Known {
    /// Whether the policy leaves out a known item last had on `day`.
    fn leaves_out(self, day: impl FnOnce() -> i32) -> bool {
        match self {
            Known::Exclude => true,
            Known::Include => false,
            Known::Since(since) => day() >= since,
        }
    }
}

/// How a query ranks, beyond its `k`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// Keys never to return, whatever their score: item keys for recommendations (a
    /// suppression list), user keys for audiences (opted-out customers). Keys the model does
    /// not know (or of the other kind) are ignored.
    pub exclude: &'a [Key],
    /// Whether the user's known items (an item's owners, for an audience) are left out.
    pub known: Known,
    /// How many "because of" items to give with each answer (0: none); see
    /// [`ExportedModel::explain`].
    pub explain: usize,
}

/// One answer of a query with its explanation: an item recommended to a user, or a user in
/// an item's audience.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// External key (item for recommendations, user for audiences).
    pub id: Key,
    /// Model score (higher is better).
    pub score: f32,
    /// The user's own items that weigh most in the score, strongest first (empty when not
    /// asked for, or when none weighs in positively).
    pub because: Vec<Because>,
}

/// One of a user's own items, as a reason for a recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Because {
    /// External item key: always one of the user's known items (or of the history given).
    pub item: Key,
    /// Its weight, in the family's measure (cosine similarity, attention weight, or the
    /// score's drop without it); always positive.
    pub weight: f32,
}

/// What a model's scores are, as its family's default training objective makes them: what a
/// decision layer needs to turn them into propensities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScoreScale {
    /// Logits of a per-item probability, `σ(score)`: MF, GMF, MLP, NeuMF, LightGCN and CDAE.
    /// (Pair models trained with `train.loss = "bpr"`, LightGCN's default, learn only an
    /// order: their `σ(score)` is a ranking score, not a calibrated probability.)
    Logits,
    /// Logits of a softmax over every item: the probability that the user's next item is this
    /// one (Mult-DAE, Mult-VAE, SASRec, BERT4Rec, GRU4Rec).
    NextItemLogits,
    /// Predicted ratings, within the training ratings' range (AutoRec).
    Ratings {
        /// Lowest training rating.
        low: f32,
        /// Highest training rating.
        high: f32,
    },
}

fn id_index(ids: &[Key], what: &str, path: &Path) -> Result<HashMap<Key, u32>, InferError> {
    let mut map = HashMap::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if map.insert(id.clone(), i as u32).is_some() {
            return Err(InferError::manifest(
                path,
                format!("{what} id {id} appears twice"),
            ));
        }
    }
    Ok(map)
}

/// The internal id of `key` in `index`, whose keys are of `kind`: an unknown key, or one of
/// the other kind, is an error naming it as given.
fn index_of(
    index: &HashMap<Key, u32>,
    kind: KeyKind,
    what: &'static str,
    key: &Key,
) -> Result<u32, InferError> {
    if key.kind() != kind {
        return Err(InferError::KeyKind {
            what,
            id: key.clone(),
            expected: kind,
        });
    }
    index
        .get(key)
        .copied()
        .ok_or_else(|| InferError::UnknownId {
            what,
            id: key.clone(),
        })
}

/// The manifest in `bytes`, its version checked before its shape (an older manifest lacks
/// fields this version requires, and deserves the version's message, not a missing field's).
fn parse_manifest(bytes: &[u8], path: &Path) -> Result<Manifest, InferError> {
    let invalid = |e: serde_json::Error| InferError::Manifest {
        path: path.to_owned(),
        message: "not the JSON of a manifest".into(),
        source: Some(Box::new(e)),
    };
    #[derive(serde::Deserialize)]
    struct Version {
        format_version: u32,
    }
    let version: Version = serde_json::from_slice(bytes).map_err(invalid)?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version.format_version) {
        return Err(InferError::Version {
            found: version.format_version,
        });
    }
    serde_json::from_slice(bytes).map_err(invalid)
}

/// Checks what a version-3 manifest promises before anything is decoded: the id lists in the
/// run's order (strictly ascending), the checksums of the weights, the id lists and the
/// extensions, and extensions this build knows.
fn verify(
    manifest: &Manifest,
    weights: &[u8],
    manifest_path: &Path,
    weights_path: &Path,
) -> Result<(), InferError> {
    for (what, keys) in [
        ("user_ids", &manifest.user_ids),
        ("item_ids", &manifest.item_ids),
    ] {
        if let Some((position, key)) = keys.first_out_of_order() {
            return Err(InferError::manifest(
                manifest_path,
                format!(
                    "{what} are not in the order of the run's id maps: `{key}` at position \
                     {position} is not above the key before it (the list must be strictly \
                     ascending, each key once)"
                ),
            ));
        }
    }
    let checks = [
        (
            weights_path,
            "model.safetensors",
            &manifest.checksums.weights,
            sha256(weights),
        ),
        (
            manifest_path,
            "user_ids",
            &manifest.checksums.user_ids,
            manifest.user_ids.checksum(),
        ),
        (
            manifest_path,
            "item_ids",
            &manifest.checksums.item_ids,
            manifest.item_ids.checksum(),
        ),
        (
            manifest_path,
            "extensions",
            &manifest.checksums.extensions,
            manifest.extensions_checksum(),
        ),
    ];
    for (path, what, recorded, found) in checks {
        if *recorded != found {
            return Err(InferError::Checksum {
                path: path.to_owned(),
                what,
                recorded: recorded.clone(),
                found,
            });
        }
    }
    if let Some(name) = manifest
        .extensions
        .keys()
        .find(|name| !KNOWN_EXTENSIONS.contains(&name.as_str()))
    {
        return Err(InferError::manifest(
            manifest_path,
            format!(
                "extension `{name}` is not one this build reads ({}): a newer ember wrote this \
                 export",
                if KNOWN_EXTENSIONS.is_empty() {
                    "it reads none".to_string()
                } else {
                    KNOWN_EXTENSIONS.join(", ")
                }
            ),
        ));
    }
    Ok(())
}

/// The manifest's `attributes` extension, checked against the id lists: one label or name and
/// one feature row per user or item, each feature inside its side's feature space.
fn attributes(manifest: &Manifest, path: &Path) -> Result<ExportedAttributes, InferError> {
    let Some(value) = manifest.extensions.get(ATTRIBUTES_EXTENSION) else {
        return Ok(ExportedAttributes::default());
    };
    let attributes: ExportedAttributes = serde_json::from_value(value.clone()).map_err(|e| {
        InferError::manifest(path, format!("extension `{ATTRIBUTES_EXTENSION}`: {e}"))
    })?;
    let sides = [
        ("users", &attributes.users, manifest.user_ids.len()),
        ("items", &attributes.items, manifest.item_ids.len()),
    ];
    for (side, attributes, ids) in sides {
        if let Some(attributes) = attributes {
            check_side(attributes, ids).map_err(|e| {
                InferError::manifest(path, format!("attributes of the {side}: {e}"))
            })?;
        }
    }
    Ok(attributes)
}

/// What [`attributes`] checks of one side holding `ids` users or items.
fn check_side(side: &SideAttributes, ids: usize) -> Result<(), String> {
    if let Some(display) = &side.display
        && display.len() != ids
    {
        return Err(format!("{} names or labels for {ids} ids", display.len()));
    }
    if let Some(rows) = &side.features {
        let width = side.schema.width();
        let entries = rows.indices.len();
        let well_formed = rows.offsets.first() == Some(&0)
            && rows.offsets.windows(2).all(|w| w[0] <= w[1])
            && rows.offsets.last().map(|&end| end as usize) == Some(entries)
            && rows.values.len() == entries;
        if !well_formed {
            return Err("feature rows whose offsets do not match their entries".into());
        }
        if rows.rows() != ids {
            return Err(format!("{} feature rows for {ids} ids", rows.rows()));
        }
        if let Some(index) = rows.indices.iter().find(|&&i| i as usize >= width) {
            return Err(format!(
                "feature {index} outside the {width} features of the schema"
            ));
        }
    }
    Ok(())
}

impl ExportedModel {
    /// Loads and validates the model in directory `dir`.
    pub fn load(dir: &Path) -> Result<Self, InferError> {
        let manifest_path = dir.join("manifest.json");
        let weights_path = dir.join("model.safetensors");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |error| InferError::Io { path, error }
        };
        let size = std::fs::metadata(&manifest_path)
            .map_err(io(&manifest_path))?
            .len();
        if size > MAX_MANIFEST_BYTES {
            return Err(InferError::manifest(
                &manifest_path,
                format!("{size} bytes is too large"),
            ));
        }
        let text = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
        let bytes = std::fs::read(&weights_path).map_err(io(&weights_path))?;
        Self::from_bytes(&text, &bytes, &manifest_path, &weights_path)
    }

    /// Builds a model from the two files' contents; the paths only name them in errors.
    pub fn from_bytes(
        manifest: &[u8],
        weights: &[u8],
        manifest_path: &Path,
        weights_path: &Path,
    ) -> Result<Self, InferError> {
        let manifest = parse_manifest(manifest, manifest_path)?;
        manifest
            .model
            .validate()
            .map_err(|e| InferError::invalid_spec(manifest_path, e))?;
        if manifest.user_ids.is_empty() || manifest.item_ids.is_empty() {
            return Err(InferError::manifest(manifest_path, "no users or no items"));
        }
        verify(&manifest, weights, manifest_path, weights_path)?;
        let user_keys = manifest.user_ids.to_keys();
        let item_keys = manifest.item_ids.to_keys();
        let users = id_index(&user_keys, "user", manifest_path)?;
        let items = id_index(&item_keys, "item", manifest_path)?;
        let registration = families::registration(&manifest.model);
        let tensors = Tensors::parse(
            weights,
            weights_path,
            manifest_path,
            manifest.precision,
            registration.stored,
            (user_keys.len(), item_keys.len()),
        )?;
        let family = registration.load(&tensors.root())?;
        let known = Some(Arc::new(tensors.known_items()?));
        let known_days = match &known {
            Some(rows) => tensors.known_days(rows.columns.len())?.map(Arc::new),
            None => None,
        };
        tensors.finish()?;
        let attributes = Arc::new(attributes(&manifest, manifest_path)?);
        Ok(Self {
            manifest,
            family,
            user_keys,
            item_keys,
            users,
            items,
            known,
            known_days,
            attributes,
        })
    }

    /// External user keys, indexed by internal id.
    pub fn user_ids(&self) -> &Keys {
        &self.manifest.user_ids
    }

    /// External item keys, indexed by internal id.
    pub fn item_ids(&self) -> &Keys {
        &self.manifest.item_ids
    }

    /// The kind of the user keys: what every input naming users must hold.
    pub fn user_key_kind(&self) -> KeyKind {
        self.manifest.user_ids.kind()
    }

    /// The kind of the item keys.
    pub fn item_key_kind(&self) -> KeyKind {
        self.manifest.item_ids.kind()
    }

    /// The external key of internal user `user` (in range).
    pub fn user_key(&self, user: u32) -> &Key {
        &self.user_keys[user as usize]
    }

    /// The external key of internal item `item` (in range).
    pub fn item_key(&self, item: u32) -> &Key {
        &self.item_keys[item as usize]
    }

    /// Every user's external key, in internal order.
    pub fn user_keys(&self) -> &[Key] {
        &self.user_keys
    }

    /// What the run knew of its users and items: empty sides when it had no attribute tables.
    pub fn attributes(&self) -> &ExportedAttributes {
        &self.attributes
    }

    /// Whether the export names its items (a `name` column in `[data.items]`).
    pub fn has_item_names(&self) -> bool {
        self.item_names().is_some()
    }

    /// The name of internal item `item` (in range), when the export names items and the
    /// table had one for it.
    pub fn item_name(&self, item: u32) -> Option<&str> {
        self.item_names()?[item as usize].as_deref()
    }

    /// The name of the item `key`; `None` for an unknown key or an item without a name.
    pub fn item_name_of(&self, key: &Key) -> Option<&str> {
        self.item_name(*self.items.get(key)?)
    }

    /// The label of internal user `user` (in range), when the export labels users.
    pub fn user_label(&self, user: u32) -> Option<&str> {
        let labels = self.attributes.users.as_ref()?.display.as_ref()?;
        labels[user as usize].as_deref()
    }

    /// The label of the user `key`; `None` for an unknown key or a user without a label.
    pub fn user_label_of(&self, key: &Key) -> Option<&str> {
        self.user_label(*self.users.get(key)?)
    }

    fn item_names(&self) -> Option<&Vec<Option<String>>> {
        self.attributes.items.as_ref()?.display.as_ref()
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Internal id of an external user key.
    pub fn user_index(&self, user: &Key) -> Result<u32, InferError> {
        index_of(&self.users, self.user_key_kind(), "user", user)
    }

    /// Internal id of an external item key.
    pub fn item_index(&self, item: &Key) -> Result<u32, InferError> {
        index_of(&self.items, self.item_key_kind(), "item", item)
    }

    /// Whether the export carries each user's known items (format version 2 on). A
    /// version-1 export has none: its queries leave out only what they are asked to, and its
    /// id-based models cannot explain.
    pub fn has_known_items(&self) -> bool {
        self.known.is_some()
    }

    /// The known items of internal user `user` (in range), as sorted internal item ids; empty
    /// for an export without known items.
    pub fn known_internal(&self, user: u32) -> &[u32] {
        match &self.known {
            Some(known) => known.row(user as usize),
            None => &[],
        }
    }

    /// Whether the export carries the day of each known item's latest interaction
    /// ([`crate::KNOWN_DAYS`]), which [`Known::Since`] needs.
    pub fn has_known_days(&self) -> bool {
        self.known_days.is_some()
    }

    /// The days of internal user `user`'s known items (in range), entry for entry with
    /// [`Self::known_internal`], when the export has them.
    pub fn known_days_internal(&self, user: u32) -> Option<&[i32]> {
        let (known, days) = (self.known.as_ref()?, self.known_days.as_ref()?);
        let (start, end) = (
            known.offsets[user as usize],
            known.offsets[user as usize + 1],
        );
        Some(&days[start..end])
    }

    /// Checks that this export can apply `policy`: [`Known::Since`] needs each known item's
    /// day.
    pub fn check_exclusion(&self, policy: Known) -> Result<(), InferError> {
        match policy {
            Known::Since(_) if !self.has_known_days() => Err(InferError::Unsupported(
                "leaving out known items since a date needs the day of each known interaction \
                 (tensor `known.days`), and this export has none: its data had no timestamps \
                 that are dates (or it was exported before they were stored); use all or none"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// The internal known items of internal user `user` that `policy` leaves out, in order
    /// (none for [`Known::Include`]); `policy` must have passed [`Self::check_exclusion`].
    fn left_out_internal(&self, user: u32, policy: Known) -> Vec<u32> {
        let known = self.known_internal(user);
        let days = self.known_days_internal(user);
        known
            .iter()
            .enumerate()
            .filter(|&(k, _)| policy.leaves_out(|| days.map_or(i32::MAX, |d| d[k])))
            .map(|(_, &i)| i)
            .collect()
    }

    /// The known items of `user` that `policy` leaves out, as external item keys in internal
    /// order: what the user counts as having for a decision under that policy.
    pub fn left_out_items(&self, user: &Key, policy: Known) -> Result<Vec<Key>, InferError> {
        self.check_exclusion(policy)?;
        let u = self.user_index(user)?;
        Ok(self
            .left_out_internal(u, policy)
            .into_iter()
            .map(|i| self.item_key(i).clone())
            .collect())
    }

    /// The known items of `user`, as external item keys in internal order; empty for an
    /// export without known items.
    pub fn known_items(&self, user: &Key) -> Result<Vec<Key>, InferError> {
        let u = self.user_index(user)?;
        Ok(self
            .known_internal(u)
            .iter()
            .map(|&i| self.item_key(i).clone())
            .collect())
    }

    /// What the scores are (logits, next-item logits, ratings), for turning them into
    /// propensities.
    pub fn score_scale(&self) -> ScoreScale {
        self.family.score_scale()
    }

    /// Score of internal (user, item); both must be in range.
    pub fn score_internal(&self, user: u32, item: u32) -> f32 {
        self.family.pair_scores(&[(user as usize, item as usize)])[0]
    }

    /// Scores of every item (in internal item order) for internal user `user`, which must be in
    /// range. Nothing is left out: known items are scored like the rest.
    pub fn item_scores_internal(&self, user: u32) -> Vec<f32> {
        self.family.user_scores(&[user as usize]).remove(0)
    }

    /// Scores of (user, item) pairs given by external keys (known items included).
    pub fn score(&self, pairs: &[(Key, Key)]) -> Result<Vec<f32>, InferError> {
        let pairs = pairs
            .iter()
            .map(|(u, i)| Ok((self.user_index(u)?, self.item_index(i)?)))
            .collect::<Result<Vec<_>, InferError>>()?;
        Ok(self.score_internal_pairs(&pairs))
    }

    /// Scores of (user, item) pairs given by internal ids, which must be in range (known items
    /// included). Models that decode a whole row at once (the autoencoders and sequence
    /// models: a user's row; AutoRec: an item's or a user's) decode each distinct row once,
    /// whatever the order of the pairs.
    pub fn score_internal_pairs(&self, pairs: &[(u32, u32)]) -> Vec<f32> {
        let pairs: Vec<(usize, usize)> = pairs
            .iter()
            .map(|&(u, i)| (u as usize, i as usize))
            .collect();
        self.family.pair_scores(&pairs)
    }

    /// Marks the items of `exclude` (external keys; unknown ones ignored) and the `owned`
    /// internal items with NaN, which top-k passes over.
    fn leave_out(&self, scores: &mut [f32], exclude: &[Key], owned: &[u32]) {
        for i in exclude.iter().filter_map(|i| self.items.get(i)) {
            scores[*i as usize] = f32::NAN;
        }
        for &i in owned {
            scores[i as usize] = f32::NAN;
        }
    }

    /// The `k` best items for `user`, leaving out `exclude` (external item ids; unknown ones
    /// are ignored) and the items the user already has (their known items). Equal scores are
    /// ordered by external id. [`Self::recommend_for`] takes the opt-out and explanations.
    pub fn recommend(
        &self,
        user: &Key,
        k: usize,
        exclude: &[Key],
    ) -> Result<Vec<Scored>, InferError> {
        Ok(self
            .recommend_many(&[(user.clone(), exclude)], k)?
            .remove(0))
    }

    /// [`Self::recommend`] for many `(user, exclude)` queries at once. For MF, GMF and LightGCN
    /// this reads the item table once for the whole batch instead of once per user, which is
    /// what bounds a single query's latency on a large catalogue.
    pub fn recommend_many(
        &self,
        queries: &[(Key, &[Key])],
        k: usize,
    ) -> Result<Vec<Vec<Scored>>, InferError> {
        let users = queries
            .iter()
            .map(|(user, _)| Ok(self.user_index(user)? as usize))
            .collect::<Result<Vec<_>, InferError>>()?;
        let mut scores = self.family.user_scores(&users);
        Ok(queries
            .iter()
            .zip(&users)
            .zip(&mut scores)
            .map(|((&(_, exclude), &u), scores)| {
                self.leave_out(scores, exclude, self.known_internal(u as u32));
                self.scored_items(top_k(scores, k))
            })
            .collect())
    }

    /// The `k` best items for `user`, as `options` say: [`Self::recommend`] with the opt-out
    /// from leaving out known items, and explanations.
    pub fn recommend_for(
        &self,
        user: &Key,
        k: usize,
        options: &Options<'_>,
    ) -> Result<Vec<Recommendation>, InferError> {
        Ok(self
            .recommend_many_for(std::slice::from_ref(user), k, options)?
            .remove(0))
    }

    /// [`Self::recommend_for`] for many users with the same options (a batch with one
    /// suppression list), reading the item table once for the batch as
    /// [`Self::recommend_many`] does. The answers are in the order of `users`.
    pub fn recommend_many_for(
        &self,
        users: &[Key],
        k: usize,
        options: &Options<'_>,
    ) -> Result<Vec<Vec<Recommendation>>, InferError> {
        self.check_exclusion(options.known)?;
        let internal = users
            .iter()
            .map(|user| Ok(self.user_index(user)? as usize))
            .collect::<Result<Vec<_>, InferError>>()?;
        let mut scores = self.family.user_scores(&internal);
        internal
            .iter()
            .zip(&mut scores)
            .map(|(&u, scores)| {
                let known = self.known_internal(u as u32);
                let owned = self.left_out_internal(u as u32, options.known);
                self.leave_out(scores, options.exclude, &owned);
                let top = top_k(scores, k);
                let subject = Subject::User {
                    user: u,
                    known: self.known.as_ref().map(|_| known),
                };
                self.explained(top, subject, options.explain)
            })
            .collect()
    }

    /// Attaches to each of `top` (items) its explanation for `subject`, `n` items long.
    fn explained(
        &self,
        top: Vec<Ranked>,
        subject: Subject<'_>,
        n: usize,
    ) -> Result<Vec<Recommendation>, InferError> {
        let targets: Vec<u32> = top.iter().map(|s| s.index).collect();
        let because = if n == 0 {
            vec![Vec::new(); top.len()]
        } else {
            self.because(subject, &targets, n)?
        };
        Ok(top
            .into_iter()
            .zip(because)
            .map(|(s, because)| Recommendation {
                id: self.item_key(s.index).clone(),
                score: s.score,
                because,
            })
            .collect())
    }

    /// `top` (internal items) named by their external keys.
    fn scored_items(&self, top: Vec<Ranked>) -> Vec<Scored> {
        top.into_iter()
            .map(|s| Scored {
                id: self.item_key(s.index).clone(),
                score: s.score,
            })
            .collect()
    }

    /// The `n` strongest positive reasons of `subject` for each internal item of `targets`.
    fn because(
        &self,
        subject: Subject<'_>,
        targets: &[u32],
        n: usize,
    ) -> Result<Vec<Vec<Because>>, InferError> {
        let targets: Vec<usize> = targets.iter().map(|&t| t as usize).collect();
        let weights = self
            .family
            .explain(subject, &targets)
            .map_err(|e| self.unexplained(e))?;
        Ok(weights
            .into_iter()
            .zip(&targets)
            .map(|(mut weights, &t)| {
                weights.retain(|&(i, w)| w > 0.0 && w.is_finite() && i as usize != t);
                // Internal order is key order (the manifest's keys ascend).
                weights.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                weights.truncate(n);
                weights
                    .into_iter()
                    .map(|(i, weight)| Because {
                        item: self.item_key(i).clone(),
                        weight,
                    })
                    .collect()
            })
            .collect())
    }

    fn unexplained(&self, why: Unexplained) -> InferError {
        let kind = self.manifest.model.kind();
        match why {
            Unexplained::ById(by_id) => by_id.error(kind),
            Unexplained::NoKnownItems => InferError::Unsupported(format!(
                "this export (format version {}) carries no known items, by which model kind \
                 `{kind}` explains a recommendation: export the run again for `explain`",
                self.manifest.format_version
            )),
        }
    }

    /// Why `user` would get each of `items`: for each item, the `n` known items of the user
    /// that weigh most in its score, strongest first. How the weight is computed depends on
    /// the model (the crate documentation lists each family's): the cosine similarity of item
    /// embeddings (MF, GMF, MLP, NeuMF, LightGCN, I-AutoRec's item codes), the final
    /// position's attention (SASRec, BERT4Rec), or the drop of the item's score when the known
    /// item is removed from the model's input (Mult-DAE, Mult-VAE, CDAE, U-AutoRec,
    /// GRU4Rec). Only positive weights are given, never the item itself, and only the user's
    /// own items: an explanation may be shorter than `n`, or empty.
    pub fn explain(
        &self,
        user: &Key,
        items: &[Key],
        n: usize,
    ) -> Result<Vec<Vec<Because>>, InferError> {
        let u = self.user_index(user)?;
        let targets = items
            .iter()
            .map(|i| self.item_index(i))
            .collect::<Result<Vec<_>, _>>()?;
        let subject = Subject::User {
            user: u as usize,
            known: self.known.as_ref().map(|_| self.known_internal(u)),
        };
        self.because(subject, &targets, n)
    }

    /// The history items of a user given by `history` (external keys, oldest first; unknown
    /// ones ignored), as internal ids.
    fn history_items(&self, history: &[Key]) -> Vec<u32> {
        history
            .iter()
            .filter_map(|i| self.items.get(i).copied())
            .collect()
    }

    /// [`Self::explain`] for a user given by their item history (history-based models).
    pub fn explain_history(
        &self,
        history: &[Key],
        items: &[Key],
        n: usize,
    ) -> Result<Vec<Vec<Because>>, InferError> {
        let own = self.history_items(history);
        let targets = items
            .iter()
            .map(|i| self.item_index(i))
            .collect::<Result<Vec<_>, _>>()?;
        self.because(Subject::History(&own), &targets, n)
    }

    /// The `k` best items for a user given by their item history (external ids; unknown ones
    /// are ignored), leaving out `exclude` and the history's own items: how a history-based
    /// model (Mult-DAE, Mult-VAE, CDAE, SASRec, BERT4Rec, GRU4Rec) serves a user it was not
    /// trained on; CDAE gives such a user a zero user vector; the sequence models read the
    /// history in the order given, oldest first. Models that score users by id answer
    /// [`InferError::Unsupported`].
    pub fn recommend_history(
        &self,
        history: &[Key],
        k: usize,
        exclude: &[Key],
    ) -> Result<Vec<Scored>, InferError> {
        let options = Options {
            exclude,
            ..Options::default()
        };
        Ok(self
            .recommend_history_for(history, k, &options)?
            .into_iter()
            .map(|r| Scored {
                id: r.id,
                score: r.score,
            })
            .collect())
    }

    /// Every item's score, in internal order, for a customer given by the internal ids of
    /// their items (oldest first), as [`Self::recommend_history_for`] ranks them: what a
    /// history-based model reads, or a dot-product model's fold-in.
    pub fn history_scores_internal(&self, items: &[u32]) -> Result<Vec<f32>, InferError> {
        self.family
            .history_scores(items)
            .map_err(|by_id| by_id.error(self.manifest.model.kind()))
    }

    /// [`Self::recommend_history`] as `options` say: the history's items are the user's known
    /// items (left out unless [`Known::Include`], and what explanations name). A history has
    /// no days, so [`Known::Since`] is refused.
    pub fn recommend_history_for(
        &self,
        history: &[Key],
        k: usize,
        options: &Options<'_>,
    ) -> Result<Vec<Recommendation>, InferError> {
        if let Known::Since(_) = options.known {
            return Err(InferError::Unsupported(
                "a history given with the query has no dates, so nothing in it can be left out \
                 since a date: use all or none"
                    .into(),
            ));
        }
        let items = self.history_items(history);
        let mut scores = self.history_scores_internal(&items)?;
        let owned: &[u32] = match options.known {
            Known::Include => &[],
            _ => &items,
        };
        self.leave_out(&mut scores, options.exclude, owned);
        let top = top_k(&scores, k);
        self.explained(top, Subject::History(&items), options.explain)
    }

    /// The `k` users most likely to want `item` (campaign targeting), leaving out those who
    /// already have it (their known items hold it). For an autoencoder or a sequence model
    /// this computes every user's row once.
    pub fn audience(&self, item: &Key, k: usize) -> Result<Vec<Scored>, InferError> {
        Ok(self
            .audience_for(item, k, &Options::default())?
            .into_iter()
            .map(|r| Scored {
                id: r.id,
                score: r.score,
            })
            .collect())
    }

    /// [`Self::audience`] as `options` say: `exclude` lists users to leave out, [`Known`]
    /// which of the item's owners are left out, and `explain` how many of each member's own
    /// items explain their score for `item`. With `k` at least the number of users, this
    /// ranks every user (for gains curves).
    pub fn audience_for(
        &self,
        item: &Key,
        k: usize,
        options: &Options<'_>,
    ) -> Result<Vec<Recommendation>, InferError> {
        self.check_exclusion(options.known)?;
        let i = self.item_index(item)?;
        let users = self.user_keys.len();
        let mut scores = self.family.audience_scores(i as usize, users);
        for u in options.exclude.iter().filter_map(|u| self.users.get(u)) {
            scores[*u as usize] = f32::NAN;
        }
        for (u, score) in scores.iter_mut().enumerate() {
            let u = u as u32;
            if let Ok(at) = self.known_internal(u).binary_search(&i) {
                let day = || self.known_days_internal(u).map_or(i32::MAX, |d| d[at]);
                if options.known.leaves_out(day) {
                    *score = f32::NAN;
                }
            }
        }
        let top = top_k(&scores, k);
        top.into_iter()
            .map(|s| {
                let because = if options.explain == 0 {
                    Vec::new()
                } else {
                    let u = s.index;
                    let subject = Subject::User {
                        user: u as usize,
                        known: self.known.as_ref().map(|_| self.known_internal(u)),
                    };
                    self.because(subject, &[i], options.explain)?.remove(0)
                };
                Ok(Recommendation {
                    id: self.user_key(s.index).clone(),
                    score: s.score,
                    because,
                })
            })
            .collect()
    }

    /// The representation of `user` for segmentation: the vector the model scores items from.
    /// MF, GMF, MLP and LightGCN: the user embedding (LightGCN's final one); NeuMF: its GMF and
    /// MLP user embeddings concatenated; Mult-DAE, Mult-VAE, CDAE: the encoder's code of the
    /// user's row (Mult-VAE: the mean; CDAE: with the user's vector); U-AutoRec: the code of
    /// the user's rating row; SASRec, BERT4Rec: the final position's state; GRU4Rec: the last
    /// state. I-AutoRec encodes items and answers [`InferError::Unsupported`]. All users of
    /// a model have vectors of the same length.
    pub fn user_vector(&self, user: &Key) -> Result<Vec<f32>, InferError> {
        let u = self.user_index(user)?;
        self.family.user_vector(u as usize)
    }
}
