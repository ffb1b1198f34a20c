//! The weights of a trained model as named f32 arrays, for the export writer. Names follow the
//! module paths (`gmf_users.weight`, `tower.layers.0.bias`, …); ember-infer documents them.

use burn::module::Param;
use burn::nn::attention::MultiHeadAttention;
use burn::nn::{Embedding, LayerNorm, Linear};
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

fn push_norm(out: &mut Vec<NamedTensor>, name: &str, norm: &LayerNorm) {
    let (shape, data) = values(&norm.gamma);
    out.push((format!("{name}.gamma"), shape, data));
    let (shape, data) = match &norm.beta {
        Some(beta) => values(beta),
        None => (vec![norm.gamma.dims()[0]], vec![0.0; norm.gamma.dims()[0]]),
    };
    out.push((format!("{name}.beta"), shape, data));
}

fn push_attention(out: &mut Vec<NamedTensor>, name: &str, attention: &MultiHeadAttention) {
    for (part, linear) in [
        ("query", &attention.query),
        ("key", &attention.key),
        ("value", &attention.value),
        ("output", &attention.output),
    ] {
        push_linear(out, &format!("{name}.{part}"), linear);
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
            Model::SasRec(m) => {
                push_embedding(&mut out, "items", &m.items);
                push_embedding(&mut out, "positions", &m.positions);
                for (k, block) in m.blocks.iter().enumerate() {
                    let name = |part: &str| format!("blocks.{k}.{part}");
                    push_norm(&mut out, &name("attention_norm"), &block.attention_norm);
                    push_attention(&mut out, &name("attention"), &block.attention);
                    push_norm(
                        &mut out,
                        &name("feed_forward_norm"),
                        &block.feed_forward_norm,
                    );
                    push_linear(&mut out, &name("feed_forward_in"), &block.feed_forward_in);
                    push_linear(&mut out, &name("feed_forward_out"), &block.feed_forward_out);
                }
                push_norm(&mut out, "final_norm", &m.final_norm);
            }
            Model::Bert4Rec(m) => {
                push_embedding(&mut out, "items", &m.items);
                push_embedding(&mut out, "positions", &m.positions);
                push_norm(&mut out, "embedding_norm", &m.embedding_norm);
                for (k, layer) in m.encoder.layers.iter().enumerate() {
                    let name = |part: &str| format!("blocks.{k}.{part}");
                    push_attention(&mut out, &name("attention"), &layer.mha);
                    push_norm(&mut out, &name("attention_norm"), &layer.norm_1);
                    push_linear(&mut out, &name("feed_forward_in"), &layer.pwff.linear_inner);
                    push_linear(
                        &mut out,
                        &name("feed_forward_out"),
                        &layer.pwff.linear_outer,
                    );
                    push_norm(&mut out, &name("feed_forward_norm"), &layer.norm_2);
                }
                push_linear(&mut out, "head", &m.head);
                push_norm(&mut out, "head_norm", &m.head_norm);
                let (shape, data) = values(&m.output_bias);
                out.push(("output_bias".into(), shape, data));
            }
        }
        out
    }
}
