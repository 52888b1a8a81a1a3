# dolly.mk — the paper's Dolly instruction-following experiment, end to end, as make targets.
#
#   make -f pipelines/dolly.mk MODEL=gpt2-xl                       # or openlm-research/open_llama_3b
#   make -f pipelines/dolly.mk -j4 MODEL=/path/to/checkpoint OUT=out/dolly-gpt2xl
#   make -n -f pipelines/dolly.mk                                   # show the whole protocol
#
# Every stage writes a shard (or a checkpoint directory, tracked by its config.json) under OUT;
# make reruns only what is older than its inputs, and -j runs independent variants in parallel.
# The protocol (section 5 of the paper): 7,505 train / 7,506 test rows; MLE for MLE_STEPS steps;
# then CPO for CPO_STEPS steps with β 5, lr 1e-5, weight decay 0.05, batch 64 and 11 negatives of
# each kind (BN, MN, TN, AN) or the MixN mix (3 BN + 5 MN + 3 TN), unranked (eq. 7) and ranked by
# embedding similarity (eq. 8, the "R" variants); WiSE-FT over α; the decoding configurations of
# Table 3 on 1,000 test prompts; judged against the ground truth in both orders; win rates with
# bootstrap CIs, reverse-KL (eq. 9) and NLL (eq. 10) under SCORER.

BIN        ?= bin
OUT        ?= out/dolly
MODEL      ?= gpt2-xl
DATA       ?= hf://datasets/databricks/databricks-dolly-15k/databricks-dolly-15k.jsonl
SEED       ?= 1
TEST_FRAC  ?= 0.5
TOKENIZE_ARGS ?= --format dolly --test-frac $(TEST_FRAC)
MAX_PROMPT ?= 512
MAX_RESP   ?= 512
# MLE stage (π_ref)
MLE_STEPS  ?= 2000
MLE_LR     ?= 1e-5
# CPO stage
CPO_STEPS  ?= 1000
BETA       ?= 5
LR         ?= 1e-5
WD         ?= 0.05
BATCH      ?= 64
MICRO      ?= 4
# Where cpo-train (training and precompute-ref) runs: empty for the CPU in float32,
# "--precision bf16" for mixed precision on a CPU with AVX512_BF16, "--device cuda" (with
# BIN=bin/cuda from make cuda) for a GPU.
DEVICE     ?=
dev = $(if $(strip $(DEVICE)), $(strip $(DEVICE)))
VARIANTS   ?= bn mn tn an mixn
RANKED     ?= bn mn tn an mixn
MIX_bn     ?= bn=11
MIX_mn     ?= mn=11
MIX_tn     ?= tn=11
MIX_an     ?= an=11
MIX_mixn   ?= bn=3,mn=5,tn=3
ALPHAS     ?= 0 0.1 0.3 0.5 0.7 0.9
# Evaluation
N_EVAL     ?= 1000
MAX_NEW    ?= 256
DECODINGS  ?= greedy topk50 topk50p07 beam2 beam4
DEC_greedy    ?= --strategy greedy
DEC_topk50    ?= --strategy sample --top-k 50 --top-p 1
DEC_topk50p07 ?= --strategy sample --top-k 50 --top-p 0.7
DEC_beam2     ?= --strategy beam --beams 2
DEC_beam4     ?= --strategy beam --beams 4
# Judge: likelihood (offline, under SCORER) or remote (an OpenAI-compatible endpoint).
JUDGE      ?= likelihood
JUDGE_ARGS ?= --base-url $(JUDGE_URL) --model $(JUDGE_NAME) --template dolly
JUDGE_URL  ?= https://api.openai.com/v1
JUDGE_NAME ?= gpt-4o-mini
SCORER     ?= $(MODEL)

comma := ,
empty :=
space := $(empty) $(empty)
CPO_MODELS := $(VARIANTS) $(addsuffix r,$(RANKED))
ENS_MODELS := $(foreach m,$(CPO_MODELS),$(foreach a,$(ALPHAS),$(m)-a$(a)))
EVAL_MODELS := mle $(ENS_MODELS)
GENS := $(foreach m,$(EVAL_MODELS),$(foreach d,$(DECODINGS),$(OUT)/gen/$(m).$(d).parquet))

.PHONY: all tokenize mle negatives train ensembles generate judge score
.DELETE_ON_ERROR:
# Keep every intermediate shard (negatives before ranking, ...) for inspection and reruns.
.SECONDARY:
all: score

# ---- data -------------------------------------------------------------------------------------
$(OUT)/model.path:
	@mkdir -p $(OUT)
	$(BIN)/cpo-model path $(MODEL) > $@.tmp && mv $@.tmp $@

$(OUT)/examples.parquet: $(OUT)/model.path
	$(BIN)/cpo-tokenize encode --tokenizer "$$(cat $<)" $(TOKENIZE_ARGS) --seed $(SEED) \
	  --max-prompt-tokens $(MAX_PROMPT) --max-response-tokens $(MAX_RESP) --skip-bad -o $@ $(DATA)

$(OUT)/train.parquet $(OUT)/test.parquet: $(OUT)/%.parquet: $(OUT)/examples.parquet
	$(BIN)/cpo-shard filter --where split=$* -o $@ $<
tokenize: $(OUT)/train.parquet $(OUT)/test.parquet

# ---- MLE: the reference model ------------------------------------------------------------------
$(OUT)/mle/config.json: $(OUT)/train.parquet $(OUT)/model.path
	$(BIN)/cpo-train --objective mle$(dev) -m "$$(cat $(OUT)/model.path)" -o $(OUT)/mle --lr $(MLE_LR) --weight-decay $(WD) \
	  --batch $(BATCH) --micro-batch $(MICRO) --steps $(MLE_STEPS) --seed $(SEED) --save-every 200 \
	  --metrics $(OUT)/mle.metrics.jsonl $<
mle: $(OUT)/mle/config.json

# ---- negatives, ranking, reference log-probabilities --------------------------------------------
$(OUT)/cands/%.parquet: $(OUT)/train.parquet $(OUT)/mle/config.json
	@mkdir -p $(@D)
	$(BIN)/cpo-negatives -m $(OUT)/mle --mix $(MIX_$*) --seed $(SEED) -o $@ $<
$(OUT)/ranked/%.parquet: $(OUT)/cands/%.parquet $(OUT)/mle/config.json
	@mkdir -p $(@D)
	$(BIN)/cpo-embed -q -m $(OUT)/mle $< | $(BIN)/cpo-train precompute-ref$(dev) -m $(OUT)/mle -o $@
negatives: $(foreach v,$(sort $(VARIANTS) $(RANKED)),$(OUT)/ranked/$(v).parquet)

# ---- CPO (eq. 7) and ranked CPO (eq. 8) --------------------------------------------------------
CPO_FLAGS = --beta $(BETA) --lr $(LR) --weight-decay $(WD) --batch $(BATCH) --micro-batch $(MICRO) \
	    --steps $(CPO_STEPS) --seed $(SEED) --save-every 200
$(OUT)/models/%/config.json: $(OUT)/ranked/%.parquet $(OUT)/mle/config.json
	$(BIN)/cpo-train --objective cpo$(dev) -m $(OUT)/mle -o $(@D) $(CPO_FLAGS) --metrics $(OUT)/$*.metrics.jsonl $<
$(OUT)/models/%r/config.json: $(OUT)/ranked/%.parquet $(OUT)/mle/config.json
	$(BIN)/cpo-train --objective cpo-rank$(dev) -m $(OUT)/mle -o $(@D) $(CPO_FLAGS) --metrics $(OUT)/$*r.metrics.jsonl $<
train: $(foreach m,$(CPO_MODELS),$(OUT)/models/$(m)/config.json)

# ---- WiSE-FT: θ = α·θ_MLE + (1−α)·θ_CPO -----------------------------------------------------------
$(OUT)/ens/%.stamp: $(OUT)/models/%/config.json $(OUT)/mle/config.json
	@mkdir -p $(@D)
	$(BIN)/cpo-ensemble -q --mle $(OUT)/mle --cpo $(OUT)/models/$* --alpha $(subst $(space),$(comma),$(ALPHAS)) \
	  -o '$(OUT)/ens/$*-a{alpha}' && touch $@
ensembles: $(foreach m,$(CPO_MODELS),$(OUT)/ens/$(m).stamp)

# ---- generation: every model × every decoding configuration ------------------------------------
model_dir = $(if $(filter mle,$(1)),$(OUT)/mle,$(OUT)/ens/$(1))
model_dep = $(if $(filter mle,$(1)),$(OUT)/mle/config.json,$(OUT)/ens/$(firstword $(subst -a, ,$(1))).stamp)
define GEN_RULE
$(OUT)/gen/$(1).$(2).parquet: $(call model_dep,$(1)) $(OUT)/test.parquet
	@mkdir -p $$(@D)
	$(BIN)/cpo-generate -q -m $(call model_dir,$(1)) --model-name $(1) $(DEC_$(2)) --max-new-tokens $(MAX_NEW) \
	  --limit $(N_EVAL) --seed $(SEED) -o $$@ $(OUT)/test.parquet
endef
$(foreach m,$(EVAL_MODELS),$(foreach d,$(DECODINGS),$(eval $(call GEN_RULE,$(m),$(d)))))
generate: $(GENS)

# ---- judging and scoring -------------------------------------------------------------------------
$(OUT)/judg/%.parquet: $(OUT)/gen/%.parquet $(OUT)/model.path
	@mkdir -p $(@D)
	$(BIN)/cpo-judge -q $(if $(filter likelihood,$(JUDGE)),--judge likelihood --judge-model "$$($(BIN)/cpo-model path $(SCORER))",--judge remote $(JUDGE_ARGS)) \
	  -o $@ $<
judge: $(patsubst $(OUT)/gen/%,$(OUT)/judg/%,$(GENS))

$(OUT)/table.md: $(patsubst $(OUT)/gen/%,$(OUT)/judg/%,$(GENS))
	$(BIN)/cpo-score -q --baseline mle --table-columns alpha --generations $(OUT)/gen \
	  --scorer-model "$$($(BIN)/cpo-model path $(SCORER))" --markdown $@ --csv $(OUT)/table.csv \
	  --plot $(OUT)/figure1.png -o $(OUT)/scores.parquet $(OUT)/judg > /dev/null
	@cat $@
score: $(OUT)/table.md
