//! The shell without a task on its command line: the backends start once,
//! then tasks are read one per line — at a `heroic>` prompt on a terminal
//! (line editing, history, tab completion), or from stdin when it is not
//! one, so that scripts can pipe tasks in. A line is what would follow
//! `heroic-shell [switches]` on the command line (quoted as a POSIX shell
//! quotes), and runs with the same output.

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{FileHistory, History};
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::shell::{run_task, Shell, ShellError, Task};

// One line: a task and its arguments, as on the command line.
#[derive(Parser, Debug)]
#[command(
    name = "heroic>",
    no_binary_name = true,
    disable_version_flag = true,
    about = "Tasks, one per line, with the arguments they take on the command line; exit or Ctrl-D leaves",
    override_usage = "TASK [ARGS]"
)]
struct TaskLine {
    #[command(subcommand)]
    task: Task,
}

/// What a line asks of the loop.
enum Flow {
    Continue,
    Exit,
}

/// Words that are not tasks.
const EXIT_WORDS: [&str; 2] = ["exit", "quit"];

/// Reads and runs tasks until `exit`, Ctrl-D or the end of stdin. Piped
/// tasks all run; the result is an error when any of them failed.
pub async fn run_lines(shell: &Shell) -> Result<(), ShellError> {
    if std::io::stdin().is_terminal() {
        prompt(shell).await
    } else {
        piped(shell).await
    }
}

/// The longest line read from stdin: a task's arguments, with points as
/// JSON at most; a longer line is refused rather than held in memory.
const MAX_LINE_BYTES: usize = 16 << 20;

/// The next line of `input` without its newline; `Err(Usage)` for a line
/// over [`MAX_LINE_BYTES`] (skipped to its end) or not UTF-8.
fn next_line(input: &mut impl BufRead) -> Option<Result<String, ShellError>> {
    let mut line = Vec::new();
    match input.by_ref().take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut line) {
        Ok(0) => return None,
        Ok(_) => {}
        Err(e) => return Some(Err(e.into())),
    }
    if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
        // Drop the rest of the line, a bounded buffer at a time.
        let mut rest = Vec::new();
        while input.by_ref().take(64 << 10).read_until(b'\n', &mut rest).is_ok_and(|n| n > 0) {
            if rest.last() == Some(&b'\n') {
                break;
            }
            rest.clear();
        }
        return Some(Err(ShellError::usage(format!("the line is longer than {} MiB", MAX_LINE_BYTES >> 20))));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Some(String::from_utf8(line).map_err(|_| ShellError::usage("the line is not UTF-8")))
}

async fn piped(shell: &Shell) -> Result<(), ShellError> {
    let mut input = std::io::stdin().lock();
    let (mut number, mut failed) = (0usize, 0usize);
    let mut first = None;
    // The backends run on other threads: blocking this one on stdin
    // between two tasks stalls nothing.
    while let Some(line) = tokio::task::block_in_place(|| next_line(&mut input)) {
        number += 1;
        let result = match line {
            Ok(line) => run_line(shell, &line).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => break,
            Err(e) if e.is_broken_pipe() => return Err(e),
            Err(e) => {
                eprintln!("error: line {number}: {e}");
                failed += 1;
                first.get_or_insert_with(|| format!("line {number}: {e}"));
            }
        }
    }
    match first {
        None => Ok(()),
        Some(first) => Err(ShellError::Failed { count: failed, first }),
    }
}

async fn prompt(shell: &Shell) -> Result<(), ShellError> {
    let mut editor: Editor<Completion, FileHistory> =
        Editor::new().map_err(|e| ShellError::Output(std::io::Error::other(e)))?;
    editor.set_helper(Some(Completion::new()));
    let history = history_path();
    if let Some(path) = &history {
        // A missing file is the first session; nothing to report.
        let _ = editor.load_history(path);
    }
    eprintln!("heroic-shell: {}; `help` lists the tasks, `exit` or Ctrl-D leaves", shell.describe());
    loop {
        let line = match tokio::task::block_in_place(|| editor.readline("heroic> ")) {
            Ok(line) => line,
            // Ctrl-C drops the line being typed, as shells do.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(ShellError::Output(std::io::Error::other(e))),
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        match run_line(shell, &line).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => break,
            Err(e) => eprintln!("error: {e}"),
        }
    }
    if let Some(path) = &history {
        if let Err(e) = editor.history_mut().save(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the shell history");
        }
    }
    Ok(())
}

/// `$HEROIC_SHELL_HISTORY`, else `~/.heroic-shell-history`; none without a
/// home directory.
fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HEROIC_SHELL_HISTORY") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".heroic-shell-history"))
}

/// Parses and runs one line.
async fn run_line(shell: &Shell, line: &str) -> Result<Flow, ShellError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Flow::Continue);
    }
    let words = shlex::split(line).ok_or_else(|| ShellError::usage(format!("unbalanced quotes in {line:?}")))?;
    if words.len() == 1 && EXIT_WORDS.contains(&words[0].as_str()) {
        return Ok(Flow::Exit);
    }
    let task = match TaskLine::try_parse_from(&words) {
        Ok(parsed) => parsed.task,
        Err(e) if !e.use_stderr() => {
            // `help`, `help TASK`, `TASK --help`: the answer, not an error.
            print!("{}", e.render());
            return Ok(Flow::Continue);
        }
        Err(e) => {
            // clap's first line says what is wrong; its usage lines are
            // for a command line, `help TASK` is the prompt's.
            let rendered = e.render().to_string();
            let what: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            let what = what.join(" ");
            let what = what.trim_start_matches("error: ");
            let hint = match (e.kind(), words.first()) {
                (clap::error::ErrorKind::InvalidSubcommand, _) | (_, None) => "`help` lists the tasks".to_string(),
                (_, Some(task)) => format!("`help {task}` shows its arguments"),
            };
            return Err(ShellError::usage(format!("{what} ({hint})")));
        }
    };
    if let Task::CheckData = task {
        return Err(ShellError::usage(
            "check-data reads the data without opening the backends, which this shell has open: run it on its own \
             (heroic-shell … check-data)",
        ));
    }
    run_task(shell, &task).await?;
    Ok(Flow::Continue)
}

/// Tab completion: task names first, then the task's long options.
struct Completion {
    /// Each task's name and `--options`.
    tasks: Vec<(String, Vec<String>)>,
}

impl Completion {
    fn new() -> Self {
        let command = TaskLine::command();
        let mut tasks: Vec<(String, Vec<String>)> = command
            .get_subcommands()
            .map(|task| {
                let options = task.get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")).collect();
                (task.get_name().to_string(), options)
            })
            .collect();
        tasks.extend(EXIT_WORDS.iter().map(|w| (w.to_string(), Vec::new())));
        Completion { tasks }
    }

    /// Candidates for the word being typed (`word`), after `before` (the
    /// line up to that word).
    fn candidates(&self, before: &str, word: &str) -> Vec<String> {
        let words: Vec<&str> = before.split_whitespace().collect();
        let names: Vec<&String> = match words.first() {
            None => self.tasks.iter().map(|(name, _)| name).collect(),
            Some(&"help") if words.len() == 1 => self.tasks.iter().map(|(name, _)| name).collect(),
            Some(task) => self.tasks.iter().filter(|(name, _)| name == task).flat_map(|(_, options)| options).collect(),
        };
        names.into_iter().filter(|name| name.starts_with(word)).cloned().collect()
    }
}

impl Completer for Completion {
    type Candidate = String;

    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        Ok((start, self.candidates(&before[..start], &before[start..])))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_task_names_then_their_options() {
        let c = Completion::new();
        assert_eq!(c.candidates("", "conf"), vec!["configure"]);
        let metadata: Vec<String> = c.candidates("", "metadata-");
        assert!(metadata.contains(&"metadata-fetch".to_string()) && metadata.len() >= 6, "{metadata:?}");
        assert!(c.candidates("query ", "--").iter().any(|o| o.starts_with("--")), "options of query");
        assert_eq!(c.candidates("help ", "ex"), vec!["exit"]);
        assert!(c.candidates("nosuch ", "--").is_empty());
    }

    #[test]
    fn overlong_and_non_utf8_lines_are_refused_and_the_next_ones_read() {
        let mut text = b"keys\r\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        text.extend(b"\nbad \xff\nlast");
        let mut input = std::io::Cursor::new(text);
        assert_eq!(next_line(&mut input).unwrap().unwrap(), "keys");
        let e = next_line(&mut input).unwrap().unwrap_err().to_string();
        assert!(e.contains("longer than 16 MiB"), "{e}");
        assert!(next_line(&mut input).unwrap().unwrap_err().to_string().contains("not UTF-8"));
        assert_eq!(next_line(&mut input).unwrap().unwrap(), "last");
        assert!(next_line(&mut input).is_none());
    }

    #[test]
    fn a_line_parses_as_the_command_line_task() {
        let parsed = TaskLine::try_parse_from(shlex::split("fetch -s '{\"key\": \"a b\"}'").unwrap()).unwrap();
        assert!(matches!(parsed.task, Task::Fetch(_)), "{parsed:?}");
        let e = TaskLine::try_parse_from(["help"]).unwrap_err();
        assert!(!e.use_stderr() && e.render().to_string().contains("configure"), "{e}");
    }
}
