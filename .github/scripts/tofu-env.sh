#!/usr/bin/env bash
# Plans or applies every OpenTofu stack of one environment, in dependency order.
#   tofu-env.sh plan  <env> <out-dir>   writes <out-dir>/plan.md (the pull request comment)
#   tofu-env.sh apply <env> <out-dir>   plans each stack to a file, applies exactly that file
# Stack roots are opentofu/stacks/<stack>; backend and variables come from
# opentofu/environments/<env>/<stack>.{tfbackend,tfvars}. The `global` stack (OIDC provider,
# CI roles, registry) creates the roles this runs with, so administrators apply it by hand.
#
# Apply mode:
# - needs the apply-only secrets of `platform` (APPLY_SECRETS: the read-only Flux GitHub App's
#   key and the Slack webhook of Flux's failure notifications; ephemeral, so neither in state
#   nor in the plan file); plan mode never passes them on;
# - applies only while the checked-out commit ($GITHUB_SHA) is still the head of main: runs are
#   never cancelled, so an older run that waited (for an approval, for the state lock) leaves
#   the environment to the newer run instead of applying older code over it. The head is read
#   from the GitHub API ($GITHUB_API_URL, $GITHUB_REPOSITORY, $GH_TOKEN).
set -euo pipefail

STACKS=(network cluster database platform)
COMMENT_LIMIT_PER_STACK=14000 # GitHub caps a comment at 65536 characters
# Variable -> the GitHub environment secret it comes from.
APPLY_SECRETS=(
  "TF_VAR_flux_github_app_private_key=FLUX_GITHUB_APP_PRIVATE_KEY"
  "TF_VAR_flux_notifications_slack_webhook=FLUX_NOTIFICATIONS_SLACK_WEBHOOK"
)
PLAN_LOCK_TIMEOUT=5m
APPLY_LOCK_TIMEOUT=40m # another run's apply of this environment may hold the state lock

mode="${1:?usage: tofu-env.sh plan|apply <env> <out-dir>}"
env_name="${2:?environment}"
out="${3:?output directory}"
case "$mode" in plan | apply) ;; *) echo "tofu-env: unknown mode '$mode'" >&2; exit 2 ;; esac
case "$env_name" in dev | staging | prod) ;; *) echo "tofu-env: unknown environment '$env_name'" >&2; exit 2 ;; esac

if [ "$mode" = plan ]; then
  # Pull-request plans run code under review: no credential beyond the read-only role.
  for pair in "${APPLY_SECRETS[@]}"; do unset "${pair%%=*}"; done
  lock_timeout="$PLAN_LOCK_TIMEOUT"
else
  for pair in "${APPLY_SECRETS[@]}"; do
    variable="${pair%%=*}"
    if [ -z "${!variable:-}" ]; then
      echo "tofu-env: apply needs $variable (secret ${pair#*=} of environment $env_name)" >&2
      exit 2
    fi
  done
  for required in GITHUB_SHA GITHUB_REPOSITORY GITHUB_API_URL GH_TOKEN; do
    if [ -z "${!required:-}" ]; then
      echo "tofu-env: apply needs $required to check that this run is still the head of main" >&2
      exit 2
    fi
  done
  lock_timeout="$APPLY_LOCK_TIMEOUT"
fi

# Prints the commit main points at now.
main_head() {
  curl --silent --show-error --fail --retry 3 \
    -H "Authorization: Bearer $GH_TOKEN" -H "Accept: application/vnd.github.sha" \
    "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/commits/main"
}

# True while this run's commit is the head of main.
still_head() {
  local head
  head="$(main_head)"
  [ "$head" = "$GITHUB_SHA" ]
}

repo_root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
summary="$out/plan.md"
printf "<!-- opentofu-plan:%s -->\n### OpenTofu plan: \`%s\`\n\n" "$env_name" "$env_name" > "$summary"
status=0

for stack in "${STACKS[@]}"; do
  dir="$repo_root/opentofu/stacks/$stack"
  config="$repo_root/opentofu/environments/$env_name"

  if [ "$mode" = apply ] && ! still_head; then
    echo "tofu-env: $GITHUB_SHA is no longer the head of main; the newer run applies $env_name from $stack on"
    printf '%s: superseded by a newer commit on main before %s; nothing applied from here on.\n' "$env_name" "$stack" >> "$summary"
    break
  fi

  echo "::group::$env_name/$stack: init"
  tofu -chdir="$dir" init -input=false -no-color -reconfigure -backend-config="$config/$stack.tfbackend"
  tofu -chdir="$dir" validate -no-color
  echo "::endgroup::"

  echo "::group::$env_name/$stack: plan"
  set +e
  tofu -chdir="$dir" plan -input=false -no-color -lock-timeout="$lock_timeout" -detailed-exitcode \
    -var-file="$config/$stack.tfvars" -out="$out/$stack.tfplan"
  code=$?
  set -e
  echo "::endgroup::"
  case "$code" in
    0) verdict="no changes" ;;
    2) verdict="changes" ;;
    *) verdict="**plan failed** (exit $code)"; status=1 ;;
  esac

  {
    printf '<details><summary><code>%s</code>: %s</summary>\n\n```\n' "$stack" "$verdict"
    if [ -f "$out/$stack.tfplan" ]; then
      tofu -chdir="$dir" show -no-color "$out/$stack.tfplan" > "$out/$stack.txt"
      head -c "$COMMENT_LIMIT_PER_STACK" "$out/$stack.txt"
      if [ "$(wc -c < "$out/$stack.txt")" -gt "$COMMENT_LIMIT_PER_STACK" ]; then
        printf '\n... truncated: the whole plan is in the job log and the run artifact\n'
      fi
    else
      echo "(no plan: see the job log)"
    fi
    printf '\n```\n</details>\n\n'
  } >> "$summary"

  if [ "$code" -ne 0 ] && [ "$code" -ne 2 ]; then
    # Later stacks read this one's outputs; planning them against a broken stage says nothing.
    break
  fi
  if [ "$mode" = apply ] && [ "$code" -eq 2 ]; then
    if ! still_head; then
      echo "tofu-env: $GITHUB_SHA was superseded while planning $stack; not applying it"
      printf '%s: superseded by a newer commit on main while planning %s; not applied.\n' "$env_name" "$stack" >> "$summary"
      break
    fi
    echo "::group::$env_name/$stack: apply"
    tofu -chdir="$dir" apply -input=false -no-color -lock-timeout="$lock_timeout" "$out/$stack.tfplan"
    echo "::endgroup::"
  fi
done

exit "$status"
