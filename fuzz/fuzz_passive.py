"""atheris target: EF.SOD through passive authentication, never raises (pa.py).
Run: .venv/bin/python fuzz/fuzz_passive.py [libFuzzer flags],
or all targets with a time budget: .venv/bin/python fuzz/run.py --seconds 20."""

from atheris_main import main

if __name__ == "__main__":
    main("passive")
