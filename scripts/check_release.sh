#!/usr/bin/env bash
# The package as a user gets it: build the sdist and wheel, `twine check` them, install the wheel alone
# (not editable, no dev extras) with Airflow <version> and the repository's constraints into a fresh venv,
# and check that Airflow registers the provider, its hook and connection type, that the emulator CLI starts,
# and that every example DAG imports without errors.
#
#   scripts/check_release.sh 3.3.2        (make release-check AIRFLOW_VERSION=3.3.2)
#
# PYTHON: an interpreter with `build` and `twine` (the dev venv's; default python3). Work files go to a
# temporary directory, removed at the end (KEEP=1 keeps it).
set -euo pipefail

version="${1:?usage: check_release.sh AIRFLOW_VERSION}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
constraints="$repo/constraints/airflow-$version.txt"
work="$(mktemp -d "${TMPDIR:-/tmp}/msghistory-release-XXXXXX")"
emulator_pid=""
cleanup() {
  if [ -n "$emulator_pid" ]; then kill "$emulator_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
step() { echo "==> $*"; }
fail() { echo "release check FAILED (Airflow $version): $*" >&2; exit 1; }

step "build sdist and wheel"
"$python" -m build --sdist --wheel --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; fail "build"; }
wheel="$(ls "$work"/dist/*.whl)"
ls -1 "$work/dist"

step "twine check"
"$python" -m twine check --strict "$work"/dist/*

step "fresh venv: apache-airflow==$version + the wheel (no extras)"
base="$("$python" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
"$base" -m venv "$work/venv"
venv="$work/venv/bin"
constraint_args=()
if [ -f "$constraints" ]; then constraint_args=(-c "$constraints"); fi
"$venv/python" -m pip install --quiet --upgrade pip >"$work/pip.log" 2>&1 || { tail -30 "$work/pip.log"; fail "pip"; }
"$venv/python" -m pip install --quiet "${constraint_args[@]}" "apache-airflow==$version" "$wheel" \
  >>"$work/pip.log" 2>&1 || { grep -v "^WARNING: Location" "$work/pip.log" | tail -30; fail "pip install"; }

# A clean Airflow home, outside the repository (so nothing imports the source tree instead of the wheel).
export AIRFLOW_HOME="$work/airflow-home" AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$repo/example_dags" PYTHONPATH=""
cd "$work"

step "the installed package is the wheel, and its metadata"
"$venv/python" - "$version" <<'PY'
import sys
from importlib.metadata import distribution

import airflow_provider_msghistory as pkg
from airflow_provider_msghistory.get_provider_info import get_provider_info

assert "site-packages" in pkg.__file__, f"imported from {pkg.__file__}, not the installed wheel"
dist = distribution("airflow-provider-msghistory")
assert dist.version == pkg.__version__, (dist.version, pkg.__version__)
urls = dict(u.split(", ", 1) for u in dist.metadata.get_all("Project-URL") or [])
assert urls == pkg.PROJECT_URLS == get_provider_info()["project-urls"], urls
direct = dist.read_text("direct_url.json") or ""
assert '"editable": true' not in direct, "editable install"
print(f"airflow-provider-msghistory {dist.version} from {pkg.__file__}; Project-URLs: {', '.join(urls)}")
PY

step "airflow providers list / hooks"
"$venv/airflow" providers list --output json >"$work/providers.json" 2>"$work/providers.err" \
  || { cat "$work/providers.err"; fail "airflow providers list"; }
"$venv/airflow" providers hooks --output json >"$work/hooks.json" 2>"$work/hooks.err" \
  || { cat "$work/hooks.err"; fail "airflow providers hooks"; }
"$venv/python" - "$work" <<'PY'
import json
import sys
from pathlib import Path

import airflow_provider_msghistory as pkg

work = Path(sys.argv[1])
providers = [p for p in json.loads((work / "providers.json").read_text())
             if p["package_name"] == "airflow-provider-msghistory"]
assert len(providers) == 1 and providers[0]["version"] == pkg.__version__, providers
hooks = [h for h in json.loads((work / "hooks.json").read_text()) if h["connection_type"] == "msghistory"]
assert [h["class"] for h in hooks] == ["airflow_provider_msghistory.hooks.msghistory.MsgHistoryHook"], hooks

from airflow.providers_manager import ProvidersManager

behaviour = ProvidersManager().field_behaviours["msghistory"]
assert behaviour["relabeling"]["host"] == "API base URL", behaviour
print(f"provider {providers[0]['version']}, connection type msghistory -> {hooks[0]['class']}")
PY

step "msghistory-emulator starts"
"$venv/msghistory-emulator" --help >/dev/null
"$venv/msghistory-emulator" --port 0 --storage-port 0 >"$work/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 1 120); do
  grep -q "^export AIRFLOW_CONN_" "$work/emulator.log" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.log"; fail "the emulator exited"; }
  sleep 0.5
done
grep -q "^export AIRFLOW_CONN_" "$work/emulator.log" || { cat "$work/emulator.log"; fail "no emulator banner"; }
head -1 "$work/emulator.log"
kill "$emulator_pid"; wait "$emulator_pid" || true; emulator_pid=""

step "example DAGs import without errors"
"$venv/python" - "$repo/example_dags" <<'PY'
import sys

try:
    from airflow.dag_processing.dagbag import DagBag  # Airflow >= 3.1
except ImportError:
    from airflow.models.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])  # AIRFLOW__CORE__LOAD_EXAMPLES=False: only these files
assert not bag.import_errors, bag.import_errors
assert len(bag.dags) >= 8, sorted(bag.dags)
print(f"{len(bag.dags)} example DAGs imported: {', '.join(sorted(bag.dags))}")
PY

echo "release check passed (Airflow $version)"
