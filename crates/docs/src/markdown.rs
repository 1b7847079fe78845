//! The fenced code blocks of a Markdown file, and the console sessions inside them.
//!
//! This file is also compiled into the crate's build script (through `#[path]`), which turns the
//! `rust` blocks into functions, so it depends on nothing but `std`.

/// One fenced code block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The fence's info string up to the first space or comma (`console`, `rust`, `yaml`…);
    /// empty when the fence names no language.
    pub lang: String,
    /// The whole info string (`yaml file=flags/x.yaml`).
    pub info: String,
    /// The 1-based line of the opening fence.
    pub line: usize,
    /// The lines between the fences, each ending in a newline.
    pub text: String,
}

/// Every fenced block of `markdown`, in order. Fences are three or more backticks at the start of
/// a line; an unterminated block runs to the end of the file, as CommonMark reads it.
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<(usize, usize, String, String, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let ticks = line.chars().take_while(|c| *c == '`').count();
        match &mut open {
            None if ticks >= 3 => {
                let info = line[ticks..].trim();
                let lang = info
                    .split([' ', ','])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                open = Some((index + 1, ticks, lang, info.to_string(), String::new()));
            }
            None => {}
            Some((start, width, lang, info, text)) => {
                if ticks >= *width && line[ticks..].trim().is_empty() {
                    found.push(Block {
                        lang: std::mem::take(lang),
                        info: std::mem::take(info),
                        line: *start,
                        text: std::mem::take(text),
                    });
                    open = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    if let Some((line, _, lang, info, text)) = open {
        found.push(Block {
            lang,
            info,
            line,
            text,
        });
    }
    found
}

/// One command of a console session and what it is documented to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The command, continuation lines joined with newlines (as the shell reads them).
    pub command: String,
    /// The 1-based line of the command within its block.
    pub line: usize,
    /// The documented output (standard output and standard error together), one line each.
    pub expected: Vec<String>,
    /// The documented exit status: a last output line `? N` sets it; 0 otherwise.
    pub status: i32,
}

/// The steps of a console block: a line `$ command` starts a step, lines `> more` right after it
/// continue the command (a here-document, a long pipeline), and every other line until the next
/// `$ ` is the command's expected output.
pub fn session(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_command = false;
    for (index, line) in text.lines().enumerate() {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_string(),
                line: index + 1,
                expected: Vec::new(),
                status: 0,
            });
            in_command = true;
            continue;
        }
        let Some(step) = steps.last_mut() else {
            continue;
        };
        if in_command && let Some(more) = line.strip_prefix("> ") {
            step.command.push('\n');
            step.command.push_str(more);
            continue;
        }
        in_command = false;
        step.expected.push(line.to_string());
    }
    for step in &mut steps {
        while step.expected.last().is_some_and(|l| l.trim().is_empty()) {
            step.expected.pop();
        }
        if let Some(status) = step
            .expected
            .last()
            .and_then(|l| l.strip_prefix("? "))
            .and_then(|n| n.trim().parse().ok())
        {
            step.status = status;
            step.expected.pop();
        }
    }
    steps
}

impl Block {
    /// The value of an attribute `name=value` of the info string, as in ```` ```yaml file=x.yaml ````.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.info
            .split_whitespace()
            .skip(1)
            .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
    }
}
