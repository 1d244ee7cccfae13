/* budget_default.c: the budget `compare` applies when no --budget is given. docs/budgets.md
 * explains each limit with the measurements behind it. The rules bound what the layouts'
 * documented differences can produce on the built-in tiny model, so a run over them means a
 * new source of drift, not the known ones. */
const char dsv32_default_budget_json[] =
	"{\n"
	"  \"schema\": \"dsv32-parity-budget/1\",\n"
	"  \"rules\": [\n"
	"    {\"pattern\": \"embed\", \"max\": {\"max_abs\": 0},\n"
	"     \"why\": \"a row lookup: every implementation must agree bit for bit\"},\n"
	"    {\"pattern\": \"layers.*.indexer.topk\", \"min\": {\"jaccard\": 0.80},\n"
	"     \"why\": \"fp8 + Hadamard (ref) vs bf16 scores (hf) move boundary picks\"},\n"
	"    {\"pattern\": \"layers.*.moe.experts\", \"min\": {\"jaccard\": 0.80},\n"
	"     \"why\": \"near-tied routing scores flip under last-bit drift\"},\n"
	"    {\"pattern\": \"logits\", \"max\": {\"rel_l2\": 0.5, \"kl\": 0.1},\n"
	"     \"why\": \"logits integrate every layer's drift\"},\n"
	"    {\"pattern\": \"*\", \"max\": {\"rel_l2\": 0.5},\n"
	"     \"why\": \"any activation: drift beyond half its norm is a bug, not rounding\"}\n"
	"  ]\n"
	"}\n";
