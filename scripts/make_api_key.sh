#!/usr/bin/env bash
# Makes an API key for hmrec_server (docs/OPERATIONS.md "API keys"):
#
#   scripts/make_api_key.sh NAME SCOPES KEY_FILE [KEYS_FILE]
#
# NAME: the client's name ([a-z0-9_-]{1,64}, a label in the metrics and the
# audit log); SCOPES: a comma-separated subset of recommend, record, inspect, erase.
# Writes a new random key (256 bits, URL-safe base64) to KEY_FILE (mode 600;
# an existing file is never overwritten): give it to the client
# (hmrec_client --api_key_file KEY_FILE, or HMREC_API_KEY). The line for the
# server's keys file, "NAME SCOPES sha256:HEX", is appended to KEYS_FILE
# (created with mode 600) or printed. The key itself is printed nowhere.
set -euo pipefail
if [[ $# -lt 3 || $# -gt 4 ]]; then
  echo "usage: $0 NAME SCOPES KEY_FILE [KEYS_FILE]" >&2
  exit 2
fi
name=$1 scopes=$2 key_file=$3 keys_file=${4:-}
[[ "$name" =~ ^[a-z0-9_-]{1,64}$ ]] || { echo "$0: NAME must be 1-64 characters of a-z 0-9 _ -" >&2; exit 2; }
IFS=, read -r -a words <<< "$scopes"
[[ ${#words[@]} -gt 0 ]] || { echo "$0: SCOPES is empty" >&2; exit 2; }
for w in "${words[@]}"; do
  case "$w" in
    recommend | record | inspect | erase) ;;
    *) echo "$0: unknown scope '$w': expected a comma-separated subset of recommend, record, inspect, erase" >&2; exit 2 ;;
  esac
done
[[ ! -e "$key_file" ]] || { echo "$0: $key_file exists; not overwriting a key" >&2; exit 1; }
umask 077
key=$(head -c 32 /dev/urandom | base64 | tr -d '=\n' | tr '+/' '-_')
printf '%s\n' "$key" > "$key_file"
line="$name $scopes sha256:$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)"
if [[ -n "$keys_file" ]]; then
  printf '%s\n' "$line" >> "$keys_file"
  chmod 600 "$keys_file"
  echo "$0: key for '$name' ($scopes) in $key_file; its line appended to $keys_file" >&2
else
  printf '%s\n' "$line"
fi
