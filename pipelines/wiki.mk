# wiki.mk — the paper's Wikipedia continuation experiment: given the first 15% of an article's
# tokens, generate the rest. Four batch negatives per row (ranked and unranked), the wiki judge
# template, otherwise the same stages as dolly.mk (which this file includes).
#
#   make -f pipelines/wiki.mk MODEL=openlm-research/open_llama_3b DATA=wiki.txt
#
# DATA holds one article per line (plain text), or give DOC_PER=file with a directory of files.
DATA          ?= wiki.txt
OUT           ?= out/wiki
MODEL         ?= openlm-research/open_llama_3b
DOC_PER       ?= line
TOKENIZE_ARGS ?= --format text --doc-per $(DOC_PER) --prefix-frac 0.15 --test-frac 0.5
MAX_PROMPT    ?= 256
MAX_RESP      ?= 1024
VARIANTS      ?= bn
RANKED        ?= bn
MIX_bn        ?= bn=4
DECODINGS     ?= greedy topk50 topk50p07
JUDGE_ARGS    ?= --base-url $(JUDGE_URL) --model $(JUDGE_NAME) --template wiki
include $(dir $(lastword $(MAKEFILE_LIST)))dolly.mk
