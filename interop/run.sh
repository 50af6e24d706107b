#!/usr/bin/env bash
# Runs the interop suite: the official Tencent IoT Explorer Python SDK as a device against a
# freshly built `tplgen emulate`. See interop/README.md.
#
# Where the SDK comes from, first match wins:
#   TPLGEN_INTEROP_SDK=DIR   a directory holding the SDK's packages (hub/, explorer/), run with
#                            TPLGEN_INTEROP_PYTHON (default /usr/bin/python3) and Debian's
#                            python3-paho-mqtt and python3-pycryptodome (installed when missing)
#   PyPI                     pip install tencent-iot-device==$TPLGEN_INTEROP_SDK_VERSION into a
#                            fresh virtualenv
# When neither works the suite prints "interop NOT RUN: ..." and exits 0, or 1 when
# TPLGEN_INTEROP=require. Exit status 1 when any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

SDK_VERSION="${TPLGEN_INTEROP_SDK_VERSION:-1.0.0}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

not_run() {
	echo "interop NOT RUN: $*"
	if [ "${TPLGEN_INTEROP:-}" = require ]; then exit 1; fi
	exit 0
}

apt_install() {
	local pkgs=("$@") sudo=()
	[ "$(id -u)" = 0 ] || sudo=(sudo)
	("${sudo[@]}" apt-get install -y "${pkgs[@]}" || ("${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y "${pkgs[@]}")) >/dev/null 2>&1
}

# The harness must at least be valid Python wherever this runs, SDK or not, so it cannot rot
# unseen on machines without PyPI.
python3 -c "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])" interop/harness.py || { echo "interop/harness.py does not parse"; exit 1; }
python3 interop/harness.py --help >/dev/null || { echo "interop/harness.py --help failed"; exit 1; }

sdk_args=()
if [ -n "${TPLGEN_INTEROP_SDK:-}" ]; then
	[ -f "$TPLGEN_INTEROP_SDK/hub/hub.py" ] || not_run "TPLGEN_INTEROP_SDK=$TPLGEN_INTEROP_SDK has no hub/hub.py"
	py="${TPLGEN_INTEROP_PYTHON:-/usr/bin/python3}"
	have_crypto() { "$py" -c 'import Cryptodome' 2>/dev/null || "$py" -c 'import Crypto.Cipher' 2>/dev/null; }
	if ! "$py" -c 'import paho.mqtt.client' 2>/dev/null || ! have_crypto; then
		apt_install python3-paho-mqtt python3-pycryptodome || true
	fi
	have_crypto || not_run "no pycryptodome for $py (apt-get install python3-pycryptodome)"
	"$py" -c 'import paho.mqtt.client' 2>/dev/null || not_run "no paho-mqtt for $py (apt-get install python3-paho-mqtt)"
	sdk_args=(--sdk "$TPLGEN_INTEROP_SDK")
	echo "interop: SDK from TPLGEN_INTEROP_SDK=$TPLGEN_INTEROP_SDK, python $("$py" --version 2>&1)"
else
	if ! python3 -m venv "$work/venv" >/dev/null 2>&1; then
		apt_install python3-venv || true
		python3 -m venv "$work/venv" >/dev/null 2>&1 || not_run "cannot create a virtualenv (python3-venv)"
	fi
	if ! "$work/venv/bin/pip" install --disable-pip-version-check --timeout 20 --retries 1 \
		"tencent-iot-device==$SDK_VERSION" >"$work/pip.log" 2>&1; then
		not_run "pip install tencent-iot-device==$SDK_VERSION failed (PyPI unreachable?): $(tail -1 "$work/pip.log")"
	fi
	py="$work/venv/bin/python"
	echo "interop: SDK tencent-iot-device==$SDK_VERSION from PyPI, python $("$py" --version 2>&1)"
fi

go build -o "$work/tplgen" ./cmd/tplgen
"$py" interop/harness.py suite --tplgen "$work/tplgen" "${sdk_args[@]}" "$@"
