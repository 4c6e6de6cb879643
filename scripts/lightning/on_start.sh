# >>> clearml-lightning >>> (placed by `inv install`; `inv lightning.uninstall` removes this block)
# At every Studio start: re-apply vm.max_map_count (a Studio does not keep kernel settings), wait for
# the Docker engine, then start the ClearML stack and the worker agents it is configured for. Output goes to the log below.
(
  kit={{ kit_root }}
  inv={{ inv }}
  inv="${CLEARML_INV:-$inv}"
  log={{ log_file }}
  want={{ min_map_count }}
  export CLEARML_ENV_FILE={{ env_file }}
  {
    echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) clearml-lightning on_start"
    have=$(cat "${CLEARML_PROC_MAX_MAP_COUNT:-/proc/sys/vm/max_map_count}" 2>/dev/null || echo 0)
    if [ "${have:-0}" -lt "$want" ]; then
      if [ "$(id -u)" -eq 0 ]; then
        sysctl -w "vm.max_map_count=$want"
      else
        sudo -n sysctl -w "vm.max_map_count=$want"
      fi || echo "could not set vm.max_map_count=$want: Elasticsearch may fail; run: sudo sysctl -w vm.max_map_count=$want"
    fi
    tries=0
    until docker info >/dev/null 2>&1 || [ "$tries" -ge 60 ]; do
      tries=$((tries + 1))
      sleep 2
    done
    cd "$kit" || exit 0
    "$inv" up || exit 0
    if "$inv" --list 2>/dev/null | grep -qE '^[[:space:]]*agents\.up([[:space:]]|$)'; then
      "$inv" agents.up --only-configured  # only workers CLEARML_AGENT_REPLICAS asks for
    fi
  } >>"$log" 2>&1
)
# <<< clearml-lightning <<<
