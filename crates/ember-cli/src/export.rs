//! `ember export`: a finished run's model for ember-infer (`manifest.json` +
//! `model.safetensors`), checked against the run's model on held-out data.

use anyhow::Result;
use clap::{Args, ValueEnum};
use ember_infer::Precision;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// A run directory written by `ember train`.
    #[arg(long)]
    run: PathBuf,
    /// The new model directory, e.g. models/NAME.
    #[arg(long)]
    out: PathBuf,
    /// Precision of the stored matrices.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    precision: PrecisionArg,
    /// Skip comparing the export's metrics with the run's model on held-out data.
    #[arg(long)]
    no_check: bool,
}

/// `--precision`, as clap parses it (ember-infer does not depend on clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PrecisionArg {
    /// 32-bit floats.
    #[value(name = "f32")]
    F32,
    /// IEEE half floats.
    #[value(name = "f16")]
    F16,
    /// Symmetric int8 with one f32 scale per row.
    #[value(name = "int8")]
    Int8,
}

impl From<PrecisionArg> for Precision {
    fn from(arg: PrecisionArg) -> Self {
        match arg {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F16 => Precision::F16,
            PrecisionArg::Int8 => Precision::Int8,
        }
    }
}

/// `ember export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let precision = Precision::from(args.precision);
    ember_decide::Destination::check(
        "--out",
        &args.out,
        ember_decide::OutputKind::Directory,
        &[&args.run],
        false,
    )?;
    let manifest = ember_train::export::export_run(&args.run, &args.out, precision)?;
    let size = std::fs::metadata(args.out.join("model.safetensors"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "exported {} ({} users, {} items, {:?}, {} bytes of weights) to {}",
        args.run.display(),
        manifest.user_ids.len(),
        manifest.item_ids.len(),
        manifest.precision,
        size,
        args.out.display()
    );
    if !args.no_check {
        let check = ember_train::export::check_export(&args.run, &args.out)?;
        println!("{}: run's model → export ({:?})", check.label, precision);
        for (name, trained, exported) in &check.metrics {
            println!(
                "  {name:<22} {trained:.4} → {exported:.4} ({:+.4})",
                exported - trained
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name on the command line reaches ember-infer as its own precision.
    #[test]
    fn each_value_name_maps_to_its_precision() {
        let parse = |name: &str| PrecisionArg::from_str(name, false).map(Precision::from);
        assert_eq!(parse("f32"), Ok(Precision::F32));
        assert_eq!(parse("f16"), Ok(Precision::F16));
        assert_eq!(parse("int8"), Ok(Precision::Int8));
        assert!(parse("int4").is_err());
    }
}
