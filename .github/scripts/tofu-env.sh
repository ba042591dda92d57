#!/usr/bin/env bash
# Plans or applies every OpenTofu stack of one environment, in dependency order.
#   tofu-env.sh plan  <env> <out-dir>   writes <out-dir>/plan.md (the pull request comment)
#   tofu-env.sh apply <env> <out-dir>   plans each stack to a file, applies exactly that file
# Stack roots are opentofu/stacks/<stack>; backend and variables come from
# opentofu/environments/<env>/<stack>.{tfbackend,tfvars}. The `global` stack (OIDC provider,
# CI roles, registry) creates the roles this runs with, so administrators apply it by hand.
# `platform` reads TF_VAR_flux_git_token (ephemeral: never in state or plan files, so it is
# needed by plan and apply alike); the workflow passes it from the environment's secret.
set -euo pipefail

STACKS=(network cluster database platform)
COMMENT_LIMIT_PER_STACK=14000 # GitHub caps a comment at 65536 characters

mode="${1:?usage: tofu-env.sh plan|apply <env> <out-dir>}"
env_name="${2:?environment}"
out="${3:?output directory}"
case "$mode" in plan | apply) ;; *) echo "tofu-env: unknown mode '$mode'" >&2; exit 2 ;; esac
case "$env_name" in dev | staging | prod) ;; *) echo "tofu-env: unknown environment '$env_name'" >&2; exit 2 ;; esac

repo_root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
summary="$out/plan.md"
printf "<!-- opentofu-plan:%s -->\n### OpenTofu plan: \`%s\`\n\n" "$env_name" "$env_name" > "$summary"
status=0

for stack in "${STACKS[@]}"; do
  dir="$repo_root/opentofu/stacks/$stack"
  config="$repo_root/opentofu/environments/$env_name"
  echo "::group::$env_name/$stack: init"
  tofu -chdir="$dir" init -input=false -no-color -reconfigure -backend-config="$config/$stack.tfbackend"
  tofu -chdir="$dir" validate -no-color
  echo "::endgroup::"

  echo "::group::$env_name/$stack: plan"
  set +e
  tofu -chdir="$dir" plan -input=false -no-color -lock-timeout=5m -detailed-exitcode \
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
    echo "::group::$env_name/$stack: apply"
    tofu -chdir="$dir" apply -input=false -no-color -lock-timeout=5m "$out/$stack.tfplan"
    echo "::endgroup::"
  fi
done

exit "$status"
