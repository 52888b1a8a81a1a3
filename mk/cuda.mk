# mk/cuda.mk: the GPU targets, included from the Makefile (`include mk/cuda.mk`).
# The default build never needs CUDA; these do.
NVCC ?= nvcc

.PHONY: cuda gpu-check

cuda: ## rebuild the CUDA kernels (kernels/build/*.fatbin, manifest) and the GPU tools into bin/cuda/ (installs nvcc if missing)
	@command -v $(NVCC) >/dev/null || bash scripts/gpu/install-cuda-toolkit.sh
	NVCC=$(NVCC) bash kernels/build.sh
	$(GO) test ./pkg/cuda/
	@mkdir -p $(BIN)/cuda
	$(GO) build -tags cuda -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/cuda/ ./tools/...

gpu-check: ## prepare out/gpu-check/ (the cuda test binary, run.sh, the PyTorch check) for a GPU machine
	GO=$(GO) bash scripts/gpu/gpu-check.sh
