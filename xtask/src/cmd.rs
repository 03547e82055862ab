//! A child process to run: printed before it runs, with errors that name it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::anyhow;

use crate::{step, ChildFailed};

/// A program and its arguments, environment additions and working directory.
///
/// `Display` gives the command as one would type it in a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    current_dir: Option<PathBuf>,
}

impl Cmd {
    /// `program` with no arguments.
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            current_dir: None,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.current_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The program followed by its arguments.
    pub fn argv(&self) -> Vec<&str> {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect()
    }

    /// The program's name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The child as a [`Command`], for callers that wire its streams themselves.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        command
    }

    /// Prints the command, runs it with inherited stdio (output streams through)
    /// and fails with `"<what> failed (exit N)"` ([`ChildFailed`]) unless it succeeds.
    pub fn run(&self, what: &str) -> anyhow::Result<()> {
        step(format_args!("$ {self}"));
        let status = self
            .command()
            .status()
            .map_err(|error| self.spawn_error(what, &error))?;
        if status.success() {
            return Ok(());
        }
        Err(ChildFailed {
            message: format!("{what} failed ({})", describe_exit(status.code())),
            code: status.code(),
        }
        .into())
    }

    /// Runs the command quietly and captures its output; a missing program is
    /// `Err` with `io::ErrorKind::NotFound`.
    pub fn output(&self) -> io::Result<Output> {
        self.command().stdin(Stdio::null()).output()
    }

    /// The error for a child that could not be started.
    pub fn spawn_error(&self, what: &str, error: &io::Error) -> anyhow::Error {
        if error.kind() == io::ErrorKind::NotFound {
            anyhow!("{what} failed: `{}` not found on PATH", self.program)
        } else {
            anyhow!("{what} failed: cannot start `{}`: {error}", self.program)
        }
    }
}

/// `"exit N"`, or `"killed by a signal"` when there is no exit code.
pub fn describe_exit(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit {code}"),
        None => "killed by a signal".to_string(),
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.env {
            write!(f, "{key}={} ", shell_quote(value))?;
        }
        let argv = self.argv();
        for (i, word) in argv.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&shell_quote(word))?;
        }
        Ok(())
    }
}

/// `word` as a POSIX shell reads it back: plain when safe, else single-quoted.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_a_shell_command() {
        let cmd = Cmd::new("cargo")
            .args(["bench", "--bench", "*", "--", "it's"])
            .env("A", "b c");
        assert_eq!(
            cmd.to_string(),
            r"A='b c' cargo bench --bench '*' -- 'it'\''s'"
        );
        assert_eq!(Cmd::new("x").arg("").to_string(), "x ''");
    }

    #[test]
    fn run_reports_the_exit_code() {
        let error = Cmd::new("sh")
            .args(["-c", "exit 7"])
            .run("the probe")
            .unwrap_err();
        assert_eq!(error.to_string(), "the probe failed (exit 7)");
        assert_eq!(crate::exit_code(&error), 7);
        assert!(Cmd::new("sh").args(["-c", "exit 0"]).run("the probe").is_ok());
    }

    #[test]
    fn missing_program_is_named() {
        let error = Cmd::new("xtask-no-such-program")
            .run("the probe")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the probe failed: `xtask-no-such-program` not found on PATH"
        );
        assert_eq!(crate::exit_code(&error), 1);
    }
}
