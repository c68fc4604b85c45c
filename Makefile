# Convenience targets; the README's two commands are scripts/demo and scripts/test.
.PHONY: run test bench
run:
	./scripts/demo
test:
	./scripts/test
bench:
	.venv/bin/python bench/smtp_suite.py --duration 10 --with-null
