//! The configuration as the process sees it: the real binary with an environment of the
//! test's choosing (and nothing else), so that clap's own reading of variables is what is
//! tested.

use std::process::{Command, Output};

fn task_api(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_task-api"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the task-api binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every variable the Helm chart sets for the container.
fn chart_variables() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../apps/base/task-api/chart/templates/deployment.yaml"
    );
    let template = std::fs::read_to_string(path).expect("the chart's deployment template");
    let names: Vec<String> = template
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- name: "))
        .map(str::trim)
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 10, "chart variables not found: {names:?}");
    names
}

#[test]
fn help_lists_every_variable_the_chart_sets_and_hides_secret_values() {
    let password = "hunter2";
    let output = task_api(
        &["--help"],
        &[(
            "DATABASE_URL",
            &format!("postgres://task:{password}@db/tasks"),
        )],
    );
    assert!(output.status.success(), "{output:?}");
    let help = text(&output.stdout);
    for name in chart_variables() {
        // Read by the OpenTelemetry SDK itself, not by the service's configuration.
        if name == "OTEL_SERVICE_NAME" {
            continue;
        }
        assert!(
            help.contains(&format!("[env: {name}")),
            "{name} missing in\n{help}"
        );
    }
    assert!(!help.contains(password), "{help}");
}

#[test]
fn an_invalid_value_stops_the_process_naming_its_variable() {
    let output = task_api(&[], &[("TASK_API_LISTEN", "localhost")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let errors = text(&output.stderr);
    assert!(errors.contains("TASK_API_LISTEN"), "{errors}");
    assert!(errors.contains("localhost"), "{errors}");
}

#[test]
fn blank_variables_count_as_unset() {
    // The chart writes `""` for settings it leaves alone: their defaults apply, and a blank
    // issuer is a missing one (not an issuer named "").
    let output = task_api(
        &[],
        &[
            ("TASK_API_DEV_MODE", "false"),
            ("OIDC_ISSUER_URL", ""),
            ("TASK_API_MAX_INFLIGHT", ""),
            ("TASK_API_LOG_LEVEL", " "),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let errors = text(&output.stderr);
    assert!(
        errors.contains("OIDC_ISSUER_URL is required when TASK_API_DEV_MODE is false"),
        "{errors}"
    );
}
