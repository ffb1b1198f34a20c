//! The segmented embedding gradient equals burn's own (`select` / `select_assign`), on the CPU
//! backends, with repeated ids, ids at both ends of the table, several reduction levels, and
//! rows absent from the batch.

use burn::module::Param;
use burn::nn::Embedding;
use burn::prelude::*;
use ember_models::lookup::{IdBatch, SegmentPlan, lookup, lookup_pair};

mod common;

/// Adds `grad`'s rows into a zero table by the plan, in plain Rust: the plan's own definition.
fn apply_plan(plan: &SegmentPlan, grad: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let dim = grad.first().map_or(0, Vec::len);
    let mut source = grad.to_vec();
    source.push(vec![0.0; dim]); // the first source's zero row
    let mut all = source.clone();
    for level in &plan.levels {
        source = level
            .index
            .chunks(level.chunk)
            .map(|chunk| {
                let mut sum = vec![0.0; dim];
                for &i in chunk {
                    for (s, v) in sum.iter_mut().zip(&source[i as usize]) {
                        *s += v;
                    }
                }
                sum
            })
            .collect();
        assert!(
            source.last().unwrap().iter().all(|&v| v == 0.0),
            "a level ends with a zero row"
        );
        all.extend(source.iter().cloned());
    }
    plan.row_map
        .iter()
        .map(|&i| all[i as usize].clone())
        .collect()
}

fn scatter_add(ids: &[i32], rows: usize, grad: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut table = vec![vec![0.0; grad[0].len()]; rows];
    for (&id, g) in ids.iter().zip(grad) {
        for (t, v) in table[id as usize].iter_mut().zip(g) {
            *t += v;
        }
    }
    table
}

/// Ids with one row repeated many times, both table ends, and some rows never used.
fn awkward_ids(rows: usize) -> Vec<i32> {
    let mut ids = vec![0, rows as i32 - 1, 3, 3, 0];
    ids.extend(std::iter::repeat_n(5, 40)); // one long segment: several levels at chunk 2..4
    ids.extend((0..rows as i32).step_by(3));
    ids.push(rows as i32 - 1);
    ids
}

#[test]
fn plan_sums_each_segment_exactly_once() {
    let rows = 23;
    let ids = awkward_ids(rows);
    let grad: Vec<Vec<f32>> = (0..ids.len())
        .map(|p| vec![p as f32, 1.0, -(p as f32) * 0.5])
        .collect();
    for chunk in [1, 2, 3, 4, 6, 16, 64] {
        let plan = SegmentPlan::new(&ids, rows, chunk);
        assert_eq!(plan.row_map.len(), rows);
        assert_eq!(
            apply_plan(&plan, &grad),
            scatter_add(&ids, rows, &grad),
            "chunk {chunk}"
        );
    }
    // A segment of 40 rows needs ⌈log2 40⌉ = 6 levels at chunks of 2.
    assert_eq!(SegmentPlan::new(&ids, rows, 2).levels.len(), 6);
    // All ids distinct: no level, the row map points at batch positions directly, or at the
    // zero row after them.
    let plan = SegmentPlan::new(&[4, 0, 2], 5, 16);
    assert!(plan.levels.is_empty());
    assert_eq!(plan.row_map, vec![1, 3, 2, 3, 0]);
    // One long segment among short ones: chunks stay small where they would mostly be padding.
    let mut skewed: Vec<i32> = (0..1000).collect();
    skewed.extend(std::iter::repeat_n(7, 1000));
    let plan = SegmentPlan::new(&skewed, 1000, 64);
    let gathered: usize = plan.levels.iter().map(|l| l.index.len()).sum();
    assert!(
        gathered <= 3 * skewed.len(),
        "{gathered} rows gathered for {}",
        skewed.len()
    );
    let grad: Vec<Vec<f32>> = (0..skewed.len()).map(|p| vec![p as f32]).collect();
    assert_eq!(apply_plan(&plan, &grad), scatter_add(&skewed, 1000, &grad));
}

/// Gradients of `sum(lookup(table, ids) * weights)` with and without the plan.
fn gradients(device: &Device, chunk: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (rows, dim) = (29, 6);
    let ids = awkward_ids(rows);
    let table_data: Vec<f32> = (0..rows * dim)
        .map(|i| ((i * 37) % 17) as f32 / 17.0 - 0.5)
        .collect();
    let weight_data: Vec<f32> = (0..ids.len() * dim)
        .map(|i| ((i * 13) % 11) as f32 / 11.0)
        .collect();
    let weights = Tensor::<2>::from_data(TensorData::new(weight_data, [ids.len(), dim]), device);
    let run = |plan: Option<usize>| {
        let table = Embedding {
            weight: Param::from_tensor(Tensor::<2>::from_data(
                TensorData::new(table_data.clone(), [rows, dim]),
                device,
            )),
        };
        let batch = IdBatch::new(&ids, rows, plan, device);
        let out = lookup(&table, &batch);
        let values = out.clone().into_data().try_to_vec::<f32>().unwrap();
        let grads = (out * weights.clone()).sum().backward();
        let grad = table.weight.val().grad(&grads).expect("a gradient");
        (values, grad.into_data().try_to_vec::<f32>().unwrap())
    };
    let (burn_out, burn_grad) = run(None);
    let (seg_out, seg_grad) = run(Some(chunk));
    (burn_out, seg_out, burn_grad, seg_grad)
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
            "element {i}: {x} vs {y}"
        );
    }
}

fn check_backend(device: Device) {
    for chunk in [2, 4, 16] {
        let (burn_out, seg_out, burn_grad, seg_grad) = gradients(&device, chunk);
        assert_eq!(burn_out, seg_out, "forward values differ");
        assert_close(&burn_grad, &seg_grad);
        assert!(burn_grad.iter().any(|&g| g != 0.0));
    }
}

#[test]
fn segmented_gradient_equals_burns_on_flex() {
    check_backend(Device::flex().autodiff());
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)]
fn segmented_gradient_equals_burns_on_ndarray() {
    check_backend(Device::ndarray().autodiff());
}

/// A Vulkan device through wgpu when `EMBER_TEST_WGPU` is set (CI sets it after installing
/// Mesa's lavapipe), else `None` with the reason printed.
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> Option<Device> {
    common::vulkan_available().then(|| Device::wgpu(DeviceKind::DefaultDevice).autodiff())
}

#[cfg(feature = "wgpu")]
#[test]
fn segmented_gradient_equals_burns_on_wgpu() {
    if let Some(device) = wgpu_device() {
        check_backend(device);
    }
}

#[test]
fn lookup_without_autodiff_is_a_plain_select() {
    let device = Device::flex();
    let table = Embedding {
        weight: Param::from_tensor(Tensor::<2>::from_data(
            [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
            &device,
        )),
    };
    let out = lookup(&table, &IdBatch::new(&[2, 0, 2], 3, Some(2), &device));
    assert_eq!(
        out.into_data().try_to_vec::<f32>().unwrap(),
        vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]
    );
}

/// Two tables looked up with the same ids: joined with a plan (the GPU path), apart without;
/// both give each table's rows and each table's own gradient, as two plain lookups do.
#[test]
fn lookup_pair_equals_two_lookups() {
    let device = Device::flex().autodiff();
    let rows = 29;
    let ids = awkward_ids(rows);
    let table = |dim: usize, salt: usize| Embedding {
        weight: Param::from_tensor(Tensor::<2>::from_data(
            TensorData::new(
                (0..rows * dim)
                    .map(|i| ((i * 37 + salt) % 17) as f32 / 17.0 - 0.5)
                    .collect::<Vec<f32>>(),
                [rows, dim],
            ),
            &device,
        )),
    };
    let weights = |dim: usize| {
        Tensor::<2>::from_data(
            TensorData::new(
                (0..ids.len() * dim)
                    .map(|i| ((i * 13) % 11) as f32 / 11.0)
                    .collect::<Vec<f32>>(),
                [ids.len(), dim],
            ),
            &device,
        )
    };
    let vec = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let run = |plan: Option<usize>, pair: bool| {
        let (a, b) = (table(3, 0), table(5, 7));
        let batch = IdBatch::new(&ids, rows, plan, &device);
        let (out_a, out_b) = if pair {
            lookup_pair(&a, &b, &batch)
        } else {
            (lookup(&a, &batch), lookup(&b, &batch))
        };
        let loss = (out_a.clone() * weights(3)).sum() + (out_b.clone() * weights(5) * 2.0).sum();
        let grads = loss.backward();
        let grad_a = a.weight.val().grad(&grads).expect("a gradient");
        let grad_b = b.weight.val().grad(&grads).expect("a gradient");
        [
            vec(out_a),
            vec(out_b),
            grad_a.into_data().try_to_vec::<f32>().unwrap(),
            grad_b.into_data().try_to_vec::<f32>().unwrap(),
        ]
    };
    let expected = run(None, false);
    for plan in [None, Some(4)] {
        let got = run(plan, true);
        assert_eq!(got[0], expected[0], "first table's rows ({plan:?})");
        assert_eq!(got[1], expected[1], "second table's rows ({plan:?})");
        assert_close(&got[2], &expected[2]);
        assert_close(&got[3], &expected[3]);
    }
    assert!(expected[3].iter().any(|&g| g != 0.0));
}

/// An embedding's gradient that reaches `select` as a column slice of a wider gradient (the
/// backward of `cat`, in the middle and at both ends) is added into the right rows: burn-flex
/// reads such a slice in place with its row stride (vendor/burn-flex, ember's patch).
#[test]
fn select_gradient_arriving_as_a_column_slice_is_the_scatter_add() {
    let device = Device::flex().autodiff();
    let rows = 29;
    let ids = awkward_ids(rows);
    let n = ids.len();
    let table = Embedding {
        weight: Param::from_tensor(Tensor::<2>::zeros([rows, 3], &device).require_grad()),
    };
    let ids_tensor = Tensor::<1, Int>::from_data(TensorData::new(ids.clone(), [n]), &device);
    let filler = |width: usize| Tensor::<2>::ones([n, width], &device);
    // Weights w[i][j] = i * 10 + j over the 2 + 3 + 4 = 9 joined columns.
    let weights: Vec<Vec<f32>> = (0..n)
        .map(|i| (0..9).map(|j| (i * 10 + j) as f32).collect())
        .collect();
    let weights_tensor = Tensor::<2>::from_data(TensorData::new(weights.concat(), [n, 9]), &device);
    let rows_out = table.weight.val().select(0, ids_tensor);
    let joined = Tensor::cat(vec![filler(2), rows_out, filler(4)], 1);
    let grads = (joined * weights_tensor).sum().backward();
    let got = table.weight.val().grad(&grads).expect("a gradient");
    let middle: Vec<Vec<f32>> = weights.iter().map(|w| w[2..5].to_vec()).collect();
    let expected = scatter_add(&ids, rows, &middle).concat();
    assert_eq!(got.into_data().try_to_vec::<f32>().unwrap(), expected);
}

/// Lookups and their join at a batch size where burn-flex copies on every thread
/// (vendor/burn-flex, ember's patch: from 65,536 elements), and their gradients, equal the
/// values computed by hand, bit for bit.
#[test]
fn threaded_lookups_join_and_gradients_match_the_hand_computed_ones() {
    let device = Device::flex().autodiff();
    let (rows, batch) = (1001, 4096);
    let (left_width, right_width) = (48, 64);
    // Whole-number values: every sum below is exact in f32, whatever the order.
    let table_values = |width: usize, salt: usize| -> Vec<f32> {
        (0..rows * width)
            .map(|i| ((i * 31 + salt) % 97) as f32 - 48.0)
            .collect()
    };
    let make_table = |values: Vec<f32>, width: usize| Embedding {
        weight: Param::from_tensor(
            Tensor::<2>::from_data(TensorData::new(values, [rows, width]), &device).require_grad(),
        ),
    };
    let (left_values, right_values) = (table_values(left_width, 1), table_values(right_width, 2));
    let left = make_table(left_values.clone(), left_width);
    let right = make_table(right_values.clone(), right_width);
    // Repeated ids (each row about four times), both ends of the table included.
    let left_ids: Vec<i32> = (0..batch).map(|i| ((i * 7919) % rows) as i32).collect();
    let right_ids: Vec<i32> = (0..batch)
        .map(|i| ((i * 104_729 + 3) % rows) as i32)
        .collect();
    let ids_tensor =
        |ids: &[i32]| Tensor::<1, Int>::from_data(TensorData::new(ids.to_vec(), [batch]), &device);
    let joined = Tensor::cat(
        vec![
            left.weight.val().select(0, ids_tensor(&left_ids)),
            right.weight.val().select(0, ids_tensor(&right_ids)),
        ],
        1,
    );
    let width = left_width + right_width;
    let weights: Vec<f32> = (0..batch * width).map(|i| (i % 5) as f32 - 2.0).collect();
    let weights_tensor =
        Tensor::<2>::from_data(TensorData::new(weights.clone(), [batch, width]), &device);

    let mut expected_joined = Vec::with_capacity(batch * width);
    for i in 0..batch {
        let (l, r) = (left_ids[i] as usize, right_ids[i] as usize);
        expected_joined.extend_from_slice(&left_values[l * left_width..(l + 1) * left_width]);
        expected_joined.extend_from_slice(&right_values[r * right_width..(r + 1) * right_width]);
    }
    assert_eq!(
        joined.clone().into_data().try_to_vec::<f32>().unwrap(),
        expected_joined,
        "the joined lookups"
    );

    let grads = (joined * weights_tensor).sum().backward();
    let weight_rows: Vec<Vec<f32>> = weights.chunks(width).map(|w| w.to_vec()).collect();
    let left_grad: Vec<Vec<f32>> = weight_rows
        .iter()
        .map(|w| w[..left_width].to_vec())
        .collect();
    let right_grad: Vec<Vec<f32>> = weight_rows
        .iter()
        .map(|w| w[left_width..].to_vec())
        .collect();
    for (name, table, ids, grad) in [
        ("left", &left, &left_ids, &left_grad),
        ("right", &right, &right_ids, &right_grad),
    ] {
        let got = table.weight.val().grad(&grads).expect("a gradient");
        assert_eq!(
            got.into_data().try_to_vec::<f32>().unwrap(),
            scatter_add(ids, rows, grad).concat(),
            "the {name} table's gradient"
        );
    }
}
