# Two commands set everything up on a fresh machine:
#   make demo   virtual environment + install, train the two toy models (words, then characters), check their facts, sample
#   make test   virtual environment + install (with the test tools), run the test suite
#   make test-fast  the model, tokenizer, config and API tests only (under a minute)
#   make play   the playground page on the word-level toy model (trained first if runs/toy_words/best.pt is missing)
#   make bench  training/generation speed, MFU and time-to-loss on tinyshakespeare (expects ../shared/data/tinyshakespeare.txt)
#   make bench-gpu  on one GPU: our GPU recipes beside nanoGPT's own (NANOGPT=path, PY=a python with CUDA torch)
PYTHON ?= python3
VENV ?= venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast play bench bench-gpu clean

demo: $(VENV)/installed
	$(PY) train.py --config configs/toy_words.yaml --overwrite $(ARGS)
	$(PY) toy_eval.py --checkpoint runs/toy_words/best.pt
	$(PY) generate.py --checkpoint runs/toy_words/best.pt --prompt "This animal barks. This animal is a" --temperature 0 --max-new-tokens 2 --show-probs 5
	$(PY) generate.py --checkpoint runs/toy_words/best.pt --prompt "He broke the" --temperature 0.8 --num-samples 3 --max-new-tokens 12
	$(PY) train.py --config configs/toy.yaml --overwrite $(ARGS)
	$(PY) toy_eval.py --checkpoint runs/toy/best.pt
	$(PY) generate.py --checkpoint runs/toy/best.pt --prompt "This animal barks. This animal is a" --temperature 0 --max-new-tokens 6 --show-probs 5

test: $(VENV)/installed-dev
	$(PY) -m pytest -q -n auto

test-fast: $(VENV)/installed-dev
	$(PY) -m pytest -q -n auto -m "fast and not slow"

play: $(VENV)/installed
	$(PY) play.py

bench: $(VENV)/installed
	$(PY) bench.py --config configs/shakespeare_char.yaml --ttl-config configs/shakespeare_char.yaml configs/shakespeare_char_fast.yaml

# Two stamps: what running needs (demo, play, bench), then the test tools on top (test); `make test` after
# `make demo` installs only the test tools, and either file changing reinstalls what follows from it.
# The bytecode is compiled once, after pip, on every core (pip compiles file by file, most of the install's time):
# where PYTHONDONTWRITEBYTECODE is set, Python would otherwise compile torch again in every process it starts, which
# doubled the test suite's time. A few packages ship templates that are not Python: compileall's complaints about
# them are left unsaid.
$(VENV)/installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

$(VENV)/installed-dev: $(VENV)/installed requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

clean:
	rm -rf $(VENV) runs .cache .pytest_cache

# The GPU check: our GPU recipes beside nanoGPT's own, on one GPU, in one command (about 5 minutes on an H100).
# Needs a CUDA build of torch (PY=python3 uses the system's) and a checkout of nanoGPT (NANOGPT=path).
NANOGPT ?= ../nanoGPT
DATA ?= ../shared/data/tinyshakespeare.txt
bench-gpu:
	$(PY) bench.py --config configs/shakespeare_char_gpu.yaml --data $(DATA) --only throughput generation side-by-side \
	  --variant cuda-graphs train.cuda_graphs=true --variant eager-graphs train.compile=false train.cuda_graphs=true \
	  --target-loss 1.47 --nanogpt $(NANOGPT) --ttl-config configs/shakespeare_char_gpu_fast.yaml \
	  --ttl-variant configs/shakespeare_char_gpu_fast.yaml train.compile=false --out bench/results/gpu.json
