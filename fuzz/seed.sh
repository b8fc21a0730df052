#!/usr/bin/env bash
# Seeds each fuzz target's corpus with the project's real payload fixtures.
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../tests/fixtures
for target in sendgrid mailgun postmark ses mandrill brevo sparkpost resend customerio; do
  mkdir -p "corpus/$target"
  prefix=$target
  [ "$target" = ses ] && prefix=s
  for f in "$fixtures"/esp/"$prefix"*.json "$fixtures"/esp/"$prefix"*.body; do
    [ -e "$f" ] && cp "$f" "corpus/$target/"
  done
done
mkdir -p corpus/v1 corpus/state
for f in "$fixtures"/segment/*.json; do cp "$f" corpus/v1/; done
# Mandrill posts its JSON array form-encoded as `mandrill_events`.
python3 -c 'import sys, urllib.parse; sys.stdout.write("mandrill_events=" + urllib.parse.quote(open(sys.argv[1]).read()))' \
  "$fixtures/esp/mandrill_events_batch.json" > corpus/mandrill/mandrill_events_form
