# Shortcuts for developers. The README's two commands are ./scripts/demo and ./scripts/test
# (the second is what .ci/run calls); these targets only call them.
.PHONY: run test bench
run:
	./scripts/demo
test:
	./scripts/test
bench:
	.venv/bin/python bench/smtp_suite.py --duration 10 --with-null
