// sasq-experiment: the runner's fake-quant perplexities (runner.hpp).
#include "experiment/runner.hpp"

#include "llama/forward_instances.hpp"

namespace sasq::experiment {

double Runner::ppl_fake(const llama::QuantizedModel& qm, const Seqs& seqs, const ActQuantConfig& ac,
                        const llama::SiteParams* sp, const Rotation* down) const {
  auto fake = [&] { return llama::with_online_rotation(llama::FakeQuantExec(ac, sp, &qm), down); };
  return llama::evaluate_ppl(qm.model, rope_, seqs, o_.threads, fake).ppl();
}

double Runner::ppl_fake_unrotated(const llama::QuantizedModel& qm, const Seqs& seqs, const ActQuantConfig& ac,
                                  const llama::SiteParams* sp) const {
  auto fake = [&] { return llama::FakeQuantExec(ac, sp, &qm); };
  return llama::evaluate_ppl(qm.model, rope_, seqs, o_.threads, fake).ppl();
}

}  // namespace sasq::experiment
