/* budget_default.c: the budget `compare` applies when no --budget is given. docs/budgets.md
 * gives the measurements behind every limit (bench/measure_budget.py: ref vs hf on the built-in
 * tiny model, 6 prompt seeds, prefill + 3 decode steps). Each limit is about 1.5-2x the worst
 * value measured, so a run over it means drift the layouts' known differences do not explain.
 * Teacher-forced (local) limits are tight per op; propagated limits only catch gross breakage,
 * since one flipped routing decision in this tiny random model moves later taps by O(1). */
const char dsv32_default_budget_json[] =
	"{\n"
	"  \"schema\": \"dsv32-parity-budget/1\",\n"
	"  \"rules\": [\n"
	"    {\"pattern\": \"embed\", \"max\": {\"max_abs\": 0},\n"
	"     \"why\": \"a row lookup: every implementation agrees bit for bit (measured 0)\"},\n"
	"    {\"pattern\": \"layers.*.attn_norm\", \"mode\": \"local\", \"max\": {\"rel_l2\": 0.008},\n"
	"     \"why\": \"HF's double rounding vs the reference's single one: measured <= 0.0037\"},\n"
	"    {\"pattern\": \"layers.*.attn.q_latent\", \"mode\": \"local\", \"max\": {\"rel_l2\": 0.012},\n"
	"     \"why\": \"norm rounding carried through wq_a: measured <= 0.0055\"},\n"
	"    {\"pattern\": \"layers.*.attn.q_rope\", \"mode\": \"local\", \"max\": {\"rel_l2\": 0.014},\n"
	"     \"why\": \"fp32 complex rotation vs bf16 cos/sin arithmetic: measured <= 0.0067\"},\n"
	"    {\"pattern\": \"layers.*.attn.k_rope\", \"mode\": \"local\", \"max\": {\"rel_l2\": 0.011},\n"
	"     \"why\": \"as q_rope: measured <= 0.0053\"},\n"
	"    {\"pattern\": \"layers.*.attn.kv_latent\", \"mode\": \"local\", \"max\": {\"rel_l2\": 0.06},\n"
	"     \"why\": \"the reference's fp8 round trip of the latent (HF has none): measured <= 0.030\"},\n"
	"    {\"pattern\": \"layers.*.indexer.scores\", \"mode\": \"local\", \"max\": {\"rel_l2\": 0.13},\n"
	"     \"why\": \"fp8 + Hadamard (ref) vs bf16 scores (hf): measured <= 0.064\"},\n"
	"    {\"pattern\": \"layers.*.indexer.topk\", \"mode\": \"local\", \"min\": {\"jaccard\": 0.75},\n"
	"     \"why\": \"boundary picks move with the scores: measured >= 0.88\"},\n"
	"    {\"pattern\": \"layers.*.moe.experts\", \"mode\": \"local\", \"min\": {\"jaccard\": 0.5},\n"
	"     \"why\": \"near-tied routing scores flip: measured >= 0.67 (decode, 2 tokens)\"},\n"
	"    {\"pattern\": \"layers.*.moe.weights\", \"mode\": \"local\", \"max\": {\"rel_l2\": 1.1},\n"
	"     \"why\": \"routing matrix: one flipped expert of 4 moves ~0.7 of the norm: measured <= 0.74\"},\n"
	"    {\"pattern\": \"layers.*\", \"mode\": \"local\", \"max\": {\"rel_l2\": 1.0},\n"
	"     \"why\": \"attention / FFN outputs after a different key or expert set: measured <= 0.73\"},\n"
	"    {\"pattern\": \"layers.*.indexer.topk\", \"mode\": \"propagate\", \"min\": {\"jaccard\": 0.4},\n"
	"     \"why\": \"measured >= 0.64\"},\n"
	"    {\"pattern\": \"layers.*.moe.experts\", \"mode\": \"propagate\", \"min\": {\"jaccard\": 0.3},\n"
	"     \"why\": \"measured >= 0.47\"},\n"
	"    {\"pattern\": \"*\", \"mode\": \"propagate\", \"max\": {\"rel_l2\": 1.2},\n"
	"     \"why\": \"propagated drift compounds flips: measured <= 0.85; 1.2 means unrelated outputs\"}\n"
	"  ]\n"
	"}\n";
