# >>> clearml-lightning >>> (placed by `inv install`; `inv lightning.uninstall` removes this block)
# At Studio stop: stop the agents, then the ClearML stack, cleanly (data stays in the data directory).
(
  kit={{ kit_root }}
  inv={{ inv }}
  inv="${CLEARML_INV:-$inv}"
  log={{ log_file }}
  export CLEARML_ENV_FILE={{ env_file }}
  {
    echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) clearml-lightning on_stop"
    cd "$kit" || exit 0
    if "$inv" --list 2>/dev/null | grep -qE '^[[:space:]]*agents\.down([[:space:]]|$)'; then
      "$inv" agents.down
    fi
    "$inv" down
  } >>"$log" 2>&1
)
# <<< clearml-lightning <<<
