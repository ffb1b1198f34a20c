//! A loaded model and its queries. Loading reads the manifest, checks it (version, spec,
//! ids), and hands the weights to the family's loader (`families::registration`); queries
//! translate external ids and ask the family ([`Family`]), never its kind.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::InferError;
use crate::families::{self, Family};
use crate::format::{FORMAT_VERSION, Manifest};
use crate::source::Tensors;
use crate::topk::{Scored, top_k};

/// Manifests larger than this are refused before parsing (a model's id maps are far smaller).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// A loaded model. Immutable, so it can be shared between threads (`Arc<ExportedModel>`).
#[derive(Debug, Clone)]
pub struct ExportedModel {
    manifest: Manifest,
    family: Arc<dyn Family>,
    users: HashMap<i64, u32>,
    items: HashMap<i64, u32>,
}

fn id_index(ids: &[i64], what: &str, path: &Path) -> Result<HashMap<i64, u32>, InferError> {
    let mut map = HashMap::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        if map.insert(id, i as u32).is_some() {
            return Err(InferError::manifest(
                path,
                format!("{what} id {id} appears twice"),
            ));
        }
    }
    Ok(map)
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
        let manifest: Manifest =
            serde_json::from_slice(manifest).map_err(|e| InferError::Manifest {
                path: manifest_path.to_owned(),
                message: "not the JSON of a manifest".into(),
                source: Some(Box::new(e)),
            })?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(InferError::Version {
                found: manifest.format_version,
            });
        }
        manifest
            .model
            .validate()
            .map_err(|e| InferError::invalid_spec(manifest_path, e))?;
        if manifest.user_ids.is_empty() || manifest.item_ids.is_empty() {
            return Err(InferError::manifest(manifest_path, "no users or no items"));
        }
        let users = id_index(&manifest.user_ids, "user", manifest_path)?;
        let items = id_index(&manifest.item_ids, "item", manifest_path)?;
        let registration = families::registration(&manifest.model);
        let tensors = Tensors::parse(
            weights,
            weights_path,
            manifest_path,
            manifest.precision,
            registration.stored,
            (manifest.user_ids.len(), manifest.item_ids.len()),
        )?;
        let family = registration.load(&tensors.root())?;
        tensors.finish()?;
        Ok(Self {
            manifest,
            family,
            users,
            items,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Internal id of an external user id.
    pub fn user_index(&self, user: i64) -> Result<u32, InferError> {
        self.users.get(&user).copied().ok_or(InferError::UnknownId {
            what: "user",
            id: user,
        })
    }

    /// Internal id of an external item id.
    pub fn item_index(&self, item: i64) -> Result<u32, InferError> {
        self.items.get(&item).copied().ok_or(InferError::UnknownId {
            what: "item",
            id: item,
        })
    }

    /// Score of internal (user, item); both must be in range.
    pub fn score_internal(&self, user: u32, item: u32) -> f32 {
        self.family.pair_scores(&[(user as usize, item as usize)])[0]
    }

    /// Scores of every item (in internal item order) for internal user `user`, which must be in
    /// range.
    pub fn item_scores_internal(&self, user: u32) -> Vec<f32> {
        self.family.user_scores(&[user as usize]).remove(0)
    }

    /// Scores of (user, item) pairs given by external ids.
    pub fn score(&self, pairs: &[(i64, i64)]) -> Result<Vec<f32>, InferError> {
        let pairs = pairs
            .iter()
            .map(|&(u, i)| Ok((self.user_index(u)?, self.item_index(i)?)))
            .collect::<Result<Vec<_>, InferError>>()?;
        Ok(self.score_internal_pairs(&pairs))
    }

    /// Scores of (user, item) pairs given by internal ids, which must be in range. Models that
    /// decode a whole row at once (the autoencoders and sequence models: a user's row; AutoRec:
    /// an item's or a user's) decode each distinct row once, whatever the order of the pairs.
    pub fn score_internal_pairs(&self, pairs: &[(u32, u32)]) -> Vec<f32> {
        let pairs: Vec<(usize, usize)> = pairs
            .iter()
            .map(|&(u, i)| (u as usize, i as usize))
            .collect();
        self.family.pair_scores(&pairs)
    }

    /// Marks the known items of `exclude` with NaN, which top-k passes over.
    fn exclude(&self, scores: &mut [f32], exclude: &[i64]) {
        for i in exclude.iter().filter_map(|i| self.items.get(i)) {
            scores[*i as usize] = f32::NAN;
        }
    }

    /// The `k` best items for `user`, leaving out `exclude` (external item ids; unknown ones
    /// are ignored). Equal scores are ordered by external id. Items the user already has are
    /// only left out when listed in `exclude` (an autoencoder, which reconstructs its input,
    /// ranks them high).
    pub fn recommend(
        &self,
        user: i64,
        k: usize,
        exclude: &[i64],
    ) -> Result<Vec<Scored>, InferError> {
        Ok(self.recommend_many(&[(user, exclude)], k)?.remove(0))
    }

    /// [`Self::recommend`] for many `(user, exclude)` queries at once. For MF, GMF and LightGCN
    /// this reads the item table once for the whole batch instead of once per user, which is
    /// what bounds a single query's latency on a large catalogue.
    pub fn recommend_many(
        &self,
        queries: &[(i64, &[i64])],
        k: usize,
    ) -> Result<Vec<Vec<Scored>>, InferError> {
        let users = queries
            .iter()
            .map(|&(user, _)| Ok(self.user_index(user)? as usize))
            .collect::<Result<Vec<_>, InferError>>()?;
        let mut scores = self.family.user_scores(&users);
        Ok(queries
            .iter()
            .zip(&mut scores)
            .map(|((_, exclude), scores)| {
                self.exclude(scores, exclude);
                top_k(scores, &self.manifest.item_ids, k)
            })
            .collect())
    }

    /// The `k` best items for a user given by their item history (external ids; unknown ones
    /// are ignored), leaving out `exclude`: how a history-based model (Mult-DAE, Mult-VAE,
    /// CDAE, SASRec, BERT4Rec, GRU4Rec) serves a user it was not trained on; CDAE gives such a
    /// user a zero user vector; the sequence models read the history in the order given, oldest
    /// first. Pass the history in `exclude` too to leave those items out. Models that score
    /// users by id answer [`InferError::Unsupported`].
    pub fn recommend_history(
        &self,
        history: &[i64],
        k: usize,
        exclude: &[i64],
    ) -> Result<Vec<Scored>, InferError> {
        let items: Vec<u32> = history
            .iter()
            .filter_map(|i| self.items.get(i).copied())
            .collect();
        let mut scores = self
            .family
            .history_scores(&items)
            .map_err(|by_id| by_id.error(self.manifest.model.kind()))?;
        self.exclude(&mut scores, exclude);
        Ok(top_k(&scores, &self.manifest.item_ids, k))
    }

    /// The `k` users most likely to want `item` (campaign targeting). For an autoencoder or a
    /// sequence model this computes every user's row once.
    pub fn audience(&self, item: i64, k: usize) -> Result<Vec<Scored>, InferError> {
        let i = self.item_index(item)? as usize;
        let scores = self.family.audience_scores(i, self.manifest.user_ids.len());
        Ok(top_k(&scores, &self.manifest.user_ids, k))
    }
}
