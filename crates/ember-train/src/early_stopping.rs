//! Early stopping on the monitored validation metric, as burn-train's `MetricEarlyStoppingStrategy`:
//! each validated epoch is observed; training stops once `train.patience` epochs have passed
//! since the best one.

use ember_metrics::MetricsReport;

/// The best epoch of a stage so far, and when to give up on a better one.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    /// The metric compared (`eval.monitor`).
    monitor: String,
    higher_is_better: bool,
    /// Epochs without improvement before stopping (at least 1).
    patience: usize,
    /// The best epoch and its value; a NaN value is beaten by any number.
    best: Option<(usize, f64)>,
}

impl EarlyStopping {
    /// Stops after `patience` epochs (0 is read as 1) without improvement of `monitor`.
    pub fn new(monitor: &str, patience: usize) -> Self {
        Self {
            monitor: monitor.to_string(),
            higher_is_better: ember_metrics::higher_is_better(monitor),
            patience: patience.max(1),
            best: None,
        }
    }

    /// The monitored value of `report` (NaN when it lacks the metric).
    pub fn value(&self, report: &MetricsReport) -> f64 {
        report.get(&self.monitor).unwrap_or(f64::NAN)
    }

    /// Takes `epoch`, validated as `report`, for the best so far whatever came before (a
    /// pre-trained start, or the best of a resumed stage).
    pub fn set_best(&mut self, epoch: usize, report: &MetricsReport) {
        self.best = Some((epoch, self.value(report)));
    }

    /// Records `epoch`'s validation value; whether it is the best so far.
    pub fn observe(&mut self, epoch: usize, value: f64) -> bool {
        let improved = self.best.is_none_or(|(_, best)| {
            if best.is_nan() {
                !value.is_nan()
            } else if self.higher_is_better {
                value > best
            } else {
                value < best
            }
        });
        if improved {
            self.best = Some((epoch, value));
        }
        improved
    }

    /// Epochs from the best one to `epoch`.
    pub fn since_best(&self, epoch: usize) -> usize {
        epoch - self.best.map_or(0, |(best, _)| best)
    }

    /// Whether training stops after `epoch`: `patience` epochs since the best.
    pub fn should_stop(&self, epoch: usize) -> bool {
        self.since_best(epoch) >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(metric: &str, value: f64) -> MetricsReport {
        MetricsReport {
            protocol: "test".into(),
            users: 1,
            skipped_users: 0,
            metrics: vec![(metric.into(), value)],
            negatives: None,
            warnings: vec![],
            groups: Vec::new(),
        }
    }

    /// NDCG 0.30, 0.35, 0.34, 0.35, 0.33 with patience 3: epoch 2 is the best (a tie does not
    /// improve), and training stops after epoch 5, three epochs later.
    #[test]
    fn a_higher_is_better_metric_stops_patience_epochs_after_its_best() {
        let mut stopping = EarlyStopping::new("NDCG@10", 3);
        let seen: Vec<(bool, bool)> = [0.30, 0.35, 0.34, 0.35, 0.33]
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let epoch = k + 1;
                (stopping.observe(epoch, v), stopping.should_stop(epoch))
            })
            .collect();
        assert_eq!(
            seen,
            [
                (true, false),
                (true, false),
                (false, false),
                (false, false),
                (false, true)
            ]
        );
        assert_eq!(stopping.since_best(5), 3);
    }

    /// RMSE improves downwards; patience 0 stops one epoch after the best.
    #[test]
    fn a_lower_is_better_metric_improves_downwards_and_patience_0_is_1() {
        let mut stopping = EarlyStopping::new("RMSE", 0);
        assert!(stopping.observe(1, 0.9));
        assert!(!stopping.should_stop(1));
        assert!(stopping.observe(2, 0.8));
        assert!(!stopping.observe(3, 0.85));
        assert!(stopping.should_stop(3));
    }

    /// A NaN best (a metric the report lacked) is beaten by any number, never by NaN.
    #[test]
    fn a_nan_best_is_beaten_by_any_number() {
        let mut stopping = EarlyStopping::new("NDCG@10", 5);
        let start = report("HR@10", 0.5);
        assert!(stopping.value(&start).is_nan());
        stopping.set_best(0, &start);
        assert!(!stopping.observe(1, f64::NAN));
        assert!(stopping.observe(2, 0.01));
        assert!(!stopping.observe(3, f64::NAN));
        assert_eq!(stopping.since_best(3), 1);
    }

    /// A pre-trained start (epoch 0) competes: a worse first epoch does not improve on it.
    #[test]
    fn a_best_set_before_training_is_what_epochs_must_beat() {
        let mut stopping = EarlyStopping::new("NDCG@10", 2);
        stopping.set_best(0, &report("NDCG@10", 0.4));
        assert!(!stopping.observe(1, 0.39));
        assert!(!stopping.should_stop(1));
        assert!(!stopping.observe(2, 0.4));
        assert!(stopping.should_stop(2));
    }
}
