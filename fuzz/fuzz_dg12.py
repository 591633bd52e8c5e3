"""atheris target: DG12 (lds/dg12.py).
Run: .venv/bin/python fuzz/fuzz_dg12.py [libFuzzer flags],
or all targets with a time budget: .venv/bin/python fuzz/run.py --seconds 20."""

from atheris_main import main

if __name__ == "__main__":
    main("dg12")
