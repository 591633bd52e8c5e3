"""atheris target: DG14 CA key → PACE-CAM check, never raises (ca.py).
Run: .venv/bin/python fuzz/fuzz_dg14_keys.py [libFuzzer flags],
or all targets with a time budget: .venv/bin/python fuzz/run.py --seconds 20."""

from atheris_main import main

if __name__ == "__main__":
    main("dg14_keys")
