use std::process::Command;

use crate::error::BenchError;

/// Runs a command to completion; returns stdout, or an error carrying stderr.
pub fn run_captured(cmd: &mut Command, program: &str) -> Result<String, BenchError> {
    let output = cmd.output().map_err(|source| BenchError::Spawn {
        program: program.to_string(),
        source,
    })?;
    if !output.status.success() {
        return Err(BenchError::CommandFailed {
            program: program.to_string(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
