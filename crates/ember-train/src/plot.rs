//! Learning curves as a PNG (`curves.png` in the run directory): training loss and the
//! monitored validation metric per epoch, one line per training stage, drawn by ember-charts
//! (the same code draws them in `ember report`).

pub use ember_charts::{ChartError, EpochPoint};

/// The PNG of the learning curves of `points`, the validation panel titled with `monitor`.
pub fn learning_curves(points: &[EpochPoint], monitor: &str) -> Result<Vec<u8>, ChartError> {
    ember_charts::learning_curves(points, monitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_are_a_png_of_the_run_directory_size() {
        let points: Vec<EpochPoint> = (1..=3)
            .map(|epoch| EpochPoint {
                stage: "neumf".into(),
                epoch,
                loss: 1.0 / epoch as f64,
                valid: Some(0.1 * epoch as f64),
            })
            .collect();
        let png = learning_curves(&points, "NDCG@10").unwrap();
        assert_eq!(ember_charts::png_size(&png), Some((1200, 460)));
    }
}
