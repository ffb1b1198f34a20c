//! The weights of a trained model as named f32 arrays, for the export writer. Names follow the
//! module paths (`gmf_users.weight`, `tower.layers.0.bias`, …); ember-infer documents them.

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;

use crate::layers::Tower;
use crate::{AutoRec, Cdae, Gmf, Mf, Mlp, Model, MultDae, MultVae, NeuMf};

/// One named tensor: `(name, shape, row-major values)`.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

fn values<const D: usize>(param: &Param<Tensor<D>>) -> (Vec<usize>, Vec<f32>) {
    let tensor = param.val();
    let shape = tensor.dims().to_vec();
    (
        shape,
        tensor.try_into_vec_as::<f32>().expect("float parameters"),
    )
}

fn push_embedding(out: &mut Vec<NamedTensor>, name: &str, e: &Embedding) {
    let (shape, data) = values(&e.weight);
    out.push((format!("{name}.weight"), shape, data));
}

fn push_linear(out: &mut Vec<NamedTensor>, name: &str, l: &Linear) {
    let (shape, data) = values(&l.weight);
    out.push((format!("{name}.weight"), shape, data));
    if let Some(b) = &l.bias {
        let (shape, data) = values(b);
        out.push((format!("{name}.bias"), shape, data));
    }
}

fn push_tower(out: &mut Vec<NamedTensor>, tower: &Tower) {
    for (k, layer) in tower.layers().iter().enumerate() {
        push_linear(out, &format!("tower.layers.{k}"), layer);
    }
}

impl Model {
    /// Every parameter as a named f32 array.
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        match self {
            Model::Mf(Mf { users, items }) => {
                push_embedding(&mut out, "users", users);
                push_embedding(&mut out, "items", items);
            }
            Model::Gmf(Gmf {
                users,
                items,
                output,
            }) => {
                push_embedding(&mut out, "users", users);
                push_embedding(&mut out, "items", items);
                push_linear(&mut out, "output", output);
            }
            Model::Mlp(Mlp {
                users,
                items,
                tower,
                output,
            }) => {
                push_embedding(&mut out, "users", users);
                push_embedding(&mut out, "items", items);
                push_tower(&mut out, tower);
                push_linear(&mut out, "output", output);
            }
            Model::NeuMf(NeuMf {
                gmf_users,
                gmf_items,
                mlp_users,
                mlp_items,
                tower,
                output,
            }) => {
                push_embedding(&mut out, "gmf_users", gmf_users);
                push_embedding(&mut out, "gmf_items", gmf_items);
                push_embedding(&mut out, "mlp_users", mlp_users);
                push_embedding(&mut out, "mlp_items", mlp_items);
                push_tower(&mut out, tower);
                push_linear(&mut out, "output", output);
            }
            Model::MultDae(MultDae {
                encoder, decoder, ..
            })
            | Model::MultVae(MultVae {
                encoder, decoder, ..
            }) => {
                for (k, layer) in encoder.iter().enumerate() {
                    push_linear(&mut out, &format!("encoder.{k}"), layer);
                }
                for (k, layer) in decoder.iter().enumerate() {
                    push_linear(&mut out, &format!("decoder.{k}"), layer);
                }
            }
            Model::Cdae(Cdae {
                encoder,
                users,
                decoder,
                ..
            }) => {
                push_linear(&mut out, "encoder", encoder);
                push_embedding(&mut out, "users", users);
                push_linear(&mut out, "decoder", decoder);
            }
            Model::AutoRec(AutoRec {
                encoder, decoder, ..
            }) => {
                push_linear(&mut out, "encoder", encoder);
                push_linear(&mut out, "decoder", decoder);
            }
            // ember-infer has no sequence format yet: `ember export` refuses these.
            Model::SasRec(_) | Model::Bert4Rec(_) => {}
        }
        out
    }
}
