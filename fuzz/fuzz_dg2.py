"""atheris target: DG2 face (lds/dg2.py).
Run: .venv/bin/python fuzz/fuzz_dg2.py [libFuzzer flags],
or all targets with a time budget: .venv/bin/python fuzz/run.py --seconds 20."""

from atheris_main import main

if __name__ == "__main__":
    main("dg2")
