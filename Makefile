# visuomotor: the two commands are `make demo` and `make test`; both set everything up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
RUN := scripts/env.sh

.PHONY: help setup demo test lint typecheck bench soak constraints clean train-demo

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## build the environment: Debian render libs, .venv with ROS 2 + deps, colcon build
	@scripts/setup.sh

demo: setup ## run the demo on the sim twin / synthetic camera (writes demo_output/)
	@$(RUN) visuomotor demo --out demo_output

train-demo: setup ## re-record the demonstrations, retrain and evaluate models/pick_place_fr3 (~25 min on 2 cores)
	@rm -rf build/train_demo/demo_dataset
	@$(RUN) visuomotor train-demo --work build/train_demo --models models

test: setup ## ruff, mypy, and the test tiers (unit, ros, package)
	@$(RUN) scripts/test.sh

lint: setup ## ruff only
	@$(RUN) ruff check src test bench scripts setup.py

typecheck: setup ## mypy only
	@$(RUN) mypy

bench: setup ## run the benchmarks (results in bench/results/)
	@$(RUN) python bench/image_pipeline.py
	@$(RUN) python bench/sim.py
	@$(RUN) python bench/safety.py
	@$(RUN) python bench/policy.py
	@$(RUN) python bench/teleop.py

soak: setup ## the safety property tests at 100k generated cases each (bench/results/safety_soak.md)
	@$(RUN) scripts/soak.sh

constraints: ## re-pin requirements/constraints.txt from the current .venv
	@{ head -n 2 requirements/constraints.txt; .venv/bin/pip freeze --all --exclude-editable \
	   | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > requirements/constraints.tmp \
	   && mv requirements/constraints.tmp requirements/constraints.txt

clean: ## remove build outputs (keeps .venv)
	rm -rf build install log demo_output .mypy_cache .ruff_cache .pytest_cache
