//! The record of every trained epoch: a line in the run's log, a JSON line in `metrics.jsonl`
//! and a point of the learning curves. A checkpoint keeps the curves and the count of lines,
//! so that a resumed run drops the lines written after it and draws the same curves.

use ember_metrics::MetricsReport;
use serde_json::json;

use crate::epoch::EpochStats;
use crate::plot::EpochPoint;
use crate::{RunDir, TrainError, files};

/// The epochs recorded so far.
#[derive(Debug, Clone, Default)]
pub struct EpochLog {
    /// Every epoch trained so far, for the learning-curve plot.
    curves: Vec<EpochPoint>,
    /// Lines written to `metrics.jsonl`.
    lines: usize,
}

/// An epoch's validation, as the log records it.
#[derive(Debug, Clone, Copy)]
pub struct Validated<'a> {
    /// Every validation metric.
    pub report: &'a MetricsReport,
    /// The monitored metric's name and value.
    pub monitor: (&'a str, f64),
    /// Whether it is the stage's best epoch so far.
    pub best: bool,
    /// Wall seconds the validation took.
    pub secs: f64,
}

impl EpochLog {
    /// Continues a log of `lines` lines and these `curves` (a resumed run's).
    pub fn resumed(curves: Vec<EpochPoint>, lines: usize) -> Self {
        Self { curves, lines }
    }

    /// Every epoch trained so far.
    pub fn curves(&self) -> &[EpochPoint] {
        &self.curves
    }

    /// Lines written to `metrics.jsonl`.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Records epoch `epoch` of `epochs` of stage `stage`, trained as `stats`, validated as
    /// `valid` when it was.
    pub fn record(
        &mut self,
        run: &mut RunDir,
        (stage, epoch, epochs): (&str, usize, usize),
        stats: &EpochStats,
        valid: Option<Validated>,
    ) -> Result<(), TrainError> {
        let mut line = json!({
            "stage": stage,
            "epoch": epoch,
            "loss": stats.loss,
            "samples_per_sec": stats.samples_per_sec,
            "train_secs": stats.train_secs,
        });
        let mut summary = format!(
            "{stage} epoch {epoch}/{epochs}: loss {:.4}, {:.0} samples/s, train {:.1}s",
            stats.loss, stats.samples_per_sec, stats.train_secs
        );
        if let Some(valid) = valid {
            let (monitor, value) = valid.monitor;
            summary += &format!(
                ", eval {:.1}s, valid {monitor} {value:.4}{}",
                valid.secs,
                if valid.best { " (best)" } else { "" }
            );
            line["valid"] = valid
                .report
                .metrics
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
        }
        run.log(&summary);
        self.curves.push(EpochPoint {
            stage: stage.to_string(),
            epoch,
            loss: stats.loss as f64,
            valid: valid.map(|v| v.monitor.1),
        });
        run.append_line(files::EPOCHS, &line.to_string())?;
        self.lines += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(loss: f32) -> EpochStats {
        EpochStats {
            loss,
            examples: 100,
            samples: 500,
            samples_per_sec: 250.0,
            train_secs: 2.0,
        }
    }

    /// An epoch without validation and one with: two JSON lines, two curve points (the second
    /// with the monitored value), and the log's lines.
    #[test]
    fn each_epoch_is_a_json_line_a_curve_point_and_a_log_line() {
        let out = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(out.path(), "log").unwrap();
        let mut log = EpochLog::default();
        log.record(&mut run, ("gmf", 1, 2), &stats(0.5), None)
            .unwrap();
        let report = MetricsReport {
            protocol: "sampled".into(),
            users: 3,
            skipped_users: 0,
            metrics: vec![("HR@10".into(), 0.75), ("NDCG@10".into(), 0.5)],
            negatives: None,
            warnings: vec![],
            groups: Vec::new(),
        };
        let valid = Validated {
            report: &report,
            monitor: ("NDCG@10", 0.5),
            best: true,
            secs: 0.5,
        };
        log.record(&mut run, ("gmf", 2, 2), &stats(0.25), Some(valid))
            .unwrap();
        let lines = std::fs::read_to_string(run.path(files::EPOCHS)).unwrap();
        assert_eq!(
            lines,
            "{\"epoch\":1,\"loss\":0.5,\"samples_per_sec\":250.0,\"stage\":\"gmf\",\"train_secs\":2.0}\n\
             {\"epoch\":2,\"loss\":0.25,\"samples_per_sec\":250.0,\"stage\":\"gmf\",\"train_secs\":2.0,\
             \"valid\":{\"HR@10\":0.75,\"NDCG@10\":0.5}}\n"
        );
        assert_eq!(log.lines(), 2);
        let points: Vec<_> = log
            .curves()
            .iter()
            .map(|p| (p.stage.as_str(), p.epoch, p.loss, p.valid))
            .collect();
        assert_eq!(points, [("gmf", 1, 0.5, None), ("gmf", 2, 0.25, Some(0.5))]);
        let text = std::fs::read_to_string(run.path("log.txt")).unwrap();
        assert_eq!(
            text,
            "gmf epoch 1/2: loss 0.5000, 250 samples/s, train 2.0s\n\
             gmf epoch 2/2: loss 0.2500, 250 samples/s, train 2.0s, eval 0.5s, valid NDCG@10 0.5000 (best)\n"
        );
    }

    /// A resumed log counts on from the checkpoint's lines and keeps its curves.
    #[test]
    fn a_resumed_log_counts_on_from_its_checkpoint() {
        let out = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(out.path(), "log").unwrap();
        let earlier = EpochPoint {
            stage: "mf".into(),
            epoch: 1,
            loss: 0.75,
            valid: Some(0.125),
        };
        let mut log = EpochLog::resumed(vec![earlier.clone()], 1);
        log.record(&mut run, ("mf", 2, 3), &stats(0.5), None)
            .unwrap();
        assert_eq!(log.lines(), 2);
        assert_eq!(log.curves()[0], earlier);
        assert_eq!(log.curves().len(), 2);
    }
}
