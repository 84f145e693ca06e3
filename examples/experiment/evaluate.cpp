// sasq-experiment: the runner's FP32, truncation-ablation and true-integer perplexities (runner.hpp).
#include "experiment/runner.hpp"

#include "llama/forward_instances.hpp"

namespace sasq::experiment {

double Runner::ppl_fp32(const llama::Weights& w, const Seqs& seqs) const {
  return llama::evaluate_ppl(w, rope_, seqs, o_.threads, [] { return llama::Fp32Exec{}; }).ppl();
}

double Runner::ppl_truncation(const llama::Weights& w, const Seqs& seqs, const TruncationExec& exec) const {
  return llama::evaluate_ppl(w, rope_, seqs, o_.threads, [&] { return exec; }).ppl();
}

llama::PplResult Runner::run_integer(const llama::QuantizedModel& qm, const llama::PackedModel& pm, const Seqs& seqs,
                                     const ActQuantConfig& ac, const llama::SiteParams* sp,
                                     const Rotation* down) const {
  auto integer = [&] { return llama::with_online_rotation(llama::IntegerExec(pm, ac, sp), down); };
  return llama::evaluate_ppl(qm.model, rope_, seqs, o_.threads, integer);
}

}  // namespace sasq::experiment
