"""atheris target: local API POST /read body → access key (api/server.py).
Run: .venv/bin/python fuzz/fuzz_api_body.py [libFuzzer flags],
or all targets with a time budget: .venv/bin/python fuzz/run.py --seconds 20."""

from atheris_main import main

if __name__ == "__main__":
    main("api_body")
