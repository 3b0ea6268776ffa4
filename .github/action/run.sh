#!/usr/bin/env bash
# The run step of action.yml: runs portcullis with the action's inputs. It lives in a file so
# that the test suite runs exactly what the action runs.
#
# Inputs arrive as INPUT_* variables (set by action.yml), never spliced into the script text.
# INPUT_ARGS is split on whitespace, like unquoted words on a command line.
set -uo pipefail
bin="${PORTCULLIS_BIN:-portcullis}"
read -r -a extra <<< "${INPUT_ARGS:-}"
cd "${INPUT_WORKING_DIRECTORY:-.}" || exit 2
exec "$bin" run "${INPUT_PIPELINE:-ci}" --junit "${INPUT_JUNIT:-portcullis-junit.xml}" "${extra[@]}"
