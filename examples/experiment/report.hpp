// sasq-experiment's output: number formatting and results.{md,csv}, results_sites.csv and
// results_ablation.csv (report.cpp).
#pragma once

#include <string>
#include <vector>

#include "experiment/grid.hpp"
#include "experiment/phases.hpp"
#include "train/trainer.hpp"

namespace sasq::experiment {

/// `v` with `prec` decimals; empty for NaN.
std::string fmt(double v, int prec);
/// Perplexity: 4 decimals, or 4 significant digits in scientific notation once it has collapsed.
std::string fmt_ppl(double v);
/// The relative change of `v` against `ref` as a signed percentage.
std::string pct(double v, double ref);

/// Writes the output files into o.out (each whole or not at all) and prints results.md.
void write_outputs(const Options& o, const std::vector<Row>& rows, const std::vector<Row>& ablation,
                   const std::vector<train::TrainResult>& trainings, const std::vector<std::string>& names,
                   double total_s, double gptq_s, int gptq_models, const PhaseTimes& phases);

}  // namespace sasq::experiment
