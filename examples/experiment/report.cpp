// sasq-experiment's output files (report.hpp).
#include "experiment/report.hpp"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "llama/model.hpp"

namespace sasq::experiment {

std::string fmt(double v, int prec) {
  if (std::isnan(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

std::string fmt_ppl(double v) {
  if (std::isnan(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, v < 1e4 ? "%.4f" : "%.3e", v);
  return b;
}

std::string pct(double v, double ref) {
  char b[64];
  std::snprintf(b, sizeof b, "%+.2f%%", 100.0 * (v / ref - 1.0));
  return b;
}

namespace {

/// Markers around each generated block of results.md (scripts/results_doc.py copies the blocks into
/// docs/results.md between the same markers).
std::string begin_block(const std::string& name) { return "<!-- sasq-experiment:" + name + " -->\n"; }
std::string end_block(const std::string& name) { return "<!-- /sasq-experiment:" + name + " -->\n"; }

/// The plain-model row of `method` (weights `weights`) at bit configuration `bits`, or null.
const Row* find_row(const std::vector<Row>& rows, const std::string& bits, const std::string& method,
                    const std::string& weights) {
  for (const Row& r : rows)
    if (r.variant == "plain" && r.bits == bits && r.method == method && r.weights == weights) return &r;
  return nullptr;
}

/// The plain-model row at `bits` with the lowest perplexity on `text` (0 TinyStories, 1 WikiText)
/// among those `pick` accepts, or null.
template <class Pick>
const Row* best_row(const std::vector<Row>& rows, const std::string& bits, int text, Pick pick) {
  const Row* best = nullptr;
  for (const Row& r : rows)
    if (r.variant == "plain" && r.bits == bits && pick(r) &&
        (!best || (text == 0 ? r.ppl_ts < best->ppl_ts : r.ppl_wiki < best->ppl_wiki)))
      best = &r;
  return best;
}

std::string row_label(const Row& r) {
  if (r.weights == "gptq-ao") return r.method + " (GPTQ act-order)";
  return r.method + (r.weights == "rtn" && r.method.find("(RTN)") == std::string::npos ? " (RTN)" : "");
}

/// The targets of issue 11, each met or missed, from this run's rows (plain model).
std::string targets_md(const std::vector<Row>& rows, bool quick, double total_s, double cpu_s) {
  std::ostringstream t;
  t << "| target | result | verdict |\n|---|---|---|\n";
  const Row* fp32 = find_row(rows, "FP32", "FP32", "");
  auto verdict = [](bool met) { return met ? std::string("**met**") : std::string("**missed**"); };
  auto is_sasq = [](const Row& r) { return r.method.rfind("SASQ", 0) == 0; };
  if (const Row* d = find_row(rows, "W4A8", "dynamic per-token", "gptq"); d && fp32)
    t << "| W4A8 dynamic per-token, GPTQ per-channel weights ≤ FP32 + 10 % | " << fmt_ppl(d->ppl_ts) << " = FP32 "
      << pct(d->ppl_ts, fp32->ppl_ts) << " | " << verdict(d->ppl_ts <= 1.10 * fp32->ppl_ts) << " |\n";
  const Row* quarot = find_row(rows, "W4A4", "QuaRot (rotation + dynamic clip 0.9)", "gptq");
  for (int text = 0; text < 2 && quarot; ++text) {
    const Row* s = best_row(rows, "W4A4", text, is_sasq);
    if (!s) continue;
    const double ps = text == 0 ? s->ppl_ts : s->ppl_wiki, pq = text == 0 ? quarot->ppl_ts : quarot->ppl_wiki;
    t << "| W4A4 " << (text == 0 ? "TinyStories" : "WikiText-2") << ": best SASQ static ≤ QuaRot (stretch −5 %) | "
      << row_label(*s) << " " << fmt_ppl(ps) << " vs QuaRot " << fmt_ppl(pq) << " (" << pct(ps, pq) << ") | "
      << verdict(ps <= pq) << "; stretch " << (ps <= 0.95 * pq ? "met" : "missed") << " |\n";
  }
  if (const Row* s = best_row(rows, "W8A8", 0, is_sasq); s && fp32) {
    t << "| W8A8 TinyStories: best SASQ static ≤ FP32 + 0.1 % | " << row_label(*s) << " " << fmt_ppl(s->ppl_ts)
      << " = FP32 " << pct(s->ppl_ts, fp32->ppl_ts) << " | " << verdict(s->ppl_ts <= 1.001 * fp32->ppl_ts) << " |\n";
    if (const Row* d = best_row(rows, "W8A8", 0, [](const Row& r) { return !r.is_static; }))
      t << "| W8A8 TinyStories: best SASQ static ≤ best dynamic row | " << fmt_ppl(s->ppl_ts) << " vs "
        << row_label(*d) << " " << fmt_ppl(d->ppl_ts) << " (" << pct(s->ppl_ts, d->ppl_ts) << ") | "
        << verdict(s->ppl_ts <= d->ppl_ts) << " |\n";
  }
  t << "| " << (quick ? "`--quick` ≤ 2 min" : "full run ≤ 15 min") << " (wall time; meaningful on an idle 2-core machine) | "
    << fmt(total_s, 0) << " s wall, " << fmt(cpu_s, 0) << " s CPU | " << verdict(total_s <= (quick ? 120.0 : 900.0))
    << " |\n";
  return t.str();
}

}  // namespace

void write_outputs(const Options& o, const std::vector<Row>& rows, const std::vector<Row>& ablation,
                   const std::vector<train::TrainResult>& trainings, const std::vector<std::string>& names,
                   double total_s, double gptq_s, int gptq_models, const PhaseTimes& phases) {
  std::map<std::string, const Row*> fp32;
  for (const Row& r : rows)
    if (r.method == "FP32") fp32[r.variant] = &r;

  std::ostringstream csv;
  csv << "variant,text,method,weights,note,weight_bits,weight_group,act_bits,ppl,rel_change_vs_fp32,int_tokens_per_s,"
         "train_s\n";
  for (const Row& r : rows)
    for (int text = 0; text < 2; ++text) {
      const double p = text == 0 ? r.ppl_ts : r.ppl_wiki;
      const double ref = text == 0 ? fp32[r.variant]->ppl_ts : fp32[r.variant]->ppl_wiki;
      csv << r.variant << ',' << (text == 0 ? "tinystories" : "wikitext2") << ",\"" << r.method << "\"," << r.weights
          << ",\"" << r.note << "\"," << r.wbits << ',' << r.wgroup << ',' << r.abits << ',' << fmt(p, 6) << ','
          << fmt(p / ref - 1.0, 6) << ',' << fmt(r.int_tokens_per_s, 0) << ',' << fmt(r.train_s, 2) << '\n';
    }

  std::ostringstream md;
  md << begin_block("table")
     << "| model | bits | weights | method | TinyStories ppl | Δ vs FP32 | WikiText-2 ppl | Δ vs FP32 | int tok/s | train s |\n"
     << "|---|---|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const Row& r : rows) {
    const Row& f = *fp32[r.variant];
    const bool sasq = r.method.rfind("SASQ", 0) == 0;
    const std::string b = sasq ? "**" : "";
    md << "| " << r.variant << " | " << r.bits << " | " << r.weights << " | " << b << r.method
       << (r.note.empty() ? "" : " (" + r.note + ")") << b << " | " << b << fmt_ppl(r.ppl_ts) << b << " | "
       << pct(r.ppl_ts, f.ppl_ts) << " | " << b << fmt_ppl(r.ppl_wiki) << b << " | " << pct(r.ppl_wiki, f.ppl_wiki)
       << " | " << fmt(r.int_tokens_per_s, 0) << " | " << fmt(r.train_s, 1) << " |\n";
  }
  md << end_block("table");
  std::ostringstream abl;
  if (!ablation.empty()) {
    const Row& f = *fp32[ablation.front().variant];
    md << "\nTruncation ablation (" << kAblatedMethod << " W8A8 scales on the FP32 weights):\n\n"
       << begin_block("ablation") << "| activations | TinyStories ppl | Δ vs FP32 | WikiText-2 ppl | Δ vs FP32 |\n|---|---:|---:|---:|---:|\n";
    for (const Row& r : ablation)
      md << "| " << r.method << " | " << fmt_ppl(r.ppl_ts) << " | " << pct(r.ppl_ts, f.ppl_ts) << " | "
         << fmt_ppl(r.ppl_wiki) << " | " << pct(r.ppl_wiki, f.ppl_wiki) << " |\n";
    md << end_block("ablation");
    abl << "variant,activations,act_bits,ppl_tinystories,ppl_wikitext2,rel_change_tinystories,rel_change_wikitext2\n";
    for (const Row& r : ablation)
      abl << r.variant << ",\"" << r.method << "\"," << r.abits << ',' << fmt(r.ppl_ts, 6) << ',' << fmt(r.ppl_wiki, 6)
          << ',' << fmt(r.ppl_ts / f.ppl_ts - 1.0, 6) << ',' << fmt(r.ppl_wiki / f.ppl_wiki - 1.0, 6) << '\n';
  }
  const double cpu_s = process_cpu_seconds();
  md << "\n" << begin_block("targets") << targets_md(rows, o.quick, total_s, cpu_s) << end_block("targets");
  md << "\n" << begin_block("timing") << "Total wall time " << fmt(total_s, 0) << " s, " << fmt(cpu_s, 0)
     << " s of CPU time (all threads), " << o.threads << " threads" << (o.quick ? " (--quick)" : "") << "; GPTQ "
     << fmt(gptq_s, 1) << " s wall for " << gptq_models << " models.\n\n"
     << "| phase | CPU s | wall s |\n|---|---:|---:|\n";
  for (const auto& [name, t] : phases.totals())
    md << "| " << name << " | " << fmt(t.cpu_s, 1) << " | " << fmt(t.wall_s, 1) << " |\n";
  md << end_block("timing");

  std::ostringstream sites;
  sites << "training,layer,site,initial_scale,learned_scale,initial_clip_threshold,clip_threshold,"
           "initial_clip_fraction,clip_fraction,drift\n";
  for (std::size_t i = 0; i < trainings.size(); ++i)
    for (const train::SiteReport& s : trainings[i].sites)
      sites << '"' << names[i] << "\"," << s.layer << ',' << llama::site_name(s.site) << ',' << s.initial[0] << ','
            << s.learned[0] << ',' << s.initial_clip_threshold << ',' << s.clip_threshold << ','
            << s.initial_clip_fraction << ',' << s.clip_fraction << ',' << s.drift << '\n';
  // Each file whole or not at all; the folder was checked writable before the run.
  examples::write_file_atomic(o.out + "/results.csv", csv.str());
  examples::write_file_atomic(o.out + "/results.md", md.str());
  examples::write_file_atomic(o.out + "/results_sites.csv", sites.str());
  if (!ablation.empty()) examples::write_file_atomic(o.out + "/results_ablation.csv", abl.str());
  std::cout << md.str();
}

}  // namespace sasq::experiment
